//! The Codex adapter: `codex exec --json`, unattended.
//!
//! The format is Codex's exec JSONL (openai/codex `docs/exec.md`, "JSON output mode", and the
//! types in `codex-rs/exec/src/exec_events.rs`): one `ThreadEvent` per line, tagged by `type`:
//!
//! ```text
//! {"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
//! {"type":"turn.started"}
//! {"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Searching for README files**"}}
//! {"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"","status":"in_progress"}}
//! {"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Yep — there’s a `README.md` in the repository root."}}
//! {"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}
//! ```
//!
//! `input_tokens` includes the cached ones, so the uncached input is the difference. A failed
//! turn is `{"type":"turn.failed","error":{"message":…}}`; a fatal stream error is
//! `{"type":"error","message":…}`. Codex reports no dollars.

use serde_json::Value;
use workflows::cost::Usage;

use super::{
    AdapterError, AgentAdapter, AgentEvent, Invocation, ReportedUsage, RunInputs, tokens,
    with_prompt_on_stdin,
};

#[derive(Debug, Clone)]
pub struct Codex {
    pub model: Option<String>,
    pub program: Option<String>,
}

const PROGRESS_MAX_CHARS: usize = 200;

impl AgentAdapter for Codex {
    fn command(&self, _run: &RunInputs) -> Result<Invocation, AdapterError> {
        let mut argv = vec![
            self.program.clone().unwrap_or_else(|| "codex".into()),
            "exec".into(),
            "--json".into(),
            // Codex's own sandbox cannot nest inside Errand's (no user namespaces in there) and
            // is not needed: Errand's sandbox is the boundary, so Codex runs commands directly.
            "--sandbox".into(),
            "danger-full-access".into(),
            "--skip-git-repo-check".into(),
        ];
        if let Some(model) = &self.model {
            argv.extend(["--model".into(), model.clone()]);
        }
        // `-`: the instructions are read from stdin.
        argv.push("-".into());
        Ok(Invocation {
            argv: with_prompt_on_stdin(argv),
            env: Vec::new(),
        })
    }

    fn parse_line(&self, line: &str) -> Vec<AgentEvent> {
        if !line.starts_with('{') {
            return Vec::new();
        }
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        let message = |value: Option<&Value>| {
            value
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string()
        };
        match event.get("type").and_then(Value::as_str) {
            Some("thread.started") => vec![AgentEvent::Progress("codex started".into())],
            Some("turn.completed") => {
                let Some(usage) = event.get("usage").filter(|u| u.is_object()) else {
                    return Vec::new();
                };
                let input = tokens(usage.get("input_tokens"));
                let cached = tokens(usage.get("cached_input_tokens")).min(input);
                vec![AgentEvent::Usage(ReportedUsage {
                    model: self.model.clone(),
                    usage: Usage {
                        input_tokens: input - cached,
                        output_tokens: tokens(usage.get("output_tokens")),
                        cache_read_tokens: cached,
                        cache_write_tokens: 0,
                    },
                    cost: None,
                })]
            }
            Some("turn.failed") => vec![AgentEvent::Stopped(format!(
                "turn.failed: {}",
                message(event.pointer("/error/message"))
            ))],
            Some("error") => vec![AgentEvent::Stopped(format!(
                "error: {}",
                message(event.get("message"))
            ))],
            Some("item.started" | "item.completed") => item_events(&event),
            _ => Vec::new(),
        }
    }
}

fn item_events(event: &Value) -> Vec<AgentEvent> {
    let completed = event.get("type").and_then(Value::as_str) == Some("item.completed");
    let Some(item) = event.get("item") else {
        return Vec::new();
    };
    let text = |field: &str| item.get(field).and_then(Value::as_str).unwrap_or("");
    let first_line = |text: &str| -> String {
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        line.chars().take(PROGRESS_MAX_CHARS).collect()
    };
    match item.get("type").and_then(Value::as_str) {
        Some("agent_message") if completed => vec![
            AgentEvent::Progress(first_line(text("text"))),
            AgentEvent::Summary(text("text").to_string()),
        ],
        Some("reasoning") if completed => vec![AgentEvent::Progress(first_line(text("text")))],
        Some("command_execution") if !completed => vec![AgentEvent::Progress(format!(
            "$ {}",
            first_line(text("command"))
        ))],
        _ => Vec::new(),
    }
}
