//! The outbox sender: batches of stored crashes delivered to their groups' workflows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use chrono::Utc;
use futures::StreamExt;
use serde::Serialize;
use temporalio_client::tonic;
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads, WorkflowType};
use temporalio_common::protos::temporal::api::enums::v1::{
    TaskQueueKind, WorkflowIdConflictPolicy,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::SignalWithStartWorkflowExecutionRequest;
use tokio::sync::Notify;
use workflows::TASK_QUEUE;
use workflows::crash_contracts::Occurrence;
use workflows::crash_investigation::{
    CRASH_INVESTIGATION_WORKFLOW, CrashInvestigationInput, OCCURRENCES_SIGNAL,
};

use super::{
    CLAIM_LIMIT, LEASE_MS, MAX_BATCH, PASS_INTERVAL, POLL, RETRY, SEND_CONCURRENCY, SIGNAL_TIMEOUT,
    lock,
};
use crate::error::ApiError;

/// Delivers the outbox to the workflows, pass after pass, for as long as the API state lives.
pub(super) async fn send_loop(state: Weak<crate::ApiState>, wake: Arc<Notify>) {
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

/// One signal-with-start of a batch, through the raw service: the typed client does not say
/// whether the call started the workflow. The batch id is the request id, so a batch sent
/// again (after a failure or a restart) is signalled once; and it rides on the batch's first
/// occurrence, so the workflow also drops a batch it took in an earlier run.
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
            // The workflow remembers batches, so a batch sent again after the group's workflow
            // continued as new (past Temporal's request-id de-duplication) is not counted twice.
            batch: (i == 0).then(|| batch.to_string()),
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
