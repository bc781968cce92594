//! The builtin adapter: Errand's own agent loop (`errand agent-loop`) for any OpenAI-compatible
//! chat completions endpoint, which inside the sandbox is the gateway.
//!
//! The loop is a program, not worker code: its tools read, write and run things in the
//! untrusted workspace, so it runs inside the sandbox like any other agent. It is the errand
//! binary itself (its hidden `agent-loop` subcommand) or, for this crate's tests, the
//! `errand-agent-loop` binary built next to them; bwrap binds the program read-only at its own
//! path because it lives outside /usr (`SandboxSpec::argv`).
//!
//! `agent-loop --model MODEL --max-turns N`, in the workspace, with `ERRAND_PROMPT_FILE` (and
//! `ERRAND_FEEDBACK_FILE`), `OPENAI_BASE_URL` (e.g. `http://127.0.0.1:PORT/v1`) and
//! `OPENAI_API_KEY` (the task's gateway token, never a provider key). It prints the JSON-lines
//! protocol (`agents::protocol`) on stdout and ends with one of the `EXIT_*` codes.

#[path = "loop.rs"]
mod agent_loop;
mod client;
mod tools;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use agent_loop::{Ending, LoopSettings};
pub use client::{ChatClient, ChatError};

use super::{AdapterError, AgentAdapter, AgentEvent, Invocation, RunInputs, protocol};

/// The loop called `finish` (or answered without asking for a tool): the work is done.
pub const EXIT_FINISHED: i32 = 0;
/// The model endpoint failed (unreachable, an error status other than 402, nonsense).
pub const EXIT_FAILED: i32 = 1;
/// Bad arguments or environment: nothing was asked of a model.
pub const EXIT_USAGE: i32 = 2;
/// The gateway refused a call with 402: a budget is spent. The work so far stays.
pub const EXIT_BUDGET: i32 = 3;
/// The turn limit was reached before the model called `finish`.
pub const EXIT_MAX_TURNS: i32 = 4;

/// The subcommand of the `errand` binary that is the loop.
pub const ERRAND_SUBCOMMAND: &str = "agent-loop";
/// The name of the standalone loop binary of this crate.
pub const STANDALONE_NAME: &str = "errand-agent-loop";

/// How long one model call may take before the loop gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// The prompt and feedback files are read up to this size.
const MAX_PROMPT_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct Builtin {
    pub model: String,
    pub max_turns: u32,
}

impl AgentAdapter for Builtin {
    fn command(&self, run: &RunInputs) -> Result<Invocation, AdapterError> {
        let program = run.agent_loop.as_ref().ok_or(AdapterError::NoAgentLoop)?;
        let mut argv = vec![program.program.display().to_string()];
        argv.extend(program.selector.iter().cloned());
        argv.extend([
            "--model".into(),
            self.model.clone(),
            "--max-turns".into(),
            self.max_turns.to_string(),
        ]);
        Ok(Invocation {
            argv,
            env: Vec::new(),
        })
    }

    fn parse_line(&self, line: &str) -> Vec<AgentEvent> {
        protocol::parse(line)
    }
}

/// How to start the loop: an executable and the arguments that select the loop in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLoopProgram {
    pub program: PathBuf,
    pub selector: Vec<String>,
}

impl AgentLoopProgram {
    /// The `errand` binary (its hidden `agent-loop` subcommand).
    pub fn errand(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            selector: vec![ERRAND_SUBCOMMAND.into()],
        }
    }

    /// The standalone loop binary.
    pub fn standalone(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            selector: Vec::new(),
        }
    }

    /// The running executable when it is `errand`; else a standalone loop next to it (or one
    /// directory up, where cargo puts binaries relative to test executables).
    pub fn locate() -> Option<Self> {
        let exe = std::env::current_exe().ok()?;
        if exe.file_name().is_some_and(|name| name == "errand") {
            return Some(Self::errand(exe));
        }
        let dir = exe.parent()?;
        [Some(dir), dir.parent()]
            .into_iter()
            .flatten()
            .map(|dir| dir.join(STANDALONE_NAME))
            .find(|candidate| candidate.metadata().is_ok_and(|m| m.is_file()))
            .map(Self::standalone)
    }
}

/// `agent-loop` arguments.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    model: String,
    max_turns: u32,
}

