//! Errand's app database: tasks, their rounds and checks, and review records, on SQLite or
//! PostgreSQL through sea-orm.
//!
//! Every write is idempotent, because the activities that call it are retried, and a task
//! never leaves a final status.

mod budgets;
mod columns;
mod connect;
mod crashes;
pub mod entities;
mod error;
mod event_log;
mod events;
mod facts;
mod github;
mod ledger;
mod reads;
mod reviews;
mod rounds;
mod rows;
mod tasks;

pub use budgets::{BudgetRow, BudgetScope, PeriodBudget, PeriodSpent};
pub use connect::Store;
pub use crashes::{CrashGroupFilter, CrashGroupRecord, OutboxOccurrence, TakenCrash};
pub use error::StoreError;
pub use events::{CheckOutcome, EventKind, TaskEvent, TaskEventData};
pub use facts::{SandboxKills, TaskFacts};
pub use github::{Followup, GithubWrite, GithubWriteKind, TaskOrigin};
pub use ledger::{
    AD_HOC, CostGroup, CostTotals, EntryKind, LedgerEntry, LedgerRow, LedgerSum, SandboxTime,
    SpendScope,
};
pub use rows::{ReviewDecisionRow, ReviewRequestRow, RoundRow, TaskRecord, TaskRow};
