//! What can go wrong in the store, with the input that caused it.

use sea_orm::{DbErr, SqlErr};
use workflows::TaskStatus;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url {url}: expected sqlite: or postgres://")]
    UnsupportedUrl { url: String },
    #[error("cannot connect to database {url}")]
    Connect {
        url: String,
        #[source]
        source: DbErr,
    },
    #[error("cannot migrate database {url}")]
    Migrate {
        url: String,
        #[source]
        source: DbErr,
    },
    /// A statement failed; `action` says what the store was doing, e.g. `admit task t1`.
    #[error("cannot {action}")]
    Query {
        action: String,
        #[source]
        source: DbErr,
    },
    #[error("task {task_id} does not exist")]
    UnknownTask { task_id: String },
    #[error("cannot finish task {task_id} with status {status}: not a final status")]
    NotFinal { task_id: String, status: TaskStatus },
    #[error("task {task_id}: {field} {value} does not fit in the database")]
    OutOfRange {
        task_id: String,
        field: &'static str,
        value: String,
    },
    /// A value read back from the database that this version does not understand.
    #[error("task {task_id}: unknown {field} {value:?} in the database")]
    Corrupt {
        task_id: String,
        field: &'static str,
        value: String,
    },
    /// A budget row this version does not understand.
    #[error("budget {id}: unknown {field} {value:?} in the database")]
    CorruptBudget {
        id: i64,
        field: &'static str,
        value: String,
    },
    #[error("cannot encode the spec of task {task_id}")]
    EncodeSpec {
        task_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode a {kind} event of task {task_id}")]
    EncodeEvent {
        task_id: String,
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// For `map_err`: the action is only spelled out when a statement failed.
    pub(crate) fn query(action: impl FnOnce() -> String) -> impl FnOnce(DbErr) -> StoreError {
        move |source| StoreError::Query {
            action: action(),
            source,
        }
    }

    /// For `map_err` on writes to a table that references `tasks`: a foreign-key violation
    /// means the task was never admitted.
    pub(crate) fn write_of(
        task_id: &str,
        action: impl FnOnce() -> String,
    ) -> impl FnOnce(DbErr) -> StoreError {
        move |source| match source.sql_err() {
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => StoreError::UnknownTask {
                task_id: task_id.to_string(),
            },
            _ => StoreError::Query {
                action: action(),
                source,
            },
        }
    }
}
