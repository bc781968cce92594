//! What the API asks of Temporal: start a task's workflow (idempotently), deliver a review
//! decision as an update, cancel. Each call's failures are mapped to the HTTP contract here.

use std::time::Duration;

use axum::http::StatusCode;
use temporalio_client::errors::{
    WorkflowInteractionError, WorkflowStartError, WorkflowUpdateError,
};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowExecuteUpdateOptions, WorkflowIdConflictPolicy,
    WorkflowIdReusePolicy, WorkflowSignalOptions, WorkflowStartOptions,
};
use workflows::agent_task::TaskProgress;
use workflows::task::Followup;
use workflows::{AgentTaskWorkflow, ReviewDecision, TASK_QUEUE, TaskSpec};

use crate::error::{ApiError, chain};

/// How long a review decision may wait for the workflow to take it (a worker must run the
/// update) before the API gives up answering; the update itself may still land.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(30);

/// What cancel tells the workflow, and its history.
pub const CANCEL_REASON: &str = "cancelled through the API";

/// Starts the task's workflow, with the task id as workflow id. A running workflow with that id
/// is kept (`UseExisting`); a closed one is never started again (`RejectDuplicate`): both mean
/// the task already exists, which is success.
pub async fn start_task(client: &Client, spec: TaskSpec) -> Result<(), ApiError> {
    let id = spec.id.clone();
    let options = WorkflowStartOptions::new(TASK_QUEUE, id.clone())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .static_summary(summary(&spec))
        .build();
    match client
        .start_workflow(AgentTaskWorkflow::run, spec, options)
        .await
    {
        Ok(_) => Ok(()),
        Err(WorkflowStartError::AlreadyStarted { .. }) => {
            tracing::debug!(task_id = %id, "workflow already finished; answering with the existing task");
            Ok(())
        }
        Err(err) => Err(unavailable(
            &format!("cannot start the workflow of task {id}"),
            &err,
        )),
    }
}

/// Delivers a review decision to the task's gate and answers what the gate saw.
///
/// The workflow's validator has the last word: a rejection there (e.g. a decision that raced
/// another) is a 409 with its message. A closed workflow cannot be reviewed.
pub async fn review(
    client: &Client,
    task_id: &str,
    decision: ReviewDecision,
) -> Result<TaskProgress, ApiError> {
    let handle = client.get_workflow_handle::<AgentTaskWorkflow>(task_id);
    let update = handle.execute_update(
        AgentTaskWorkflow::review,
        decision,
        WorkflowExecuteUpdateOptions::default(),
    );
    match tokio::time::timeout(UPDATE_TIMEOUT, update).await {
        Ok(Ok(progress)) => Ok(progress),
        Ok(Err(WorkflowUpdateError::NotFound(_))) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_awaiting_review",
            "task is not awaiting review",
        )),
        Ok(Err(WorkflowUpdateError::Failed(failure))) => {
            let message = if failure.message.is_empty() {
                "the workflow rejected the review decision".to_string()
            } else {
                failure.message.clone()
            };
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "review_rejected",
                message,
            ))
        }
        Ok(Err(err)) => Err(unavailable(
            &format!("cannot deliver the review of task {task_id}"),
            &err,
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "workflow_timeout",
            format!(
                "the workflow of task {task_id} did not take the decision within {}s; is a worker running?",
                UPDATE_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Delivers a follow-up message for the task's next round. The request id (e.g. the GitHub
/// delivery) makes a repeated delivery a no-op. A closed task takes no follow-ups: false.
pub async fn followup(
    client: &Client,
    task_id: &str,
    followup: Followup,
    request_id: &str,
) -> Result<bool, ApiError> {
    let handle = client.get_workflow_handle::<AgentTaskWorkflow>(task_id);
    let options = WorkflowSignalOptions::builder()
        .request_id(request_id.to_string())
        .build();
    match handle
        .signal(AgentTaskWorkflow::followup, followup, options)
        .await
    {
        Ok(()) => Ok(true),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(false),
        Err(err) => Err(unavailable(
            &format!("cannot deliver a follow-up to task {task_id}"),
            &err,
        )),
    }
}

/// Asks the task's workflow to cancel; it preserves the work and ends `cancelled`.
pub async fn cancel(client: &Client, task_id: &str) -> Result<(), ApiError> {
    let handle = client.get_workflow_handle::<AgentTaskWorkflow>(task_id);
    let options = WorkflowCancelOptions::builder()
        .reason(CANCEL_REASON)
        .build();
    match handle.cancel(options).await {
        Ok(()) => Ok(()),
        Err(WorkflowInteractionError::NotFound(_)) => Err(ApiError::conflict(format!(
            "task {task_id} has no running workflow to cancel"
        ))),
        Err(err) => Err(unavailable(&format!("cannot cancel task {task_id}"), &err)),
    }
}

/// A failed call to Temporal: 503, with the cause logged and quoted.
pub(crate) fn unavailable(context: &str, err: &(dyn std::error::Error + 'static)) -> ApiError {
    let cause = chain(err);
    tracing::warn!(error = %cause, "{context}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporal_unavailable",
        format!("{context}: {cause}"),
    )
}

/// One line for the Temporal UI: the playbook, or the start of the instructions.
fn summary(spec: &TaskSpec) -> String {
    if let Some(playbook) = &spec.playbook {
        return format!("playbook {} on {}", playbook.name, spec.repo);
    }
    let first = spec
        .instructions
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let mut line: String = first.chars().take(80).collect();
    if first.chars().count() > 80 {
        line.push_str("...");
    }
    line
}
