//! Request and response bodies of `/v1/schedules`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::playbook::InputValue;
use workflows::{AgentSpec, TaskStatus};

/// A schedule created through the API: a playbook run on a cron timetable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// The schedule's id: 1 to 48 of a-z, 0-9 and '-'. Creating an existing id updates it.
    #[schema(pattern = "^[a-z0-9-]+$", example = "nightly-deps")]
    pub id: String,
    /// The playbook each fire runs.
    pub playbook: String,
    /// 5-field cron (`minute hour day-of-month month day-of-week`), `@daily`, `@hourly`,
    /// `@weekly`, `@monthly`, `@yearly` or `@every <n><s|m|h|d>`.
    #[schema(example = "0 6 * * 1")]
    pub cron: String,
    /// IANA time zone of the expression.
    #[serde(default)]
    #[schema(default = "UTC")]
    pub timezone: Option<String>,
    pub repo: String,
    #[serde(default)]
    #[schema(default = "main")]
    pub base: Option<String>,
    #[serde(default)]
    pub inputs: BTreeMap<String, InputValue>,
    /// Overrides the playbook's agent; required when the playbook names none.
    #[serde(default)]
    pub agent: Option<AgentSpec>,
    #[serde(default)]
    pub requester: Option<String>,
    /// Pause after this many failed or incomplete runs in a row (1 to 10).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    pub pause_after_failures: Option<u32>,
    /// Create the schedule paused.
    #[serde(default)]
    pub paused: bool,
}

/// A schedule as Temporal holds it, with what it did and will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    pub id: String,
    /// The playbook its fires run (none for a schedule not made by Errand).
    pub playbook: Option<String>,
    pub cron: String,
    pub timezone: String,
    pub repo: String,
    pub paused: bool,
    /// Why it is paused (an auto-pause names the failed runs), or the last resume's note.
    pub note: Option<String>,
    pub pause_after_failures: Option<u32>,
    /// Failed or incomplete runs in a row, counted since the last resume.
    pub consecutive_failures: u32,
    /// Fires so far, and fires skipped because the previous run was still going.
    pub fires: i64,
    pub overlap_skipped: i64,
    /// The next fire times (RFC 3339), as Temporal computes them.
    pub next_runs: Vec<String>,
    /// The most recent fires, newest first.
    pub recent_runs: Vec<ScheduleRun>,
}

/// One fire of a schedule and the task it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleRun {
    /// When it fired (RFC 3339).
    pub fired_at: Option<String>,
    pub workflow_id: String,
    pub task_id: String,
    /// The task's status in the store; none until its workflow has admitted it.
    pub status: Option<TaskStatus>,
    pub reason: Option<String>,
}

/// The answer to pause, resume and trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleAccepted {
    pub id: String,
    pub paused: bool,
}

/// A cron expression checked, with its next fire times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CronCheck {
    pub cron: String,
    pub timezone: String,
    /// RFC 3339; empty for a zone other than UTC (Temporal previews those once created).
    pub next_runs: Vec<String>,
}
