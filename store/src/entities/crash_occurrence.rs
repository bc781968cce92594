//! The `crash_occurrences` table: the latest occurrences of each crash group, numbered.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crash_occurrences")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub group_id: String,
    pub seq: i64,
    pub received_at: DateTimeUtc,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub host: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub task_id: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
