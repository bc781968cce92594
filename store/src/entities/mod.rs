//! sea-orm entities, one per table of the `migrations` crate; the store's own types live above.

pub mod budgets;
pub mod check_result;
pub mod crash_group;
pub mod crash_investigation_slot;
pub mod crash_occurrence;
pub mod github_delivery;
pub mod github_pull_request;
pub mod github_task_origin;
pub mod github_write;
pub mod ledger_entries;
pub mod review_decision;
pub mod review_request;
pub mod round;
pub mod task;
pub mod task_event;
pub mod task_followup;
