//! The task: what a person or system delegates, and the states it moves through.
//!
//! These types travel in workflow payloads and live in Temporal history forever: change them
//! only additively (new fields get `#[serde(default)]`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::policy::Policy;

/// Everything a task needs to run, resolved when it is triggered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Task id; also the workflow id and the suffix of the task branch.
    pub id: String,
    /// Git URL or path of the repository the task works on.
    pub repo: String,
    /// Branch the work starts from and merges into.
    pub base: String,
    /// What the agent is asked to do, as markdown.
    pub instructions: String,
    /// Shell commands that must all exit 0 for a round to pass.
    pub checks: Vec<String>,
    pub agent: AgentSpec,
    pub max_rounds: u32,
    /// Wall-clock budget of one agent run.
    pub time_budget_secs: u64,
    /// Who asked; their name authors the commits, and they cannot approve their own task.
    pub requester: String,
    /// The playbook the task came from, if any.
    #[serde(default)]
    pub playbook: Option<PlaybookRef>,
    /// How long the gate waits for a review decision before the task ends incomplete.
    #[serde(default = "default_review_timeout_secs")]
    pub review_timeout_secs: u64,
    /// What the harness enforces beyond the checks (boundary, tamper rules, postconditions,
    /// red->green, merge policy), resolved from the playbook; the defaults for ad-hoc tasks.
    #[serde(default)]
    pub policy: Policy,
}

pub const DEFAULT_REVIEW_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

fn default_review_timeout_secs() -> u64 {
    DEFAULT_REVIEW_TIMEOUT_SECS
}

impl TaskSpec {
    /// The deterministic branch every push of this task goes to.
    pub fn branch(&self) -> String {
        branch_for(&self.id)
    }
}

pub fn branch_for(task_id: &str) -> String {
    format!("errand/{task_id}")
}

/// The playbook a task was resolved from, pinned by content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlaybookRef {
    pub name: String,
    /// sha256 of the playbook file's content at trigger time.
    pub content_hash: String,
}

/// How the agent is started: which adapter, and its settings. Variants arrive additively (the
/// `kind` tag and every existing field keep their meaning: these travel in history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentSpec {
    /// Any program, run in the workspace inside the sandbox (argv, never a shell string). It
    /// may report progress, usage and a summary as JSON lines on stdout (see the README).
    Command { command: Vec<String> },
    /// Claude Code in print mode (`claude -p --output-format stream-json --verbose`), unattended;
    /// its usage and cost come from its own events.
    ClaudeCode {
        /// `--model` (an alias such as `sonnet` or a full name); the CLI's default when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// `--max-turns`; unlimited (the time budget still applies) when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_turns: Option<u32>,
        /// The `claude` program: a name on the sandbox's PATH or an absolute path under /usr.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        program: Option<String>,
    },
    /// OpenAI Codex (`codex exec --json`), unattended; its usage comes from its own events.
    Codex {
        /// `--model`; the CLI's default when left out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// The `codex` program: a name on the sandbox's PATH or an absolute path under /usr.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        program: Option<String>,
    },
    /// Errand's own agent loop (`errand agent-loop`) against the OpenAI-compatible gateway:
    /// tools to list, read, write and search files, run commands, and finish with a summary.
    Builtin {
        /// The model the gateway is asked for.
        model: String,
        /// Model calls before the loop gives up.
        #[serde(default = "default_max_turns")]
        max_turns: u32,
    },
}

/// The builtin loop's turn limit when a spec does not set one.
pub const DEFAULT_MAX_TURNS: u32 = 50;
/// The most turns a spec may ask for (a loop that long is a runaway, whatever the budget).
pub const MAX_MAX_TURNS: u32 = 1000;

fn default_max_turns() -> u32 {
    DEFAULT_MAX_TURNS
}

