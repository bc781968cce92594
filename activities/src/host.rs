//! What one worker host shares between the task queues it polls: its own queue (which
//! `provision` hands to the workflow, so a task's workspace activities come back here), the
//! limit on concurrent sandboxes, the checkpoint interval, and whether it is draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// While a run waits for a sandbox slot it heartbeats this often (well inside the 10s timeout).
const WAIT_HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct WorkerHost {
    /// The task queue only this worker polls; None: the worker has none (`errand up`).
    pub queue: Option<String>,
    /// While an agent runs, its work in progress is pushed this often (and at the end of a run
    /// that took at least this long); None: only on drain.
    pub checkpoint_interval: Option<Duration>,
    max_runs: usize,
    runs: Arc<Semaphore>,
    draining: Arc<AtomicBool>,
    checkpoints: Arc<AtomicU64>,
}

/// What the worker's `/metrics` shows of its host.
#[derive(Debug, Clone, Serialize)]
pub struct HostGauges {
    pub runs_active: usize,
    pub runs_limit: usize,
    pub draining: bool,
    pub checkpoints_pushed: u64,
}

/// A run's heartbeat while it waits for a sandbox slot.
#[derive(Debug, Serialize)]
struct Waiting {
    waiting_for_sandbox_slot: bool,
}

impl WorkerHost {
    pub fn new(
        queue: Option<String>,
        max_runs: usize,
        checkpoint_interval: Option<Duration>,
    ) -> Self {
        let max_runs = max_runs.max(1);
        Self {
            queue,
            checkpoint_interval,
            max_runs,
            runs: Arc::new(Semaphore::new(max_runs)),
            draining: Arc::new(AtomicBool::new(false)),
            checkpoints: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits, heartbeating, for one of the host's sandbox slots. Slots are handed out in the
    /// order asked (tokio's semaphore is fair). Waiting inside the activity, rather than in
    /// the task queue, keeps the queue's pickup timeout meaning "this worker is gone".
    pub async fn run_slot(
        &self,
        ctx: &ActivityContext,
    ) -> Result<OwnedSemaphorePermit, ActivityError> {
        if let Ok(permit) = Arc::clone(&self.runs).try_acquire_owned() {
            return Ok(permit);
        }
        let acquire = Arc::clone(&self.runs).acquire_owned();
        tokio::pin!(acquire);
        let mut tick = tokio::time::interval(WAIT_HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                permit = &mut acquire => {
                    return Ok(permit.expect("the host never closes its sandbox slots"));
                }
                () = ctx.cancelled() => return Err(ActivityError::cancelled()),
                _ = tick.tick() => {
                    ctx.record_heartbeat(Waiting { waiting_for_sandbox_slot: true }).await?;
                }
            }
        }
    }

    /// From now on the worker hands its tasks back: runs that end push their work first.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(crate) fn count_checkpoint(&self) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    pub fn gauges(&self) -> HostGauges {
        HostGauges {
            runs_active: self.max_runs - self.runs.available_permits().min(self.max_runs),
            runs_limit: self.max_runs,
            draining: self.is_draining(),
            checkpoints_pushed: self.checkpoints.load(Ordering::Relaxed),
        }
    }
}

impl Default for WorkerHost {
    /// No queue of its own, no checkpoints, and as many sandboxes as are asked for.
    fn default() -> Self {
        Self::new(None, Semaphore::MAX_PERMITS, None)
    }
}
