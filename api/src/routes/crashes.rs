//! `/v1/crashes`: take a crash report (a plain record or a Sentry-style event), fingerprint it,
//! and signal-with-start the `CrashInvestigation` workflow of its group; list and read groups.
//!
//! The ingestion path is kept short on purpose (the issue asks for 500 requests per second on
//! two cores): parse, fingerprint (pure), read the playbook file, one signal-with-start (shared
//! by the requests of a group that arrive while its last one is in flight). The
//! workflow does the counting, the store writes, the rate limit and the investigation. Bad
//! input is refused before anything is sent, so a 4xx leaves no trace.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use temporalio_client::tonic;
use tokio::sync::oneshot;
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads, WorkflowType};
use temporalio_common::protos::temporal::api::enums::v1::{
    TaskQueueKind, WorkflowIdConflictPolicy,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::SignalWithStartWorkflowExecutionRequest;
use utoipa::{IntoParams, ToSchema};
use workflows::crash::{CrashInput, CrashInputError, CrashReport, MAX_TEXT_BYTES, fingerprint};
use workflows::crash_contracts::{CrashGroupStatus, Occurrence, RecordedOccurrence};
use workflows::crash_investigation::intake::{group_id, occurrence, service_of};
use workflows::crash_investigation::{
    CRASH_INVESTIGATION_WORKFLOW, CrashInvestigationInput, CrashLimits, InvestigationTarget,
    OCCURRENCES_SIGNAL,
};
use workflows::{AgentSpec, TASK_QUEUE, TaskStatus};

use crate::admission::list_limit;
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
/// with names the repository and the agent, as a `POST /v1/tasks` body would.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IngestQuery {
    /// The service the crash belongs to; default: the record's `service`, else its `service`
    /// tag, else `unknown`.
    pub service: Option<String>,
    /// Git URL or path of the repository investigations work on.
    pub repo: Option<String>,
    /// The branch investigations start from; default `main`.
    pub base: Option<String>,
    /// The agent program investigations run (inside the sandbox).
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
    /// True when this crash started a new group.
    pub new: bool,
}

/// Take a crash report.
///
/// Accepts Errand's plain crash record (`service`, `environment`, `release`, `message`,
/// `stacktrace` or `frames`, `timestamp`, `tags`) or a Sentry-style event (`exception.values`
/// with stack frames). The crash is fingerprinted (line numbers, addresses, ids, timestamps
/// and machine paths do not count) and delivered to its group's `CrashInvestigation`
/// workflow, which counts it and starts at most one investigation per group (rate-limited per
/// service). Crash text is data: investigations quote it, never follow it.
#[utoipa::path(
    post,
    path = "/v1/crashes",
    tag = super::CRASHES,
    params(IngestQuery),
    request_body(content = serde_json::Value, description = "A crash record or a Sentry-style event", content_type = "application/json"),
    responses(
        (status = 202, description = "Taken: delivered to the group's workflow", body = CrashAccepted),
        (status = 400, description = "Malformed JSON, or a missing or unknown parameter", body = ErrorBody),
        (status = 413, description = "The body or the crash text is too large", body = ErrorBody),
        (status = 422, description = "Not a crash record or Sentry event, an empty crash, or a bad service", body = ErrorBody),
        (status = 503, description = "Temporal did not take the crash", body = ErrorBody),
    ),
)]
pub async fn ingest_crash(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<IngestQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    if body.len() > MAX_CRASH_BODY_BYTES {
        return Err(too_large(body.len()));
    }
    let repo = required(query.repo.as_deref(), "repo")?;
    let agent = required(query.agent.as_deref(), "agent")?;
    let base = query.base.as_deref().map(str::trim).unwrap_or("main");
    if base.is_empty() || base.starts_with('-') || base.chars().any(char::is_control) {
        return Err(ApiError::bad_parameter("base", format!("not a branch name: {base:?}")));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string())
    })?;
    let input = CrashInput::from_value(value).map_err(crash_error)?;
    let report = CrashReport::from_input(&input).map_err(crash_error)?;
    let print = fingerprint(&report);
    let service = service_of(&report, query.service.as_deref())
        .map_err(|e| ApiError::invalid("service", e.to_string()))?;
    let group = group_id(&service, &print.hash);
    let occurrence = occurrence(&input, &report, Utc::now().timestamp_millis());
    let playbook_content = playbook_files::read(&state.playbooks_dir, INVESTIGATE_PLAYBOOK).await?;

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
            repo: repo.to_string(),
            base: base.to_string(),
            agent: AgentSpec::Command {
                command: vec![agent.to_string()],
            },
            playbook_name: INVESTIGATE_PLAYBOOK.to_string(),
            playbook_content,
            requester: CRASH_REQUESTER.to_string(),
        },
        limits: CrashLimits::default(),
        carried: None,
    };
    let new = deliver(&state, input, occurrence).await?;
    if new {
        tracing::info!(group = %accepted.group_id, "new crash group");
    }
    Ok((StatusCode::ACCEPTED, Json(CrashAccepted { new, ..accepted })).into_response())
}

