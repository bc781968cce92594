//! The `AgentTask` workflow: admit -> provision -> [run agent -> verify]* -> push -> open review
//! -> gate -> merge | close, with every unsuccessful ending preserving the work.
//!
//! Deterministic code only: every side effect is an activity from [`crate::contracts`].
//!
//! Histories recorded before playbook enforcement replay on the old path: everything the
//! enforcement adds (diff summary, policy findings, red->green, merge policy) is behind the
//! patch [`ENFORCEMENT_PATCH`]; worker affinity (workspace activities on the provisioning
//! worker's queue, re-provisioning when it is lost) is behind [`AFFINITY_PATCH`].

mod affinity;
mod options;
mod prompt;
mod verify;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ApplicationFailure, CancellableFuture, SignalWorkflowOptions,
    SyncWorkflowContext, TimerResult, WorkflowCancellationToken, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination, workflows::select,
};

use crate::budget::Spent;
use crate::contracts::{
    AgentExit, AgentRunRequest, BAD_INPUT, FinishRequest, MERGE_CONFLICT, MergeRequest,
    PushRequest, Pushed, ReviewRecord, ReviewRequest, StatusChange, TaskActivities, Workspace,
};
use crate::cost::BudgetRefusal;
use crate::playbook_slots::{
    PlaybookSlotsWorkflow, SlotActivities, SlotRequest, slots_workflow_id,
};
use crate::policy::merge::{self, MergeDecision, MergeFacts};
use crate::report::{Report, RoundSummary};
use crate::task::{Followup, ReviewDecision, ReviewVerdict, TaskSpec, TaskStatus};
pub use affinity::AFFINITY_PATCH;
use options::{local_short, long_running, long_running_with, options, short};
use prompt::{followup_feedback, prompt, round_feedback};

/// The pinned workflow type name (never derived from the Rust identifier).
pub const AGENT_TASK_WORKFLOW: &str = "AgentTask";

/// The patch that brought playbook enforcement: a diff summary judged by the policy after the
/// checks, red->green proofs, and the merge policy at the gate.
pub const ENFORCEMENT_PATCH: &str = "playbook-enforcement";

/// The patch that brought per-playbook concurrency limits (asked only of limited tasks).
pub const SLOTS_PATCH: &str = "playbook-slots";

/// The patch that made the task's store writes (`admit`, `record_status`, `open_review`,
/// `record_review`) local activities: run by the worker that runs the workflow task, with no
/// round trip through a task queue, recorded as markers with their input.
pub const LOCAL_WRITES_PATCH: &str = "local-store-writes";

/// Follow-ups kept for the next round; older ones beyond this are dropped.
const MAX_PENDING_FOLLOWUPS: usize = 20;

/// Who merges when the merge policy allows it without a reviewer.
pub const AUTO_MERGER: &str = "errand merge policy";

/// What the `status` query answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskProgress {
    pub status: TaskStatus,
    pub round: u32,
    /// The merge decision taken at the gate, with the rule that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeDecision>,
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
    /// The last merge decision taken at the gate, with the rule that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeDecision>,
}

#[workflow]
pub struct AgentTaskWorkflow {
    spec: TaskSpec,
    status: TaskStatus,
    round: u32,
    /// A decision delivered at the gate and not yet acted on.
    decision: Option<ReviewDecision>,
    /// The merge policy's decision at the last gate.
    merge: Option<MergeDecision>,
    /// The playbook's slots workflow granted this task a slot it has not yet released.
    slot_granted: bool,
    /// Follow-up messages not yet given to a round.
    followups: Vec<Followup>,
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
            merge: None,
            slot_granted: false,
            followups: Vec::new(),
        }
    }

    #[run(name = "AgentTask")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<TaskOutcome> {
        let spec = ctx.state(|s| s.spec.clone());
        // Asked first, before any command, so that every history answers it the same way.
        let enforced = ctx.patched(ENFORCEMENT_PATCH);
        let affine = ctx.patched(AFFINITY_PATCH);
        let local_writes = ctx.patched(LOCAL_WRITES_PATCH);
        let slots = spec
            .policy
            .max_running
            .zip(spec.playbook.as_ref())
            .filter(|_| ctx.patched(SLOTS_PATCH))
            .map(|(max, playbook)| Slots {
                playbook: playbook.name.clone(),
                max_running: max.get(),
                requested: false,
            });
        let mut run = Run {
            ctx,
            spec,
            enforced,
            affine,
            local_writes,
            slots,
            relocations: 0,
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
            merge: self.merge.clone(),
        }
    }

    /// The playbook's `PlaybookSlots` workflow let this task run.
    #[signal(name = "slot_granted")]
    pub fn slot_granted(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.slot_granted = true;
    }

    /// A message for the next round (a PR comment that mentions the bot, from a writer).
    #[signal(name = "followup")]
    pub fn followup(&mut self, _ctx: &mut SyncWorkflowContext<Self>, followup: Followup) {
        if self.followups.len() >= MAX_PENDING_FOLLOWUPS {
            self.followups.remove(0);
        }
        self.followups.push(followup);
    }

    #[update_validator(review)]
    fn validate_review(
        &self,
        _ctx: &WorkflowContextView,
        decision: &ReviewDecision,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // A decision already taken but not yet acted on, or a merge without a reviewer, means
        // the gate is closing.
        let auto_merge = matches!(self.merge, Some(MergeDecision::Auto { .. }));
        let status = if self.decision.is_some() || auto_merge {
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
            merge: self.merge.clone(),
        }
    }
}

