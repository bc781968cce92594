//! `/v1/crashes`: take a crash report (a plain record or a Sentry-style event), fingerprint it,
//! and hand it to the crash intake (`crate::crash_intake`), which stores it and delivers it to
//! the `CrashInvestigation` workflow of its group; list and read groups.
//!
//! The ingestion path is kept short on purpose (the issue asks for 500 requests per second on
//! two cores): parse, fingerprint (pure), read the playbook file, and hand the crash to the
//! intake, which answers once it is stored. The workflow does the counting, the store writes,
//! the rate limit and the investigation. Bad input is refused before anything is stored, so a
//! 4xx leaves no trace.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use workflows::crash::{CrashInput, CrashInputError, CrashReport, MAX_TEXT_BYTES, fingerprint};
use workflows::crash_contracts::{CrashGroupStatus, RecordedOccurrence};
use workflows::crash_investigation::intake::{group_id, occurrence, service_of};
use workflows::crash_investigation::{CrashInvestigationInput, CrashLimits, InvestigationTarget};
use workflows::{AgentSpec, TaskStatus};

use crate::admission::list_limit;
use crate::crash_intake::{self, CrashSettings};
use crate::error::{ApiError, ErrorBody, serde_field};
use crate::extract::{ApiPath, ApiQuery};
use crate::{SharedState, playbook_files};

/// The largest body taken: the crash text limit plus room for the JSON around it.
pub const MAX_CRASH_BODY_BYTES: usize = MAX_TEXT_BYTES + 64 * 1024;
/// The playbook every crash investigation follows.
pub const INVESTIGATE_PLAYBOOK: &str = "investigate-crash";
/// Who investigations are on behalf of (they author the commits; they never review).
pub const CRASH_REQUESTER: &str = "errand-crash-intake";
/// Occurrences shown with one group.
const SHOWN_OCCURRENCES: u64 = 20;

/// Where crashes of this sender are investigated: the URL a crash reporter is configured
/// with names the repository and the agent, as a `POST /v1/tasks` body would. Without them,
/// the service's entry of the `[crashes]` configuration says.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IngestQuery {
    /// The service the crash belongs to; default: the record's `service`, else its `service`
    /// tag, else `unknown`.
    pub service: Option<String>,
    /// Git URL or path of the repository investigations work on; default: the service's
    /// `repo` in `[crashes.services]`.
    pub repo: Option<String>,
    /// The branch investigations start from; default: the service's `base`, else `main`.
    pub base: Option<String>,
    /// The agent program investigations run (inside the sandbox); default: the service's
    /// `agent`, else `[crashes] agent`.
    pub agent: Option<String>,
}

/// What `POST /v1/crashes` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CrashAccepted {
    /// The crash group (and its workflow): one per service and fingerprint.
    pub group_id: String,
    /// sha256 of the normalized crash type and top frames.
    pub fingerprint: String,
    /// Derived from the crash; untrusted text.
    pub title: String,
    pub service: String,
    /// True when this crash started a new group (the first the intake stored of it).
    pub new: bool,
}

/// Take a crash report.
///
/// Accepts Errand's plain crash record (`service`, `environment`, `release`, `message`,
/// `stacktrace` or `frames`, `timestamp`, `tags`) or a Sentry-style event (`exception.values`
/// with stack frames). The crash is fingerprinted (line numbers, addresses, ids, timestamps
/// and machine paths do not count) and stored; the answer comes once it is stored, and it is
/// then delivered (batched with the group's other new occurrences) to its group's
/// `CrashInvestigation` workflow, which counts it and starts at most one investigation per
/// group (rate-limited per service). Where investigations run comes from the query
/// parameters, else from the service's entry in the `[crashes]` configuration. Crash text is
/// data: investigations quote it, never follow it.
#[utoipa::path(
    post,
    path = "/v1/crashes",
    tag = super::CRASHES,
    params(IngestQuery),
    request_body(content = serde_json::Value, description = "A crash record or a Sentry-style event", content_type = "application/json"),
    responses(
        (status = 202, description = "Taken: stored, and delivered to the group's workflow in the background", body = CrashAccepted),
        (status = 400, description = "Malformed JSON, an unknown parameter, or no repo or agent for the service (neither a query parameter nor a `[crashes]` entry)", body = ErrorBody),
        (status = 413, description = "The body or the crash text is too large", body = ErrorBody),
        (status = 422, description = "Not a crash record or Sentry event, an empty crash, or a bad service", body = ErrorBody),
        (status = 404, description = "The service's playbook does not exist", body = ErrorBody),
        (status = 503, description = "The store did not take the crash", body = ErrorBody),
    ),
)]
pub async fn ingest_crash(
    State(state): State<SharedState>,
    settings: Option<Extension<Arc<CrashSettings>>>,
    ApiQuery(query): ApiQuery<IngestQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    if body.len() > MAX_CRASH_BODY_BYTES {
        return Err(too_large(body.len()));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))?;
    let input = CrashInput::from_value(value).map_err(crash_error)?;
    let report = CrashReport::from_input(&input).map_err(crash_error)?;
    let print = fingerprint(&report);
    let service = service_of(&report, query.service.as_deref())
        .map_err(|e| ApiError::invalid("service", e.to_string()))?;
    let group = group_id(&service, &print.hash);
    let occurrence = occurrence(&input, &report, Utc::now().timestamp_millis());
    let target = target_of(
        &query,
        settings.as_ref().map(|Extension(s)| s.as_ref()),
        &service,
    )?;
    let playbook_content = playbook_files::read(&state.playbooks_dir, &target.playbook).await?;

    let accepted = CrashAccepted {
        group_id: group.clone(),
        fingerprint: print.hash.clone(),
        title: print.title.clone(),
        service: service.clone(),
        new: false,
    };
    let input = CrashInvestigationInput {
        group_id: group,
        service,
        fingerprint: print,
        target: InvestigationTarget {
            repo: target.repo,
            base: target.base,
            agent: AgentSpec::Command {
                command: vec![target.agent],
            },
            playbook_name: target.playbook,
            playbook_content,
            requester: CRASH_REQUESTER.to_string(),
        },
        limits: CrashLimits::default(),
        carried: None,
    };
    let new = crash_intake::take(&state, input, occurrence).await?;
    if new {
        tracing::info!(group = %accepted.group_id, "new crash group");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(CrashAccepted { new, ..accepted }),
    )
        .into_response())
}

