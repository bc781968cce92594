//! The `AgentTask` workflow: admit -> provision -> [run agent -> verify]* -> push -> open review
//! -> gate -> merge | close, with every unsuccessful ending preserving the work.
//!
//! Deterministic code only: every side effect is an activity from [`crate::contracts`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityCancellationType, ActivityExecutionError, ActivityOptions, ApplicationFailure,
    CancellableFuture, SyncWorkflowContext, TimerResult, WorkflowCancellationToken,
    WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination, workflows::select,
};
use temporalio_workflow::RetryPolicy;

use crate::contracts::{
    AgentExit, AgentRunRequest, BAD_INPUT, CheckResult, ChecksRequest, FinishRequest,
    MERGE_CONFLICT, MergeRequest, ProvisionRequest, PushRequest, Pushed, ReviewRecord,
    ReviewRequest, StatusChange, TaskActivities, Workspace,
};
use crate::report::{Report, RoundSummary};
use crate::task::{ReviewDecision, ReviewVerdict, TaskSpec, TaskStatus};

/// The pinned workflow type name (never derived from the Rust identifier).
pub const AGENT_TASK_WORKFLOW: &str = "AgentTask";

/// What the `status` query answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskProgress {
    pub status: TaskStatus,
    pub round: u32,
}

/// The workflow's result for endings that are not errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub status: TaskStatus,
    pub round: u32,
    #[serde(default)]
    pub reason: Option<String>,
    pub branch: String,
    #[serde(default)]
    pub commit: Option<String>,
}

#[workflow]
pub struct AgentTaskWorkflow {
    spec: TaskSpec,
    status: TaskStatus,
    round: u32,
    /// A decision delivered at the gate and not yet acted on.
    decision: Option<ReviewDecision>,
}

#[workflow_methods]
impl AgentTaskWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, spec: TaskSpec) -> Self {
        Self {
            spec,
            status: TaskStatus::Admitted,
            round: 0,
            decision: None,
        }
    }

    #[run(name = "AgentTask")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<TaskOutcome> {
        let spec = ctx.state(|s| s.spec.clone());
        let mut run = Run {
            ctx,
            spec,
            rounds: Vec::new(),
            workspace: None,
            pushed: None,
        };
        let ending = match run.pipeline().await {
            Ok(ending) => ending,
            Err(Stop::Cancelled) => Ending::new(TaskStatus::Cancelled, "cancelled on request"),
            Err(Stop::Failed(reason)) => Ending {
                status: TaskStatus::Failed,
                reason: Some(reason),
            },
        };
        run.finish(ending).await
    }

    #[query(name = "status")]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> TaskProgress {
        TaskProgress {
            status: self.status,
            round: self.round,
        }
    }

    #[update_validator(review)]
    fn validate_review(
        &self,
        _ctx: &WorkflowContextView,
        decision: &ReviewDecision,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // A decision already taken but not yet acted on means the gate is closing.
        let status = if self.decision.is_some() {
            TaskStatus::Pushing
        } else {
            self.status
        };
        decision.check(status, &self.spec.requester)?;
        Ok(())
    }

    /// A review decision at the gate (validated above before anything reaches history).
    #[update(name = "review")]
    pub fn review(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        decision: ReviewDecision,
    ) -> TaskProgress {
        self.decision = Some(decision);
        TaskProgress {
            status: self.status,
            round: self.round,
        }
    }
}

/// How the pipeline ended, before the work is preserved and the ending recorded.
struct Ending {
    status: TaskStatus,
    reason: Option<String>,
}

impl Ending {
    fn new(status: TaskStatus, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: Some(reason.into()),
        }
    }
}

/// Why the pipeline stopped early.
enum Stop {
    Cancelled,
    /// An activity failed after its retries (or for good, on bad input).
    Failed(String),
}

impl From<ActivityExecutionError> for Stop {
    fn from(err: ActivityExecutionError) -> Self {
        match err {
            ActivityExecutionError::Cancelled(_) => Stop::Cancelled,
            err => Stop::Failed(describe(&err)),
        }
    }
}

/// The messages of a failure and its causes, outermost first.
fn describe(err: &ActivityExecutionError) -> String {
    let mut messages = Vec::new();
    let mut failure: Option<&Failure> = err.failure();
    while let Some(f) = failure {
        if !f.message.is_empty() {
            messages.push(f.message.clone());
        }
        failure = f.cause.as_deref();
    }
    if messages.is_empty() {
        err.to_string()
    } else {
        messages.join(": ")
    }
}

