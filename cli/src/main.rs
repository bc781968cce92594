//! `errand`: the embedded all-in-one (`up`), the `worker` and `api` halves, the demo, and the
//! client subcommands of the REST API.

mod api_client;
mod bench;
mod commands;
mod demo;
mod doctor;
mod dry_run;
mod follow;
mod history;
mod logging;
mod playbook;
mod schedules;
mod serve;
mod settings;
mod sse;
mod temporal_server;
mod timeline;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

use crate::api_client::ApiClient;
use crate::settings::{Overrides, Settings};

/// Errand: a durable workflow engine for background coding agents, on Temporal.
#[derive(Debug, Parser)]
#[command(name = "errand", version)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    /// URL of the Errand API (client subcommands)
    #[arg(
        long,
        global = true,
        env = "ERRAND_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    api: String,
    /// How the binary writes its own logs (stderr)
    #[arg(long, global = true, value_enum, env = "ERRAND_LOG_FORMAT", default_value = "text")]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run everything in one process: a Temporal dev server (unless --temporal-address), the
    /// SQLite app database, the REST API and a worker
    Up {
        /// Where the API listens
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Run a worker against --temporal-address and --database-url
    Worker,
    /// Serve the REST API against --temporal-address and --database-url
    Api {
        /// Where the API listens
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Run the embedded default end to end on a bundled example repository (scripted agent)
    Demo,
    /// Start a task (ad-hoc, or from a playbook)
    Run(commands::RunArgs),
    /// List tasks
    Tasks {
        /// Only tasks in this status (e.g. awaiting_review)
        #[arg(long)]
        status: Option<String>,
    },
    /// Show a task: status, rounds and checks, review
    Show {
        id: String,
        /// Print the API's JSON
        #[arg(long)]
        json: bool,
    },
    /// Decide a task awaiting review
    Review {
        id: String,
        #[command(flatten)]
        verdict: commands::Verdict,
        /// Who reviews (not the requester)
        #[arg(long, env = "USER")]
        reviewer: String,
        /// A comment to go with an approval or rejection
        #[arg(long)]
        comment: Option<String>,
    },
    /// Cancel a task; its work in progress is still pushed to the task branch
    Cancel { id: String },
    /// Show a task's timeline: each step with its round, outcome, duration and attempts
    History {
        id: String,
        /// Print the API's JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a task's events (status changes, agent output, checks, reviews)
    Logs {
        id: String,
        /// Keep following until the task ends, with a progress line on a terminal
        #[arg(short, long)]
        follow: bool,
    },
    /// Playbooks: list and show the API's, validate files
    #[command(subcommand)]
    Playbook(playbook::PlaybookCommand),
    /// Cron schedules: list, show, pause, resume, trigger now, delete
    #[command(subcommand)]
    Schedules(schedules::SchedulesCommand),
    /// Write a task's Temporal history (SDK JSON) to a file, for replay tests
    ExportHistory {
        id: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Report what this host supports for the sandbox and the workspaces; fails if tasks could
    /// not run here
    Doctor,
    /// Measure Errand against its physical floors (`bench`, `bench --quick`, `bench sandbox`)
    /// and record the figures in BENCHMARKS.md
    Bench(bench::BenchArgs),
    /// The in-sandbox shim (Landlock, egress bridge): run by the sandbox, never by hand
    #[command(hide = true)]
    SandboxShim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<std::ffi::OsString>,
    },
    /// The builtin agent loop (the `builtin` agent): run by the sandbox, never by hand
    #[command(hide = true)]
    AgentLoop {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<std::ffi::OsString>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // The shim starts every sandboxed command: it skips logging and the API client (whose CA
    // loading alone costs tens of milliseconds).
    if let Commands::SandboxShim { args } = cli.command {
        activities::sandbox::shim::run_and_exit(args);
    }
    // The builtin agent runs inside the sandbox: no logging setup (its stdout is the event
    // protocol), no configuration, no API client.
    if let Commands::AgentLoop { args } = cli.command {
        std::process::exit(activities::agents::builtin::main(args).await);
    }
    logging::init(cli.log_format);
    let api = ApiClient::new(&cli.api);
    match cli.command {
        Commands::Up { listen } => serve::up(Settings::load(&cli.overrides, listen)?).await,
        Commands::Worker => serve::worker(Settings::load(&cli.overrides, None)?).await,
        Commands::Api { listen } => serve::api(Settings::load(&cli.overrides, listen)?).await,
        Commands::Demo => demo::demo(Settings::load(&cli.overrides, None)?).await,
        Commands::Run(args) => commands::run(&api, args).await,
        Commands::Tasks { status } => commands::tasks(&api, status).await,
        Commands::Show { id, json } => commands::show(&api, &id, json).await,
        Commands::Review {
            id,
            verdict,
            reviewer,
            comment,
        } => commands::review(&api, &id, verdict, &reviewer, comment).await,
        Commands::Cancel { id } => commands::cancel(&api, &id).await,
        Commands::History { id, json } => timeline::history(&api, &id, json).await,
        Commands::Logs { id, follow } => follow::logs(&api, &id, follow).await,
        Commands::Playbook(command) => {
            let dir = Settings::load(&cli.overrides, None)?.playbooks_dir;
            playbook::run(&api, &dir, command).await
        }
        Commands::Schedules(command) => schedules::run(&api, &cli.api, command).await,
        Commands::ExportHistory { id, out } => {
            history::export(&Settings::load(&cli.overrides, None)?, &id, &out).await
        }
        Commands::Doctor => doctor::doctor(&Settings::load(&cli.overrides, None)?).await,
        Commands::Bench(args) => bench::bench(args).await,
        Commands::SandboxShim { .. } => unreachable!("dispatched before the client is built"),
        Commands::AgentLoop { .. } => unreachable!("dispatched before the client is built"),
    }
}
