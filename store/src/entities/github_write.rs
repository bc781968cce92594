//! The `github_writes` table: each comment or PR written on GitHub for a task, one per kind,
//! with GitHub's id (a comment's id, a PR's number).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "github_writes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub task_id: String,
    /// `GithubWriteKind::as_str`.
    pub kind: String,
    pub github_id: i64,
    pub created_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
