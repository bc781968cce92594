//! Agent adapters: how each kind of agent (`workflows::AgentSpec`) is started inside the
//! sandbox, and how its output lines are read for progress, usage, cost and a closing summary.
//!
//! Every adapter is the same two functions behind [`AgentAdapter`]: the argv and environment
//! that start it, and the events in one line of its output. `run_agent` starts the invocation
//! in the sandbox and, once it ended, folds the lines of its log into an
//! [`AgentReport`](workflows::contracts::AgentReport) with [`report_from_log`]. What an agent
//! reports is its own word: the gateway's ledger is authoritative for cost.

pub mod builtin;
pub mod claude_code;
pub mod codex;
pub mod command;
pub mod protocol;
mod report;

use workflows::AgentSpec;
use workflows::cost::{MicroDollars, Usage};

pub use builtin::AgentLoopProgram;
pub use report::{MAX_EVENT_LINE_BYTES, Report, report_from_log, summarize};

/// How to start an agent in the sandbox: its argv (never a shell string built from untrusted
/// text) and what it needs in its environment beyond the run's `ERRAND_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// What the host provides for starting an agent.
#[derive(Debug, Clone, Default)]
pub struct RunInputs {
    /// The program that runs `errand agent-loop` (the builtin adapter needs it).
    pub agent_loop: Option<AgentLoopProgram>,
}

/// Something an agent said on its output.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// What it is doing, for people watching.
    Progress(String),
    /// One model call's (or turn's) usage, added to the run's.
    Usage(ReportedUsage),
    /// The agent's own total for the whole run, which replaces the sum of `Usage` events.
    Total(ReportedTotal),
    /// Its closing summary (the last one wins).
    Summary(String),
    /// Why it stopped, when that was not simply finishing the work.
    Stopped(String),
}

/// Usage as one event reported it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportedUsage {
    pub model: Option<String>,
    pub usage: Usage,
    pub cost: Option<MicroDollars>,
}

/// A whole run's usage as the agent totalled it (Claude Code's `result` event).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportedTotal {
    pub models: Vec<String>,
    pub usage: Usage,
    pub cost: Option<MicroDollars>,
    pub calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error(
        "agent builtin: no program runs `errand agent-loop` here (the worker is not the errand \
         binary, and no errand-agent-loop is next to it)"
    )]
    NoAgentLoop,
    #[error("agent.{field}: {message}")]
    BadSpec { field: String, message: String },
}

/// One kind of agent.
pub trait AgentAdapter: Send + Sync {
    /// The argv and environment that start the agent in the sandbox's workspace; the prompt is
    /// in the file `ERRAND_PROMPT_FILE` names (and a round's feedback in `ERRAND_FEEDBACK_FILE`).
    fn command(&self, run: &RunInputs) -> Result<Invocation, AdapterError>;

    /// The events in one line of the agent's combined output; none for a line that is not one
    /// of its events (stderr chatter, a cut or malformed line).
    fn parse_line(&self, line: &str) -> Vec<AgentEvent>;
}

/// The adapter of a spec.
pub fn adapter(spec: &AgentSpec) -> Box<dyn AgentAdapter> {
    match spec {
        AgentSpec::Command { command } => Box::new(command::Command {
            command: command.clone(),
        }),
        AgentSpec::ClaudeCode {
            model,
            max_turns,
            program,
        } => Box::new(claude_code::ClaudeCode {
            model: model.clone(),
            max_turns: *max_turns,
            program: program.clone(),
        }),
        AgentSpec::Codex { model, program } => Box::new(codex::Codex {
            model: model.clone(),
            program: program.clone(),
        }),
        AgentSpec::Builtin { model, max_turns } => Box::new(builtin::Builtin {
            model: model.clone(),
            max_turns: *max_turns,
        }),
    }
}

/// How to start `spec` on this host, after checking its settings.
pub fn invocation(spec: &AgentSpec) -> Result<Invocation, AdapterError> {
    if let Some((field, message)) = spec.problems().into_iter().next() {
        return Err(AdapterError::BadSpec { field, message });
    }
    let inputs = RunInputs {
        agent_loop: match spec {
            AgentSpec::Builtin { .. } => AgentLoopProgram::locate(),
            _ => None,
        },
    };
    adapter(spec).command(&inputs)
}

/// Starts `argv` (the agent CLI and its flags) through a fixed `sh` script that hands it the
/// prompt, and a round's feedback after it, on stdin: the prompt is untrusted text, so it
/// never goes on an argv (visible in every process listing) or into a shell string. The
/// script is constant and the agent's argv follows as positional parameters.
pub(crate) fn with_prompt_on_stdin(argv: Vec<String>) -> Vec<String> {
    const SCRIPT: &str = r#"if [ -n "${ERRAND_FEEDBACK_FILE:-}" ]; then { cat "$ERRAND_PROMPT_FILE"; printf '\n\n# Feedback on the previous round\n\n'; cat "$ERRAND_FEEDBACK_FILE"; } | "$@"; else exec "$@" < "$ERRAND_PROMPT_FILE"; fi"#;
    let mut wrapped = vec![
        "sh".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "errand-agent".to_string(),
    ];
    wrapped.extend(argv);
    wrapped
}

/// A JSON number of dollars as an exact amount; None for nonsense (negative, not finite).
pub(crate) fn dollars(value: &serde_json::Value) -> Option<MicroDollars> {
    let dollars = value.as_f64()?;
    (dollars.is_finite() && (0.0..1e9).contains(&dollars))
        .then(|| MicroDollars::from_dollars(dollars))
}

/// A JSON token count; None when it is not a non-negative integer.
pub(crate) fn tokens(value: Option<&serde_json::Value>) -> u64 {
    value.and_then(serde_json::Value::as_u64).unwrap_or(0)
}
