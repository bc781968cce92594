//! GitHub webhooks: `github_deliveries` (each `X-GitHub-Delivery` acted on, so a redelivery
//! is ignored), `github_pull_requests` (a PR of a repository mapped to the task whose branch
//! it carries) and `task_followups` (comments for a task's next round, one per delivery).

// `DeriveIden` expands to paths under `sea_orm`, so that name must be in scope.
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table, sea_orm,
};
use sea_orm_migration::schema::{big_integer, big_pk_auto, string, text, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum GithubDeliveries {
    Table,
    DeliveryId,
    Event,
    Outcome,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum GithubPullRequests {
    Table,
    Id,
    Repo,
    Number,
    TaskId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TaskFollowups {
    Table,
    Id,
    TaskId,
    DeliveryId,
    Author,
    Body,
    CreatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GithubDeliveries::Table)
                    .if_not_exists()
                    .col(string(GithubDeliveries::DeliveryId).primary_key())
                    .col(string(GithubDeliveries::Event))
                    .col(string(GithubDeliveries::Outcome))
                    .col(timestamp_with_time_zone(GithubDeliveries::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GithubPullRequests::Table)
                    .if_not_exists()
                    .col(big_pk_auto(GithubPullRequests::Id))
                    .col(string(GithubPullRequests::Repo))
                    .col(big_integer(GithubPullRequests::Number))
                    .col(string(GithubPullRequests::TaskId))
                    .col(timestamp_with_time_zone(GithubPullRequests::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("github_pull_requests_repo_number")
                    .table(GithubPullRequests::Table)
                    .col(GithubPullRequests::Repo)
                    .col(GithubPullRequests::Number)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskFollowups::Table)
                    .if_not_exists()
                    .col(big_pk_auto(TaskFollowups::Id))
                    .col(string(TaskFollowups::TaskId))
                    .col(string(TaskFollowups::DeliveryId).unique_key())
                    .col(string(TaskFollowups::Author))
                    .col(text(TaskFollowups::Body))
                    .col(timestamp_with_time_zone(TaskFollowups::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("task_followups_task")
                    .table(TaskFollowups::Table)
                    .col(TaskFollowups::TaskId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "task_followups",
            "github_pull_requests",
            "github_deliveries",
        ] {
            manager
                .drop_table(
                    Table::drop()
                        .table(sea_orm::sea_query::Alias::new(table))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