/// One execution of the pipeline, with what it has produced so far.
struct Run<'a> {
    ctx: &'a mut WorkflowContext<AgentTaskWorkflow>,
    spec: TaskSpec,
    rounds: Vec<RoundSummary>,
    workspace: Option<Workspace>,
    pushed: Option<Pushed>,
}

impl Run<'_> {
    async fn pipeline(&mut self) -> Result<Ending, Stop> {
        let spec = self.spec.clone();
        self.act_short(TaskActivities::admit, spec.clone()).await?;
        self.set_status(TaskStatus::Provisioning, None).await?;
        let workspace = self
            .ctx
            .execute_activity(
                TaskActivities::provision,
                ProvisionRequest {
                    task_id: spec.id.clone(),
                    repo: spec.repo.clone(),
                    base: spec.base.clone(),
                },
                options(Duration::from_secs(600), None, 5, &[BAD_INPUT]),
            )
            .await?;
        self.workspace = Some(workspace.clone());

        let mut feedback: Option<String> = None;
        loop {
            let round = self.ctx.state_mut(|s| {
                s.round += 1;
                s.round
            });

            self.set_status(TaskStatus::RunningAgent, None).await?;
            let agent = self
                .ctx
                .execute_activity(
                    TaskActivities::run_agent,
                    AgentRunRequest {
                        workspace: workspace.clone(),
                        round,
                        prompt: prompt(&spec),
                        feedback: feedback.take(),
                        agent: spec.agent.clone(),
                        time_budget_secs: spec.time_budget_secs,
                    },
                    long_running(spec.time_budget_secs),
                )
                .await?;
            let timed_out = agent.exit == AgentExit::TimedOut;
            self.rounds.push(RoundSummary {
                round,
                agent,
                checks: Vec::new(),
            });
            if timed_out {
                return Ok(Ending::new(
                    TaskStatus::Incomplete,
                    format!(
                        "time_budget: the agent ran past its {}s budget in round {round}",
                        spec.time_budget_secs
                    ),
                ));
            }

            // The checks are the judge, whatever the agent's exit code said.
            self.set_status(TaskStatus::Verifying, None).await?;
            let checks = self
                .ctx
                .execute_activity(
                    TaskActivities::verify,
                    ChecksRequest {
                        workspace: workspace.clone(),
                        round,
                        checks: spec.checks.clone(),
                        time_budget_secs: spec.time_budget_secs,
                    },
                    long_running(
                        spec.time_budget_secs
                            .saturating_mul(spec.checks.len().max(1) as u64),
                    ),
                )
                .await?;
            let passed = checks.iter().all(CheckResult::passed);
            if let Some(last) = self.rounds.last_mut() {
                last.checks = checks.clone();
            }
            if !passed {
                if round >= spec.max_rounds {
                    return Ok(Ending::new(
                        TaskStatus::Incomplete,
                        format!("round_limit: checks still failing after {round} round(s)"),
                    ));
                }
                feedback = Some(check_feedback(round, &checks));
                continue;
            }

            self.set_status(TaskStatus::Pushing, None).await?;
            let pushed = self
                .push(
                    &workspace,
                    format!("errand: round {round} of task {}", spec.id),
                )
                .await?;
            self.act_short(
                TaskActivities::open_review,
                ReviewRequest {
                    task_id: spec.id.clone(),
                    branch: pushed.branch.clone(),
                    commit: pushed.commit.clone(),
                    round,
                    report: self.report(TaskStatus::AwaitingReview, None),
                },
            )
            .await?;
            self.set_status(TaskStatus::AwaitingReview, None).await?;

            let Some(decision) = self.gate().await? else {
                return Ok(Ending::new(
                    TaskStatus::Incomplete,
                    format!(
                        "review_timeout: no review decision within {}s",
                        spec.review_timeout_secs
                    ),
                ));
            };
            self.act_short(
                TaskActivities::record_review,
                ReviewRecord {
                    task_id: spec.id.clone(),
                    round,
                    decision: decision.clone(),
                },
            )
            .await?;
            let comment = decision.comment.clone().unwrap_or_default();
            match decision.decision {
                ReviewVerdict::Approve => {
                    self.ctx
                        .execute_activity(
                            TaskActivities::merge,
                            MergeRequest {
                                workspace: workspace.clone(),
                                base: spec.base.clone(),
                                commit: pushed.commit.clone(),
                                merged_by: decision.reviewer.clone(),
                            },
                            options(Duration::from_secs(300), None, 10, &[MERGE_CONFLICT]),
                        )
                        .await?;
                    return Ok(Ending::new(
                        TaskStatus::Merged,
                        format!(
                            "approved by {} and merged into {}",
                            decision.reviewer, spec.base
                        ),
                    ));
                }
                ReviewVerdict::Reject => {
                    return Ok(Ending::new(
                        TaskStatus::Closed,
                        format!("rejected by {}: {comment}", decision.reviewer)
                            .trim_end_matches([':', ' '])
                            .to_string(),
                    ));
                }
                ReviewVerdict::RequestChanges => {
                    if round >= spec.max_rounds {
                        return Ok(Ending::new(
                            TaskStatus::Incomplete,
                            format!(
                                "round_limit: changes requested after the last of {round} round(s)"
                            ),
                        ));
                    }
                    feedback = Some(format!(
                        "# Review of round {round}: changes requested by {}\n\n{comment}\n",
                        decision.reviewer
                    ));
                }
            }
        }
    }

    /// Waits for a review decision or the review deadline (None).
    async fn gate(&mut self) -> Result<Option<ReviewDecision>, Stop> {
        let mut deadline = self
            .ctx
            .timer(Duration::from_secs(self.spec.review_timeout_secs));
        let decided = select! {
            r = self.ctx.wait_condition(|s| s.decision.is_some()) => {
                deadline.cancel();
                r.map_err(|_| Stop::Cancelled)?;
                true
            }
            t = &mut deadline => match t {
                TimerResult::Fired => false,
                TimerResult::Cancelled => return Err(Stop::Cancelled),
            },
        };
        Ok(if decided {
            self.ctx.state_mut(|s| s.decision.take())
        } else {
            None
        })
    }

    async fn push(&mut self, workspace: &Workspace, message: String) -> Result<Pushed, Stop> {
        let pushed = self
            .ctx
            .execute_activity(
                TaskActivities::push,
                PushRequest {
                    workspace: workspace.clone(),
                    message,
                    author: self.spec.requester.clone(),
                },
                options(Duration::from_secs(300), None, 10, &[BAD_INPUT]),
            )
            .await?;
        self.pushed = Some(pushed.clone());
        Ok(pushed)
    }

    /// Preserves the work of an unsuccessful ending, records the ending, and returns it.
    async fn finish(mut self, ending: Ending) -> WorkflowResult<TaskOutcome> {
        let round = self.ctx.state(|s| s.round);
        let mut reason = ending.reason;
        // Cancellation of the workflow must not cancel the clean-up: it runs on its own token.
        let detached = Some(WorkflowCancellationToken::new());
        if ending.status != TaskStatus::Merged
            && let Some(workspace) = self.workspace.clone()
        {
            let message = format!(
                "errand: work in progress ({}) of task {}",
                ending.status, self.spec.id
            );
            let mut opts = options(Duration::from_secs(300), None, 10, &[BAD_INPUT]);
            opts.cancellation_token = detached.clone();
            let push = PushRequest {
                workspace,
                message,
                author: self.spec.requester.clone(),
            };
            match self
                .ctx
                .execute_activity(TaskActivities::push, push, opts)
                .await
            {
                Ok(pushed) => self.pushed = Some(pushed),
                Err(err) => {
                    let note = format!("work in progress could not be pushed: {}", describe(&err));
                    reason = Some(reason.map_or(note.clone(), |r| format!("{r}; {note}")));
                }
            }
        }
        self.ctx.state_mut(|s| s.status = ending.status);
        let report = self.report(ending.status, reason.as_deref());
        let finish = FinishRequest {
            task_id: self.spec.id.clone(),
            status: ending.status,
            round,
            reason: reason.clone(),
            report,
            workspace: self.workspace.clone(),
        };
        let mut opts = short();
        opts.cancellation_token = detached;
        self.ctx
            .execute_activity(TaskActivities::finish, finish, opts)
            .await?;

        match ending.status {
            TaskStatus::Cancelled => Err(WorkflowTermination::cancelled()),
            TaskStatus::Failed => Err(ApplicationFailure::builder(reason.unwrap_or_default())
                .type_name("TaskFailed".into())
                .non_retryable(true)
                .build()
                .into()),
            status => Ok(TaskOutcome {
                status,
                round,
                reason,
                branch: self.spec.branch(),
                commit: self.pushed.map(|p| p.commit),
            }),
        }
    }

    async fn set_status(&mut self, status: TaskStatus, reason: Option<String>) -> Result<(), Stop> {
        let round = self.ctx.state_mut(|s| {
            s.status = status;
            s.round
        });
        let change = StatusChange {
            task_id: self.spec.id.clone(),
            status,
            round,
            reason,
        };
        self.act_short(TaskActivities::record_status, change).await
    }

    async fn act_short<AD>(&self, activity: AD, input: AD::Input) -> Result<(), Stop>
    where
        AD: temporalio_common::ActivityDefinition<Output = ()>,
    {
        self.ctx.execute_activity(activity, input, short()).await?;
        Ok(())
    }

    fn report(&self, status: TaskStatus, reason: Option<&str>) -> String {
        Report {
            spec: &self.spec,
            status,
            reason,
            rounds: &self.rounds,
            commit: self.pushed.as_ref().map(|p| p.commit.as_str()),
            changed_files: self.pushed.as_ref().map(|p| p.changed_files),
        }
        .render()
    }
}