/// The investigation target of one request: its query parameters first, then the service's
/// `[crashes]` entry, then the section's defaults.
struct Target {
    repo: String,
    base: String,
    agent: String,
    playbook: String,
}

fn target_of(
    query: &IngestQuery,
    settings: Option<&CrashSettings>,
    service: &str,
) -> Result<Target, ApiError> {
    let mapped = settings.and_then(|s| s.service(service));
    let unmapped = |name: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unmapped_service",
            format!(
                "crashes of service {service:?} have no {name}: pass the query parameter {name} \
                 or map the service in the configuration ([[crashes.services]] with service = {service:?})"
            ),
        )
        .with_field(name)
    };
    let repo = match (&query.repo, mapped) {
        (Some(repo), _) => required(Some(repo), "repo")?.to_string(),
        (None, Some(m)) => required(Some(&m.repo), "repo")?.to_string(),
        (None, None) => return Err(unmapped("repo")),
    };
    let agent = match (
        &query.agent,
        mapped.and_then(|m| m.agent.as_ref()),
        settings.and_then(|s| s.agent.as_ref()),
    ) {
        (Some(agent), _, _) | (None, Some(agent), _) | (None, None, Some(agent)) => {
            required(Some(agent), "agent")?.to_string()
        }
        (None, None, None) => return Err(unmapped("agent")),
    };
    let base = query
        .base
        .as_deref()
        .or(mapped.and_then(|m| m.base.as_deref()))
        .map(str::trim)
        .unwrap_or("main");
    if base.is_empty() || base.starts_with('-') || base.chars().any(char::is_control) {
        return Err(ApiError::bad_parameter(
            "base",
            format!("not a branch name: {base:?}"),
        ));
    }
    let playbook = mapped
        .and_then(|m| m.playbook.clone())
        .unwrap_or_else(|| INVESTIGATE_PLAYBOOK.to_string());
    Ok(Target {
        repo,
        base: base.to_string(),
        agent,
        playbook,
    })
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() && !v.chars().any(char::is_control) => Ok(v),
        _ => Err(ApiError::bad_parameter(
            name,
            format!(
                "the query parameter {name} is required: where crashes of this sender are investigated"
            ),
        )),
    }
}

fn too_large(size: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the crash is {size} bytes; at most {MAX_CRASH_BODY_BYTES} are accepted"),
    )
    .with_field("body")
}

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the crash body is larger than the server accepts",
        )
        .with_field("body");
    }
    ApiError::new(rejection.status(), "unreadable_body", rejection.body_text())
}

fn crash_error(err: CrashInputError) -> ApiError {
    let message = err.to_string();
    match err {
        CrashInputError::Empty => ApiError::invalid(
            "stacktrace",
            "the crash report is empty: give a message, a stacktrace or frames (or a Sentry exception)",
        ),
        CrashInputError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
                .with_field("stacktrace")
        }
        CrashInputError::Json(detail) => {
            let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_crash", message);
            match serde_field(&detail) {
                Some(field) => err.with_field(field),
                None => err,
            }
        }
    }
}

