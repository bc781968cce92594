//! `errand export-history`: a task's Temporal history in the SDK's JSON format, for the
//! replay tests (the CLI's and UI's proto-JSON exports cannot be loaded by the replayer).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use temporalio_client::WorkflowFetchHistoryOptions;
use workflows::AgentTaskWorkflow;

use crate::settings::Settings;
use crate::temporal_server;

pub async fn export(settings: &Settings, task_id: &str, out: &Path) -> anyhow::Result<()> {
    let address = settings
        .temporal
        .address
        .as_deref()
        .context("export-history needs --temporal-address (or ERRAND__TEMPORAL__ADDRESS)")?;
    let client = temporal_server::connect(
        address,
        &settings.temporal.namespace,
        "errand-export",
        Duration::from_secs(10),
    )
    .await?;
    let json = client
        .get_workflow_handle::<AgentTaskWorkflow>(task_id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .with_context(|| format!("cannot fetch the history of task {task_id}"))?;
    std::fs::write(out, json).with_context(|| format!("cannot write {}", out.display()))
}
