//! The readable timeline of a task: its Temporal history projected to one entry per step,
//! joined with what the store knows (status, review decisions, why it ended).
//!
//! The shape is a contract: fields and enum values are only ever added.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::TaskStatus;

/// `GET /v1/tasks/{id}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskHistory {
    pub task_id: String,
    /// The task's status in the store.
    pub status: TaskStatus,
    pub round: u32,
    /// Why the task ended the way it did (final statuses only).
    pub reason: Option<String>,
    pub workflow: WorkflowRun,
    /// In the order they were scheduled.
    pub steps: Vec<HistoryStep>,
    /// The rules that decided the task's course: review decisions, the stop rule that ended
    /// it, the merge. (Playbook postconditions and budget refusals join when they are stored.)
    pub policy_decisions: Vec<PolicyDecision>,
    /// The raw history in the Temporal UI, when the API knows the UI's address.
    pub temporal_ui: Option<String>,
}

/// The workflow execution as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowRun {
    pub status: WorkflowRunStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// How many events the raw history has.
    pub events: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkflowRunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    Terminated,
    TimedOut,
    ContinuedAsNew,
}

/// What kind of history entry a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// An activity: `step` is its pinned name (`admit`, `record_status`, `provision`,
    /// `run_agent`, `verify`, `push`, `open_review`, `record_review`, `merge`, `finish`).
    Activity,
    /// A durable timer (`step` is `timer`; the review deadline at the gate).
    Timer,
    /// An update delivered to the workflow (`step` is its name: `review`, a gate decision).
    Update,
    /// Someone asked the workflow to cancel (`step` is `cancel`).
    CancelRequest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Waiting for a worker (or for its next attempt).
    Scheduled,
    Running,
    Completed,
    /// Failed for good (after its retries, or a non-retryable error).
    Failed,
    TimedOut,
    Cancelled,
    /// A timer that went off.
    Fired,
    /// An update the workflow took, or a cancel request that was recorded.
    Accepted,
    Rejected,
}

/// One step of the task, from its scheduling to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryStep {
    /// 1-based position in the timeline.
    pub seq: u32,
    pub kind: StepKind,
    pub step: String,
    /// The round the step belongs to (0 before the first agent run).
    pub round: u32,
    pub outcome: StepOutcome,
    /// When it was scheduled (or started, for timers, updates and requests).
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended; null while it runs.
    pub ended_at: Option<DateTime<Utc>>,
    /// From scheduling to the end, retries and backoff included.
    pub duration_ms: Option<u64>,
    /// Attempts so far (activities; 1 for everything else).
    pub attempts: u32,
    /// Why the last attempt was a retry: the previous attempt's failure.
    pub retry_cause: Option<String>,
    /// Why the step failed, timed out or was cancelled.
    pub failure: Option<String>,
    /// One line for people: the status recorded, the agent's exit, the checks' verdict, ...
    pub summary: Option<String>,
}

/// A decision a rule took on the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyDecision {
    /// `postcondition` (a finding of the playbook's policy), `red_green` (a proof), `review_gate`,
    /// `round_limit`, `time_budget`, `review_timeout`, `merge`, `merge_policy` (approved, left
    /// to a person to merge), `cancel`, `failure`.
    pub rule: String,
    pub round: u32,
    /// What the rule decided, e.g. `finding`, `proven`, `not_proven`, `approve`,
    /// `request_changes`, `stop`, `merged`.
    pub decision: String,
    pub detail: Option<String>,
    pub at: Option<DateTime<Utc>>,
}
