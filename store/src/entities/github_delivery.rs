//! The `github_deliveries` table: each GitHub webhook delivery acted on, by its id.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "github_deliveries")]
pub struct Model {
    /// `X-GitHub-Delivery`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub delivery_id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    /// What Errand did with it, as the webhook answered.
    pub outcome: String,
    pub received_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
