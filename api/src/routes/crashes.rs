//! `/v1/crashes`: take a crash report (a plain record or a Sentry-style event), fingerprint it,
//! store it, and deliver it to the `CrashInvestigation` workflow of its group; list and read
//! groups.
//!
//! The ingestion path is kept short on purpose (the issue asks for 500 requests per second on
//! two cores): parse, fingerprint (pure), read the playbook file, and one row in the store's
//! outbox, written in a transaction shared with every crash that arrived meanwhile (group
//! commit). The request is answered once that transaction committed. A background sender
//! (one per API state, started with the router) takes the outbox rows, coalesces each group's
//! into batches of at most [`MAX_BATCH`], and delivers each batch with one signal-with-start
//! (the `occurrences` signal; the batch id is the request id, so a re-sent batch is
//! signalled once); rows are deleted only after their signal succeeded, and a restart sends
//! what was left. The workflow does the counting, the store writes, the rate limit and the
//! investigation. Bad input is refused before anything is stored, so a 4xx leaves no trace.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use temporalio_client::tonic;
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads, WorkflowType};
use temporalio_common::protos::temporal::api::enums::v1::{
    TaskQueueKind, WorkflowIdConflictPolicy,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::SignalWithStartWorkflowExecutionRequest;
use tokio::sync::{Notify, mpsc, oneshot};
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
    let new = take(&state, input, occurrence).await?;
    if new {
        tracing::info!(group = %accepted.group_id, "new crash group");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(CrashAccepted { new, ..accepted }),
    )
        .into_response())
}

/// Where crashes are investigated when the request does not say (`?repo=`, `?agent=`):
/// the `[crashes]` section of the configuration, by service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSettings {
    /// The agent program of services whose entry names none.
    #[serde(default)]
    pub agent: Option<String>,
    /// One entry per service (`[[crashes.services]]`).
    #[serde(default)]
    pub services: Vec<CrashService>,
}

impl CrashSettings {
    /// The entry of a service (names match exactly).
    pub fn service(&self, name: &str) -> Option<&CrashService> {
        self.services.iter().find(|s| s.service == name)
    }

    /// Refuses entries that cannot be used: an empty service or repository, a service named
    /// twice.
    pub fn check(&self) -> Result<(), String> {
        for (i, entry) in self.services.iter().enumerate() {
            if entry.service.trim().is_empty() || entry.repo.trim().is_empty() {
                return Err(format!(
                    "crashes.services[{i}]: service and repo must not be empty"
                ));
            }
            if self.services[..i]
                .iter()
                .any(|e| e.service == entry.service)
            {
                return Err(format!(
                    "crashes.services: service {:?} is mapped twice",
                    entry.service
                ));
            }
        }
        Ok(())
    }
}

/// Where one service's crashes are investigated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashService {
    /// The crash's service, as the group shows it.
    pub service: String,
    /// Git URL or path of the repository investigations work on.
    pub repo: String,
    /// The branch investigations start from; default `main`.
    #[serde(default)]
    pub base: Option<String>,
    /// The agent program; default `[crashes] agent`.
    #[serde(default)]
    pub agent: Option<String>,
    /// The playbook investigations follow; default `investigate-crash`.
    #[serde(default)]
    pub playbook: Option<String>,
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

/// Occurrences in one signal, at most: well inside Temporal's payload limit (2 MB).
const MAX_BATCH: usize = 100;
/// Crashes written in one transaction, at most.
const MAX_WRITE: usize = 512;
/// Outbox rows one sender pass claims, at most.
const CLAIM_LIMIT: u64 = 5000;
/// How long a pass holds the rows it claimed: a sender that dies leaves them to another
/// (or to itself after a restart) this much later.
const LEASE_MS: i64 = 30_000;
/// Groups sent to at once within a pass.
const SEND_CONCURRENCY: usize = 32;
/// Passes of the sender start at most this often while there is work.
const PASS_INTERVAL: Duration = Duration::from_millis(500);
/// How often the sender looks for rows it was not woken for (another replica's, a restart's).
const POLL: Duration = Duration::from_secs(1);
/// The pause after a pass that could not send everything.
const RETRY: Duration = Duration::from_millis(500);
/// One signal-with-start, at most (well inside the lease).
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Groups whose stored input the intake remembers; past this it forgets them all.
const KNOWN_GROUPS: usize = 10_000;

/// A crash waiting for the intake's next transaction.
struct Pending {
    input: CrashInvestigationInput,
    occurrence: Occurrence,
    reply: oneshot::Sender<Result<bool, ApiError>>,
}

/// One API state's intake: the queue of its writer, and the wake-up of its sender.
struct Intake {
    state: Weak<crate::ApiState>,
    queue: mpsc::Sender<Pending>,
}

static INTAKES: LazyLock<Mutex<Vec<Arc<Intake>>>> = LazyLock::new(Mutex::default);

