//! Cron schedules on Temporal Schedules: a playbook's `schedules` (synced when the API starts:
//! created or updated, and deleted once the playbook drops them or is deleted) and ad-hoc ones
//! (`POST /v1/schedules`). Each fire starts a `ScheduledTask` workflow, which
//! names the task after the fire and runs it as a child `AgentTask` (its `admit` activity
//! records the task); [`watcher`] pauses a schedule after N failed or incomplete runs in a row.
//!
//! State lives in Temporal only (the schedule, its action's input, its note) and in the task
//! rows of the store, so every API replica computes the same and a restart loses nothing.

pub mod cron;
pub mod dto;
pub mod temporal;
pub mod watcher;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use store::Store;
use temporalio_client::Client;
use workflows::TaskStatus;
use workflows::playbook::{Playbook, Schedule};
use workflows::scheduled_task::{MAX_SCHEDULE_ID_LEN, ScheduledTaskInput, fire_task_id};

use crate::admission::{playbook_error, playbook_task_spec};
use crate::dto::PlaybookRunRequest;
use crate::error::ApiError;
use crate::playbook_files;
use crate::repo_check::{REPO_CHECK_TIMEOUT, check_remote_branch};
use dto::{ScheduleRequest, ScheduleRun, ScheduleView};
use temporal::{Definition, rfc3339, system_rfc3339};

/// The most consecutive failures a schedule may wait for: the watcher reads them from the
/// schedule's recent fires, of which Temporal keeps the last 10.
pub const MAX_PAUSE_AFTER_FAILURES: u32 = 10;

/// `[a-z0-9-]`, 1 to [`MAX_SCHEDULE_ID_LEN`]: the id is part of task ids and branch names.
pub fn check_id(id: &str) -> Result<(), ApiError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_SCHEDULE_ID_LEN
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_parameter(
            "id",
            format!(
                "schedule id {id:?} is not valid: expected 1 to {MAX_SCHEDULE_ID_LEN} of a-z, 0-9 and '-'"
            ),
        ))
    }
}

/// The definition of an ad-hoc schedule: the playbook resolved now, exactly as a playbook run
/// would be (the same admission code), pinned into the schedule's action.
pub async fn from_request(
    playbooks_dir: &Path,
    request: ScheduleRequest,
) -> Result<Definition, ApiError> {
    check_id(&request.id).map_err(|e| ApiError::invalid("id", e.message))?;
    if is_playbook_schedule_id(&request.id, &request.playbook) {
        return Err(ApiError::invalid(
            "id",
            format!(
                "schedule id {:?} is reserved for the schedules a playbook declares ({}-<n>); choose another",
                request.id, request.playbook
            ),
        ));
    }
    let cron = cron::check(&request.cron).map_err(|e| ApiError::invalid("cron", e))?;
    let timezone = request.timezone.unwrap_or_else(|| "UTC".to_string());
    let zone_ok = Schedule {
        cron: cron.clone(),
        timezone: timezone.clone(),
        inputs: Default::default(),
        repo: request.repo.clone(),
        pause_after_failures: None,
    }
    .problems()
    .into_iter()
    .find(|(field, _)| field == "timezone");
    if let Some((_, message)) = zone_ok {
        return Err(ApiError::invalid("timezone", message));
    }
    let pause_after = pause_after_failures(request.pause_after_failures)?;
    let run = PlaybookRunRequest {
        repo: request.repo,
        base: request.base,
        inputs: request.inputs,
        requester: request.requester,
        agent: request.agent,
        max_rounds: None,
        time_budget_secs: None,
        review_timeout_secs: None,
        max_dollars: None,
        max_tokens: None,
    };
    let input = scheduled_input(playbooks_dir, &request.playbook, &request.id, run).await?;
    Ok(Definition {
        id: request.id,
        input: ScheduledTaskInput {
            cron: cron.as_str().to_string(),
            timezone: timezone.clone(),
            pause_after_failures: pause_after,
            ..input
        },
        cron,
        timezone,
        paused: request.paused,
    })
}

fn pause_after_failures(n: Option<u32>) -> Result<Option<u32>, ApiError> {
    match n {
        Some(n) if !(1..=MAX_PAUSE_AFTER_FAILURES).contains(&n) => Err(ApiError::invalid(
            "pause_after_failures",
            format!(
                "pause_after_failures must be between 1 and {MAX_PAUSE_AFTER_FAILURES}, not {n}"
            ),
        )),
        n => Ok(n),
    }
}