/// Occurrences of one group waiting for the delivery in flight to finish, and the requests
/// waiting for them.
#[derive(Default)]
struct Batch {
    occurrences: Vec<Occurrence>,
    waiters: Vec<oneshot::Sender<Result<bool, ApiError>>>,
}

/// Occurrences in one signal, at most: well inside Temporal's payload limit (2 MB).
const MAX_BATCH: usize = 100;

/// Groups with a delivery in flight (by API state and group id), and their next batch.
type InFlight = HashMap<(usize, String), Batch>;
static IN_FLIGHT: LazyLock<Mutex<InFlight>> = LazyLock::new(Mutex::default);

/// Delivers the occurrence to its group's workflow and answers whether it started the group.
///
/// Group commit: while a delivery to a group is in flight, its next occurrences gather into
/// one batch that goes out as one signal when it returns. Each request is still answered only
/// once Temporal has its occurrence, but a hot crash costs Temporal one call per round trip
/// instead of one per request: that is what makes de-duplication cheap.
async fn deliver(
    state: &SharedState,
    input: CrashInvestigationInput,
    occurrence: Occurrence,
) -> Result<bool, ApiError> {
    let key = (Arc::as_ptr(state) as usize, input.group_id.clone());
    let (tx, rx) = oneshot::channel();
    let first = {
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        match in_flight.get_mut(&key) {
            Some(next) => {
                next.occurrences.push(occurrence);
                next.waiters.push(tx);
                None
            }
            None => {
                in_flight.insert(key.clone(), Batch::default());
                Some(Batch {
                    occurrences: vec![occurrence],
                    waiters: vec![tx],
                })
            }
        }
    };
    if let Some(mut batch) = first {
        let state = state.clone();
        // Its own task: the request that opened the delivery is answered with its batch, not
        // after every batch that queues behind it.
        tokio::spawn(async move {
            loop {
                let result = signal_with_start(&state, &input, &batch.occurrences).await;
                for (i, waiter) in batch.waiters.drain(..).enumerate() {
                    let _ = waiter.send(result.clone().map(|started| started && i == 0));
                }
                let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
                let Some(next) = in_flight.get_mut(&key) else {
                    return;
                };
                if next.occurrences.is_empty() {
                    in_flight.remove(&key);
                    return;
                }
                let take = next.occurrences.len().min(MAX_BATCH);
                batch = Batch {
                    occurrences: next.occurrences.drain(..take).collect(),
                    waiters: next.waiters.drain(..take).collect(),
                };
            }
        });
    }
    rx.await.unwrap_or_else(|_| {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporal_unavailable",
            "the crash was not delivered; send it again",
        ))
    })
}

/// One signal-with-start, through the raw service: the typed client does not say whether the
/// call started the workflow, and `new` in the answer is that.
async fn signal_with_start(
    state: &crate::ApiState,
    input: &CrashInvestigationInput,
    occurrences: &[Occurrence],
) -> Result<bool, ApiError> {
    // Investigations quote a group's first crash only: later ones travel without their text.
    let occurrences: Vec<Occurrence> = occurrences
        .iter()
        .enumerate()
        .map(|(i, o)| Occurrence {
            excerpt: if i == 0 { o.excerpt.clone() } else { String::new() },
            ..o.clone()
        })
        .collect();
    let encode = |e: serde_json::Error| ApiError::internal("cannot encode the crash", &e);
    let request = SignalWithStartWorkflowExecutionRequest {
        namespace: state.namespace.clone(),
        workflow_id: input.group_id.clone(),
        workflow_type: Some(WorkflowType {
            name: CRASH_INVESTIGATION_WORKFLOW.to_string(),
        }),
        task_queue: Some(TaskQueue {
            name: TASK_QUEUE.to_string(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        input: Some(Payloads {
            payloads: vec![json_payload(input).map_err(encode)?],
        }),
        identity: state.client.connection().identity().to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        signal_name: OCCURRENCES_SIGNAL.to_string(),
        signal_input: Some(Payloads {
            payloads: vec![json_payload(&occurrences).map_err(encode)?],
        }),
        ..Default::default()
    };
    let mut service = state.client.connection().workflow_service();
    match service
        .signal_with_start_workflow_execution(tonic::Request::new(request))
        .await
    {
        Ok(response) => Ok(response.into_inner().started),
        Err(status) => Err(crate::temporal::unavailable(
            &format!("cannot deliver the crash to {}", input.group_id),
            &status,
        )),
    }
}

/// A payload as the SDK's default converter writes it (`json/plain`).
fn json_payload<T: Serialize>(value: &T) -> Result<Payload, serde_json::Error> {
    Ok(Payload {
        metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(value)?,
        ..Default::default()
    })
}

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, ApiError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() && !v.chars().any(char::is_control) => Ok(v),
        _ => Err(ApiError::bad_parameter(
            name,
            format!("the query parameter {name} is required: where crashes of this sender are investigated"),
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
        CrashInputError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            message,
        )
        .with_field("stacktrace"),
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
                format!("unknown crash group status {text:?}; expected one of {}", known.join(", ")),
            )
        })?),
    };
    let offset = match query.offset.as_deref() {
        None => 0,
        Some(text) => text.trim().parse::<u64>().map_err(|_| {
            ApiError::bad_parameter("offset", format!("offset must be a whole number, not {text:?}"))
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