impl AgentSpec {
    /// The adapter's name, as the `kind` tag spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Command { .. } => "command",
            Self::ClaudeCode { .. } => "claude_code",
            Self::Codex { .. } => "codex",
            Self::Builtin { .. } => "builtin",
        }
    }

    /// Everything wrong with the settings, as (field below the agent, message); empty when the
    /// spec can run. Playbooks and the API both check with it.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let blank = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .is_some_and(|v| v.trim().is_empty())
                .then(|| {
                    (
                        field.to_string(),
                        "expected a name, got nothing".to_string(),
                    )
                })
        };
        match self {
            Self::Command { command } => {
                if command.first().is_none_or(|p| p.trim().is_empty()) {
                    found.push((
                        "command".into(),
                        "expected the program to run and its arguments".into(),
                    ));
                }
            }
            Self::ClaudeCode {
                model,
                max_turns,
                program,
            } => {
                found.extend(blank("model", model));
                found.extend(blank("program", program));
                if *max_turns == Some(0) {
                    found.push(("max_turns".into(), "expected at least 1, got 0".into()));
                }
                found.extend(program_problem(program));
            }
            Self::Codex { model, program } => {
                found.extend(blank("model", model));
                found.extend(blank("program", program));
                found.extend(program_problem(program));
            }
            Self::Builtin { model, max_turns } => {
                if model.trim().is_empty() {
                    found.push(("model".into(), "expected a model name, got nothing".into()));
                }
                if !(1..=MAX_MAX_TURNS).contains(max_turns) {
                    found.push((
                        "max_turns".into(),
                        format!("expected 1 to {MAX_MAX_TURNS}, got {max_turns}"),
                    ));
                }
            }
        }
        found
    }
}

/// Only /usr of the host is mounted in the sandbox (and the program starts through a shell that
/// hands it the prompt on stdin), so a path elsewhere could not be run.
fn program_problem(program: &Option<String>) -> Option<(String, String)> {
    let program = program.as_deref()?.trim();
    let reachable = !program.contains('/')
        || (program.starts_with("/usr/") && !program.split('/').any(|part| part == ".."));
    (!reachable).then(|| {
        (
            "program".to_string(),
            format!(
                "expected a name on the sandbox's PATH or an absolute path under /usr, got {program:?}"
            ),
        )
    })
}

/// Where a task is in the pipeline. The last six are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Admitted,
    Provisioning,
    RunningAgent,
    Verifying,
    Pushing,
    AwaitingReview,
    Merged,
    /// Approved at review under the merge policy `never`: a person merges the branch.
    Approved,
    /// Rejected at review.
    Closed,
    /// Stopped short of success (round limit, time budget, review timeout); work is preserved.
    Incomplete,
    Cancelled,
    /// Infrastructure failure after retries.
    Failed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 12] = [
        Self::Admitted,
        Self::Provisioning,
        Self::RunningAgent,
        Self::Verifying,
        Self::Pushing,
        Self::AwaitingReview,
        Self::Merged,
        Self::Approved,
        Self::Closed,
        Self::Incomplete,
        Self::Cancelled,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admitted => "admitted",
            Self::Provisioning => "provisioning",
            Self::RunningAgent => "running_agent",
            Self::Verifying => "verifying",
            Self::Pushing => "pushing",
            Self::AwaitingReview => "awaiting_review",
            Self::Merged => "merged",
            Self::Approved => "approved",
            Self::Closed => "closed",
            Self::Incomplete => "incomplete",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Merged
                | Self::Approved
                | Self::Closed
                | Self::Incomplete
                | Self::Cancelled
                | Self::Failed
        )
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reviewer's verdict at the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    Approve,
    RequestChanges,
    Reject,
}

impl ReviewVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::RequestChanges => "request_changes",
            Self::Reject => "reject",
        }
    }
}

/// A review decision, delivered to the workflow as an update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    pub decision: ReviewVerdict,
    pub reviewer: String,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A message for the task's next round from someone allowed to steer it (a PR comment that
/// mentions the bot, from a writer of the repository), delivered as the `followup` signal.
/// Untrusted text: the agent reads it quoted, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followup {
    pub author: String,
    pub body: String,
    /// Where it came from (e.g. `github:o/r#12`), for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Why a review decision cannot be taken; checked before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewRejection {
    #[error("task is {0}, not awaiting_review")]
    NotAwaitingReview(TaskStatus),
    #[error("reviewer must not be empty")]
    NoReviewer,
    #[error("reviewer {0:?} requested this task and cannot review it")]
    SelfReview(String),
    #[error("request_changes needs a comment saying what to change")]
    NoComment,
}

