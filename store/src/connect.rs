//! The `Store` handle: connecting to SQLite or PostgreSQL and bringing the schema up to date.

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, TransactionTrait,
};

use crate::StoreError;

/// Connections of a SQLite file pool: readers run beside the one writer WAL allows.
const SQLITE_FILE_POOL: u32 = 4;
/// How long a SQLite writer waits for the lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Serialises concurrent migrations of processes sharing one PostgreSQL database.
const MIGRATION_LOCK_KEY: i64 = 0x6572_7261_6e64; // "errand"

/// The app database. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
}

impl Store {
    /// Connects (sqlite:// or postgres:// URL) and runs migrations (idempotent). For a SQLite
    /// file create it if missing (mode=rwc), WAL, a small pool (>1) and busy timeout;
    /// sqlite::memory: stays at one connection.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let shown = redact(url);
        let options =
            options_for(url).ok_or_else(|| StoreError::UnsupportedUrl { url: shown.clone() })?;
        let open = |options: ConnectOptions| async {
            Database::connect(options)
                .await
                .map_err(|source| StoreError::Connect {
                    url: shown.clone(),
                    source,
                })
        };
        let migrated = |source| StoreError::Migrate {
            url: shown.clone(),
            source,
        };
        let db = if url.starts_with("sqlite:") && !is_sqlite_memory(url) {
            // SQLite resolves `ON CONFLICT` targets against the schema a connection loaded
            // earlier, and does not reload it when that fails: a pooled connection opened
            // during the migration would reject upserts. Migrate on a connection of its own,
            // then open the pool on the finished schema.
            let mut single = options.clone();
            single.max_connections(1);
            let migrator = open(single).await?;
            migrate(&migrator).await.map_err(migrated)?;
            migrator.close().await.map_err(migrated)?;
            open(options).await?
        } else {
            let db = open(options).await?;
            migrate(&db).await.map_err(migrated)?;
            db
        };
        tracing::debug!(url = %shown, "app database ready");
        Ok(Store { db })
    }
}

fn options_for(url: &str) -> Option<ConnectOptions> {
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Some(options);
    }
    if !url.starts_with("sqlite:") {
        return None;
    }
    if is_sqlite_memory(url) {
        // Every connection to `:memory:` is a database of its own, and closing the last one
        // drops it: keep exactly one, forever.
        options
            .max_connections(1)
            .min_connections(1)
            .map_sqlx_sqlite_pool_opts(|pool| pool.idle_timeout(None).max_lifetime(None));
    } else {
        options
            .max_connections(SQLITE_FILE_POOL)
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
    }
    Some(options)
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Runs pending migrations; on PostgreSQL under an advisory lock, so that an API and its
/// workers starting together do not race to create the same tables.
async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    ))
    .await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// The URL without its password, fit for errors and logs.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        let cases = [
            (
                "postgres://u:secret@db:5432/app",
                "postgres://u:***@db:5432/app",
            ),
            (
                "postgres://u@db/app?sslmode=off",
                "postgres://u@db/app?sslmode=off",
            ),
            ("postgres://db/app", "postgres://db/app"),
            (
                "sqlite:///var/errand/app.db?mode=rwc",
                "sqlite:///var/errand/app.db?mode=rwc",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
    }

    #[test]
    fn recognises_backends() {
        assert!(options_for("sqlite::memory:").is_some());
        assert!(options_for("sqlite:///tmp/x.db").is_some());
        assert!(options_for("postgresql://localhost/x").is_some());
        assert!(options_for("mysql://localhost/x").is_none());
        assert!(is_sqlite_memory("sqlite::memory:"));
        assert!(is_sqlite_memory("sqlite://file:x?mode=memory&cache=shared"));
        assert!(!is_sqlite_memory("sqlite:///tmp/x.db"));
    }
}
