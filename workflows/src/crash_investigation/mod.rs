//! The `CrashInvestigation` workflow: one per crash group (service + fingerprint), started and
//! fed by signal-with-start from `POST /v1/crashes`. It counts occurrences, records the group,
//! starts one `investigate-crash` task as a child `AgentTask` (rate-limited per service),
//! attaches later occurrences to it, and re-opens when the crash recurs after its fix was
//! accepted. Long-lived: it continues as new every few hundred occurrences.
//!
//! Deterministic code only: the store writes and the rate limit's slots are activities of
//! [`crate::crash_contracts`]; the task spec is built by pure code from the playbook content
//! carried in the input.

pub mod group;
pub mod input;
pub mod intake;
pub mod investigation;

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, CancellableFuture, ChildWorkflowOptions, ContinueAsNewOptions,
    ParentClosePolicy, SyncWorkflowContext, TimerResult, WorkflowContext, WorkflowContextView,
    WorkflowResult, WorkflowTermination, workflows::select,
};
use temporalio_workflow::RetryPolicy;

use crate::agent_task::AgentTaskWorkflow;
use crate::crash_contracts::{
    ClaimOutcome, CrashActivities, CrashGroup, CrashGroupStatus, CrashGroupUpdate, InvestigationClaim,
    LinkedTask, Occurrence, RecordedOccurrence,
};
use group::{Next, count, empty_group, next};
pub use input::{Carried, CrashInvestigationInput, CrashLimits, InvestigationTarget};
use investigation::investigation_spec;

/// The pinned workflow type name (never derived from the Rust identifier).
pub const CRASH_INVESTIGATION_WORKFLOW: &str = "CrashInvestigation";
/// The pinned name of the signal that delivers an occurrence.
pub const OCCURRENCE_SIGNAL: &str = "occurrence";
/// The pinned name of the signal that delivers occurrences that arrived together.
pub const OCCURRENCES_SIGNAL: &str = "occurrences";

/// Delivery batches remembered for de-duplication: far more than a sender can have in flight.
const REMEMBERED_BATCHES: usize = 256;

/// Whether these occurrences are not a batch taken before; remembers the batch if so.
fn first_delivery(batches: &mut Vec<String>, occurrences: &[Occurrence]) -> bool {
    let Some(batch) = occurrences.first().and_then(|o| o.batch.as_ref()) else {
        return true;
    };
    if batches.contains(batch) {
        return false;
    }
    if batches.len() >= REMEMBERED_BATCHES {
        batches.remove(0);
    }
    batches.push(batch.clone());
    true
}

/// What the `state` query answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashGroupState {
    pub group: CrashGroup,
    /// Occurrences signalled and not yet recorded.
    pub pending: u64,
}

#[workflow]
pub struct CrashInvestigationWorkflow {
    input: CrashInvestigationInput,
    group: CrashGroup,
    pending: Vec<Occurrence>,
    /// The crash text investigations quote: the first occurrence's.
    excerpt: String,
    /// Occurrences this run has taken, towards continue-as-new.
    handled: u32,
    /// The latest delivery batches taken (carried over continue-as-new), oldest first.
    batches: Vec<String>,
}