/// Starts the crash intake of an API state: its writer (the group commit of `POST
/// /v1/crashes`) and its outbox sender, which also delivers what an earlier process left
/// undelivered. Without a Tokio runtime it starts with the first crash instead.
pub(crate) fn start_intake(state: &SharedState) {
    if tokio::runtime::Handle::try_current().is_ok() {
        intake_of(state);
    }
}

fn intake_of(state: &SharedState) -> Arc<Intake> {
    let mut intakes = INTAKES.lock().unwrap_or_else(|e| e.into_inner());
    // A dropped state's writer ends with its queue.
    intakes.retain(|i| i.state.strong_count() > 0);
    if let Some(intake) = intakes
        .iter()
        .find(|i| std::ptr::eq(i.state.as_ptr(), Arc::as_ptr(state)))
    {
        return intake.clone();
    }
    let (queue, pending) = mpsc::channel(4 * MAX_WRITE);
    let wake = Arc::new(Notify::new());
    tokio::spawn(write_loop(state.store.clone(), pending, wake.clone()));
    tokio::spawn(send_loop(Arc::downgrade(state), wake));
    let intake = Arc::new(Intake {
        state: Arc::downgrade(state),
        queue,
    });
    intakes.push(intake.clone());
    intake
}

fn store_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the crash was not stored; send it again",
    )
}

/// Takes the crash durably (an outbox row; the group's input when it is new or changed) and
/// answers whether it started a new group. Its delivery to the workflow is the sender's.
async fn take(
    state: &SharedState,
    input: CrashInvestigationInput,
    occurrence: Occurrence,
) -> Result<bool, ApiError> {
    let intake = intake_of(state);
    let (reply, answer) = oneshot::channel();
    intake
        .queue
        .send(Pending {
            input,
            occurrence,
            reply,
        })
        .await
        .map_err(|_| store_unavailable())?;
    answer.await.unwrap_or_else(|_| Err(store_unavailable()))
}

/// Group commit: every crash that arrived while the previous transaction ran goes into the
/// next one, and each request is answered when the transaction holding its crash committed.
async fn write_loop(store: store::Store, mut queue: mpsc::Receiver<Pending>, wake: Arc<Notify>) {
    // The input each group is stored with, as far as this process wrote it.
    let mut known: HashMap<String, CrashInvestigationInput> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_WRITE);
    while queue.recv_many(&mut batch, MAX_WRITE).await > 0 {
        let crashes: Vec<store::TakenCrash<'_>> = batch
            .iter()
            .map(|p: &Pending| store::TakenCrash {
                group_id: &p.input.group_id,
                input: (known.get(&p.input.group_id) != Some(&p.input)).then_some(&p.input),
                occurrence: &p.occurrence,
            })
            .collect();
        let started = std::time::Instant::now();
        let result = store.take_crashes(&crashes).await;
        drop(crashes);
        tracing::debug!(
            crashes = batch.len(),
            took_us = started.elapsed().as_micros() as u64,
            "crash intake commit"
        );
        match result {
            Ok(new) => {
                if known.len() > KNOWN_GROUPS {
                    known.clear();
                }
                for (pending, new) in batch.drain(..).zip(new) {
                    if known.get(&pending.input.group_id) != Some(&pending.input) {
                        known.insert(pending.input.group_id.clone(), pending.input);
                    }
                    let _ = pending.reply.send(Ok(new));
                }
                wake.notify_one();
            }
            Err(err) => {
                tracing::error!(error = %err, crashes = batch.len(), "cannot store crashes");
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(store_unavailable()));
                }
            }
        }
    }
}

