//! Errand's side effects: the sandbox, git against the task's remote, the local forge, and the
//! store writes of the pipeline, exposed to Temporal as the activities of
//! `workflows::contracts`.

pub mod agent_output;
pub mod agents;
pub mod checkpoint;
pub mod cost_guard;
pub mod crash_activities;
pub mod data_dir;
pub mod diff;
pub mod gateway;
pub mod git;
pub mod host;
pub mod ledger;
pub mod output;
pub mod red_green;
pub mod redact;
pub mod sandbox;
pub mod slot_activities;
pub mod task_activities;
pub mod workspace;
