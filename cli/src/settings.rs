//! Layered configuration: defaults, then an optional TOML file, then `ERRAND__SECTION__KEY`
//! environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
    #[serde(default)]
    pub sandbox: SandboxSection,
    #[serde(default)]
    pub workspaces: WorkspacesSection,
    #[serde(default)]
    pub cost: CostSection,
    /// The model gateway (`[gateway]`, with `[gateway.openai]`, `[gateway.anthropic]` and
    /// `[gateway.prices.models."NAME"]`); unset: the worker runs no gateway.
    #[serde(default)]
    pub gateway: Option<worker::GatewaySettings>,
    /// GitHub webhooks and write-back (`[github]`: `webhook_secret_env`, `token_env`, `routes`,
    /// `repos`, `api_url`, `public_url`, `write_back`, ...); unset: `POST /v1/webhooks/github`
    /// answers 404 and nothing is written to GitHub.
    #[serde(default)]
    pub github: Option<api::github::GithubSettings>,
    /// Where crashes of each service are investigated when `POST /v1/crashes` names no
    /// repository or agent (`[crashes]`: `agent`, and `[[crashes.services]]` with `service`,
    /// `repo`, optional `base`, `agent`, `playbook`).
    #[serde(default)]
    pub crashes: api::CrashSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalSettings {
    /// `host:port` of a running Temporal frontend; unset: `errand up` starts a dev server.
    pub address: Option<String>,
    pub namespace: String,
    /// The Temporal CLI used to start the dev server.
    pub cli: String,
    /// Ports of the dev server's frontend and UI; unset: 7233 and 8233 when free, else any.
    pub dev_port: Option<u16>,
    pub dev_ui_port: Option<u16>,
    /// Where a worker serves the Temporal SDK's own Prometheus metrics; unset: not exported.
    pub sdk_metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`; unset: SQLite under the data directory.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// After shutdown starts, running activities get this long before they are cancelled.
    pub graceful_shutdown_secs: u64,
    /// Sandboxes (agent and check runs) at once on this host; unset: min(cores, memory GiB / 2).
    #[serde(default)]
    pub max_concurrent_runs: Option<usize>,
    /// While an agent runs, its work in progress is committed and pushed to the task branch
    /// this often, and when a run that took at least this long ends (0: only on drain).
    pub checkpoint_interval_secs: u64,
    /// Where `errand worker` serves `/healthz`, `/readyz` and `/metrics`; unset: nowhere.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

/// `[cost]`: what the ledger charges beside model calls (those are priced by the gateway's
/// price table). Period budgets are not configured here: they live in the app database
/// (`PUT /v1/budgets`), so every API replica and worker enforces the same ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSection {
    /// Micro-dollars per second of sandbox wall time (agent and check runs); 0: free.
    #[serde(default)]
    pub sandbox_micro_dollars_per_second: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// A worker that is not root cannot mount a size-limited workspace and refuses every task;
    /// true runs them with an uncapped workspace instead (`RLIMIT_FSIZE` still caps each file).
    #[serde(default)]
    pub uncapped_workspace: bool,
}

/// `[workspaces]`: task workspaces are overlays on a prebuilt base checkout per repository and
/// base commit (a root worker; otherwise, or when mounting fails, full clones).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkspacesSection {
    /// false: every workspace is a clone (from the repository's mirror).
    pub overlay: bool,
    /// Seconds between passes of the refresh loop: fetches of known repositories that prebuild
    /// the base of a moved base branch before a task needs it, and removal of mirrors unused for
    /// 7 days (0: no loop; a base is built when a task finds the branch moved).
    pub base_refresh_secs: u64,
}

impl Default for WorkspacesSection {
    fn default() -> Self {
        Self {
            overlay: true,
            base_refresh_secs: 300,
        }
    }
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
    /// Loads every layer; an unknown key in the file or an unknown `ERRAND__…` variable is an
    /// error, so a typo never passes silently.
    pub fn load(overrides: &Overrides, listen: Option<SocketAddr>) -> anyhow::Result<Settings> {
        Self::load_with_env(overrides, listen, None)
    }

    /// Like `load`, with the environment given instead of read (for tests).
    fn load_with_env(
        overrides: &Overrides,
        listen: Option<SocketAddr>,
        env: Option<config::Map<String, String>>,
    ) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder()
            .set_default("data_dir", ".errand")?
            .set_default("listen", "127.0.0.1:8080")?
            .set_default("playbooks_dir", "playbooks")?
            .set_default("temporal.namespace", "default")?
            .set_default("temporal.cli", "temporal")?
            .set_default("worker.graceful_shutdown_secs", 30)?
            .set_default("worker.checkpoint_interval_secs", 300)?;
        if let Some(file) = &overrides.config {
            builder = builder.add_source(config::File::from(file.as_path()).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("ERRAND")
                .prefix_separator("__")
                .separator("__")
                .source(env),
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
        settings
            .crashes
            .check()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Option<config::Map<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn layers_apply_in_order() {
        let vars = env(&[
            ("ERRAND__TEMPORAL__ADDRESS", "t:7233"),
            ("ERRAND__DATA_DIR", "/d"),
        ]);
        let flags = Overrides {
            data_dir: Some("/flag".into()),
            ..Default::default()
        };
        let s = Settings::load_with_env(&flags, None, vars).unwrap();
        assert_eq!(s.temporal.address.as_deref(), Some("t:7233"));
        assert_eq!(s.data_dir, PathBuf::from("/flag"));
        assert_eq!(s.database_url(), "sqlite:///flag/errand.db?mode=rwc");
        assert_eq!(s.worker.graceful_shutdown_secs, 30);
        assert!(
            !s.sandbox.uncapped_workspace,
            "capped unless the operator says otherwise"
        );
        assert_eq!(s.temporal.sdk_metrics_listen, None);
        let vars = env(&[
            ("ERRAND__SANDBOX__UNCAPPED_WORKSPACE", "true"),
            ("ERRAND__TEMPORAL__SDK_METRICS_LISTEN", "0.0.0.0:9464"),
        ]);
        let s = Settings::load_with_env(&Overrides::default(), None, vars).unwrap();
        assert!(s.sandbox.uncapped_workspace);
        assert_eq!(
            s.temporal.sdk_metrics_listen,
            Some("0.0.0.0:9464".parse().unwrap())
        );
    }

    #[test]
    fn the_gateway_section_is_read_and_checked() {
        let file = std::env::temp_dir().join(format!("errand-gateway-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            r#"
[gateway]
loop_guard_repeats = 3
[gateway.openai]
base_url = "https://api.openai.com/v1"
key_env = "OPENAI_API_KEY"
[gateway.prices.models."gpt-4.1"]
input = 2000000
output = 8000000
cache_read = 500000
"#,
        )
        .unwrap();
        let flags = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = Settings::load_with_env(&flags, None, env(&[])).unwrap();
        let gateway = s.gateway.expect("gateway section");
        assert_eq!(gateway.loop_guard_repeats, 3);
        assert_eq!(gateway.openai.unwrap().key_env, "OPENAI_API_KEY");
        assert!(gateway.anthropic.is_none());
        assert_eq!(gateway.prices.price("gpt-4.1").unwrap().output, 8_000_000);
        assert!(
            Settings::load_with_env(&Overrides::default(), None, env(&[]))
                .unwrap()
                .gateway
                .is_none()
        );

        std::fs::write(
            &file,
            "[gateway.openai]\nbase_url = \"x\"\nkey = \"sk-inline\"\n",
        )
        .unwrap();
        let err = Settings::load_with_env(&flags, None, env(&[])).unwrap_err();
        let _ = std::fs::remove_file(&file);
        assert!(format!("{err:#}").contains("key"), "{err:#}");
    }

    #[test]
    fn the_cost_section_prices_sandbox_time() {
        let defaults = Settings::load_with_env(&Overrides::default(), None, env(&[])).unwrap();
        assert_eq!(defaults.cost.sandbox_micro_dollars_per_second, 0);
        let vars = env(&[("ERRAND__COST__SANDBOX_MICRO_DOLLARS_PER_SECOND", "14")]);
        let s = Settings::load_with_env(&Overrides::default(), None, vars).unwrap();
        assert_eq!(s.cost.sandbox_micro_dollars_per_second, 14);
        let negative = env(&[("ERRAND__COST__SANDBOX_MICRO_DOLLARS_PER_SECOND", "-1")]);
        assert!(Settings::load_with_env(&Overrides::default(), None, negative).is_err());
        let typo = env(&[("ERRAND__COST__SANDBOX_RATE", "1")]);
        assert!(Settings::load_with_env(&Overrides::default(), None, typo).is_err());
    }

    #[test]
    fn the_workspaces_section_has_defaults_and_takes_the_environment() {
        let defaults = Settings::load_with_env(&Overrides::default(), None, env(&[])).unwrap();
        assert!(defaults.workspaces.overlay);
        assert_eq!(defaults.workspaces.base_refresh_secs, 300);
        let vars = env(&[
            ("ERRAND__WORKSPACES__BASE_REFRESH_SECS", "0"),
            ("ERRAND__WORKSPACES__OVERLAY", "false"),
        ]);
        let s = Settings::load_with_env(&Overrides::default(), None, vars).unwrap();
        assert_eq!(s.workspaces.base_refresh_secs, 0);
        assert!(!s.workspaces.overlay);
    }

    #[test]
    fn the_crashes_section_maps_services() {
        let file = std::env::temp_dir().join(format!("errand-crashes-{}.toml", std::process::id()));
        let flags = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        std::fs::write(
            &file,
            r#"
[crashes]
agent = "/usr/local/bin/agent"
[[crashes.services]]
service = "Billing.API"
repo = "git@example.com:acme/billing.git"
base = "release"
[[crashes.services]]
service = "web"
repo = "/srv/git/web.git"
agent = "/usr/local/bin/web-agent"
playbook = "investigate-web-crash"
"#,
        )
        .unwrap();
        let s = Settings::load_with_env(&flags, None, env(&[])).unwrap();
        assert_eq!(s.crashes.agent.as_deref(), Some("/usr/local/bin/agent"));
        let billing = s.crashes.service("Billing.API").expect("names are kept as written");
        assert_eq!(billing.repo, "git@example.com:acme/billing.git");
        assert_eq!(billing.base.as_deref(), Some("release"));
        assert_eq!(billing.agent, None);
        let web = s.crashes.service("web").unwrap();
        assert_eq!(web.playbook.as_deref(), Some("investigate-web-crash"));
        assert!(s.crashes.service("other").is_none());

        std::fs::write(
            &file,
            "[[crashes.services]]\nservice = \"a\"\nrepo = \"r\"\n[[crashes.services]]\nservice = \"a\"\nrepo = \"s\"\n",
        )
        .unwrap();
        let err = Settings::load_with_env(&flags, None, env(&[])).unwrap_err();
        assert!(format!("{err:#}").contains("mapped twice"), "{err:#}");
        std::fs::write(&file, "[[crashes.services]]\nservice = \"a\"\nrepos = \"r\"\n").unwrap();
        let err = Settings::load_with_env(&flags, None, env(&[])).unwrap_err();
        let _ = std::fs::remove_file(&file);
        assert!(format!("{err:#}").contains("repos"), "{err:#}");
        let defaults = Settings::load_with_env(&Overrides::default(), None, env(&[])).unwrap();
        assert!(defaults.crashes.services.is_empty());
    }

    #[test]
    fn the_github_section_configures_the_write_back() {
        let file = std::env::temp_dir().join(format!("errand-github-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            r#"
[github]
webhook_secret_env = "ERRAND_GITHUB_SECRET"
token_env = "ERRAND_GITHUB_TOKEN"
public_url = "https://errand.example.com"
routes = { bug = "triage" }
"#,
        )
        .unwrap();
        let flags = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let s = Settings::load_with_env(&flags, None, env(&[])).unwrap();
        let github = s.github.expect("github section");
        assert_eq!(github.public_url.as_deref(), Some("https://errand.example.com"));
        assert!(github.write_back, "write-back is on by default");
        assert_eq!(
            github.task_link("t-1").as_deref(),
            Some("https://errand.example.com/v1/tasks/t-1")
        );
        let off = Settings::load_with_env(
            &flags,
            None,
            env(&[("ERRAND__GITHUB__WRITE_BACK", "false")]),
        )
        .unwrap();
        let _ = std::fs::remove_file(&file);
        assert!(!off.github.unwrap().write_back);
    }

    #[test]
    fn unknown_variables_are_errors() {
        let err = Settings::load_with_env(
            &Overrides::default(),
            None,
            env(&[("ERRAND__TEMPORAL__ADRESS", "x")]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("adress"), "{err:#}");
    }

    /// Every `ERRAND__…` variable the production topology sets is one the binary reads, and
    /// `docker-compose config` accepts the file.
    #[test]
    fn docker_compose_sets_only_known_settings() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let compose: serde_json::Value = yaml_serde::from_str(
            &std::fs::read_to_string(root.join("docker-compose.yml")).unwrap(),
        )
        .unwrap();
        let mut checked = 0;
        for (name, service) in compose["services"].as_object().unwrap() {
            let Some(vars) = service["environment"].as_object() else {
                continue;
            };
            let vars: config::Map<String, String> = vars
                .iter()
                .filter(|(k, _)| k.starts_with("ERRAND__"))
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), String::from),
                    )
                })
                .collect();
            checked += vars.len();
            if let Err(err) = Settings::load_with_env(&Overrides::default(), None, Some(vars)) {
                panic!("service {name}: {err:#}");
            }
        }
        assert!(checked >= 5, "the api and worker services configure errand");
        let status = std::process::Command::new("docker-compose")
            .args(["--file", "docker-compose.yml", "config", "--quiet"])
            .current_dir(&root)
            .status()
            .expect("docker-compose is installed by scripts/bootstrap");
        assert!(
            status.success(),
            "docker-compose config rejects docker-compose.yml"
        );
    }
}
