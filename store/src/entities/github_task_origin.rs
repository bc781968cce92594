//! The `github_task_origins` table: a task started from a GitHub issue, followed by the API's
//! GitHub reporter until it has written the acknowledgement, the PR and the final report.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "github_task_origins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub task_id: String,
    /// `owner/name`.
    pub repo: String,
    pub issue_number: i64,
    #[sea_orm(column_type = "Text")]
    pub issue_title: String,
    pub playbook: String,
    pub created_at: DateTimeUtc,
    /// When the reporter wrote everything; None while it follows the task.
    pub done_at: Option<DateTimeUtc>,
    /// The reporter writing for the task now, until `claimed_until`.
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