/// The fire input of a schedule of `playbook`: its spec resolved by the playbook run's code,
/// with a placeholder id each fire replaces, and the repository checked now.
async fn scheduled_input(
    playbooks_dir: &Path,
    playbook: &str,
    schedule_id: &str,
    run: PlaybookRunRequest,
) -> Result<ScheduledTaskInput, ApiError> {
    let content = playbook_files::read(playbooks_dir, playbook).await?;
    let parsed =
        Playbook::parse(&playbook_files::file_name(playbook), &content).map_err(playbook_error)?;
    let resolved = parsed
        .resolve(&content, &run.inputs)
        .map_err(playbook_error)?;
    let mut run = run;
    if run.requester.is_none() {
        run.requester = Some(format!("schedule {schedule_id}"));
    }
    let spec = playbook_task_spec(format!("s-{schedule_id}"), run, resolved)?;
    check_remote_branch(&spec.repo, &spec.base, REPO_CHECK_TIMEOUT).await?;
    Ok(ScheduledTaskInput {
        schedule_id: schedule_id.to_string(),
        cron: String::new(),
        timezone: String::new(),
        spec,
        pause_after_failures: None,
        count_failures_after: None,
    })
}

/// The id of a playbook's `i`-th schedule.
pub fn playbook_schedule_id(playbook: &str, i: usize) -> String {
    format!("{playbook}-{i}")
}

/// Whether `id` has the form of a schedule of `playbook` (`<playbook>-<n>`).
pub fn is_playbook_schedule_id(id: &str, playbook: &str) -> bool {
    id.strip_prefix(playbook)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a schedule that exists on Temporal is a playbook's schedule the playbooks no longer
/// declare, and so is deleted at sync: its id is `<playbook>-<n>` of the playbook its action
/// runs, it runs on the sync's behalf (requester `schedule <id>`), the playbook does not
/// declare it (`declared`), and the playbook is not one whose file is unreadable for now
/// (`unreadable`: a broken edit must not delete its schedules). Ad-hoc schedules never take
/// such an id (see [`from_request`]).
pub fn is_stale_playbook_schedule(
    id: &str,
    input: &ScheduledTaskInput,
    declared: &BTreeSet<String>,
    unreadable: &BTreeSet<String>,
) -> bool {
    let Some(playbook) = input.spec.playbook.as_ref().map(|p| p.name.as_str()) else {
        return false;
    };
    is_playbook_schedule_id(id, playbook)
        && input.spec.requester == format!("schedule {id}")
        && !declared.contains(id)
        && !unreadable.contains(playbook)
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// Schedules created or updated.
    pub synced: usize,
    /// Schedules deleted: their playbook dropped them, or was deleted.
    pub deleted: Vec<String>,
}

/// Creates or updates the schedules of every playbook in `dir`, and deletes the schedules of
/// playbooks that no longer declare them (or no longer exist); one that cannot be synced is
/// logged and skipped, so a broken playbook never keeps the others from running (and keeps
/// its own schedules as they were).
pub async fn sync_playbooks(client: &Client, dir: &Path) -> Result<Synced, ApiError> {
    let mut synced = 0;
    let mut declared = BTreeSet::new();
    let mut unreadable = BTreeSet::new();
    for summary in playbook_files::list(dir).await? {
        if summary.error.is_some() {
            unreadable.insert(summary.name);
            continue;
        }
        let Ok(content) = playbook_files::read(dir, &summary.name).await else {
            unreadable.insert(summary.name);
            continue;
        };
        let Ok(playbook) = Playbook::parse(&playbook_files::file_name(&summary.name), &content)
        else {
            unreadable.insert(summary.name);
            continue;
        };
        for (i, schedule) in playbook.schedules.iter().enumerate() {
            let id = playbook_schedule_id(&summary.name, i);
            declared.insert(id.clone());
            match sync_one(client, dir, &summary.name, &id, schedule).await {
                Ok(outcome) => {
                    synced += 1;
                    tracing::info!(schedule = %id, ?outcome, "playbook schedule synced");
                }
                Err(err) => {
                    tracing::warn!(schedule = %id, error = %err.message, "cannot sync a playbook schedule")
                }
            }
        }
    }
    let mut deleted = Vec::new();
    for id in temporal::list_ids(client).await? {
        if declared.contains(&id) {
            continue;
        }
        // Gone since the listing, or not Errand's: nothing to delete.
        let Ok((_, input)) = temporal::describe(client, &id).await else {
            continue;
        };
        if !is_stale_playbook_schedule(&id, &input, &declared, &unreadable) {
            continue;
        }
        temporal::delete(client, &id).await?;
        tracing::info!(schedule = %id, "playbook schedule deleted: its playbook no longer declares it");
        deleted.push(id);
    }
    Ok(Synced { synced, deleted })
}

async fn sync_one(
    client: &Client,
    dir: &Path,
    playbook: &str,
    id: &str,
    schedule: &Schedule,
) -> Result<temporal::Upserted, ApiError> {
    check_id(id)?;
    let cron = cron::check(schedule.cron.as_str()).map_err(|e| ApiError::invalid("cron", e))?;
    let pause_after = pause_after_failures(schedule.pause_after_failures.map(|n| n.get()))?;
    let run = PlaybookRunRequest {
        repo: schedule.repo.clone(),
        base: None,
        inputs: schedule.inputs.clone(),
        requester: None,
        agent: None,
        max_rounds: None,
        time_budget_secs: None,
        review_timeout_secs: None,
        max_dollars: None,
        max_tokens: None,
    };
    let input = scheduled_input(dir, playbook, id, run).await?;
    let def = Definition {
        id: id.to_string(),
        input: ScheduledTaskInput {
            cron: cron.as_str().to_string(),
            timezone: schedule.timezone.clone(),
            pause_after_failures: pause_after,
            ..input
        },
        cron,
        timezone: schedule.timezone.clone(),
        paused: false,
    };
    temporal::upsert(client, &def).await
}

/// A schedule as the API shows it: Temporal's description joined with the store's tasks.
pub async fn view(client: &Client, store: &Store, id: &str) -> Result<ScheduleView, ApiError> {
    let (description, input) = temporal::describe(client, id).await?;
    let mut recent_runs = Vec::new();
    let mut actions = description.recent_actions();
    actions.reverse();
    for action in actions {
        let task_id = fire_task_id(id, &action.workflow_id, &action.run_id);
        let task = store.task(&task_id).await?.map(|record| record.task);
        recent_runs.push(ScheduleRun {
            fired_at: action.actual_time.map(system_rfc3339),
            workflow_id: action.workflow_id,
            task_id,
            status: task.as_ref().map(|t| t.status),
            reason: task.and_then(|t| t.reason),
        });
    }
    let since = input
        .count_failures_after
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc());
    Ok(ScheduleView {
        id: id.to_string(),
        playbook: input.spec.playbook.as_ref().map(|p| p.name.clone()),
        cron: input.cron.clone(),
        timezone: input.timezone.clone(),
        repo: input.spec.repo.clone(),
        paused: description.paused(),
        note: description.note().map(str::to_string),
        pause_after_failures: input.pause_after_failures,
        consecutive_failures: failure_streak(&recent_runs, since),
        fires: description.action_count(),
        overlap_skipped: description.overlap_skipped(),
        next_runs: description
            .future_action_times()
            .into_iter()
            .map(system_rfc3339)
            .collect(),
        recent_runs,
    })
}

