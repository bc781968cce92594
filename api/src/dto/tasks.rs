//! Task answers: the short state after a trigger or a command, list summaries, and the full
//! record with rounds, checks, review and decisions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::contracts::{AgentExit, AgentRun, CheckResult};
use workflows::task::PlaybookRef;
use workflows::{ReviewVerdict, TaskStatus};

use store::{ReviewDecisionRow, ReviewRequestRow, RoundRow, TaskRecord, TaskRow};

/// A task's id and status, as answered by triggers and cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskState {
    pub id: String,
    pub status: TaskStatus,
}

/// The answer to an accepted review decision: the task as the gate saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewAccepted {
    pub id: String,
    pub status: TaskStatus,
    pub round: u32,
}

/// A task in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskSummary {
    pub id: String,
    pub status: TaskStatus,
    pub round: u32,
    pub repo: String,
    pub base: String,
    pub branch: String,
    pub requester: String,
    pub playbook: Option<PlaybookRef>,
    /// Why the task ended the way it did (final statuses only).
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<TaskRow> for TaskSummary {
    fn from(row: TaskRow) -> Self {
        TaskSummary {
            id: row.id,
            status: row.status,
            round: row.round,
            repo: row.repo,
            base: row.base,
            branch: row.branch,
            requester: row.requester,
            playbook: row.playbook,
            reason: row.reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A task with its whole readable history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskDetail {
    pub id: String,
    pub status: TaskStatus,
    /// The current (or last) round; 0 before the first agent run.
    pub round: u32,
    pub repo: String,
    pub base: String,
    /// Where the task's work is pushed: `errand/<id>`.
    pub branch: String,
    pub requester: String,
    /// What the agent was asked to do (a playbook's resolved procedure).
    pub instructions: String,
    pub playbook: Option<PlaybookRef>,
    pub reason: Option<String>,
    /// The final report, as markdown.
    pub report: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Ascending by round.
    pub rounds: Vec<RoundView>,
    /// The open review request, once the work was pushed for review.
    pub review: Option<ReviewView>,
    /// Ascending by round.
    pub decisions: Vec<DecisionView>,
    /// The workflow in the Temporal UI, when the API knows the UI's address.
    pub temporal_ui: Option<String>,
}

impl TaskDetail {
    pub fn new(record: TaskRecord, temporal_ui: Option<String>) -> Self {
        let TaskRecord {
            task,
            rounds,
            review,
            decisions,
        } = record;
        TaskDetail {
            id: task.id,
            status: task.status,
            round: task.round,
            repo: task.repo,
            base: task.base,
            branch: task.branch,
            requester: task.requester,
            instructions: task.instructions,
            playbook: task.playbook,
            reason: task.reason,
            report: task.report,
            created_at: task.created_at,
            updated_at: task.updated_at,
            rounds: rounds.into_iter().map(RoundView::from).collect(),
            review: review.map(ReviewView::from),
            decisions: decisions.into_iter().map(DecisionView::from).collect(),
            temporal_ui,
        }
    }
}

/// One round: the agent's run and the checks that judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoundView {
    pub round: u32,
    /// Absent while the agent is still running.
    pub agent: Option<AgentRunView>,
    /// In the order they ran.
    pub checks: Vec<CheckView>,
}

impl From<RoundRow> for RoundView {
    fn from(row: RoundRow) -> Self {
        RoundView {
            round: row.round,
            agent: row.agent.map(AgentRunView::from),
            checks: row.checks.into_iter().map(CheckView::from).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentExitKind {
    /// The agent exited on its own (see `exit_code`).
    Exited,
    /// The time budget ran out and the agent was killed.
    TimedOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentRunView {
    pub exit: AgentExitKind,
    /// The exit code when the agent exited on its own; null if a signal killed it.
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// The last bytes of the agent's combined output.
    pub output_tail: String,
}

impl From<AgentRun> for AgentRunView {
    fn from(run: AgentRun) -> Self {
        let (exit, exit_code) = match run.exit {
            AgentExit::Exited { code } => (AgentExitKind::Exited, code),
            AgentExit::TimedOut => (AgentExitKind::TimedOut, None),
        };
        AgentRunView {
            exit,
            exit_code,
            duration_ms: run.duration_ms,
            output_tail: run.output_tail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckView {
    pub command: String,
    /// Null if the check was killed (by a signal or its time limit).
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub output_tail: String,
    /// Exited 0 within its time limit.
    pub passed: bool,
}

impl From<CheckResult> for CheckView {
    fn from(check: CheckResult) -> Self {
        let passed = check.passed();
        CheckView {
            command: check.command,
            exit_code: check.exit_code,
            timed_out: check.timed_out,
            duration_ms: check.duration_ms,
            output_tail: check.output_tail,
            passed,
        }
    }
}

/// The review request of a task: the pushed commit waiting at the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    pub branch: String,
    pub commit: String,
    pub round: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ReviewRequestRow> for ReviewView {
    fn from(row: ReviewRequestRow) -> Self {
        ReviewView {
            branch: row.branch,
            commit: row.commit,
            round: row.round,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    pub round: u32,
    pub decision: ReviewVerdict,
    pub reviewer: String,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<ReviewDecisionRow> for DecisionView {
    fn from(row: ReviewDecisionRow) -> Self {
        DecisionView {
            round: row.round,
            decision: row.decision,
            reviewer: row.reviewer,
            comment: row.comment,
            created_at: row.created_at,
        }
    }
}

/// `{ui}/namespaces/{namespace}/workflows/{workflow_id}`, whatever trailing slash `ui` has.
pub fn temporal_ui_link(ui: &str, namespace: &str, workflow_id: &str) -> String {
    format!(
        "{}/namespaces/{namespace}/workflows/{workflow_id}",
        ui.trim_end_matches('/')
    )
}
