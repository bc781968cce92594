//! The worker: registers the `AgentTask` workflow and the task activities with Temporal and
//! polls the task queue until shut down.

mod activity_span;
pub mod gateway;
pub mod sdk_metrics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use activities::crash_activities::CrashActivitiesImpl;
use activities::data_dir::DataDir;
use activities::ledger::{SandboxRate, StoreCostGuard};
use activities::sandbox::Sandbox;
use activities::task_activities::TaskActivitiesImpl;
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
}

/// Builds a worker; fails closed if the sandbox cannot be set up on this host.
pub async fn build(
    runtime: &Runtime,
    client: Client,
    store: Store,
    settings: &WorkerSettings,
) -> anyhow::Result<Worker> {
    let sandbox = Sandbox::detect()
        .await
        .context("the worker runs agents only in a sandbox")?
        .accept_uncapped_workspace(settings.uncapped_workspace);
    let data = DataDir::new(&settings.data_dir);
    let mut task_activities = TaskActivitiesImpl::new(store.clone(), sandbox, data)
        .with_sandbox_rate(SandboxRate(settings.sandbox_micro_dollars_per_second.into()));
    if let Some(gateway) = &settings.gateway {
        let guard = Arc::new(StoreCostGuard::new(store.clone()));
        let handle = gateway::start(gateway, &settings.data_dir, guard)
            .await
            .context("cannot start the model gateway")?;
        // The activities own the gateway: it serves as long as the worker does.
        task_activities = task_activities.with_gateway(Arc::new(handle));
    }
    let options = WorkerOptions::new(TASK_QUEUE)
        .register_workflow::<AgentTaskWorkflow>()?
        .register_workflow::<CrashInvestigationWorkflow>()?
        .register_workflow::<workflows::ScheduledTaskWorkflow>()?
        .register_activities(CrashActivitiesImpl::new(store.clone()))
        .register_activities(task_activities)
        .graceful_shutdown_period(settings.graceful_shutdown)
        .activity_inbound_interceptor(ActivitySpans)
        .build();
    Worker::new(runtime, client, options).context("cannot create the Temporal worker")
}
