//! The `crash_groups` table: one row per crash group (service + fingerprint), as its
//! `CrashInvestigation` workflow last recorded it.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crash_groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub fingerprint: String,
    pub service: String,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    pub language: String,
    #[sea_orm(column_type = "Text")]
    pub crash_type: String,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
    pub count: i64,
    /// JSON list of strings.
    #[sea_orm(column_type = "Text")]
    pub releases: String,
    /// JSON list of strings.
    #[sea_orm(column_type = "Text")]
    pub environments: String,
    /// `CrashGroupStatus::as_str`.
    pub status: String,
    pub task_id: Option<String>,
    pub investigations: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
