//! The HTTP routes, one module per resource, each next to its handlers' OpenAPI description.

pub mod budgets;
pub mod cost;
pub mod crashes;
pub mod events;
pub mod github;
pub mod health;
pub mod history;
pub mod metrics;
pub mod playbooks;
pub mod report;
pub mod reviews;
pub mod schedules;
pub mod stats;
pub mod tasks;

/// OpenAPI tags, so the document groups the routes.
pub const TASKS: &str = "tasks";
pub const PLAYBOOKS: &str = "playbooks";
pub const SERVICE: &str = "service";
pub const COST: &str = "cost";
pub const CRASHES: &str = "crashes";
pub const SCHEDULES: &str = "schedules";
pub const TRIGGERS: &str = "triggers";