/// The prompt the agent reads from `ERRAND_PROMPT_FILE`.
fn prompt(spec: &TaskSpec) -> String {
    let mut text = format!(
        "# Task\n\n{}\n\n## Done means\n\nThese checks pass in the repository root:\n\n",
        spec.instructions.trim()
    );
    for check in &spec.checks {
        text.push_str(&format!("- `{check}`\n"));
    }
    text.push_str(&format!(
        "\nYou have {} second(s) per round and at most {} round(s). Change files in the working \
         directory only; the harness commits, pushes and verifies.\n",
        spec.time_budget_secs, spec.max_rounds
    ));
    text
}

/// What the next round is told about the failing checks.
fn check_feedback(round: u32, checks: &[CheckResult]) -> String {
    let mut text = format!("# Checks failed in round {round}\n");
    for c in checks.iter().filter(|c| !c.passed()) {
        let how = match (c.timed_out, c.exit_code) {
            (true, _) => "timed out".to_string(),
            (false, Some(code)) => format!("exited {code}"),
            (false, None) => "was killed by a signal".to_string(),
        };
        text.push_str(&format!(
            "\n## `{}` {how}\n\n```\n{}\n```\n",
            c.command,
            c.output_tail.trim_end()
        ));
    }
    text
}

/// Store writes and other quick, idempotent steps: retried patiently.
fn short() -> ActivityOptions {
    options(Duration::from_secs(30), None, 50, &[])
}

