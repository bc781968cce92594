//! Worker affinity: the activities that touch a task's workspace run on the task queue of the
//! worker that provisioned it; when that worker is gone, the task re-provisions on another
//! worker from the last pushed checkpoint of its branch and carries on.
//!
//! Behind the patch [`AFFINITY_PATCH`]: histories without it run everything on the shared queue.

use std::time::Duration;

use temporalio_common::ActivityDefinition;
use temporalio_sdk::{ActivityCloseTimeouts, ActivityExecutionError, ActivityOptions, TimeoutType};

use super::options::options;
use super::{Run, Stop};
use crate::contracts::{BAD_INPUT, ProvisionRequest, TaskActivities, Workspace};

/// The patch that routes workspace activities to the provisioning worker's own queue.
pub const AFFINITY_PATCH: &str = "worker-affinity";

/// How long a workspace activity may wait on its worker's queue before that worker counts as
/// gone. A live worker takes it at once (its sandbox limit queues inside the activity, which
/// heartbeats meanwhile), so this only ever expires for a dead or drained worker.
pub(super) const PICKUP: Duration = Duration::from_secs(15);

/// Under affinity, provisioning heartbeats (a clone can be long); this long without one and
/// the worker counts as gone.
const PROVISION_HEARTBEAT: Duration = Duration::from_secs(10);

/// Under affinity, a workspace step that does not heartbeat (git: push, diff, merge) gets at
/// most this long per attempt, so a worker lost in the middle of one is noticed in minutes.
const HOST_STEP: Duration = Duration::from_secs(120);

/// A task that keeps losing its workers stops here rather than moving forever (a worker that
/// never polls its own queue would otherwise bounce every task).
const MAX_RELOCATIONS: u32 = 8;

impl Run<'_> {
    /// Provisions the task's workspace on whichever worker takes it from the shared queue.
    pub(super) async fn provision(&mut self) -> Result<Workspace, Stop> {
        let request = ProvisionRequest {
            task_id: self.spec.id.clone(),
            repo: self.spec.repo.clone(),
            base: self.spec.base.clone(),
        };
        let mut opts = options(Duration::from_secs(600), None, 5, &[BAD_INPUT]);
        if self.affine {
            opts.heartbeat_timeout = Some(PROVISION_HEARTBEAT);
        }
        let workspace = self
            .ctx
            .execute_activity(TaskActivities::provision, request, opts)
            .await?;
        self.workspace = Some(workspace.clone());
        Ok(workspace)
    }

    /// Runs an activity on the workspace's worker. Under affinity, a lost worker (the activity
    /// was not picked up in time, or its heartbeats stopped for good) moves the task: it is
    /// provisioned again elsewhere and the activity runs there, on the new workspace.
    /// `activity` names the activity (`|| TaskActivities::verify`: its marker is not `Copy`).
    pub(super) async fn on_host<AD>(
        &mut self,
        activity: impl Fn() -> AD,
        input: impl Fn(&Workspace) -> AD::Input,
        opts: ActivityOptions,
    ) -> Result<AD::Output, Stop>
    where
        AD: ActivityDefinition,
    {
        loop {
            let workspace = self
                .workspace
                .clone()
                .ok_or_else(|| Stop::Failed("no workspace was provisioned".into()))?;
            let routed = self.route(&workspace, opts.clone());
            match self
                .ctx
                .execute_activity(activity(), input(&workspace), routed)
                .await
            {
                Err(err) if self.affine && worker_lost(&err) && workspace.task_queue.is_some() => {
                    self.relocate(&err).await?;
                }
                result => return result.map_err(Stop::from),
            }
        }
    }

    /// `opts` sent to the workspace's worker, when affinity applies and it has a queue.
    pub(super) fn route(
        &self,
        workspace: &Workspace,
        mut opts: ActivityOptions,
    ) -> ActivityOptions {
        if self.affine
            && let Some(queue) = &workspace.task_queue
        {
            opts.task_queue = Some(queue.clone());
            opts.schedule_to_start_timeout = Some(PICKUP);
            if opts.heartbeat_timeout.is_none()
                && let ActivityCloseTimeouts::StartToClose(limit) = opts.close_timeouts
            {
                opts.close_timeouts = ActivityCloseTimeouts::StartToClose(limit.min(HOST_STEP));
            }
        }
        opts
    }

    /// Provisions the task again on another worker, from its last pushed checkpoint.
    async fn relocate(&mut self, cause: &ActivityExecutionError) -> Result<(), Stop> {
        self.relocations += 1;
        if self.relocations > MAX_RELOCATIONS {
            return Err(Stop::Failed(format!(
                "worker lost {} times; last: {}",
                self.relocations,
                super::describe(cause)
            )));
        }
        self.provision().await?;
        Ok(())
    }
}

/// A timeout that means the worker holding the workspace is gone: the activity sat on its
/// queue unclaimed, or it stopped heartbeating and its retries found no worker either.
pub(super) fn worker_lost(err: &ActivityExecutionError) -> bool {
    err.as_timeout().is_some_and(|timeout| {
        matches!(
            timeout.timeout_type(),
            TimeoutType::ScheduleToStart | TimeoutType::Heartbeat
        )
    })
}
