//! What the API asks of Temporal about schedules: create or update one (idempotent), describe,
//! list, pause, resume, trigger, delete. Every schedule fires a `ScheduledTask` workflow.

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use temporalio_client::schedules::{
    CreateScheduleOptions, DeleteScheduleOptions, ListSchedulesOptions, ScheduleAction,
    ScheduleDescription, ScheduleDescriptionAction, ScheduleError, ScheduleOverlapPolicy,
    ScheduleSpec, TriggerScheduleOptions,
};
use temporalio_client::tonic::Code;
use temporalio_client::{Client, RpcOptions};
use workflows::playbook::Cron;
use workflows::scheduled_task::{ScheduledTaskInput, fire_workflow_prefix};
use workflows::{SCHEDULED_TASK_WORKFLOW, ScheduledTaskWorkflow, TASK_QUEUE};

use crate::error::{ApiError, chain};

/// Fires missed while the server was down (or the schedule was paused) are started late if
/// they are at most this old; older ones are skipped, so an outage never causes a burst.
pub const CATCHUP_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A schedule as Errand creates it.
#[derive(Debug, Clone)]
pub struct Definition {
    pub id: String,
    pub cron: Cron,
    pub timezone: String,
    pub input: ScheduledTaskInput,
    pub paused: bool,
}

/// Whether [`upsert`] created the schedule or updated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// Creates the schedule, or brings an existing one to the definition (spec, action, overlap
/// policy, catch-up window); its paused state is left alone on update.
pub async fn upsert(client: &Client, def: &Definition) -> Result<Upserted, ApiError> {
    let options = CreateScheduleOptions::builder()
        .action(action(def.input.clone()))
        .spec(spec(def))
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .paused(def.paused)
        .note(if def.paused { "created paused" } else { "" })
        .build();
    let handle = client.get_schedule_handle(def.id.clone());
    let outcome = match client.create_schedule(def.id.clone(), options).await {
        Ok(_) => Upserted::Created,
        Err(ScheduleError::Rpc(status)) if status.code() == Code::AlreadyExists => {
            Upserted::Updated
        }
        Err(err) => return Err(schedule_error(&def.id, "create", err)),
    };
    // The create call has no catch-up window; both paths set it (and the rest) here.
    let (input, spec) = (def.input.clone(), spec(def));
    handle
        .update(
            move |u| {
                u.set_spec(spec)
                    .set_action(action(input))
                    .set_overlap_policy(ScheduleOverlapPolicy::Skip)
                    .set_catchup_window(CATCHUP_WINDOW);
            },
            RpcOptions::default(),
        )
        .await
        .map_err(|err| schedule_error(&def.id, "update", err))?;
    Ok(outcome)
}

fn spec(def: &Definition) -> ScheduleSpec {
    ScheduleSpec::builder()
        .cron_strings(vec![def.cron.as_str().to_string()])
        .timezone_name(def.timezone.clone())
        .build()
}

fn action(input: ScheduledTaskInput) -> ScheduleAction {
    let prefix = fire_workflow_prefix(&input.schedule_id);
    ScheduleAction::start_workflow(ScheduledTaskWorkflow::run, input, TASK_QUEUE, prefix)
}

/// A schedule of Errand's, described; 404 when there is none by that id.
pub async fn describe(
    client: &Client,
    id: &str,
) -> Result<(ScheduleDescription, ScheduledTaskInput), ApiError> {
    let description = client
        .get_schedule_handle(id)
        .describe(RpcOptions::default())
        .await
        .map_err(|err| schedule_error(id, "describe", err))?;
    let input = errand_input(&description)
        .await
        .ok_or_else(|| not_found(id))?;
    Ok((description, input))
}

/// The `ScheduledTask` input a schedule fires with; none for schedules that are not Errand's.
pub async fn errand_input(description: &ScheduleDescription) -> Option<ScheduledTaskInput> {
    let ScheduleDescriptionAction::StartWorkflow(action) = description.action() else {
        return None;
    };
    if action.workflow_type() != SCHEDULED_TASK_WORKFLOW {
        return None;
    }
    action.args::<ScheduledTaskInput>().await.ok().flatten()
}

/// The ids of Errand's schedules (those firing `ScheduledTask`), sorted.
pub async fn list_ids(client: &Client) -> Result<Vec<String>, ApiError> {
    let mut stream = client.list_schedules(ListSchedulesOptions::default());
    let mut ids = Vec::new();
    while let Some(summary) = stream.next().await {
        let summary = summary.map_err(|err| schedule_error("*", "list", err))?;
        if summary.workflow_type() == Some(SCHEDULED_TASK_WORKFLOW) {
            ids.push(summary.schedule_id().to_string());
        }
    }
    ids.sort();
    Ok(ids)
}

pub async fn pause(client: &Client, id: &str, note: &str) -> Result<(), ApiError> {
    client
        .get_schedule_handle(id)
        .pause(Some(note), Default::default())
        .await
        .map_err(|err| schedule_error(id, "pause", err))
}

/// Unpauses, and restarts the count of failures towards the auto-pause from `now`: the
/// boundary travels in the action's input, so it is as durable as the schedule itself.
pub async fn resume(
    client: &Client,
    id: &str,
    mut input: ScheduledTaskInput,
    now: DateTime<Utc>,
    note: String,
) -> Result<(), ApiError> {
    input.count_failures_after = Some(rfc3339(now));
    client
        .get_schedule_handle(id)
        .update(
            move |u| {
                u.set_action(action(input)).set_paused(false).set_note(note);
            },
            RpcOptions::default(),
        )
        .await
        .map_err(|err| schedule_error(id, "resume", err))
}

/// Fires now, under the schedule's own overlap policy (skip: not beside a running fire).
pub async fn trigger(client: &Client, id: &str) -> Result<(), ApiError> {
    client
        .get_schedule_handle(id)
        .trigger(
            ScheduleOverlapPolicy::Skip,
            TriggerScheduleOptions::default(),
        )
        .await
        .map_err(|err| schedule_error(id, "trigger", err))
}

pub async fn delete(client: &Client, id: &str) -> Result<(), ApiError> {
    client
        .get_schedule_handle(id)
        .delete(DeleteScheduleOptions::default())
        .await
        .map_err(|err| schedule_error(id, "delete", err))
}

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn system_rfc3339(at: SystemTime) -> String {
    rfc3339(DateTime::<Utc>::from(at))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("schedule {id} not found")).with_field("id")
}

/// Temporal's answer, in the API's contract: unknown ids are 404, refused arguments (a time
/// zone Temporal does not know, say) 422, anything else 503.
fn schedule_error(id: &str, what: &str, err: ScheduleError) -> ApiError {
    match &err {
        ScheduleError::Rpc(status) if status.code() == Code::NotFound => not_found(id),
        ScheduleError::Rpc(status) if status.code() == Code::InvalidArgument => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_schedule",
            format!("Temporal refused schedule {id}: {}", status.message()),
        ),
        _ => {
            let cause = chain(&err);
            tracing::warn!(schedule = id, error = %cause, "cannot {what} the schedule");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporal_unavailable",
                format!("cannot {what} schedule {id}: {cause}"),
            )
        }
    }
}