/// The playbook's concurrency limit as this task sees it.
struct Slots {
    playbook: String,
    max_running: u32,
    /// A slot was asked for and not given back.
    requested: bool,
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
    /// Whether this history has the enforcement patch.
    enforced: bool,
    /// Whether this history has the worker-affinity patch.
    affine: bool,
    /// Whether this history has the local-store-writes patch.
    local_writes: bool,
    /// The playbook's concurrency limit, when it has one (and this history has the patch).
    slots: Option<Slots>,
    /// How often the task moved to another worker after losing one.
    relocations: u32,
    rounds: Vec<RoundSummary>,
    workspace: Option<Workspace>,
    pushed: Option<Pushed>,
}

impl Run<'_> {
    async fn pipeline(&mut self) -> Result<Ending, Stop> {
        let spec = self.spec.clone();
        self.act_short(TaskActivities::admit, spec.clone()).await?;
        self.take_slot().await?;
        self.set_status(TaskStatus::Provisioning, None).await?;
        self.provision().await?;

        let mut feedback: Option<String> = None;
        loop {
            let round = self.ctx.state_mut(|s| {
                s.round += 1;
                s.round
            });

            // A round after review runs again under the playbook's limit.
            self.take_slot().await?;
            self.set_status(TaskStatus::RunningAgent, None).await?;
            // No patch: histories from before the signal never carry a follow-up, so their
            // rounds read the feedback they always read.
            let followups = self.ctx.state_mut(|s| std::mem::take(&mut s.followups));
            let this_feedback = match (feedback.take(), followups.is_empty()) {
                (feedback, true) => feedback,
                (None, false) => Some(followup_feedback(&followups)),
                (Some(feedback), false) => {
                    Some(format!("{feedback}\n{}", followup_feedback(&followups)))
                }
            };
            let task_prompt = prompt(&spec, self.enforced, round, self.spent());
            // Checkpoints are authored as the requester, like every other commit of the task.
            let checkpoint_author = self.affine.then(|| spec.requester.clone());
            let agent = self
                .on_host(
                    || TaskActivities::run_agent,
                    |workspace| AgentRunRequest {
                        workspace: workspace.clone(),
                        round,
                        prompt: task_prompt.clone(),
                        feedback: this_feedback.clone(),
                        agent: spec.agent.clone(),
                        time_budget_secs: spec.time_budget_secs,
                        network: spec.policy.boundary.network.clone(),
                        checkpoint_author: checkpoint_author.clone(),
                    },
                    if self.enforced {
                        long_running_with(spec.time_budget_secs, &spec.policy.retry)
                    } else {
                        long_running(spec.time_budget_secs)
                    },
                )
                .await?;
            let timed_out = agent.exit == AgentExit::TimedOut;
            let refusal = agent.budget_refusal.clone();
            self.rounds.push(RoundSummary {
                round,
                agent,
                checks: Vec::new(),
                findings: Vec::new(),
                diff: None,
                red_green: None,
            });
            // A refused model call stops the round: the task ends with its work preserved.
            // No patch: histories from before the field never carry a refusal, so they take
            // the commands they always took; new ones end through the same `finish` path.
            if let Some(refusal) = refusal {
                return Ok(Ending::new(
                    TaskStatus::Incomplete,
                    refusal_reason(round, &refusal),
                ));
            }
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
            let verdict = self.verify_round(round).await?;
            let passed = verdict.passed();
            if let Some(last) = self.rounds.last_mut() {
                last.checks = verdict.checks.clone();
                last.findings = verdict.findings.clone();
                last.diff = verdict.diff.clone();
                last.red_green = verdict.proof.clone();
            }
            if !passed {
                if round >= spec.max_rounds {
                    return Ok(Ending::new(
                        TaskStatus::Incomplete,
                        round_limit_reason(round, &verdict),
                    ));
                }
                feedback = Some(round_feedback(round, &verdict.checks, &verdict.findings));
                continue;
            }

            // Decided before the review opens, so that its report says how it will merge.
            let merge_decision = if self.enforced {
                let decision = merge::decide(
                    &spec.policy.merge,
                    &MergeFacts {
                        checks_green: verdict.checks_green(),
                        findings: &verdict.findings,
                        diff: verdict.diff.as_ref(),
                    },
                );
                self.ctx.state_mut(|s| s.merge = Some(decision.clone()));
                Some(decision)
            } else {
                None
            };

            self.set_status(TaskStatus::Pushing, None).await?;
            let pushed = self
                .push(format!("errand: round {round} of task {}", spec.id))
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
            // Waiting for a reviewer is not running: the next task of the playbook may start.
            self.release_slot(None).await;

            if let Some(MergeDecision::Auto { rule }) = &merge_decision {
                self.merge(&pushed, AUTO_MERGER).await?;
                return Ok(Ending::new(
                    TaskStatus::Merged,
                    format!("merged into {} without a reviewer: {rule}", spec.base),
                ));
            }

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
                    if let Some(MergeDecision::Never { rule }) = &merge_decision {
                        return Ok(Ending::new(
                            TaskStatus::Approved,
                            format!(
                                "approved by {}; not merged: {rule}; merge branch {} yourself",
                                decision.reviewer,
                                spec.branch()
                            ),
                        ));
                    }
                    self.merge(&pushed, &decision.reviewer).await?;
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

    /// Waits for a slot of the playbook's concurrency limit, in order of arrival, unless the
    /// task holds one or has no limit.
    async fn take_slot(&mut self) -> Result<(), Stop> {
        let Some(slots) = self.slots.as_mut() else {
            return Ok(());
        };
        if self.ctx.state(|s| s.slot_granted) {
            return Ok(());
        }
        slots.requested = true;
        let request = SlotRequest {
            playbook: slots.playbook.clone(),
            task_id: self.spec.id.clone(),
            max_running: slots.max_running,
        };
        let waiting = format!(
            "waiting for a slot: playbook {} runs at most {} task(s) at once",
            request.playbook, request.max_running
        );
        let status = self.ctx.state(|s| s.status);
        self.set_status(status, Some(waiting)).await?;
        self.ctx
            .execute_activity(SlotActivities::request_slot, request, short())
            .await?;
        self.ctx
            .wait_condition(|s| s.slot_granted)
            .await
            .map_err(|_| Stop::Cancelled)?;
        Ok(())
    }

    /// Gives back the slot this task holds or waits for (a no-op for its slots workflow
    /// otherwise). A release that did not go through (cancelled with the task) is sent again
    /// when the task ends, on a token of its own.
    async fn release_slot(&mut self, cancellation_token: Option<WorkflowCancellationToken>) {
        let Some(slots) = self.slots.as_ref().filter(|s| s.requested) else {
            return;
        };
        let slots_id = slots_workflow_id(&slots.playbook);
        self.ctx.state_mut(|s| s.slot_granted = false);
        let mut options = SignalWorkflowOptions::default();
        options.cancellation_token = cancellation_token;
        let released = self
            .ctx
            .external_workflow(slots_id, None)
            .signal(
                PlaybookSlotsWorkflow::release,
                self.spec.id.clone(),
                options,
            )
            .await;
        if released.is_ok()
            && let Some(slots) = self.slots.as_mut()
        {
            slots.requested = false;
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

    async fn merge(&mut self, pushed: &Pushed, merged_by: &str) -> Result<(), Stop> {
        let base = self.spec.base.clone();
        self.on_host(
            || TaskActivities::merge,
            |workspace| MergeRequest {
                workspace: workspace.clone(),
                base: base.clone(),
                commit: pushed.commit.clone(),
                merged_by: merged_by.to_string(),
            },
            options(Duration::from_secs(300), None, 10, &[MERGE_CONFLICT]),
        )
        .await?;
        Ok(())
    }

    async fn push(&mut self, message: String) -> Result<Pushed, Stop> {
        let author = self.spec.requester.clone();
        let pushed = self
            .on_host(
                || TaskActivities::push,
                |workspace| PushRequest {
                    workspace: workspace.clone(),
                    message: message.clone(),
                    author: author.clone(),
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
            // Not moved when its worker is lost: what that host had is gone, and the last
            // checkpoint on the branch is what is left.
            let opts = self.route(&workspace, opts);
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
        self.release_slot(detached.clone()).await;
        self.ctx.state_mut(|s| s.status = ending.status);
        let report = self.report(ending.status, reason.as_deref());
        let mut finish = FinishRequest {
            task_id: self.spec.id.clone(),
            status: ending.status,
            round,
            reason: reason.clone(),
            report,
            workspace: self.workspace.clone(),
        };
        let mut opts = short();
        opts.cancellation_token = detached;
        match self.workspace.clone() {
            // The workspace's own worker records the ending and removes the workspace; if it
            // is gone, any worker records the ending (there is nothing left to remove).
            Some(workspace) if self.affine && workspace.task_queue.is_some() => {
                let routed = self.route(&workspace, opts.clone());
                match self
                    .ctx
                    .execute_activity(TaskActivities::finish, finish.clone(), routed)
                    .await
                {
                    Err(err) if affinity::worker_lost(&err) => {
                        finish.workspace = None;
                        self.ctx
                            .execute_activity(TaskActivities::finish, finish, opts)
                            .await?;
                    }
                    result => result?,
                }
            }
            _ => {
                self.ctx
                    .execute_activity(TaskActivities::finish, finish, opts)
                    .await?;
            }
        }

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
                merge: self.ctx.state(|s| s.merge.clone()),
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
        if self.local_writes {
            self.ctx
                .execute_local_activity(activity, input, local_short())
                .await?;
        } else {
            self.ctx.execute_activity(activity, input, short()).await?;
        }
        Ok(())
    }

    /// What the task had spent by the end of its last agent run (the ledger's figure).
    fn spent(&self) -> Spent {
        self.rounds
            .iter()
            .rev()
            .find_map(|r| r.agent.cost)
            .map(|c| Spent {
                micro_dollars: c.task_micro_dollars,
                tokens: c.task_tokens,
            })
            .unwrap_or_default()
    }

    fn report(&self, status: TaskStatus, reason: Option<&str>) -> String {
        let merge = self.ctx.state(|s| s.merge.clone());
        Report {
            spec: &self.spec,
            status,
            reason,
            rounds: &self.rounds,
            commit: self.pushed.as_ref().map(|p| p.commit.as_str()),
            changed_files: self.pushed.as_ref().map(|p| p.changed_files),
            merge: merge.as_ref(),
        }
        .render()
    }
}

/// Why a refused model call ended the task: `cost_budget: ...` for a spent budget, else the
/// refusal's own name (`loop_guard: ...`).
fn refusal_reason(round: u32, refusal: &BudgetRefusal) -> String {
    let kind = if refusal.is_cost_budget() {
        "cost_budget"
    } else {
        refusal.budget.as_str()
    };
    format!(
        "{kind}: a model call was refused in round {round} ({}): {}",
        refusal.budget, refusal.message
    )
}

/// Why the last round did not pass, for an incomplete ending (`round_limit: ...`).
fn round_limit_reason(round: u32, verdict: &verify::Verdict) -> String {
    let findings: Vec<String> = verdict
        .findings
        .iter()
        .map(|f| match &f.path {
            Some(path) => format!("{} ({path})", f.kind),
            None => f.kind.to_string(),
        })
        .collect();
    match (verdict.checks_green(), findings.is_empty()) {
        (false, true) => format!("round_limit: checks still failing after {round} round(s)"),
        (true, false) => format!(
            "round_limit: policy findings after {round} round(s): {}",
            findings.join(", ")
        ),
        _ => format!(
            "round_limit: checks still failing and policy findings after {round} round(s): {}",
            findings.join(", ")
        ),
    }
}
