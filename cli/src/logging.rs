//! The binary's own logs: `tracing` to stderr, filtered by `ERRAND_LOG`, as text for people or
//! as JSON lines for log collectors (`--log-format json`).

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    #[default]
    Text,
    /// One JSON object per line, with the span fields (task id, round, step) in it
    Json,
}

/// Errand's own crates at info (steps, egress decisions), everything else at warn.
const DEFAULT_FILTER: &str = "warn,errand=info,worker=info,activities=info,api=info";

/// Installs the global subscriber; call once, first thing.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("ERRAND_LOG").unwrap_or_else(|_| DEFAULT_FILTER.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
