//! GitHub as a trigger: webhook signatures, the events Errand acts on, and the small REST
//! client that asks GitHub who may start runs; and the reporter that writes back on the
//! issues that started tasks (comments, the task's PR). The route is `routes::github`.

pub mod client;
pub mod events;
pub mod reporter;
pub mod settings;
pub mod signature;
pub mod webhook;

pub use settings::GithubSettings;
