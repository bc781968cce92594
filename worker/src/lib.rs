//! The worker: registers the `AgentTask` workflow and the task activities with Temporal and
//! polls the task queue until shut down.

use std::path::PathBuf;
use std::time::Duration;

use activities::data_dir::DataDir;
use activities::sandbox::Sandbox;
use activities::task_activities::TaskActivitiesImpl;
use anyhow::Context;
use store::Store;
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use workflows::{AgentTaskWorkflow, TASK_QUEUE};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Workspaces, agent inputs and logs of this worker's tasks.
    pub data_dir: PathBuf,
    /// After shutdown starts, running activities get this long before they are cancelled.
    pub graceful_shutdown: Duration,
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
        .context("the worker runs agents only in a sandbox")?;
    let data = DataDir::new(&settings.data_dir);
    let options = WorkerOptions::new(TASK_QUEUE)
        .register_workflow::<AgentTaskWorkflow>()?
        .register_activities(TaskActivitiesImpl::new(store, sandbox, data))
        .graceful_shutdown_period(settings.graceful_shutdown)
        .build();
    Worker::new(runtime, client, options).context("cannot create the Temporal worker")
}
