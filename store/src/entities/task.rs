//! The `tasks` table: one row per admitted task, its current status and final report.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `TaskStatus::as_str`.
    pub status: String,
    pub round: i32,
    #[sea_orm(column_type = "Text")]
    pub repo: String,
    pub base: String,
    pub branch: String,
    pub requester: String,
    #[sea_orm(column_type = "Text")]
    pub instructions: String,
    /// The whole `TaskSpec` as JSON.
    #[sea_orm(column_type = "Text")]
    pub spec: String,
    pub playbook_name: Option<String>,
    pub playbook_hash: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub report: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