#[workflow_methods]
impl CrashInvestigationWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, mut input: CrashInvestigationInput) -> Self {
        let (group, pending, excerpt, batches) = match input.carried.take() {
            Some(carried) => (
                carried.group,
                carried.pending,
                carried.excerpt,
                carried.batches,
            ),
            None => (
                empty_group(&input.group_id, &input.service, &input.fingerprint),
                Vec::new(),
                String::new(),
                Vec::new(),
            ),
        };
        Self {
            input,
            group,
            pending,
            excerpt,
            handled: 0,
            batches,
        }
    }

    #[run(name = "CrashInvestigation")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        // When the service's slots of the window are all taken: when to ask again.
        let mut retry_at: Option<SystemTime> = None;
        loop {
            if let Some(at) = retry_at
                && ctx.state(|s| s.pending.is_empty())
            {
                let wait = at.duration_since(now(ctx)).unwrap_or_default();
                let mut timer = ctx.timer(wait.max(Duration::from_secs(1)));
                select! {
                    r = ctx.wait_condition(|s| !s.pending.is_empty()) => {
                        timer.cancel();
                        r?;
                    }
                    t = &mut timer => if t == TimerResult::Cancelled {
                        return Err(WorkflowTermination::cancelled());
                    },
                };
            } else {
                ctx.wait_condition(|s| !s.pending.is_empty()).await?;
            }

            let (group, recorded, latest) = ctx.state_mut(|s| {
                let batch = std::mem::take(&mut s.pending);
                s.handled = s.handled.saturating_add(batch.len() as u32);
                let recorded = count(&mut s.group, &batch);
                let latest = batch.iter().map(|o| o.received_at_ms).max();
                (s.group.clone(), recorded, latest)
            });
            let task = record(ctx, group.clone(), recorded).await?;

            match next(&group, task.as_ref(), latest) {
                Next::Nothing => {}
                Next::Investigate => {
                    let due = retry_at.is_none_or(|at| now(ctx) >= at);
                    if due {
                        retry_at = investigate(ctx).await?;
                    }
                }
                Next::Fixed => {
                    let group = ctx.state_mut(|s| {
                        s.group.status = CrashGroupStatus::Fixed;
                        s.group.reason = None;
                        s.group.clone()
                    });
                    record(ctx, group, Vec::new()).await?;
                }
                Next::Unresolved(status) => {
                    let group = ctx.state_mut(|s| {
                        s.group.status = CrashGroupStatus::Unresolved;
                        s.group.reason = Some(format!("the investigation ended {status}"));
                        s.group.clone()
                    });
                    record(ctx, group, Vec::new()).await?;
                }
            }

            let limit = ctx.state(|s| s.input.limits.occurrences_per_run.max(1));
            if ctx.state(|s| s.handled) >= limit || ctx.continue_as_new_suggested() {
                let input = ctx.state(|s| {
                    let mut input = s.input.clone();
                    input.carried = Some(Carried {
                        group: s.group.clone(),
                        // The excerpt of the first occurrence is carried once, not per occurrence.
                        pending: s
                            .pending
                            .iter()
                            .map(|o| Occurrence {
                                excerpt: String::new(),
                                ..o.clone()
                            })
                            .collect(),
                        excerpt: s.excerpt.clone(),
                        batches: s.batches.clone(),
                    });
                    input
                });
                match ctx.continue_as_new(input, ContinueAsNewOptions::default())? {}
            }
        }
    }

    /// A crash of this group arrived (from `POST /v1/crashes`).
    #[signal(name = "occurrence")]
    pub fn occurrence(&mut self, _ctx: &mut SyncWorkflowContext<Self>, occurrence: Occurrence) {
        if self.excerpt.is_empty() {
            self.excerpt = occurrence.excerpt.clone();
        }
        self.pending.push(occurrence);
    }

    /// Crashes of this group that arrived together: the API coalesces the occurrences that
    /// arrive while its previous delivery to this group is in flight into one signal.
    #[signal(name = "occurrences")]
    pub fn occurrences(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        occurrences: Vec<Occurrence>,
    ) {
        // A batch the intake delivered again (its answer was lost) is already counted.
        if !first_delivery(&mut self.batches, &occurrences) {
            return;
        }
        if self.excerpt.is_empty()
            && let Some(first) = occurrences.first()
        {
            self.excerpt = first.excerpt.clone();
        }
        self.pending.extend(occurrences);
    }

    #[query(name = "state")]
    pub fn state(&self, _ctx: &WorkflowContextView) -> CrashGroupState {
        CrashGroupState {
            group: self.group.clone(),
            pending: self.pending.len() as u64,
        }
    }
}

