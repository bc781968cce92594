//! The `check_results` table: each check command of a round, in the order they ran.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "check_results")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task_id: String,
    pub round: i32,
    /// Position within the round, from 0.
    pub seq: i32,
    #[sea_orm(column_type = "Text")]
    pub command: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: i64,
    #[sea_orm(column_type = "Text")]
    pub output_tail: String,
}

impl ActiveModelBehavior for ActiveModel {}
