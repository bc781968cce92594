//! Crash groups (one per service and fingerprint), their latest occurrences, and the slots
//! that rate-limit new investigations per service.
//!
//! Lists (releases, environments) are JSON kept as text, like every structured column; times
//! are `timestamp with time zone`. A slot's primary key is what makes the rate limit hold
//! under concurrent claims on both databases.

// `DeriveIden` expands to paths under `sea_orm`, so that name must be in scope.
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, ForeignKey, ForeignKeyAction, Index, MigrationTrait,
    SchemaManager, Table, sea_orm,
};
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, integer, string, string_null, text, text_null,
    timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum CrashGroups {
    Table,
    Id,
    Fingerprint,
    Service,
    Title,
    Language,
    CrashType,
    FirstSeen,
    LastSeen,
    Count,
    Releases,
    Environments,
    Status,
    TaskId,
    Investigations,
    Reason,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CrashOccurrences {
    Table,
    Id,
    GroupId,
    Seq,
    ReceivedAt,
    Release,
    Environment,
    Host,
    Message,
    TaskId,
}

#[derive(DeriveIden)]
enum CrashInvestigationSlots {
    Table,
    Service,
    WindowStart,
    Slot,
    GroupId,
    Investigation,
    ClaimedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CrashGroups::Table)
                    .if_not_exists()
                    .col(string(CrashGroups::Id).primary_key())
                    .col(string(CrashGroups::Fingerprint))
                    .col(string(CrashGroups::Service))
                    .col(text(CrashGroups::Title))
                    .col(string(CrashGroups::Language))
                    .col(text(CrashGroups::CrashType))
                    .col(timestamp_with_time_zone(CrashGroups::FirstSeen))
                    .col(timestamp_with_time_zone(CrashGroups::LastSeen))
                    .col(big_integer(CrashGroups::Count))
                    .col(text(CrashGroups::Releases))
                    .col(text(CrashGroups::Environments))
                    .col(string(CrashGroups::Status))
                    .col(string_null(CrashGroups::TaskId))
                    .col(integer(CrashGroups::Investigations))
                    .col(text_null(CrashGroups::Reason))
                    .col(timestamp_with_time_zone(CrashGroups::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // The listing filters by service and status and pages by last seen; reads by
        // fingerprint find every service's group of it.
        for (name, cols) in [
            ("idx_crash_groups_service_status", [CrashGroups::Service, CrashGroups::Status]),
            ("idx_crash_groups_last_seen_id", [CrashGroups::LastSeen, CrashGroups::Id]),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(CrashGroups::Table)
                        .col(cols[0])
                        .col(cols[1])
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_crash_groups_fingerprint")
                    .table(CrashGroups::Table)
                    .col(CrashGroups::Fingerprint)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CrashOccurrences::Table)
                    .if_not_exists()
                    .col(big_pk_auto(CrashOccurrences::Id))
                    .col(string(CrashOccurrences::GroupId))
                    .col(big_integer(CrashOccurrences::Seq))
                    .col(timestamp_with_time_zone(CrashOccurrences::ReceivedAt))
                    .col(string_null(CrashOccurrences::Release))
                    .col(string_null(CrashOccurrences::Environment))
                    .col(string_null(CrashOccurrences::Host))
                    .col(text(CrashOccurrences::Message))
                    .col(string_null(CrashOccurrences::TaskId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_crash_occurrences_group")
                            .from(CrashOccurrences::Table, CrashOccurrences::GroupId)
                            .to(CrashGroups::Table, CrashGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A retried write inserts an occurrence once.
        manager
            .create_index(
                Index::create()
                    .name("idx_crash_occurrences_group_seq")
                    .table(CrashOccurrences::Table)
                    .col(CrashOccurrences::GroupId)
                    .col(CrashOccurrences::Seq)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CrashInvestigationSlots::Table)
                    .if_not_exists()
                    .col(string(CrashInvestigationSlots::Service))
                    .col(big_integer(CrashInvestigationSlots::WindowStart))
                    .col(integer(CrashInvestigationSlots::Slot))
                    .col(string(CrashInvestigationSlots::GroupId))
                    .col(integer(CrashInvestigationSlots::Investigation))
                    .col(timestamp_with_time_zone(CrashInvestigationSlots::ClaimedAt))
                    .primary_key(
                        Index::create()
                            .col(CrashInvestigationSlots::Service)
                            .col(CrashInvestigationSlots::WindowStart)
                            .col(CrashInvestigationSlots::Slot),
                    )
                    .to_owned(),
            )
            .await?;
        // A retried claim finds the slot it took.
        manager
            .create_index(
                Index::create()
                    .name("idx_crash_slots_group_investigation")
                    .table(CrashInvestigationSlots::Table)
                    .col(CrashInvestigationSlots::GroupId)
                    .col(CrashInvestigationSlots::Investigation)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Table::drop().table(CrashInvestigationSlots::Table).if_exists().to_owned(),
            Table::drop().table(CrashOccurrences::Table).if_exists().to_owned(),
            Table::drop().table(CrashGroups::Table).if_exists().to_owned(),
        ] {
            manager.drop_table(table).await?;
        }
        Ok(())
    }
}