/// Failed or incomplete runs in a row, newest first, among the runs that have ended and fired
/// after `since`; a run still going neither counts nor breaks the streak.
pub fn failure_streak(runs_newest_first: &[ScheduleRun], since: Option<DateTime<Utc>>) -> u32 {
    let mut streak = 0;
    for run in runs_newest_first {
        let fired = run
            .fired_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.to_utc());
        if let (Some(since), Some(fired)) = (since, fired)
            && fired < since
        {
            break;
        }
        match run.status {
            Some(TaskStatus::Failed | TaskStatus::Incomplete) => streak += 1,
            Some(status) if status.is_final() => break,
            _ => continue,
        }
    }
    streak
}

/// The note of an auto-pause: how many runs, which, and why the last one ended.
pub fn auto_pause_note(n: u32, runs_newest_first: &[ScheduleRun]) -> String {
    let failed: Vec<&ScheduleRun> = runs_newest_first
        .iter()
        .filter(|r| matches!(r.status, Some(TaskStatus::Failed | TaskStatus::Incomplete)))
        .take(n as usize)
        .collect();
    let ids: Vec<&str> = failed.iter().map(|r| r.task_id.as_str()).collect();
    let last = failed
        .first()
        .and_then(|r| r.reason.as_deref())
        .unwrap_or("no reason recorded");
    format!(
        "auto-paused after {n} consecutive failed or incomplete runs ({}); last: {last}",
        ids.join(", ")
    )
}

/// "now", for the handlers (the pure code above takes it as an argument).
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Formats an instant as the API does.
pub fn format_time(at: DateTime<Utc>) -> String {
    rfc3339(at)
}

#[cfg(test)]
mod tests;
