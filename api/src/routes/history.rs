//! `GET /v1/tasks/{id}/history`: the task's Temporal history as a readable timeline, joined
//! with the store.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::{WorkflowDescribeOptions, WorkflowFetchHistoryOptions};
use workflows::AgentTaskWorkflow;

use crate::SharedState;
use crate::dto::{TaskHistory, WorkflowRunStatus, temporal_ui_link};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::{policy_decisions, temporal, timeline};

/// Read a task's timeline: one entry per step.
///
/// Each activity (`admit`, `record_status`, `provision`, `run_agent`, `verify`, `push`,
/// `open_review`, `record_review`, `merge`, `finish`) from its scheduling to its end, with its
/// round, attempts, the failure that caused the last retry and a one-line summary; the review
/// deadline timer; review decisions delivered to the gate; cancel requests. Then the policy
/// decisions taken on the task. The raw history stays in the Temporal UI (`temporal_ui`).
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/history",
    tag = super::TASKS,
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task's timeline", body = TaskHistory),
        (status = 404, description = "No such task, or Temporal no longer keeps its history (`history_not_found`)", body = ErrorBody),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn get_history(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskHistory>, ApiError> {
    let record = state
        .store
        .task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
    let handle = state.client.get_workflow_handle::<AgentTaskWorkflow>(&id);
    let events = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .map_err(|err| history_error(&id, err))?;
    let mut projected = timeline::project(&events, &[]);
    if projected.workflow.status == WorkflowRunStatus::Running {
        // History records an activity's start only once it ends: ask which ones run now.
        match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(description) => {
                let pending = &description.raw_description.pending_activities;
                projected = timeline::project(&events, pending);
            }
            Err(err) => {
                tracing::warn!(task_id = %id, error = %err, "cannot describe the workflow; pending steps show as scheduled");
            }
        }
    }
    let ui = state
        .temporal_ui_url
        .as_deref()
        .map(|ui| temporal_ui_link(ui, &state.namespace, &id));
    Ok(Json(TaskHistory {
        policy_decisions: policy_decisions::from_record(&record),
        task_id: record.task.id,
        status: record.task.status,
        round: record.task.round,
        reason: record.task.reason,
        workflow: projected.workflow,
        steps: projected.steps,
        temporal_ui: ui,
    }))
}

fn history_error(task_id: &str, err: WorkflowInteractionError) -> ApiError {
    match err {
        WorkflowInteractionError::NotFound(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "history_not_found",
            format!(
                "Temporal has no history of task {task_id}: its workflow never started, or is \
                 past the namespace's retention"
            ),
        ),
        err => temporal::unavailable(&format!("cannot read the history of task {task_id}"), &err),
    }
}
