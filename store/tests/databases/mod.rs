//! Fresh, real databases for each test: a SQLite file in a temporary directory, or a
//! PostgreSQL database created for the test and dropped after it, so tests run in parallel.

/// Runs each scenario `name(url)` as `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let database = crate::databases::TestDatabase::sqlite();
                    super::$name(&database.url).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let database = crate::databases::TestDatabase::postgres().await;
                    super::$name(&database.url).await;
                }
            )*
        }
    };
}

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use tempfile::TempDir;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// An unreachable server fails the test this fast, rather than after sqlx's 30 s default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A database that exists for the life of one test.
pub struct TestDatabase {
    pub url: String,
    _sqlite_dir: Option<TempDir>,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A SQLite file that does not exist yet: `Store::connect` must create it.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("errand.db").display());
        TestDatabase {
            url,
            _sqlite_dir: Some(dir),
            postgres: None,
        }
    }

    /// A new database on the PostgreSQL server of `ERRAND_TEST_POSTGRES_URL`. Panics, never
    /// skips, when the server is unreachable.
    pub async fn postgres() -> TestDatabase {
        let admin_url = std::env::var("ERRAND_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
        let admin = connect_admin(&admin_url).await.unwrap_or_else(|err| {
            panic!(
                "PostgreSQL tests need a server at {admin_url} (set ERRAND_TEST_POSTGRES_URL to \
                 use another one); connecting failed: {err}"
            )
        });
        let name = format!("errand_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|err| panic!("create database {name} on {admin_url}: {err}"));
        admin.close().await.expect("close the admin connection");
        TestDatabase {
            url: with_database(&admin_url, &name),
            _sqlite_dir: None,
            postgres: Some(PostgresDatabase { admin_url, name }),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(PostgresDatabase { admin_url, name }) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread of our
        // own. It also runs when the test panicked, so failed tests leave nothing behind.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a runtime to drop the test database");
            runtime.block_on(async {
                let admin = connect_admin(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop test database: {err}"),
            Err(_) => eprintln!("dropping the test database panicked"),
        }
    }
}

async fn connect_admin(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false);
    Database::connect(options).await
}

/// The same server URL pointing at another database.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

#[test]
fn with_database_replaces_only_the_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
}
