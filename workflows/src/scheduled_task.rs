//! The `ScheduledTask` workflow: what a Temporal Schedule starts on each fire. A schedule's
//! action input is fixed, but every fire must be its own task; so this workflow names the task
//! after its own (per-fire) workflow id and runs it as a child `AgentTask`, whose `admit`
//! activity records it in the store. Its result is the task's outcome.

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ParentClosePolicy, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::agent_task::{AgentTaskWorkflow, TaskOutcome};
use crate::task::TaskSpec;

/// The pinned workflow type name (never derived from the Rust identifier).
pub const SCHEDULED_TASK_WORKFLOW: &str = "ScheduledTask";

/// Most characters of a schedule id: it is part of task ids and so of branch names.
pub const MAX_SCHEDULE_ID_LEN: usize = 48;

/// What a schedule's action carries to every fire. Lives in history: additive changes only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledTaskInput {
    pub schedule_id: String,
    /// The cron expression and its time zone, as given (Temporal reads back a calendar).
    #[serde(default)]
    pub cron: String,
    #[serde(default)]
    pub timezone: String,
    /// The task to run; its `id` is replaced by the fire's own.
    pub spec: TaskSpec,
    /// Pause the schedule after this many failed or incomplete runs in a row (read by the
    /// API's schedule watcher, not by the workflow).
    #[serde(default)]
    pub pause_after_failures: Option<u32>,
    /// Runs that ended before this instant (RFC 3339) do not count towards the pause: set when
    /// the schedule is resumed, so a resumed schedule gets its tries again.
    #[serde(default)]
    pub count_failures_after: Option<String>,
}

/// The workflow id prefix of a schedule's fires; Temporal appends `-<RFC 3339 time>`.
pub fn fire_workflow_prefix(schedule_id: &str) -> String {
    format!("sched-{schedule_id}")
}

/// The task id of the fire whose workflow run is `workflow_id`/`run_id`:
/// `s-<schedule>-<time digits>-<start of the run id>`, lowercase ASCII letters, digits and `-`
/// only, so it is a valid branch name and path. The run id tells apart two fires in the same
/// second (Temporal's workflow ids of a schedule's fires only go to the second).
pub fn fire_task_id(schedule_id: &str, workflow_id: &str, run_id: &str) -> String {
    let prefix = fire_workflow_prefix(schedule_id);
    let suffix = workflow_id
        .strip_prefix(&prefix)
        .unwrap_or(workflow_id)
        .trim_start_matches('-');
    let clean = |text: &str, n: usize| -> String {
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .take(n)
            .collect()
    };
    format!("s-{schedule_id}-{}-{}", clean(suffix, 32), clean(run_id, 8))
}

#[workflow]
pub struct ScheduledTaskWorkflow {
    input: ScheduledTaskInput,
}

#[workflow_methods]
impl ScheduledTaskWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ScheduledTaskInput) -> Self {
        Self { input }
    }

    #[run(name = "ScheduledTask")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<TaskOutcome> {
        let input = ctx.state(|s| s.input.clone());
        let mut spec = input.spec;
        spec.id = fire_task_id(&input.schedule_id, ctx.workflow_id(), ctx.run_id());
        let options = ChildWorkflowOptions::builder()
            .workflow_id(spec.id.clone())
            // The task outlives a terminated fire: its review may take days.
            .parent_close_policy(ParentClosePolicy::Abandon)
            .static_summary(format!("scheduled by {}", input.schedule_id))
            .build();
        let started = ctx
            .start_child_workflow(AgentTaskWorkflow::run, spec, options)
            .await?;
        // Waiting keeps the fire running as long as its task, so the schedule's overlap
        // policy (skip) never starts a second task beside one still awaiting review.
        Ok(started.result().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fire_task_ids_are_branch_safe_and_distinct_per_fire() {
        let run = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
        let a = fire_task_id("deps", "sched-deps-2026-11-21T13:19:15Z", run);
        assert_eq!(a, "s-deps-20261121t131915z-0b1c2d3e");
        let b = fire_task_id("deps", "sched-deps-2026-11-21T13:19:16Z", run);
        let same_second = fire_task_id("deps", "sched-deps-2026-11-21T13:19:15Z", "ffff-0000");
        assert_ne!(a, b);
        assert_ne!(a, same_second);
        assert_eq!(fire_task_id("deps", "other", "r"), "s-deps-other-r");
    }
}