/// Delivers the outbox to the workflows, pass after pass, for as long as the API state lives.
async fn send_loop(state: Weak<crate::ApiState>, wake: Arc<Notify>) {
    let owner = uuid::Uuid::new_v4().to_string();
    loop {
        let Some(live) = state.upgrade() else {
            return;
        };
        let started = tokio::time::Instant::now();
        let outcome = send_pass(&live, &owner).await;
        drop(live);
        match outcome {
            Ok(Pass::Empty) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            // More may have arrived while this pass sent: go again, but not more often than
            // every PASS_INTERVAL, so that a burst makes big batches (few signals, few
            // workflow tasks) instead of competing with the intake for the CPU and the
            // database.
            Ok(Pass::Sent) => tokio::time::sleep_until(started + PASS_INTERVAL).await,
            Ok(Pass::Failed) => tokio::time::sleep(RETRY).await,
            Err(err) => {
                tracing::warn!(error = %err, "crash outbox: cannot read the store");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// A batch of one group's outbox rows: its id (Temporal's request id) and the rows.
type Batch = (String, Vec<store::OutboxOccurrence>);

enum Pass {
    Empty,
    Sent,
    Failed,
}

/// One pass: claim what waits, fix each new batch (per group, in order, at most
/// [`MAX_BATCH`]), send each group's batches in order (groups at once), delete what was
/// delivered and release the rest.
async fn send_pass(state: &crate::ApiState, owner: &str) -> Result<Pass, store::StoreError> {
    let started = std::time::Instant::now();
    let now = Utc::now().timestamp_millis();
    let rows = state
        .store
        .claim_crash_outbox(owner, now, now + LEASE_MS, CLAIM_LIMIT)
        .await?;
    if rows.is_empty() {
        return Ok(Pass::Empty);
    }
    let claimed = rows.len();
    let mut groups: Vec<(String, Vec<store::OutboxOccurrence>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(g, _)| *g == row.group_id) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((row.group_id.clone(), vec![row])),
        }
    }
    let mut assigned = Vec::new();
    let mut batches: Vec<(String, Vec<Batch>)> = Vec::new();
    for (group, rows) in groups {
        let mut out: Vec<Batch> = Vec::new();
        let mut fresh: Vec<store::OutboxOccurrence> = Vec::new();
        for row in rows {
            match &row.batch_id {
                Some(id) => match out.iter_mut().find(|(b, _)| b == id) {
                    Some((_, rows)) => rows.push(row),
                    None => out.push((id.clone(), vec![row])),
                },
                None => fresh.push(row),
            }
        }
        for chunk in fresh.chunks(MAX_BATCH) {
            let id = uuid::Uuid::new_v4().to_string();
            assigned.push((id.clone(), chunk.iter().map(|r| r.id).collect::<Vec<_>>()));
            out.push((id, chunk.to_vec()));
        }
        batches.push((group, out));
    }
    state.store.assign_crash_batches(&assigned).await?;
    let group_ids: Vec<String> = batches.iter().map(|(g, _)| g.clone()).collect();
    let inputs: HashMap<String, CrashInvestigationInput> = state
        .store
        .crash_intake_inputs(&group_ids)
        .await?
        .into_iter()
        .collect();

    let delivered = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    let signals = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(batches)
        .for_each_concurrent(SEND_CONCURRENCY, |(group, out)| {
            let (inputs, delivered, failed, signals) = (&inputs, &delivered, &failed, &signals);
            async move {
                let ids = |rows: &[store::OutboxOccurrence]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
                let Some(input) = inputs.get(&group) else {
                    tracing::error!(group = %group, "crash outbox: no stored input for the group; dropping its occurrences");
                    for (_, rows) in &out {
                        lock(delivered).extend(ids(rows));
                    }
                    return;
                };
                let mut out = out.into_iter();
                for (batch, rows) in out.by_ref() {
                    let occurrences: Vec<&Occurrence> = rows.iter().map(|r| &r.occurrence).collect();
                    signals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    match signal_with_start(state, input, &batch, &occurrences).await {
                        Ok(started) => {
                            if started {
                                tracing::debug!(group = %group, "started the crash group's workflow");
                            }
                            lock(delivered).extend(ids(&rows));
                        }
                        Err(err) => {
                            tracing::warn!(group = %group, error = %err.message, "crash outbox: cannot deliver; will retry");
                            lock(failed).extend(ids(&rows));
                            break;
                        }
                    }
                }
                // A group's batches go in order: after a failure, the rest wait too.
                for (_, rows) in out {
                    lock(failed).extend(ids(&rows));
                }
            }
        })
        .await;
    let delivered = delivered.into_inner().unwrap_or_else(|e| e.into_inner());
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    state.store.crash_outbox_delivered(&delivered).await?;
    state.store.release_crash_outbox(&failed).await?;
    tracing::debug!(
        claimed,
        groups = group_ids.len(),
        signals = signals.into_inner(),
        delivered = delivered.len(),
        failed = failed.len(),
        took_ms = started.elapsed().as_millis() as u64,
        "crash outbox pass"
    );
    Ok(if failed.is_empty() {
        Pass::Sent
    } else {
        Pass::Failed
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One signal-with-start of a batch, through the raw service: the typed client does not say
/// whether the call started the workflow. The batch id is the request id, so a batch sent
/// again (after a failure or a restart) is signalled once.
async fn signal_with_start(
    state: &crate::ApiState,
    input: &CrashInvestigationInput,
    batch: &str,
    occurrences: &[&Occurrence],
) -> Result<bool, ApiError> {
    // Investigations quote a group's first crash only: later ones travel without their text.
    let occurrences: Vec<Occurrence> = occurrences
        .iter()
        .enumerate()
        .map(|(i, o)| Occurrence {
            excerpt: if i == 0 {
                o.excerpt.clone()
            } else {
                String::new()
            },
            ..(*o).clone()
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
        request_id: batch.to_string(),
        workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
        signal_name: OCCURRENCES_SIGNAL.to_string(),
        signal_input: Some(Payloads {
            payloads: vec![json_payload(&occurrences).map_err(encode)?],
        }),
        ..Default::default()
    };
    let mut request = tonic::Request::new(request);
    request.set_timeout(SIGNAL_TIMEOUT);
    let mut service = state.client.connection().workflow_service();
    match service.signal_with_start_workflow_execution(request).await {
        Ok(response) => Ok(response.into_inner().started),
        Err(status) => Err(crate::temporal::unavailable(
            &format!("cannot deliver crashes to {}", input.group_id),
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
