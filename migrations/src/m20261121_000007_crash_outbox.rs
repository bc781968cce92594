//! The crash intake's outbox: `POST /v1/crashes` answers once its occurrence is a row of
//! `crash_outbox`; a background sender delivers the rows of a group in batches to its
//! `CrashInvestigation` workflow and deletes them only after the signal succeeded, so a
//! restart re-sends what was not delivered. `crash_intake_groups` holds each group the intake
//! has seen (so it can say whether a crash started a new group) with the workflow input a
//! signal-with-start sends.
//!
//! A row's `batch_id` is fixed once it is first sent: a re-send after a crash or a failure
//! goes out with the same request id, which Temporal de-duplicates. `lease_owner` and
//! `lease_until_ms` let one sender (of possibly several API replicas) hold rows while it
//! sends them.

// `DeriveIden` expands to paths under `sea_orm`, so that name must be in scope.
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, Index, MigrationTrait, SchemaManager, Table, sea_orm,
};
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, string, string_null, text, timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CrashIntakeGroups {
    Table,
    GroupId,
    Input,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CrashOutbox {
    Table,
    Id,
    GroupId,
    Occurrence,
    ReceivedAt,
    BatchId,
    LeaseOwner,
    LeaseUntilMs,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CrashIntakeGroups::Table)
                    .if_not_exists()
                    .col(string(CrashIntakeGroups::GroupId).primary_key())
                    .col(text(CrashIntakeGroups::Input))
                    .col(timestamp_with_time_zone(CrashIntakeGroups::CreatedAt))
                    .col(timestamp_with_time_zone(CrashIntakeGroups::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CrashOutbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CrashOutbox::Id))
                    .col(string(CrashOutbox::GroupId))
                    .col(text(CrashOutbox::Occurrence))
                    .col(timestamp_with_time_zone(CrashOutbox::ReceivedAt))
                    .col(string_null(CrashOutbox::BatchId))
                    .col(string_null(CrashOutbox::LeaseOwner))
                    .col(big_integer(CrashOutbox::LeaseUntilMs).default(0))
                    .to_owned(),
            )
            .await?;
        // A sender reads back the rows it claimed.
        manager
            .create_index(
                Index::create()
                    .name("idx_crash_outbox_lease_owner")
                    .table(CrashOutbox::Table)
                    .col(CrashOutbox::LeaseOwner)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Table::drop()
                .table(CrashOutbox::Table)
                .if_exists()
                .to_owned(),
            Table::drop()
                .table(CrashIntakeGroups::Table)
                .if_exists()
                .to_owned(),
        ] {
            manager.drop_table(table).await?;
        }
        Ok(())
    }
}
