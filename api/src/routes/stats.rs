//! `GET /v1/stats`: how tasks fare over a time range, overall and by playbook.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use store::EventKind;
use utoipa::IntoParams;

use crate::SharedState;
use crate::dto::TaskStats;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::task_stats;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Count tasks created at or after this time (RFC 3339); default: since the first task.
    pub from: Option<String>,
    /// Count tasks created before this time (RFC 3339); default: now.
    pub to: Option<String>,
}

/// Task statistics.
///
/// Of the tasks created in `[from, to)`: how many ended in each status, the share of finished
/// tasks that ended merged, and the median time from creation to the agent's first output
/// line, overall and by playbook. Cost figures come with the cost ledger (not yet recorded).
#[utoipa::path(
    get,
    path = "/v1/stats",
    tag = super::TASKS,
    params(StatsQuery),
    responses(
        (status = 200, description = "The statistics", body = TaskStats),
        (status = 400, description = "A time that is not RFC 3339, `from` not before `to`, or an unknown parameter", body = ErrorBody),
    ),
)]
pub async fn get_stats(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<TaskStats>, ApiError> {
    let from = query.from.as_deref().map(|t| time("from", t)).transpose()?;
    let to = match query.to.as_deref() {
        Some(t) => time("to", t)?,
        None => Utc::now(),
    };
    if from.is_some_and(|from| from >= to) {
        return Err(ApiError::bad_parameter("from", "from must be before to"));
    }
    let tasks = state.store.task_facts(from, Some(to)).await?;
    let first_output = state.store.first_events(EventKind::AgentOutput).await?;
    Ok(Json(task_stats::summarize(from, to, &tasks, &first_output)))
}

fn time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| {
            ApiError::bad_parameter(
                field,
                format!("{field} must be an RFC 3339 time like 2026-11-21T00:00:00Z: {err}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            time("from", "2026-11-21T01:00:00+01:00").unwrap(),
            DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z").unwrap()
        );
        let err = time("to", "yesterday").unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            ("invalid_parameter", Some("to"))
        );
    }
}
