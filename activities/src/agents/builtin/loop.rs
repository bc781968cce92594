//! The agent loop: ask the model, run the tools it calls, give it their answers, until it calls
//! `finish`, the turn limit is reached, or the gateway refuses (402, budget spent). Every step
//! is reported as the JSON-lines protocol on `out`.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::client::{ChatClient, ChatError};
use super::tools::{self, Outcome};
use super::{EXIT_BUDGET, EXIT_FAILED, EXIT_FINISHED, EXIT_MAX_TURNS};
use crate::agents::protocol::Line;

/// A progress message is cut to this many characters.
const PROGRESS_MAX_CHARS: usize = 200;

const SYSTEM_PROMPT: &str = "You are Errand's coding agent. You work in a git repository (the \
current directory) inside a sandbox without network access. Use the tools to look at the code, \
change files and run the build and the tests. Change only what the task needs. When the work is \
done, or cannot be done, call `finish` with a short summary: what you changed and why, and what \
is left. The harness commits your changes and verifies them with the checks the task names.";

#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub model: String,
    pub max_turns: u32,
    pub workspace: PathBuf,
    /// The task prompt (with a round's feedback after it).
    pub prompt: String,
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Finished {
        summary: String,
    },
    MaxTurns {
        turns: u32,
    },
    /// The gateway refused a call: a budget is spent.
    Refused {
        message: String,
    },
    Failed {
        message: String,
    },
}

impl Ending {
    pub fn exit_code(&self) -> i32 {
        match self {
            Ending::Finished { .. } => EXIT_FINISHED,
            Ending::MaxTurns { .. } => EXIT_MAX_TURNS,
            Ending::Refused { .. } => EXIT_BUDGET,
            Ending::Failed { .. } => EXIT_FAILED,
        }
    }
}

/// Runs the loop to its end.
pub async fn run(client: &ChatClient, settings: &LoopSettings, out: &mut impl Write) -> Ending {
    let mut emit = |line: Line| {
        // Output is best effort: a closed stdout must not stop the work.
        let _ = writeln!(out, "{}", line.to_json());
        let _ = out.flush();
    };
    let tools = tools::definitions();
    let mut messages: Vec<Value> = vec![
        json!({"role": "system", "content": SYSTEM_PROMPT}),
        json!({"role": "user", "content": settings.prompt}),
    ];
    for turn in 1..=settings.max_turns {
        let completion = match client.complete(&settings.model, &messages, &tools).await {
            Ok(completion) => completion,
            Err(ChatError::Refused { budget, message }) => {
                let reason = match budget {
                    Some(budget) => format!("budget {budget}"),
                    None => "budget".to_string(),
                };
                emit(Line::Stopped {
                    reason,
                    message: Some(message.clone()),
                });
                return Ending::Refused { message };
            }
            Err(err) => {
                let message = err.to_string();
                emit(Line::Stopped {
                    reason: "model_error".into(),
                    message: Some(message.clone()),
                });
                return Ending::Failed { message };
            }
        };
        if let Some(usage) = completion.usage {
            emit(Line::usage(
                completion
                    .model
                    .clone()
                    .or_else(|| Some(settings.model.clone())),
                usage,
            ));
        }
        messages.push(completion.message());
        if let Some(text) = completion.content.as_deref().map(str::trim)
            && !text.is_empty()
        {
            emit(Line::Progress {
                message: first_line(text),
            });
        }
        if completion.tool_calls.is_empty() {
            // Answering without a tool is the model's way of saying it is done.
            let summary = completion.content.unwrap_or_default();
            emit(Line::Summary {
                text: summary.clone(),
            });
            return Ending::Finished { summary };
        }
        for call in &completion.tool_calls {
            emit(Line::Progress {
                message: first_line(&format!("turn {turn}: {} {}", call.name, call.arguments)),
            });
            match tools::call(&settings.workspace, &call.name, &call.arguments).await {
                Outcome::Finish(summary) => {
                    emit(Line::Summary {
                        text: summary.clone(),
                    });
                    return Ending::Finished { summary };
                }
                Outcome::Answer(answer) => messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": answer,
                })),
            }
        }
    }
    let turns = settings.max_turns;
    emit(Line::Stopped {
        reason: "max_turns".into(),
        message: Some(format!("{turns} turn(s) used without a finish")),
    });
    Ending::MaxTurns { turns }
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(PROGRESS_MAX_CHARS).collect()
}
