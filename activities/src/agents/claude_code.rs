//! The Claude Code adapter: `claude -p --output-format stream-json --verbose`, unattended.
//!
//! The format is Claude Code's stream-json (the Agent SDK's message types, "Agent SDK
//! reference - TypeScript": `SDKSystemMessage`, `SDKAssistantMessage`, `SDKUserMessage`,
//! `SDKResultMessage`; and "Run Claude Code programmatically", `--output-format stream-json`
//! needs `--verbose` with `-p`). One JSON object per line:
//!
//! ```text
//! {"type":"system","subtype":"init","cwd":"/repo","session_id":"…","tools":[…],"model":"claude-sonnet-4-5","permissionMode":"bypassPermissions",…}
//! {"type":"assistant","message":{"id":"msg_…","model":"…","content":[{"type":"text","text":"…"},{"type":"tool_use","name":"Bash",…}],"usage":{…}},"session_id":"…"}
//! {"type":"user","message":{"role":"user","content":[{"type":"tool_result",…}]},"session_id":"…"}
//! {"type":"result","subtype":"success","is_error":false,"duration_ms":…,"num_turns":3,"result":"…","session_id":"…",
//!  "total_cost_usd":0.1928845,"usage":{"input_tokens":34,"cache_creation_input_tokens":7606,"cache_read_input_tokens":6498,"output_tokens":776},
//!  "modelUsage":{"claude-…":{"inputTokens":34,"outputTokens":776,"cacheReadInputTokens":6498,"cacheCreationInputTokens":7606,"costUSD":0.1928845}}}
//! ```
//!
//! Assistant messages repeat their usage once per content block, so only the final `result`
//! (the run's total, with `total_cost_usd`) is read for usage; error results have subtypes such
//! as `error_max_turns`, `error_during_execution` or `error_max_budget_usd`.

use serde_json::Value;
use workflows::cost::Usage;

use super::{
    AdapterError, AgentAdapter, AgentEvent, Invocation, ReportedTotal, RunInputs, dollars, tokens,
    with_prompt_on_stdin,
};

#[derive(Debug, Clone)]
pub struct ClaudeCode {
    pub model: Option<String>,
    pub max_turns: Option<u32>,
    pub program: Option<String>,
}

/// Progress lines are for people; a long assistant text is cut.
const PROGRESS_MAX_CHARS: usize = 200;

impl AgentAdapter for ClaudeCode {
    fn command(&self, _run: &RunInputs) -> Result<Invocation, AdapterError> {
        let mut argv = vec![
            self.program.clone().unwrap_or_else(|| "claude".into()),
            "-p".into(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
            // Nobody is there to approve a tool call: Errand's sandbox is the boundary, not
            // Claude Code's permission prompts.
            "--permission-mode".into(),
            "bypassPermissions".into(),
        ];
        if let Some(model) = &self.model {
            argv.extend(["--model".into(), model.clone()]);
        }
        if let Some(turns) = self.max_turns {
            argv.extend(["--max-turns".into(), turns.to_string()]);
        }
        Ok(Invocation {
            argv: with_prompt_on_stdin(argv),
            // Claude Code refuses bypassPermissions when it sees uid 0 unless told it runs in a
            // sandbox; it does (a disposable bwrap sandbox without host secrets or network).
            env: vec![("IS_SANDBOX".into(), "1".into())],
        })
    }

    fn parse_line(&self, line: &str) -> Vec<AgentEvent> {
        if !line.starts_with('{') {
            return Vec::new();
        }
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return Vec::new();
        };
        match event.get("type").and_then(Value::as_str) {
            Some("system") if event.get("subtype").and_then(Value::as_str) == Some("init") => {
                let model = event.get("model").and_then(Value::as_str).unwrap_or("?");
                vec![AgentEvent::Progress(format!(
                    "claude code started ({model})"
                ))]
            }
            Some("assistant") => assistant_progress(&event),
            Some("result") => result_events(&event),
            _ => Vec::new(),
        }
    }
}

fn assistant_progress(event: &Value) -> Vec<AgentEvent> {
    let Some(content) = event.pointer("/message/content").and_then(Value::as_array) else {
        return Vec::new();
    };
    content
        .iter()
        .filter_map(|block| match block.get("type").and_then(Value::as_str) {
            Some("text") => block
                .get("text")
                .and_then(Value::as_str)
                .and_then(|text| text.lines().find(|l| !l.trim().is_empty()))
                .map(|line| line.chars().take(PROGRESS_MAX_CHARS).collect()),
            Some("tool_use") => block
                .get("name")
                .and_then(Value::as_str)
                .map(|name| format!("tool: {name}")),
            _ => None,
        })
        .map(AgentEvent::Progress)
        .collect()
}

fn result_events(event: &Value) -> Vec<AgentEvent> {
    let mut events = Vec::new();
    let usage = event.get("usage").unwrap_or(&Value::Null);
    let models = event
        .get("modelUsage")
        .and_then(Value::as_object)
        .map(|models| models.keys().cloned().collect())
        .unwrap_or_default();
    events.push(AgentEvent::Total(ReportedTotal {
        models,
        usage: Usage {
            input_tokens: tokens(usage.get("input_tokens")),
            output_tokens: tokens(usage.get("output_tokens")),
            cache_read_tokens: tokens(usage.get("cache_read_input_tokens")),
            cache_write_tokens: tokens(usage.get("cache_creation_input_tokens")),
        },
        cost: event.get("total_cost_usd").and_then(dollars),
        calls: tokens(event.get("num_turns")),
    }));
    let subtype = event.get("subtype").and_then(Value::as_str).unwrap_or("");
    let is_error = event.get("is_error").and_then(Value::as_bool) == Some(true);
    let result = event.get("result").and_then(Value::as_str);
    if subtype == "success" && !is_error {
        events.extend(result.map(|text| AgentEvent::Summary(text.to_string())));
    } else {
        // An API failure still comes as `success` with is_error and the message in `result`;
        // the error subtypes carry `errors` instead.
        let detail = result.map(str::to_string).or_else(|| {
            event.get("errors").and_then(Value::as_array).map(|errors| {
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
        let reason = if subtype.is_empty() { "error" } else { subtype };
        events.push(AgentEvent::Stopped(match detail {
            Some(detail) if !detail.is_empty() => format!("{reason}: {detail}"),
            _ => reason.to_string(),
        }));
    }
    events
}
