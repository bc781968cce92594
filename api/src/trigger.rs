//! What both triggers do once they hold a valid spec: admit the task to the store (so it can
//! be read at once) and start its workflow, idempotently by task id.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use workflows::{TaskSpec, TaskStatus};

use crate::dto::TaskState;
use crate::error::ApiError;
use crate::repo_check::{REPO_CHECK_TIMEOUT, check_remote_branch};
use crate::{ApiState, temporal};

/// 201 with the new task, or 200 with the task this id already names (a retried request with
/// the same `Idempotency-Key`): never a second workflow run.
pub async fn admit_and_start(state: &ApiState, spec: TaskSpec) -> Result<Response, ApiError> {
    if let Some(existing) = state.store.task(&spec.id).await? {
        let task = existing.task;
        // A previous attempt may have admitted the task and failed to start its workflow.
        if !task.status.is_final() {
            temporal::start_task(&state.client, spec).await?;
        }
        return Ok(answer(StatusCode::OK, task.id, task.status));
    }
    crate::routes::budgets::admit_within_period_budgets(&state.store, &spec).await?;
    check_remote_branch(&spec.repo, &spec.base, REPO_CHECK_TIMEOUT).await?;
    let id = spec.id.clone();
    let created = state.store.admit(&spec).await?;
    temporal::start_task(&state.client, spec).await?;
    if created {
        tracing::info!(task_id = %id, "task admitted and started");
        return Ok(answer(StatusCode::CREATED, id, TaskStatus::Admitted));
    }
    // Admitted concurrently by a request with the same key.
    let status = match state.store.task(&id).await? {
        Some(record) => record.task.status,
        None => TaskStatus::Admitted,
    };
    Ok(answer(StatusCode::OK, id, status))
}

fn answer(status: StatusCode, id: String, task_status: TaskStatus) -> Response {
    let location = format!("/v1/tasks/{id}");
    (
        status,
        [(header::LOCATION, location)],
        Json(TaskState {
            id,
            status: task_status,
        }),
    )
        .into_response()
}
