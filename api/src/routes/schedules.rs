//! `/v1/schedules`: cron schedules on Temporal Schedules (list, read, create, pause, resume,
//! trigger now, delete) and `/v1/cron` (check an expression, preview its fires).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::schedules::dto::{CronCheck, ScheduleAccepted, ScheduleRequest, ScheduleView};
use crate::schedules::temporal::{self, Upserted};
use crate::schedules::{self, check_id, cron};

/// List the schedules, with their next and recent runs.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = super::SCHEDULES,
    responses(
        (status = 200, description = "Every Errand schedule, by id", body = Vec<ScheduleView>),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn list_schedules(
    State(state): State<SharedState>,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let mut views = Vec::new();
    for id in temporal::list_ids(&state.client).await? {
        match schedules::view(&state.client, &state.store, &id).await {
            Ok(view) => views.push(view),
            // Deleted between the listing and the read.
            Err(err) if err.status == StatusCode::NOT_FOUND => {}
            Err(err) => return Err(err),
        }
    }
    Ok(Json(views))
}

/// Create a schedule of a playbook, or update the one with that id.
///
/// The playbook is resolved now against the inputs, exactly as a run would be, and pinned in
/// the schedule; every fire runs it as a new task. Overlap policy: skip (no fire while the
/// previous fire's task is still going, review included); missed fires are caught up for 15
/// minutes.
#[utoipa::path(
    post,
    path = "/v1/schedules",
    tag = super::SCHEDULES,
    request_body = ScheduleRequest,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 200, description = "A schedule with this id existed and was updated", body = ScheduleView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No such playbook", body = ErrorBody),
        (status = 422, description = "Bad cron, time zone, id, inputs or repository", body = ErrorBody),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn create_schedule(
    State(state): State<SharedState>,
    ApiJson(request): ApiJson<ScheduleRequest>,
) -> Result<Response, ApiError> {
    let def = schedules::from_request(&state.playbooks_dir, request).await?;
    let outcome = temporal::upsert(&state.client, &def).await?;
    let view = schedules::view(&state.client, &state.store, &def.id).await?;
    tracing::info!(schedule = %def.id, ?outcome, "schedule saved");
    let status = match outcome {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(view)).into_response())
}

/// Read a schedule: next runs, recent runs with their tasks' outcomes, and why it is paused.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    tag = super::SCHEDULES,
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 400, description = "Not a valid schedule id", body = ErrorBody),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn get_schedule(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    check_id(&id)?;
    Ok(Json(
        schedules::view(&state.client, &state.store, &id).await?,
    ))
}

/// Pause a schedule: no fires until it is resumed.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/pause",
    tag = super::SCHEDULES,
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "Paused", body = ScheduleAccepted),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn pause_schedule(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ScheduleAccepted>, ApiError> {
    check_id(&id)?;
    temporal::describe(&state.client, &id).await?;
    temporal::pause(&state.client, &id, "paused through the API").await?;
    Ok(Json(ScheduleAccepted { id, paused: true }))
}

/// Resume a schedule; failures towards its auto-pause are counted afresh from now.
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/resume",
    tag = super::SCHEDULES,
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 200, description = "Resumed", body = ScheduleAccepted),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn resume_schedule(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ScheduleAccepted>, ApiError> {
    check_id(&id)?;
    let (_, input) = temporal::describe(&state.client, &id).await?;
    let now = schedules::now();
    let note = format!("resumed through the API at {}", schedules::format_time(now));
    temporal::resume(&state.client, &id, input, now, note).await?;
    Ok(Json(ScheduleAccepted { id, paused: false }))
}

/// Fire a schedule now (skipped if its previous fire's task is still going).
#[utoipa::path(
    post,
    path = "/v1/schedules/{id}/trigger",
    tag = super::SCHEDULES,
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 202, description = "Temporal took the trigger; the fire shows in recent_runs", body = ScheduleAccepted),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn trigger_schedule(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let (description, _) = temporal::describe(&state.client, &id).await?;
    temporal::trigger(&state.client, &id).await?;
    let accepted = ScheduleAccepted {
        id,
        paused: description.paused(),
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// Delete a schedule; tasks it started run on.
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    tag = super::SCHEDULES,
    params(("id" = String, Path, description = "Schedule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Temporal did not answer", body = ErrorBody),
    ),
)]
pub async fn delete_schedule(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    temporal::describe(&state.client, &id).await?;
    temporal::delete(&state.client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CronQuery {
    /// The cron expression.
    pub expression: String,
    /// IANA time zone (default UTC).
    pub timezone: Option<String>,
}

/// Check a cron expression as a schedule would read it, with its next five fire times (UTC
/// only; other zones are previewed by Temporal once the schedule exists).
#[utoipa::path(
    get,
    path = "/v1/cron",
    tag = super::SCHEDULES,
    params(CronQuery),
    responses(
        (status = 200, description = "A valid expression", body = CronCheck),
        (status = 422, description = "Not a cron expression Temporal would run", body = ErrorBody),
    ),
)]
pub async fn check_cron(ApiQuery(query): ApiQuery<CronQuery>) -> Result<Json<CronCheck>, ApiError> {
    let parsed = cron::check(&query.expression).map_err(|e| ApiError::invalid("expression", e))?;
    let timezone = query.timezone.unwrap_or_else(|| "UTC".to_string());
    let preview = cron::preview(&parsed, &timezone, schedules::now(), 5);
    Ok(Json(CronCheck {
        cron: parsed.as_str().to_string(),
        timezone,
        next_runs: preview
            .next
            .into_iter()
            .map(schedules::format_time)
            .collect(),
    }))
}
