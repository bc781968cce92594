//! The HTTP routes, one module per resource, each next to its handlers' OpenAPI description.

pub mod health;
pub mod playbooks;
pub mod reviews;
pub mod tasks;

/// OpenAPI tags, so the document groups the routes.
pub const TASKS: &str = "tasks";
pub const PLAYBOOKS: &str = "playbooks";
pub const SERVICE: &str = "service";
