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

/// How the agent is started. One adapter today; more arrive additively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentSpec {
    /// Any program, run in the workspace inside the sandbox (argv, never a shell string).
    Command { command: Vec<String> },
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
    fn status_names_round_trip() {
        for st in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(st.as_str()), Some(st));
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert_eq!(TaskStatus::parse("done"), None);
    }
}
