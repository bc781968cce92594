//! `POST /v1/tasks/{id}/review`: a reviewer's decision at the gate, delivered to the workflow
//! as an update. The gate's rules are checked against the stored task first, so the answer
//! says precisely what was wrong; the workflow's validator still has the last word.

use axum::Json;
use axum::extract::State;
use workflows::ReviewDecision;

use crate::SharedState;
use crate::admission::review_error;
use crate::dto::ReviewAccepted;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::temporal;

/// Approve, request changes on, or reject a task awaiting review.
///
/// The requester cannot review their own task; `request_changes` needs a comment, which the
/// next round's agent reads.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/review",
    tag = super::TASKS,
    params(("id" = String, Path, description = "Task id")),
    request_body = ReviewDecision,
    responses(
        (status = 200, description = "The gate took the decision", body = ReviewAccepted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "The reviewer is the task's requester", body = ErrorBody),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task is not awaiting review", body = ErrorBody),
        (status = 422, description = "Missing reviewer, or request_changes without a comment", body = ErrorBody),
        (status = 503, description = "Temporal did not take the decision", body = ErrorBody),
        (status = 504, description = "The workflow did not take the decision in time", body = ErrorBody),
    ),
)]
pub async fn review_task(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(decision): ApiJson<ReviewDecision>,
) -> Result<Json<ReviewAccepted>, ApiError> {
    let record = state
        .store
        .task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
    decision
        .check(record.task.status, &record.task.requester)
        .map_err(review_error)?;
    let progress = temporal::review(&state.client, &id, decision).await?;
    tracing::info!(task_id = %id, round = progress.round, "review decision delivered");
    Ok(Json(ReviewAccepted {
        id,
        status: progress.status,
        round: progress.round,
    }))
}
