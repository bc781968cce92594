//! The `crash_investigation_slots` table: each investigation a service started, in the fixed
//! window and numbered slot it took.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crash_investigation_slots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub service: String,
    /// Unix seconds at which the window starts.
    #[sea_orm(primary_key, auto_increment = false)]
    pub window_start: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub slot: i32,
    pub group_id: String,
    pub investigation: i32,
    pub claimed_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