/// The workflow's deterministic "now".
fn now(ctx: &WorkflowContext<CrashInvestigationWorkflow>) -> SystemTime {
    ctx.workflow_time().unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Records the group and new occurrences; answers how its task stands.
async fn record(
    ctx: &WorkflowContext<CrashInvestigationWorkflow>,
    group: CrashGroup,
    occurrences: Vec<RecordedOccurrence>,
) -> WorkflowResult<Option<LinkedTask>> {
    let keep_occurrences = ctx.state(|s| s.input.limits.keep_occurrences);
    let update = CrashGroupUpdate {
        group,
        occurrences,
        keep_occurrences,
    };
    let recorded = ctx
        .execute_activity(CrashActivities::record_crash_group, update, store_write())
        .await?;
    Ok(recorded.task)
}

/// Claims a slot and starts the group's next investigation; when the service has none left
/// in this window, records the group as rate-limited and answers when to ask again.
async fn investigate(
    ctx: &WorkflowContext<CrashInvestigationWorkflow>,
) -> WorkflowResult<Option<SystemTime>> {
    let (input, group, excerpt) =
        ctx.state(|s| (s.input.clone(), s.group.clone(), s.excerpt.clone()));
    let n = group.investigations + 1;
    let spec = match investigation_spec(&input, &group, &excerpt, n) {
        Ok(spec) => spec,
        Err(reason) => {
            let group = ctx.state_mut(|s| {
                s.group.status = CrashGroupStatus::Failed;
                s.group.reason = Some(format!("no investigation: {reason}"));
                s.group.clone()
            });
            record(ctx, group, Vec::new()).await?;
            return Ok(None);
        }
    };
    let claim = InvestigationClaim {
        service: group.service.clone(),
        group_id: group.id.clone(),
        investigation: n,
        max_per_window: input.limits.max_new_per_window,
        window_secs: input.limits.window_secs,
    };
    let outcome = ctx
        .execute_activity(CrashActivities::claim_investigation, claim, store_write())
        .await?;
    if let ClaimOutcome::Limited { retry_after_secs } = outcome {
        let group = ctx.state_mut(|s| {
            s.group.status = CrashGroupStatus::RateLimited;
            s.group.reason = Some(format!(
                "service {} started {} investigation(s) in this {}s window; retrying in {retry_after_secs}s",
                s.group.service, input.limits.max_new_per_window, input.limits.window_secs
            ));
            s.group.clone()
        });
        record(ctx, group, Vec::new()).await?;
        return Ok(Some(now(ctx) + Duration::from_secs(retry_after_secs)));
    }

    let task_id = spec.id.clone();
    // The investigation outlives this run (continue-as-new) and the group's workflow.
    let options = ChildWorkflowOptions::builder()
        .workflow_id(task_id.clone())
        .parent_close_policy(ParentClosePolicy::Abandon)
        .static_summary(format!("investigate crash {}", group.title))
        .build();
    let started = ctx
        .start_child_workflow(AgentTaskWorkflow::run, spec, options)
        .await;
    let group = ctx.state_mut(|s| {
        match &started {
            Ok(_) => {
                s.group.status = CrashGroupStatus::Investigating;
                s.group.task_id = Some(task_id.clone());
                s.group.investigations = n;
                s.group.reason = None;
            }
            Err(err) => {
                s.group.status = CrashGroupStatus::Failed;
                s.group.reason = Some(format!("cannot start investigation {task_id}: {err}"));
            }
        }
        s.group.clone()
    });
    record(ctx, group, Vec::new()).await?;
    Ok(None)
}

/// Store writes are idempotent and must eventually land: retried patiently, never given up.
fn store_write() -> ActivityOptions {
    let retry = RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(0)
        .build();
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: Option<&str>) -> Vec<Occurrence> {
        vec![Occurrence {
            received_at_ms: 1,
            release: None,
            environment: None,
            host: None,
            message: String::new(),
            excerpt: String::new(),
            batch: id.map(str::to_string),
        }]
    }

    #[test]
    fn a_batch_delivered_again_is_dropped_and_old_batches_are_forgotten() {
        let mut seen = Vec::new();
        assert!(first_delivery(&mut seen, &batch(Some("b1"))));
        assert!(!first_delivery(&mut seen, &batch(Some("b1"))));
        assert!(first_delivery(&mut seen, &batch(None)), "no batch id: always taken");
        assert!(first_delivery(&mut seen, &batch(None)));
        for i in 0..REMEMBERED_BATCHES {
            assert!(first_delivery(&mut seen, &batch(Some(&format!("x{i}")))));
        }
        assert_eq!(seen.len(), REMEMBERED_BATCHES);
        assert!(first_delivery(&mut seen, &batch(Some("b1"))), "b1 was forgotten");
    }
}