/// The agent and the checks: heartbeating, cancelled with their whole process tree before the
/// workflow moves on, and re-run after a lost worker.
fn long_running(budget_secs: u64) -> ActivityOptions {
    let mut opts = options(
        Duration::from_secs(budget_secs.saturating_add(120)),
        Some(Duration::from_secs(10)),
        3,
        &[BAD_INPUT],
    );
    opts.cancellation_type = ActivityCancellationType::WaitCancellationCompleted;
    opts
}

fn options(
    start_to_close: Duration,
    heartbeat: Option<Duration>,
    attempts: u32,
    non_retryable: &[&str],
) -> ActivityOptions {
    let retry = RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(30))
        .maximum_attempts(attempts)
        .non_retryable_error_types(non_retryable.iter().copied())
        .build();
    let mut opts = ActivityOptions::with_start_to_close_timeout(start_to_close)
        .retry_policy(retry)
        .build();
    opts.heartbeat_timeout = heartbeat;
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_lists_only_failing_checks_with_their_output() {
        let checks = [
            CheckResult {
                command: "ok".into(),
                exit_code: Some(0),
                timed_out: false,
                duration_ms: 1,
                output_tail: "fine".into(),
            },
            CheckResult {
                command: "sh test.sh".into(),
                exit_code: Some(1),
                timed_out: false,
                duration_ms: 1,
                output_tail: "want 4 got 5\n".into(),
            },
        ];
        let text = check_feedback(2, &checks);
        assert!(text.starts_with("# Checks failed in round 2"));
        assert!(
            text.contains("## `sh test.sh` exited 1\n\n```\nwant 4 got 5\n```"),
            "{text}"
        );
        assert!(!text.contains("fine"));
    }
}
