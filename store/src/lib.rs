//! Errand's app database: tasks, their rounds and checks, and review records, on SQLite or
//! PostgreSQL through sea-orm.
//!
//! Every write is idempotent, because the activities that call it are retried, and a task
//! never leaves a final status.

mod columns;
mod connect;
pub mod entities;
mod error;
mod event_log;
mod events;
mod facts;
mod reads;
mod reviews;
mod rounds;
mod rows;
mod tasks;

pub use connect::Store;
pub use error::StoreError;
pub use events::{CheckOutcome, EventKind, TaskEvent, TaskEventData};
pub use facts::TaskFacts;
pub use rows::{ReviewDecisionRow, ReviewRequestRow, RoundRow, TaskRecord, TaskRow};