/// A crash group as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CrashGroupView {
    pub id: String,
    pub fingerprint: String,
    pub service: String,
    /// Derived from the crash; untrusted text.
    pub title: String,
    pub language: String,
    pub crash_type: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub count: u64,
    pub releases: Vec<String>,
    pub environments: Vec<String>,
    pub status: CrashGroupStatus,
    /// The current investigation task.
    pub task_id: Option<String>,
    /// Its status, once the task is recorded.
    pub task_status: Option<TaskStatus>,
    pub investigations: u32,
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<store::CrashGroupRecord> for CrashGroupView {
    fn from(record: store::CrashGroupRecord) -> Self {
        let g = record.group;
        CrashGroupView {
            id: g.id,
            fingerprint: g.fingerprint,
            service: g.service,
            title: g.title,
            language: g.language,
            crash_type: g.crash_type,
            first_seen: millis(g.first_seen_ms),
            last_seen: millis(g.last_seen_ms),
            count: g.count,
            releases: g.releases,
            environments: g.environments,
            status: g.status,
            task_id: g.task_id,
            task_status: record.task_status,
            investigations: g.investigations,
            reason: g.reason,
            updated_at: record.updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OccurrenceView {
    /// 1-based, within the group.
    pub seq: u64,
    pub received_at: DateTime<Utc>,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub host: Option<String>,
    pub message: String,
    /// The investigation it was attached to.
    pub task_id: Option<String>,
}

impl From<RecordedOccurrence> for OccurrenceView {
    fn from(o: RecordedOccurrence) -> Self {
        OccurrenceView {
            seq: o.seq,
            received_at: millis(o.received_at_ms),
            release: o.release,
            environment: o.environment,
            host: o.host,
            message: o.message,
            task_id: o.task_id,
        }
    }
}

/// A crash group with its latest occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CrashGroupDetail {
    #[serde(flatten)]
    pub group: CrashGroupView,
    /// The latest occurrences, newest first (the store keeps the last 100).
    pub occurrences: Vec<OccurrenceView>,
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Filters and page of the crash group listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CrashListQuery {
    pub service: Option<String>,
    /// `new`, `rate_limited`, `investigating`, `fixed`, `unresolved` or `failed`.
    #[param(value_type = Option<CrashGroupStatus>)]
    pub status: Option<String>,
    /// Groups per page, most recently seen first: 1 to 500, default 50.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// Groups to skip (the page times the limit); default 0.
    #[param(value_type = Option<u64>)]
    pub offset: Option<String>,
}

/// List crash groups with their investigation and status, most recently seen first.
#[utoipa::path(
    get,
    path = "/v1/crashes",
    tag = super::CRASHES,
    params(CrashListQuery),
    responses(
        (status = 200, description = "The crash groups", body = Vec<CrashGroupView>),
        (status = 400, description = "Unknown status, bad limit or offset, or an unknown parameter", body = ErrorBody),
    ),
)]
pub async fn list_crashes(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<CrashListQuery>,
) -> Result<Json<Vec<CrashGroupView>>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(CrashGroupStatus::parse(text.trim()).ok_or_else(|| {
            let known: Vec<&str> = CrashGroupStatus::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::bad_parameter(
                "status",
                format!(
                    "unknown crash group status {text:?}; expected one of {}",
                    known.join(", ")
                ),
            )
        })?),
    };
    let offset = match query.offset.as_deref() {
        None => 0,
        Some(text) => text.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_parameter(
                "offset",
                format!("offset must be a whole number, not {text:?}"),
            )
        })?,
    };
    let filter = store::CrashGroupFilter {
        service: query.service,
        status,
        limit: list_limit(query.limit.as_deref())?,
        offset,
    };
    let groups = state.store.crash_groups(&filter).await?;
    Ok(Json(groups.into_iter().map(CrashGroupView::from).collect()))
}

/// Read one crash group, by its id or by fingerprint (the most recently seen group of it).
#[utoipa::path(
    get,
    path = "/v1/crashes/{fingerprint}",
    tag = super::CRASHES,
    params(("fingerprint" = String, Path, description = "A fingerprint hash or a crash group id")),
    responses(
        (status = 200, description = "The crash group", body = CrashGroupDetail),
        (status = 404, description = "No such crash group", body = ErrorBody),
    ),
)]
pub async fn get_crash(
    State(state): State<SharedState>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<CrashGroupDetail>, ApiError> {
    let record = state
        .store
        .crash_group(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("crash group {key} not found")))?;
    let occurrences = state
        .store
        .crash_occurrences(&record.group.id, SHOWN_OCCURRENCES)
        .await?;
    Ok(Json(CrashGroupDetail {
        group: record.into(),
        occurrences: occurrences.into_iter().map(OccurrenceView::from).collect(),
    }))
}
