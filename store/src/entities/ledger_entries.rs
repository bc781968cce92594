//! The `ledger_entries` table: one priced model call, refused call or sandbox run of a task.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task_id: String,
    pub round: i32,
    /// `agent`, `checks`, ...: the step of the round the cost belongs to.
    pub step: String,
    /// `EntryKind::as_str`: `model` or `sandbox`.
    pub kind: String,
    pub model: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub sandbox_wall_ms: Option<i64>,
    pub sandbox_cpu_ms: Option<i64>,
    pub micro_dollars: i64,
    pub refused_budget: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub refused_message: Option<String>,
    pub playbook: Option<String>,
    pub trigger: Option<String>,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
