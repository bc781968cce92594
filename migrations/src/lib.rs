//! Errand's app database schema, as sea-orm migrations that every process runs at startup.
//!
//! Migrations only ever get appended; one that has shipped is never edited.

use sea_orm_migration::MigrationTrait;

/// Re-exported so callers can run `Migrator::up` without depending on sea-orm-migration.
pub use sea_orm_migration::MigratorTrait;

mod m20261121_000001_create_tables;
mod m20261121_000002_task_events;
mod m20261121_000003_cost_ledger;
mod m20261121_000004_crash_groups;
mod m20261121_000005_github_deliveries;
mod m20261121_000006_github_write_back;
mod m20261121_000007_crash_outbox;

/// All migrations of the app database, oldest first.
pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_tables::Migration),
            Box::new(m20261121_000002_task_events::Migration),
            Box::new(m20261121_000003_cost_ledger::Migration),
            Box::new(m20261121_000004_crash_groups::Migration),
            Box::new(m20261121_000005_github_deliveries::Migration),
            Box::new(m20261121_000006_github_write_back::Migration),
            Box::new(m20261121_000007_crash_outbox::Migration),
        ]
    }
}
