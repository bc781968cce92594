//! The contracts of every activity: pinned names, inputs and outputs.
//!
//! The `activities` crate implements these definitions; the workflow calls them by these
//! definitions, so a name or a type can only change here, on purpose. Payloads are forever
//! (invariant 2): change them additively, and keep large data (logs, diffs) in files or the
//! store, passing references and bounded tails (invariant 5).

#![allow(unused_variables)]

use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

use crate::cost::{BudgetRefusal, RunCost};
use crate::task::{AgentSpec, ReviewDecision, TaskSpec, TaskStatus};

/// Output kept in a payload is cut to this many bytes (the tail; the full log is a file).
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// A task's checkout on the worker host that provisioned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub task_id: String,
    /// Absolute path of the git checkout.
    pub path: String,
    /// Commit of the base branch the task started from.
    pub base_commit: String,
    pub branch: String,
    /// The task queue of the worker that provisioned it: the activities that touch the
    /// workspace are routed there (None: a worker without a queue of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_queue: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub task_id: String,
    pub status: TaskStatus,
    pub round: u32,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionRequest {
    pub task_id: String,
    pub repo: String,
    pub base: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRunRequest {
    pub workspace: Workspace,
    /// 1-based.
    pub round: u32,
    /// The task prompt, as markdown.
    pub prompt: String,
    /// Failing check output or review comments from the previous round.
    #[serde(default)]
    pub feedback: Option<String>,
    pub agent: AgentSpec,
    pub time_budget_secs: u64,
    /// The playbook's egress allowlist (`host` or `host:port`, port 443 when left out); empty
    /// means no network at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
    /// Who the work-in-progress checkpoints of this run are authored as (the requester); None:
    /// the run makes no checkpoints (a history from before worker affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_author: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentExit {
    /// The agent exited on its own, with this code (None: killed by a signal).
    Exited { code: Option<i32> },
    /// The time budget ran out and the whole process tree was killed.
    TimedOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRun {
    pub exit: AgentExit,
    pub duration_ms: u64,
    /// Last bytes of the agent's combined output.
    pub output_tail: String,
    /// Full (capped) log on the worker host.
    pub log_path: String,
    /// Every egress decision of the run, in order (empty without an allowlist).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<NetworkDecision>,
    /// Set when the gateway refused a model call of this run because a budget is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_refusal: Option<BudgetRefusal>,
    /// What the round cost so far, from the ledger (None when the ledger was not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<RunCost>,
    /// What the agent said about its own run (usage, cost, summary), read from its output
    /// events; None when it reported nothing. The ledger stays authoritative for cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<AgentReport>,
    /// Work-in-progress commits of this run pushed to the task branch (during it and right
    /// after it), so another worker could carry on from them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checkpoints: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An agent's own account of a run, from the events its adapter reads on its output (Claude
/// Code's `result`, Codex's `turn.completed`, the `{"errand": ...}` lines of a command or the
/// builtin loop). Untrusted: shown next to the ledger's figures, never instead of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    /// Tokens, summed over the calls it reported (or its own total, when it gives one).
    pub usage: crate::cost::Usage,
    /// The dollars it reported (Claude Code's `total_cost_usd`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::MicroDollars>,
    /// Models it named, in order of first mention (a few at most).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Model calls or turns that reported usage.
    #[serde(default)]
    pub calls: u64,
    /// Its closing summary, redacted and cut to `OUTPUT_TAIL_BYTES`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Why it stopped, in its own words (`error_max_turns`, `budget: ...`), when not simply done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// One request of the agent to leave the sandbox, and what the egress proxy decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDecision {
    /// `host:port` as requested.
    pub target: String,
    /// `allowed`, or why not (`not_allowlisted`, `ip_literal`, `private_address`, ...).
    pub verdict: String,
}

impl NetworkDecision {
    pub fn allowed(&self) -> bool {
        self.verdict == "allowed"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksRequest {
    pub workspace: Workspace,
    pub round: u32,
    pub checks: Vec<String>,
    /// Budget for each check command.
    pub time_budget_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub command: String,
    /// None when killed (time budget) or by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub output_tail: String,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    pub workspace: Workspace,
    pub message: String,
    /// Commit author, `Name <email>`-free: a plain name; the email is derived.
    pub author: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pushed {
    pub branch: String,
    /// Head of the task branch on the remote after the push.
    pub commit: String,
    /// Files changed against the base commit.
    pub changed_files: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRequest {
    pub task_id: String,
    pub branch: String,
    pub commit: String,
    pub round: u32,
    /// The report, as markdown; the body of the review request.
    pub report: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub task_id: String,
    pub round: u32,
    pub decision: ReviewDecision,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRequest {
    pub workspace: Workspace,
    pub base: String,
    /// The approved head of the task branch.
    pub commit: String,
    pub merged_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// Head of the base branch after the merge.
    pub base_commit: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishRequest {
    pub task_id: String,
    pub status: TaskStatus,
    pub round: u32,
    #[serde(default)]
    pub reason: Option<String>,
    pub report: String,
    /// Removed from the worker host once the task is final.
    #[serde(default)]
    pub workspace: Option<Workspace>,
}

/// A diff summary lists at most this many files; the rest are only counted.
pub const MAX_DIFF_FILES: usize = 1000;
/// Changed lines of inspected files kept in a diff summary, in total and per file; each line is
/// cut at `MAX_DIFF_LINE_CHARS`. Tests and configuration are inspected first.
pub const MAX_DIFF_LINES_BYTES: usize = 256 * 1024;
pub const MAX_DIFF_FILE_LINES_BYTES: usize = 32 * 1024;
pub const MAX_DIFF_LINE_CHARS: usize = 400;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRequest {
    pub workspace: Workspace,
    pub round: u32,
    /// Globs of test paths: their changed lines are kept first.
    #[serde(default)]
    pub test_paths: Vec<String>,
}

/// What a round changed against the base commit (the workspace with everything staged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSummary {
    pub base_commit: String,
    pub files: Vec<FileChange>,
    /// Changed files beyond the listed `MAX_DIFF_FILES`, only counted.
    #[serde(default)]
    pub files_omitted: u32,
    /// Over every changed file, listed or not.
    pub lines_added: u64,
    pub lines_removed: u64,
}

impl DiffSummary {
    pub fn changed_files(&self) -> u64 {
        self.files.len() as u64 + u64::from(self.files_omitted)
    }

    pub fn changed_lines(&self) -> u64 {
        self.lines_added + self.lines_removed
    }

    /// Every path the diff touches: both sides of a rename.
    pub fn touched_paths(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .flat_map(|f| f.old_path.as_deref().into_iter().chain([f.path.as_str()]))
    }

    /// The same summary without changed lines: what reports and history need to keep.
    pub fn without_lines(&self) -> DiffSummary {
        let mut summary = self.clone();
        for file in &mut summary.files {
            file.lines = None;
        }
        summary
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// The path after the change (for a deletion, the deleted path).
    pub path: String,
    /// The path before a rename or copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub status: ChangeStatus,
    pub lines_added: u32,
    pub lines_removed: u32,
    #[serde(default)]
    pub binary: bool,
    /// The removed and added lines, for the text files inspected within the size limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<ChangedLines>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    /// A file became a symlink, or the reverse.
    TypeChanged,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedLines {
    pub removed: Vec<String>,
    pub added: Vec<String>,
    /// Some lines were left out (size limits).
    #[serde(default)]
    pub truncated: bool,
}

/// One test of a red->green proof: a command, and the test file it runs if it runs one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedGreenTest {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedGreenRequest {
    pub workspace: Workspace,
    pub round: u32,
    pub tests: Vec<RedGreenTest>,
    /// Test files the agent added or changed: they are laid over the base commit, so that new
    /// tests run against the old code.
    pub test_files: Vec<String>,
    /// Budget of each command.
    pub time_budget_secs: u64,
}

/// Each test run on the base commit (with the agent's test files) and on the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedGreenProof {
    pub base_commit: String,
    pub runs: Vec<RedGreenRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedGreenRun {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_file: Option<String>,
    pub on_base: CheckResult,
    pub on_result: CheckResult,
}

/// A round's verification as it is recorded: the checks, then findings and red->green results
/// as further (named) checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationRecord {
    pub task_id: String,
    pub round: u32,
    pub checks: Vec<CheckResult>,
}

/// Error type names that mean "do not retry": the input itself is wrong.
pub const BAD_INPUT: &str = "BadInput";
pub const MERGE_CONFLICT: &str = "MergeConflict";

/// Activity names are pinned here; activities are verbs.
pub struct TaskActivities;

#[activity_definitions]
impl TaskActivities {
    /// Record the task in the store (idempotent upsert).
    #[activity(name = "admit")]
    pub fn admit(spec: TaskSpec) -> Result<(), ActivityError> {
        unimplemented!()
    }

    #[activity(name = "record_status")]
    pub fn record_status(change: StatusChange) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Check out the repository at the base branch (or the task branch's last checkpoint).
    #[activity(name = "provision")]
    pub fn provision(request: ProvisionRequest) -> Result<Workspace, ActivityError> {
        unimplemented!()
    }

    /// Run the agent in the sandbox under the time budget; heartbeats; killed with its tree.
    #[activity(name = "run_agent")]
    pub fn run_agent(request: AgentRunRequest) -> Result<AgentRun, ActivityError> {
        unimplemented!()
    }

    /// Run the check commands in the sandbox and record their results.
    #[activity(name = "verify")]
    pub fn verify(request: ChecksRequest) -> Result<Vec<CheckResult>, ActivityError> {
        unimplemented!()
    }

    /// Summarize what the workspace changed against the base commit (paths, statuses, line
    /// counts, and the changed lines of tests and other inspected files, bounded).
    #[activity(name = "summarize_diff")]
    pub fn summarize_diff(request: DiffRequest) -> Result<DiffSummary, ActivityError> {
        unimplemented!()
    }

    /// Run the red->green tests in the sandbox on the base commit (with the agent's test files)
    /// and on the result.
    #[activity(name = "prove_red_green")]
    pub fn prove_red_green(request: RedGreenRequest) -> Result<RedGreenProof, ActivityError> {
        unimplemented!()
    }

    /// Record a round's checks together with its policy findings and red->green results.
    #[activity(name = "record_verification")]
    pub fn record_verification(record: VerificationRecord) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Commit what the agent changed and push it to the task branch, at most once per state.
    #[activity(name = "push")]
    pub fn push(request: PushRequest) -> Result<Pushed, ActivityError> {
        unimplemented!()
    }

    /// Open (or find) the task's one review request.
    #[activity(name = "open_review")]
    pub fn open_review(request: ReviewRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }

    #[activity(name = "record_review")]
    pub fn record_review(record: ReviewRecord) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// Merge the approved commit into the base branch of the remote (idempotent).
    #[activity(name = "merge")]
    pub fn merge(request: MergeRequest) -> Result<Merged, ActivityError> {
        unimplemented!()
    }

    /// Record the final state and report, and clean the workspace.
    #[activity(name = "finish")]
    pub fn finish(request: FinishRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

/// The definition markers (`definitions::RunAgent`, ...) that implementations link to.
pub mod definitions {
    pub use super::task_activities::*;
}
