//! The `github_pull_requests` table: a repository's PR mapped to the task whose branch it is.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "github_pull_requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `owner/name`.
    pub repo: String,
    pub number: i64,
    pub task_id: String,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
