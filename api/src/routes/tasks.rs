//! `/v1/tasks`: trigger an ad-hoc task, read one, list them, cancel one.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::SharedState;
use crate::admission::{list_limit, parse_status, task_spec};
use crate::dto::{TaskDetail, TaskRequest, TaskState, TaskSummary, temporal_ui_link};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{task_id, temporal, trigger};

/// Start an ad-hoc task.
///
/// Checks that the repository answers and has the base branch, records the task and starts
/// its workflow. With an `Idempotency-Key`, the task id is derived from the key: repeating the
/// request answers the same task (200) and never starts a second run.
#[utoipa::path(
    post,
    path = "/v1/tasks",
    tag = super::TASKS,
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "Makes the request idempotent: the same key always names the same task"),
    ),
    request_body = TaskRequest,
    responses(
        (status = 201, description = "The task was admitted and its workflow started", body = TaskState,
            headers(("Location" = String, description = "The task's URL"))),
        (status = 200, description = "The key names an existing task; nothing new was started", body = TaskState,
            headers(("Location" = String, description = "The task's URL"))),
        (status = 400, description = "Malformed JSON or a bad Idempotency-Key", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing, unknown or invalid; or the repository or branch is unreachable", body = ErrorBody),
        (status = 503, description = "Temporal did not take the workflow", body = ErrorBody),
    ),
)]
pub async fn create_task(
    State(state): State<SharedState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<TaskRequest>,
) -> Result<Response, ApiError> {
    let id = task_id::for_request(&headers)?;
    let spec = task_spec(id, request)?;
    trigger::admit_and_start(&state, spec).await
}

/// Read a task with its rounds, checks, review and decisions.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    tag = super::TASKS,
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = TaskDetail),
        (status = 404, description = "No such task", body = ErrorBody),
    ),
)]
pub async fn get_task(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskDetail>, ApiError> {
    let record = state
        .store
        .task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
    let ui = state
        .temporal_ui_url
        .as_deref()
        .map(|ui| temporal_ui_link(ui, &state.namespace, &id));
    Ok(Json(TaskDetail::new(record, ui)))
}

/// Filters of the task listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tasks in this status (e.g. `awaiting_review`).
    #[param(value_type = Option<workflows::TaskStatus>)]
    pub status: Option<String>,
    /// How many tasks, newest first: 1 to 500, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
}

/// List tasks, newest first.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = super::TASKS,
    params(ListQuery),
    responses(
        (status = 200, description = "The tasks, newest first", body = Vec<TaskSummary>),
        (status = 400, description = "Unknown status, bad limit or unknown parameter", body = ErrorBody),
    ),
)]
pub async fn list_tasks(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<TaskSummary>>, ApiError> {
    let status = query.status.as_deref().map(parse_status).transpose()?;
    let limit = list_limit(query.limit.as_deref())?;
    let rows = state.store.tasks(status, limit).await?;
    Ok(Json(rows.into_iter().map(TaskSummary::from).collect()))
}

/// Cancel a task.
///
/// The workflow stops the agent, preserves the work in progress and ends `cancelled`; the
/// answer comes as soon as the cancel request is recorded.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/cancel",
    tag = super::TASKS,
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 202, description = "Cancel requested; the status is the task's until the workflow ends it", body = TaskState),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task has already ended", body = ErrorBody),
        (status = 503, description = "Temporal did not take the cancel request", body = ErrorBody),
    ),
)]
pub async fn cancel_task(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let record = state
        .store
        .task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
    let status = record.task.status;
    if status.is_final() {
        return Err(ApiError::conflict(format!(
            "task {id} has already ended: {status}"
        )));
    }
    temporal::cancel(&state.client, &id).await?;
    tracing::info!(task_id = %id, "cancel requested");
    Ok((StatusCode::ACCEPTED, Json(TaskState { id, status })).into_response())
}
