//! `GET /v1/tasks/{id}/report`: the task's report, as markdown.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use workflows::TaskStatus;

use crate::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiPath;

/// Says whether the report is the final one or the draft under review.
pub const REPORT_STATE_HEADER: &str = "errand-report";

/// Read a task's report.
///
/// The final report once the task has ended, in any state (`Errand-Report: final`). While the
/// task awaits review, the draft that is the body of its review request
/// (`Errand-Report: draft`). Before that there is no report yet: 404 `report_not_ready`.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/report",
    tag = super::TASKS,
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The report", content_type = "text/markdown", body = String,
            headers(("Errand-Report" = String, description = "`final`, or `draft` while the task awaits review"))),
        (status = 404, description = "No such task, or no report yet (`report_not_ready`)", body = ErrorBody),
    ),
)]
pub async fn get_report(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let record = state
        .store
        .task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
    let status = record.task.status;
    let (markdown, which) = match (record.task.report, record.review) {
        (Some(report), _) if status.is_final() => (report, "final"),
        (_, Some(review)) if status == TaskStatus::AwaitingReview => (review.body, "draft"),
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "report_not_ready",
                format!(
                    "task {id} is {status}: its report is written when it ends (a draft is \
                     served while it awaits review)"
                ),
            ));
        }
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            ),
            (
                header::HeaderName::from_static(REPORT_STATE_HEADER),
                HeaderValue::from_static(which),
            ),
        ],
        markdown,
    )
        .into_response())
}
