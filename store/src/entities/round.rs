//! The `rounds` table: the agent run of each round of a task.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rounds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub round: i32,
    /// `exited` or `timed_out`.
    pub agent_exit: String,
    pub agent_exit_code: Option<i32>,
    pub agent_duration_ms: i64,
    #[sea_orm(column_type = "Text")]
    pub agent_output_tail: String,
    #[sea_orm(column_type = "Text")]
    pub agent_log_path: String,
}

impl ActiveModelBehavior for ActiveModel {}
