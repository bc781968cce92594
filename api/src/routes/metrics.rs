//! `GET /metrics`: Prometheus metrics of the tasks, computed from the store at scrape time.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use store::EventKind;

use crate::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::task_metrics;

/// Prometheus metrics (text exposition format 0.0.4).
///
/// `errand_tasks_started_total{playbook}`, `errand_tasks_finished_total{playbook,outcome}`,
/// `errand_tasks_in_progress{status}`, `errand_task_rounds{playbook}` (histogram),
/// `errand_step_duration_seconds{step}` (histogram of the time spent in each status) and
/// `errand_review_wait_seconds` (histogram), `errand_sandbox_kills_total{cause}`, and the cost
/// ledger's counters. Ad-hoc tasks have `playbook="ad-hoc"`. The worker's Temporal SDK metrics
/// are served by the worker (`temporal.sdk_metrics_listen`), not here.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = super::SERVICE,
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "The store could not be read", body = ErrorBody),
    ),
)]
pub async fn metrics(State(state): State<SharedState>) -> Result<Response, ApiError> {
    let tasks = state.store.task_facts(None, None).await?;
    let events = state
        .store
        .events_of_kinds(&[EventKind::Status, EventKind::Review])
        .await?;
    let mut text = task_metrics::render(&tasks, &events)
        .map_err(|err| ApiError::internal("cannot render the metrics", &err))?;
    let kills = state.store.sandbox_kills().await?;
    text.push_str(
        &task_metrics::render_sandbox_kills(&kills)
            .map_err(|err| ApiError::internal("cannot render the sandbox metrics", &err))?,
    );
    let ledger = state.store.ledger_sums().await?;
    text.push_str(
        &super::cost::render_metrics(&ledger)
            .map_err(|err| ApiError::internal("cannot render the cost metrics", &err))?,
    );
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}
