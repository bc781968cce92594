//! The cost ledger and budgets: `ledger_entries` (one row per priced model call, refused call or
//! sandbox run of a task) and `budgets` (period budgets, global or per playbook).
//!
//! Amounts are integer micro-dollars (`bigint`), never floats, so that sums are exact; totals
//! are always computed from the entries, never stored beside them.

// `DeriveIden` expands to paths under `sea_orm`, so that name must be in scope.
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, ForeignKey, ForeignKeyAction, Index, MigrationTrait,
    SchemaManager, Table, sea_orm,
};
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, integer, string, string_null, text_null,
    timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum LedgerEntries {
    Table,
    Id,
    TaskId,
    Round,
    Step,
    Kind,
    Model,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheWriteTokens,
    SandboxWallMs,
    SandboxCpuMs,
    MicroDollars,
    RefusedBudget,
    RefusedMessage,
    Playbook,
    Trigger,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Budgets {
    Table,
    Id,
    Scope,
    Playbook,
    Period,
    MicroDollars,
    Tokens,
    UpdatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LedgerEntries::Table)
                    .if_not_exists()
                    .col(big_pk_auto(LedgerEntries::Id))
                    .col(string(LedgerEntries::TaskId))
                    .col(integer(LedgerEntries::Round))
                    .col(string(LedgerEntries::Step))
                    .col(string(LedgerEntries::Kind))
                    .col(string_null(LedgerEntries::Model))
                    .col(big_integer(LedgerEntries::InputTokens))
                    .col(big_integer(LedgerEntries::OutputTokens))
                    .col(big_integer(LedgerEntries::CacheReadTokens))
                    .col(big_integer(LedgerEntries::CacheWriteTokens))
                    .col(big_integer_null(LedgerEntries::SandboxWallMs))
                    .col(big_integer_null(LedgerEntries::SandboxCpuMs))
                    .col(big_integer(LedgerEntries::MicroDollars))
                    .col(string_null(LedgerEntries::RefusedBudget))
                    .col(text_null(LedgerEntries::RefusedMessage))
                    // Copied from the task so that period spend is one indexed range scan.
                    .col(string_null(LedgerEntries::Playbook))
                    .col(string_null(LedgerEntries::Trigger))
                    .col(timestamp_with_time_zone(LedgerEntries::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ledger_entries_task")
                            .from(LedgerEntries::Table, LedgerEntries::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A task's entries; spend in a window, globally and per playbook.
        for (name, columns) in [
            (
                "idx_ledger_entries_task_id_id",
                [LedgerEntries::TaskId, LedgerEntries::Id],
            ),
            (
                "idx_ledger_entries_created_at_id",
                [LedgerEntries::CreatedAt, LedgerEntries::Id],
            ),
            (
                "idx_ledger_entries_playbook_created_at",
                [LedgerEntries::Playbook, LedgerEntries::CreatedAt],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(LedgerEntries::Table)
                .if_not_exists();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Budgets::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Budgets::Id))
                    // `global` or `playbook`.
                    .col(string(Budgets::Scope))
                    .col(string_null(Budgets::Playbook))
                    // `day`, `week`, `month` or `sprint:<start>:<days>`.
                    .col(string(Budgets::Period))
                    .col(big_integer_null(Budgets::MicroDollars))
                    .col(big_integer_null(Budgets::Tokens))
                    .col(timestamp_with_time_zone(Budgets::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Table::drop()
                .table(LedgerEntries::Table)
                .if_exists()
                .to_owned(),
            Table::drop().table(Budgets::Table).if_exists().to_owned(),
        ] {
            manager.drop_table(table).await?;
        }
        Ok(())
    }
}
