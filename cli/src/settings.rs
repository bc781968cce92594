//! Layered configuration: defaults, then an optional TOML file, then `ERRAND__SECTION__KEY`
//! environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Temporal dev server database, app database (SQLite default), workspaces and logs.
    pub data_dir: PathBuf,
    /// Where the REST API listens.
    pub listen: SocketAddr,
    /// Folder of playbook files.
    pub playbooks_dir: PathBuf,
    pub temporal: TemporalSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    pub worker: WorkerSection,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemporalSettings {
    /// `host:port` of a running Temporal frontend; unset: `errand up` starts a dev server.
    pub address: Option<String>,
    pub namespace: String,
    /// The Temporal CLI used to start the dev server.
    pub cli: String,
    /// Ports of the dev server's frontend and UI; unset: 7233 and 8233 when free, else any.
    pub dev_port: Option<u16>,
    pub dev_ui_port: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; unset: SQLite under the data directory.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerSection {
    /// After shutdown starts, running activities get this long before they are cancelled.
    pub graceful_shutdown_secs: u64,
}

/// Values given on the command line; they win over every other layer.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// TOML configuration file
    #[arg(long, global = true, env = "ERRAND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: .errand]
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Temporal frontend to attach to (HOST:PORT)
    #[arg(long, global = true)]
    pub temporal_address: Option<String>,
    /// App database URL (sqlite://… or postgres://…)
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Folder of playbook files [default: playbooks]
    #[arg(long, global = true)]
    pub playbooks_dir: Option<PathBuf>,
}

impl Settings {
    pub fn load(overrides: &Overrides, listen: Option<SocketAddr>) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .set_default("data_dir", ".errand")?
            .set_default("listen", "127.0.0.1:8080")?
            .set_default("playbooks_dir", "playbooks")?
            .set_default("temporal.namespace", "default")?
            .set_default("temporal.cli", "temporal")?
            .set_default("worker.graceful_shutdown_secs", 30)?;
        if let Some(file) = &overrides.config {
            builder = builder.add_source(config::File::from(file.as_path()).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("ERRAND")
                .prefix_separator("__")
                .separator("__"),
        );
        let mut settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .context("invalid configuration")?;
        if let Some(dir) = &overrides.data_dir {
            settings.data_dir = dir.clone();
        }
        if let Some(address) = &overrides.temporal_address {
            settings.temporal.address = Some(address.clone());
        }
        if let Some(url) = &overrides.database_url {
            settings.database.url = Some(url.clone());
        }
        if let Some(dir) = &overrides.playbooks_dir {
            settings.playbooks_dir = dir.clone();
        }
        if let Some(listen) = listen {
            settings.listen = listen;
        }
        Ok(settings)
    }

    /// The app database; SQLite in the data directory unless configured.
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| sqlite_url(&self.data_dir.join("errand.db")))
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}
