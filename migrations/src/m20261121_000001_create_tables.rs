//! The first schema: tasks, their rounds and check results, review requests and decisions.
//!
//! Types stay portable between SQLite and PostgreSQL: enums and JSON are plain text, and
//! timestamps are `timestamp with time zone` (TEXT on SQLite).

// `DeriveIden` expands to paths under `sea_orm`, so that name must be in scope.
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, ForeignKey, ForeignKeyAction, Index, IntoIden,
    MigrationTrait, SchemaManager, Table, sea_orm,
};
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, boolean, integer, integer_null, string, string_null, text, text_null,
    timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    Status,
    Round,
    Repo,
    Base,
    Branch,
    Requester,
    Instructions,
    Spec,
    PlaybookName,
    PlaybookHash,
    Reason,
    Report,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Rounds {
    Table,
    TaskId,
    Round,
    AgentExit,
    AgentExitCode,
    AgentDurationMs,
    AgentOutputTail,
    AgentLogPath,
}

#[derive(DeriveIden)]
enum CheckResults {
    Table,
    Id,
    TaskId,
    Round,
    Seq,
    Command,
    ExitCode,
    TimedOut,
    DurationMs,
    OutputTail,
}

#[derive(DeriveIden)]
enum ReviewRequests {
    Table,
    TaskId,
    Branch,
    Commit,
    Round,
    Body,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ReviewDecisions {
    Table,
    Id,
    TaskId,
    Round,
    Decision,
    Reviewer,
    Comment,
    CreatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .if_not_exists()
                    .col(string(Tasks::Id).primary_key())
                    .col(string(Tasks::Status))
                    .col(integer(Tasks::Round))
                    .col(text(Tasks::Repo))
                    .col(string(Tasks::Base))
                    .col(string(Tasks::Branch))
                    .col(string(Tasks::Requester))
                    .col(text(Tasks::Instructions))
                    .col(text(Tasks::Spec))
                    .col(string_null(Tasks::PlaybookName))
                    .col(string_null(Tasks::PlaybookHash))
                    .col(text_null(Tasks::Reason))
                    .col(text_null(Tasks::Report))
                    .col(timestamp_with_time_zone(Tasks::CreatedAt))
                    .col(timestamp_with_time_zone(Tasks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_status_created_at")
                    .table(Tasks::Table)
                    .col(Tasks::Status)
                    .col(Tasks::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Rounds::Table)
                    .if_not_exists()
                    .col(string(Rounds::TaskId))
                    .col(integer(Rounds::Round))
                    .col(string(Rounds::AgentExit))
                    .col(integer_null(Rounds::AgentExitCode))
                    .col(big_integer(Rounds::AgentDurationMs))
                    .col(text(Rounds::AgentOutputTail))
                    .col(text(Rounds::AgentLogPath))
                    .primary_key(Index::create().col(Rounds::TaskId).col(Rounds::Round))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_rounds_task")
                            .from(Rounds::Table, Rounds::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CheckResults::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CheckResults::Id))
                    .col(string(CheckResults::TaskId))
                    .col(integer(CheckResults::Round))
                    .col(integer(CheckResults::Seq))
                    .col(text(CheckResults::Command))
                    .col(integer_null(CheckResults::ExitCode))
                    .col(boolean(CheckResults::TimedOut))
                    .col(big_integer(CheckResults::DurationMs))
                    .col(text(CheckResults::OutputTail))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_check_results_task")
                            .from(CheckResults::Table, CheckResults::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_check_results_task_round_seq")
                    .table(CheckResults::Table)
                    .col(CheckResults::TaskId)
                    .col(CheckResults::Round)
                    .col(CheckResults::Seq)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReviewRequests::Table)
                    .if_not_exists()
                    .col(string(ReviewRequests::TaskId).primary_key())
                    .col(string(ReviewRequests::Branch))
                    .col(string(ReviewRequests::Commit))
                    .col(integer(ReviewRequests::Round))
                    .col(text(ReviewRequests::Body))
                    .col(timestamp_with_time_zone(ReviewRequests::CreatedAt))
                    .col(timestamp_with_time_zone(ReviewRequests::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_review_requests_task")
                            .from(ReviewRequests::Table, ReviewRequests::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReviewDecisions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(ReviewDecisions::Id))
                    .col(string(ReviewDecisions::TaskId))
                    .col(integer(ReviewDecisions::Round))
                    .col(string(ReviewDecisions::Decision))
                    .col(string(ReviewDecisions::Reviewer))
                    .col(text_null(ReviewDecisions::Comment))
                    .col(timestamp_with_time_zone(ReviewDecisions::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_review_decisions_task")
                            .from(ReviewDecisions::Table, ReviewDecisions::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_review_decisions_task_round")
                    .table(ReviewDecisions::Table)
                    .col(ReviewDecisions::TaskId)
                    .col(ReviewDecisions::Round)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ReviewDecisions::Table.into_iden(),
            ReviewRequests::Table.into_iden(),
            CheckResults::Table.into_iden(),
            Rounds::Table.into_iden(),
            Tasks::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