impl ReviewDecision {
    /// The gate's rules, as pure policy.
    pub fn check(&self, status: TaskStatus, requester: &str) -> Result<(), ReviewRejection> {
        if status != TaskStatus::AwaitingReview {
            return Err(ReviewRejection::NotAwaitingReview(status));
        }
        let reviewer = self.reviewer.trim();
        if reviewer.is_empty() {
            return Err(ReviewRejection::NoReviewer);
        }
        if reviewer == requester.trim() {
            return Err(ReviewRejection::SelfReview(reviewer.to_string()));
        }
        let has_comment = self
            .comment
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty());
        if self.decision == ReviewVerdict::RequestChanges && !has_comment {
            return Err(ReviewRejection::NoComment);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(verdict: ReviewVerdict, reviewer: &str, comment: Option<&str>) -> ReviewDecision {
        ReviewDecision {
            decision: verdict,
            reviewer: reviewer.into(),
            comment: comment.map(Into::into),
        }
    }

    #[test]
    fn gate_rules() {
        use ReviewVerdict::*;
        let cases = [
            (
                decision(Approve, "bob", None),
                TaskStatus::AwaitingReview,
                Ok(()),
            ),
            (
                decision(Approve, "bob", None),
                TaskStatus::RunningAgent,
                Err(ReviewRejection::NotAwaitingReview(TaskStatus::RunningAgent)),
            ),
            (
                decision(Approve, " alice ", None),
                TaskStatus::AwaitingReview,
                Err(ReviewRejection::SelfReview("alice".into())),
            ),
            (
                decision(Reject, "", None),
                TaskStatus::AwaitingReview,
                Err(ReviewRejection::NoReviewer),
            ),
            (
                decision(RequestChanges, "bob", Some(" ")),
                TaskStatus::AwaitingReview,
                Err(ReviewRejection::NoComment),
            ),
            (
                decision(RequestChanges, "bob", Some("rename it")),
                TaskStatus::AwaitingReview,
                Ok(()),
            ),
        ];
        for (d, status, want) in cases {
            assert_eq!(d.check(status, "alice"), want, "{d:?} at {status}");
        }
    }

    #[test]
    fn the_command_agent_serializes_as_it_always_did() {
        // Recorded histories hold this exact shape.
        let spec = AgentSpec::Command {
            command: vec!["sh".into(), "agent.sh".into()],
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, r#"{"kind":"command","command":["sh","agent.sh"]}"#);
        assert_eq!(serde_json::from_str::<AgentSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn adapters_parse_with_their_defaults() {
        let cases = [
            (
                r#"{"kind":"claude_code"}"#,
                AgentSpec::ClaudeCode {
                    model: None,
                    max_turns: None,
                    program: None,
                },
            ),
            (
                r#"{"kind":"codex","model":"gpt-5-codex"}"#,
                AgentSpec::Codex {
                    model: Some("gpt-5-codex".into()),
                    program: None,
                },
            ),
            (
                r#"{"kind":"builtin","model":"m"}"#,
                AgentSpec::Builtin {
                    model: "m".into(),
                    max_turns: DEFAULT_MAX_TURNS,
                },
            ),
        ];
        for (json, want) in cases {
            let spec: AgentSpec = serde_json::from_str(json).unwrap();
            assert_eq!(spec, want, "{json}");
            assert!(spec.problems().is_empty(), "{json}: {:?}", spec.problems());
        }
        assert!(serde_json::from_str::<AgentSpec>(r#"{"kind":"builtin"}"#).is_err());
        assert!(serde_json::from_str::<AgentSpec>(r#"{"kind":"codex","turns":3}"#).is_err());
    }

    #[test]
    fn agent_problems_name_the_field() {
        let fields = |spec: AgentSpec| -> Vec<String> {
            spec.problems().into_iter().map(|(f, _)| f).collect()
        };
        assert_eq!(fields(AgentSpec::Command { command: vec![] }), ["command"]);
        assert_eq!(
            fields(AgentSpec::Builtin {
                model: " ".into(),
                max_turns: 0
            }),
            ["model", "max_turns"]
        );
        assert_eq!(
            fields(AgentSpec::ClaudeCode {
                model: None,
                max_turns: Some(0),
                program: Some("/home/me/.local/bin/claude".into()),
            }),
            ["max_turns", "program"]
        );
        assert_eq!(
            fields(AgentSpec::Codex {
                model: Some(String::new()),
                program: Some("/usr/local/bin/codex".into()),
            }),
            ["model"]
        );
        assert_eq!(
            fields(AgentSpec::Codex {
                model: None,
                program: Some("/usr/../home/codex".into()),
            }),
            ["program"]
        );
    }

    #[test]
    fn status_names_round_trip() {
        for st in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(st.as_str()), Some(st));
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert_eq!(TaskStatus::parse("done"), None);
    }
}
