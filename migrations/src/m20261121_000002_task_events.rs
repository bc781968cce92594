//! The `task_events` table: what happened to a task, in order, for live progress.
//!
//! The autoincrement id is the server-sent event id readers resume from (`Last-Event-ID`); the
//! payload is JSON kept as text, like every other structured column, to stay portable.

// `DeriveIden` expands to paths under `sea_orm`, so that name must be in scope.
use sea_orm_migration::prelude::{
    DbErr, DeriveIden, DeriveMigrationName, ForeignKey, ForeignKeyAction, Index, MigrationTrait,
    SchemaManager, Table, sea_orm,
};
use sea_orm_migration::schema::{big_pk_auto, string, text, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TaskEvents {
    Table,
    Id,
    TaskId,
    Kind,
    Data,
    CreatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TaskEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(TaskEvents::Id))
                    .col(string(TaskEvents::TaskId))
                    .col(string(TaskEvents::Kind))
                    .col(text(TaskEvents::Data))
                    .col(timestamp_with_time_zone(TaskEvents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_events_task")
                            .from(TaskEvents::Table, TaskEvents::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Readers ask for one task's events after an id; metrics ask for one kind of event.
        manager
            .create_index(
                Index::create()
                    .name("idx_task_events_task_id_id")
                    .table(TaskEvents::Table)
                    .col(TaskEvents::TaskId)
                    .col(TaskEvents::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_task_events_kind_created_at")
                    .table(TaskEvents::Table)
                    .col(TaskEvents::Kind)
                    .col(TaskEvents::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(TaskEvents::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
