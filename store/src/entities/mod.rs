//! sea-orm entities, one per table of the `migrations` crate; the store's own types live above.

pub mod check_result;
pub mod review_decision;
pub mod review_request;
pub mod round;
pub mod task;
pub mod task_event;
