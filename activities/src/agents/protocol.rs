//! Errand's JSON-lines event protocol: what a `command` agent (and the builtin loop) may print
//! on stdout, one JSON object per line, for the worker to read after the run:
//!
//! ```text
//! {"errand":"progress","message":"running the tests"}
//! {"errand":"usage","model":"gpt-4.1","input_tokens":1200,"output_tokens":80,
//!  "cache_read_tokens":0,"cache_write_tokens":0,"cost_usd":0.0031}
//! {"errand":"summary","text":"fixed the off-by-one in parse()"}
//! {"errand":"stopped","reason":"budget","message":"task budget of $2.00 spent"}
//! ```
//!
//! `usage` is one model call (the worker sums them); every field but `errand` is optional and
//! unknown fields are ignored, so the protocol can grow. Any other line is ordinary output.

use serde::{Deserialize, Serialize};
use workflows::cost::Usage;

use super::{AgentEvent, ReportedUsage, dollars};

/// One protocol line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "errand", rename_all = "snake_case")]
pub enum Line {
    Progress {
        message: String,
    },
    Usage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        #[serde(default)]
        input_tokens: u64,
        #[serde(default)]
        output_tokens: u64,
        #[serde(default)]
        cache_read_tokens: u64,
        #[serde(default)]
        cache_write_tokens: u64,
        /// Dollars, as the agent reckons them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<serde_json::Value>,
    },
    Summary {
        text: String,
    },
    Stopped {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

impl Line {
    /// The line as printed: one line of JSON, no newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a protocol line always serializes")
    }

    pub fn usage(model: Option<String>, usage: Usage) -> Line {
        Line::Usage {
            model,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            cost_usd: None,
        }
    }
}

/// The event of a protocol line; none for any other line.
pub fn parse(line: &str) -> Vec<AgentEvent> {
    // Cheap test first: most output lines are not ours.
    if !line.starts_with('{') || !line.contains("\"errand\"") {
        return Vec::new();
    }
    let Ok(parsed) = serde_json::from_str::<Line>(line) else {
        return Vec::new();
    };
    let event = match parsed {
        Line::Progress { message } => AgentEvent::Progress(message),
        Line::Usage {
            model,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cost_usd,
        } => AgentEvent::Usage(ReportedUsage {
            model,
            usage: Usage {
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
            },
            cost: cost_usd.as_ref().and_then(dollars),
        }),
        Line::Summary { text } => AgentEvent::Summary(text),
        Line::Stopped { reason, message } => AgentEvent::Stopped(match message {
            Some(message) => format!("{reason}: {message}"),
            None => reason,
        }),
    };
    vec![event]
}