fn parse_args(args: Vec<OsString>) -> Result<Args, String> {
    let mut model = None;
    let mut max_turns = workflows::task::DEFAULT_MAX_TURNS;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.to_str() {
            Some("--model") => model = Some(value("--model")?),
            Some("--max-turns") => {
                let text = value("--max-turns")?;
                max_turns = text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--max-turns: expected a positive integer, got {text:?}")
                })?;
            }
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    let model = model
        .filter(|m| !m.trim().is_empty())
        .ok_or("--model is required")?;
    Ok(Args { model, max_turns })
}

/// The loop's entry point: `args` are its arguments after the selector. Returns the exit code.
pub async fn main(args: Vec<OsString>) -> i32 {
    // reqwest needs a process-wide crypto provider (the errand binary may have installed one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let usage_error = |message: String| {
        eprintln!("errand agent-loop: {message}");
        println!(
            "{}",
            protocol::Line::Stopped {
                reason: "usage".into(),
                message: Some(message)
            }
            .to_json()
        );
        EXIT_USAGE
    };
    let args = match parse_args(args) {
        Ok(args) => args,
        Err(message) => return usage_error(message),
    };
    let settings = match settings_from_env(args) {
        Ok(settings) => settings,
        Err(message) => return usage_error(message),
    };
    let client = match ChatClient::new(&settings.base_url, settings.api_key.clone(), CALL_TIMEOUT) {
        Ok(client) => client,
        Err(err) => return usage_error(err.to_string()),
    };
    let mut stdout = std::io::stdout();
    let ending = agent_loop::run(&client, &settings.loop_settings, &mut stdout).await;
    // For people reading the log; the protocol's `stopped` line says the same for the worker.
    match &ending {
        Ending::Refused { message } => eprintln!(
            "errand agent-loop: stopped: the gateway refused the model call (budget spent): {message}"
        ),
        Ending::Failed { message } => eprintln!("errand agent-loop: stopped: {message}"),
        Ending::MaxTurns { turns } => {
            eprintln!("errand agent-loop: stopped: {turns} turn(s) used without a finish")
        }
        Ending::Finished { .. } => {}
    }
    ending.exit_code()
}

struct Settings {
    base_url: String,
    api_key: Option<String>,
    loop_settings: LoopSettings,
}

fn settings_from_env(args: Args) -> Result<Settings, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let base_url = var("OPENAI_BASE_URL").ok_or(
        "OPENAI_BASE_URL is not set: the builtin agent reaches models only through the gateway",
    )?;
    let prompt_file = var("ERRAND_PROMPT_FILE").ok_or("ERRAND_PROMPT_FILE is not set")?;
    let mut prompt = read_capped(Path::new(&prompt_file))?;
    if let Some(feedback_file) = var("ERRAND_FEEDBACK_FILE") {
        let feedback = read_capped(Path::new(&feedback_file))?;
        prompt.push_str("\n\n# Feedback on the previous round\n\n");
        prompt.push_str(&feedback);
    }
    let workspace = std::env::current_dir()
        .map_err(|err| format!("cannot tell the working directory: {err}"))?;
    Ok(Settings {
        base_url,
        api_key: var("OPENAI_API_KEY"),
        loop_settings: LoopSettings {
            model: args.model,
            max_turns: args.max_turns,
            workspace,
            prompt,
        },
    })
}

fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_PROMPT_BYTES)
        .read_to_string(&mut text)
        .map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_its_arguments() {
        assert_eq!(
            parse_args(os(&["--model", "m", "--max-turns", "7"])),
            Ok(Args {
                model: "m".into(),
                max_turns: 7
            })
        );
        assert_eq!(
            parse_args(os(&["--model", "m"])).map(|a| a.max_turns),
            Ok(workflows::task::DEFAULT_MAX_TURNS)
        );
        for bad in [
            &[][..],
            &["--model"],
            &["--model", " "],
            &["--model", "m", "--max-turns", "0"],
            &["--model", "m", "--max-turns", "x"],
            &["--model", "m", "extra"],
        ] {
            assert!(parse_args(os(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_invocation_runs_the_located_program() {
        let builtin = Builtin {
            model: "m".into(),
            max_turns: 3,
        };
        let run = RunInputs {
            agent_loop: Some(AgentLoopProgram::errand("/opt/errand/bin/errand")),
        };
        assert_eq!(
            builtin.command(&run).unwrap().argv,
            [
                "/opt/errand/bin/errand",
                "agent-loop",
                "--model",
                "m",
                "--max-turns",
                "3"
            ]
        );
        assert!(matches!(
            builtin.command(&RunInputs::default()),
            Err(AdapterError::NoAgentLoop)
        ));
    }
}
