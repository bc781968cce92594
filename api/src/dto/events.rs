//! Live progress: the events of `GET /v1/tasks/{id}/events`, one per server-sent event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::{ReviewVerdict, TaskStatus};

use store::{CheckOutcome, TaskEvent, TaskEventData};

/// The `data:` of one server-sent event; its `id:` is `id` (send it back as `Last-Event-ID`
/// to resume) and its `event:` is `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskEventView {
    pub id: i64,
    pub task_id: String,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub body: TaskEventBody,
}

/// What happened: `{"kind": ..., "data": {...}}`. Kinds may be added; skip unknown ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum TaskEventBody {
    /// The task moved to a status; after a final one only the stream's `end` follows.
    Status {
        status: TaskStatus,
        round: u32,
        reason: Option<String>,
        /// The status is final: the task has ended.
        #[serde(rename = "final")]
        is_final: bool,
    },
    /// The agent's latest output line (bounded, secrets redacted), sent when it changes.
    AgentOutput {
        round: u32,
        line: String,
        elapsed_ms: u64,
        output_bytes: u64,
    },
    /// The round's checks ran (their output is in `GET /v1/tasks/{id}`).
    Checks {
        round: u32,
        passed: bool,
        checks: Vec<CheckOutcomeView>,
    },
    /// The work was pushed and a review requested.
    ReviewRequested {
        round: u32,
        branch: String,
        commit: String,
    },
    /// A reviewer decided at the gate.
    Review {
        round: u32,
        decision: ReviewVerdict,
        reviewer: String,
        comment: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckOutcomeView {
    pub command: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub passed: bool,
}

impl TaskEventView {
    /// The `event:` name of the server-sent event.
    pub fn kind(&self) -> &'static str {
        match self.body {
            TaskEventBody::Status { .. } => "status",
            TaskEventBody::AgentOutput { .. } => "agent_output",
            TaskEventBody::Checks { .. } => "checks",
            TaskEventBody::ReviewRequested { .. } => "review_requested",
            TaskEventBody::Review { .. } => "review",
        }
    }
}

impl From<TaskEvent> for TaskEventView {
    fn from(event: TaskEvent) -> Self {
        let body = match event.data {
            TaskEventData::Status {
                status,
                round,
                reason,
            } => TaskEventBody::Status {
                is_final: status.is_final(),
                status,
                round,
                reason,
            },
            TaskEventData::AgentOutput {
                round,
                line,
                elapsed_ms,
                output_bytes,
            } => TaskEventBody::AgentOutput {
                round,
                line,
                elapsed_ms,
                output_bytes,
            },
            TaskEventData::Checks { round, checks } => TaskEventBody::Checks {
                round,
                passed: checks.iter().all(|c| c.passed),
                checks: checks.into_iter().map(CheckOutcomeView::from).collect(),
            },
            TaskEventData::ReviewRequested {
                round,
                branch,
                commit,
            } => TaskEventBody::ReviewRequested {
                round,
                branch,
                commit,
            },
            TaskEventData::Review {
                round,
                decision,
                reviewer,
                comment,
            } => TaskEventBody::Review {
                round,
                decision,
                reviewer,
                comment,
            },
        };
        TaskEventView {
            id: event.id,
            task_id: event.task_id,
            at: event.at,
            body,
        }
    }
}

impl From<CheckOutcome> for CheckOutcomeView {
    fn from(check: CheckOutcome) -> Self {
        CheckOutcomeView {
            command: check.command,
            exit_code: check.exit_code,
            timed_out: check.timed_out,
            duration_ms: check.duration_ms,
            passed: check.passed,
        }
    }
}
