//! GitHub write-back: `github_task_origins` (a task started from an issue: the repository and
//! issue the reporter comments on, until it has written everything; a short claim so one API
//! replica at a time writes for a task) and `github_writes` (every comment or PR written for a
//! task, by kind, with GitHub's id, so a retried pass never writes twice).

// `DeriveIden` expands to paths under `sea_orm`, so that name must be in scope.
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, ForeignKey, ForeignKeyAction, Index, MigrationTrait,
    SchemaManager, Table, sea_orm,
};
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, string, string_null, text, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum GithubTaskOrigins {
    Table,
    TaskId,
    Repo,
    IssueNumber,
    IssueTitle,
    Playbook,
    CreatedAt,
    DoneAt,
    ClaimedBy,
    ClaimedUntil,
}

#[derive(DeriveIden)]
enum GithubWrites {
    Table,
    Id,
    TaskId,
    Kind,
    GithubId,
    CreatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GithubTaskOrigins::Table)
                    .if_not_exists()
                    .col(string(GithubTaskOrigins::TaskId).primary_key())
                    .col(string(GithubTaskOrigins::Repo))
                    .col(big_integer(GithubTaskOrigins::IssueNumber))
                    .col(text(GithubTaskOrigins::IssueTitle))
                    .col(string(GithubTaskOrigins::Playbook))
                    .col(timestamp_with_time_zone(GithubTaskOrigins::CreatedAt))
                    .col(timestamp_with_time_zone_null(GithubTaskOrigins::DoneAt))
                    .col(string_null(GithubTaskOrigins::ClaimedBy))
                    .col(timestamp_with_time_zone_null(
                        GithubTaskOrigins::ClaimedUntil,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_github_task_origins_task")
                            .from(GithubTaskOrigins::Table, GithubTaskOrigins::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The reporter pages through the origins not done yet, by task id.
        manager
            .create_index(
                Index::create()
                    .name("idx_github_task_origins_done_at")
                    .table(GithubTaskOrigins::Table)
                    .col(GithubTaskOrigins::DoneAt)
                    .col(GithubTaskOrigins::TaskId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(GithubWrites::Table)
                    .if_not_exists()
                    .col(big_pk_auto(GithubWrites::Id))
                    .col(string(GithubWrites::TaskId))
                    .col(string(GithubWrites::Kind))
                    .col(big_integer(GithubWrites::GithubId))
                    .col(timestamp_with_time_zone(GithubWrites::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_github_writes_task")
                            .from(GithubWrites::Table, GithubWrites::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One write of each kind per task: a repeated record keeps the first.
        manager
            .create_index(
                Index::create()
                    .name("idx_github_writes_task_kind")
                    .table(GithubWrites::Table)
                    .col(GithubWrites::TaskId)
                    .col(GithubWrites::Kind)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["github_writes", "github_task_origins"] {
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
