//! The worker: registers the `AgentTask` workflow and the task activities with Temporal and
//! polls the shared task queue, and (for worker affinity) a task queue of its own that carries
//! the activities of the workspaces it provisioned, until shut down.

mod activity_span;
pub mod capacity;
pub mod gateway;
pub mod sdk_metrics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use activities::crash_activities::CrashActivitiesImpl;
use activities::data_dir::DataDir;
pub use activities::host::WorkerHost;
use activities::ledger::{SandboxRate, StoreCostGuard};
use activities::sandbox::Sandbox;
use activities::task_activities::TaskActivitiesImpl;
use activities::workspace::{RefreshLoop, Workspaces};
use anyhow::Context;
use store::Store;
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use workflows::{AgentTaskWorkflow, CrashInvestigationWorkflow, TASK_QUEUE};

use activity_span::ActivitySpans;
pub use gateway::GatewaySettings;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Workspaces, agent inputs and logs of this worker's tasks.
    pub data_dir: PathBuf,
    /// After shutdown starts, running activities get this long before they are cancelled.
    pub graceful_shutdown: Duration,
    /// The model gateway agents reach models through; None: agents get no model access.
    pub gateway: Option<GatewaySettings>,
    /// An unprivileged worker runs tasks with an uncapped workspace instead of refusing them.
    pub uncapped_workspace: bool,
    /// The ledger's price of sandbox time, in micro-dollars per second of an agent or check run.
    pub sandbox_micro_dollars_per_second: u32,
    /// Poll a task queue of this worker's own, so that tasks come back to their workspace here
    /// (off for `errand up`: one worker, nowhere else to go).
    pub own_queue: bool,
    /// Sandboxes run at once on this host (None: `capacity::default_max_runs`).
    pub max_concurrent_runs: Option<usize>,
    /// How often a running agent's work in progress is pushed (see `WorkerHost`).
    pub checkpoint_interval: Option<Duration>,
    /// `[workspaces]`: overlays on prebuilt bases, and how often those bases are refreshed.
    pub workspaces: WorkspaceSettings,
}

/// Task workspaces (`[workspaces]`; see `activities::workspace`).
#[derive(Debug, Clone)]
pub struct WorkspaceSettings {
    /// Workspaces are overlays on prebuilt bases (as root; else clones); false: always clones.
    pub overlay: bool,
    /// How often known repositories are fetched and the bases of moved base branches built
    /// ahead of the next task (None: only when a task finds the branch moved).
    pub base_refresh: Option<Duration>,
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        Self {
            overlay: true,
            base_refresh: Some(Duration::from_secs(300)),
        }
    }
}

/// The Temporal workers of one host: the shared queue, its own queue, and what they share.
pub struct Workers {
    /// Polls `TASK_QUEUE`: workflows, admission, provisioning, store writes.
    pub shared: Worker,
    /// Polls `host.queue`: the activities of the workspaces this host provisioned.
    pub own: Option<Worker>,
    pub host: WorkerHost,
    /// The model gateway's counters, when this worker runs the gateway.
    pub gateway_metrics: Option<activities::gateway::GatewayMetrics>,
    /// The background refresh of workspace bases; stops when dropped.
    pub base_refresh: Option<RefreshLoop>,
}

/// Builds a worker; fails closed if the sandbox cannot be set up on this host.
pub async fn build(
    runtime: &Runtime,
    client: Client,
    store: Store,
    settings: &WorkerSettings,
) -> anyhow::Result<Workers> {
    let sandbox = Sandbox::detect()
        .await
        .context("the worker runs agents only in a sandbox")?
        .accept_uncapped_workspace(settings.uncapped_workspace);
    let data = DataDir::new(&settings.data_dir);
    // One for both queues: it holds the locks that make two tasks build a base once.
    let workspaces =
        Arc::new(Workspaces::new(data.clone()).with_overlay(settings.workspaces.overlay));
    let host = WorkerHost::new(
        settings.own_queue.then(capacity::own_queue_name),
        settings
            .max_concurrent_runs
            .unwrap_or_else(capacity::default_max_runs),
        settings.checkpoint_interval,
    );
    let gateway = match &settings.gateway {
        Some(gateway) => {
            let guard = Arc::new(StoreCostGuard::new(store.clone()));
            let handle = gateway::start(gateway, &settings.data_dir, guard)
                .await
                .context("cannot start the model gateway")?;
            // The activities own the gateway: it serves as long as the worker does.
            Some(Arc::new(handle))
        }
        None => None,
    };
    // One set of activities per queue, sharing the sandbox, the gateway and the host's slots.
    let task_activities = || {
        let activities = TaskActivitiesImpl::new(store.clone(), sandbox.clone(), data.clone())
            .with_sandbox_rate(SandboxRate(
                settings.sandbox_micro_dollars_per_second.into(),
            ))
            .on_host(host.clone())
            .with_workspaces(Arc::clone(&workspaces));
        match &gateway {
            Some(gateway) => activities.with_gateway(Arc::clone(gateway)),
            None => activities,
        }
    };
    let options = WorkerOptions::new(TASK_QUEUE)
        .register_workflow::<AgentTaskWorkflow>()?
        .register_workflow::<CrashInvestigationWorkflow>()?
        .register_workflow::<workflows::ScheduledTaskWorkflow>()?
        .register_workflow::<workflows::PlaybookSlotsWorkflow>()?
        .register_activities(CrashActivitiesImpl::new(store.clone()))
        .register_activities(activities::slot_activities::SlotActivitiesImpl::new(client.clone()))
        .register_activities(task_activities())
        .graceful_shutdown_period(settings.graceful_shutdown)
        .activity_inbound_interceptor(ActivitySpans)
        .build();
    let shared = Worker::new(runtime, client.clone(), options)
        .context("cannot create the Temporal worker")?;
    // Activities only: the workflows stay on the shared queue, whichever worker runs them.
    let own = match &host.queue {
        Some(queue) => {
            let options = WorkerOptions::new(queue.as_str())
                .register_activities(task_activities())
                .graceful_shutdown_period(settings.graceful_shutdown)
                .activity_inbound_interceptor(ActivitySpans)
                .build();
            Some(
                Worker::new(runtime, client, options)
                    .with_context(|| format!("cannot create the worker of queue {queue}"))?,
            )
        }
        None => None,
    };
    let gateway_metrics = gateway.as_ref().map(|g| g.metrics().clone());
    let base_refresh = match settings.workspaces.base_refresh {
        Some(every) if settings.workspaces.overlay && !every.is_zero() => {
            Some(Arc::clone(&workspaces).spawn_refresh(every))
        }
        _ => None,
    };
    Ok(Workers {
        shared,
        own,
        host,
        gateway_metrics,
        base_refresh,
    })
}
