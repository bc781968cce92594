//! The contracts of the `CrashInvestigation` workflow's activities: pinned names, inputs and
//! outputs, and the group and occurrence types they carry.
//!
//! Payloads are forever (invariant 2): change them additively. Crash text in them is untrusted
//! data, bounded where it enters (`crash_investigation::occurrence`).

#![allow(unused_variables)]

use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;
use utoipa::ToSchema;

use crate::task::TaskStatus;

/// One crash as the API received it: when, from which release and environment, and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// When the API received it (Unix milliseconds, the API's clock): never the crashing
    /// machine's clock, which may be wrong.
    pub received_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The machine, when the sender said (`server_name`, `host` or `machine` tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The crash's message, scrubbed and bounded.
    #[serde(default)]
    pub message: String,
    /// The crash text as sent (type, message, frames), bounded: what an investigation quotes.
    #[serde(default)]
    pub excerpt: String,
    /// The intake's delivery batch this occurrence came in (set on the batch's first one): a
    /// batch delivered again is not counted again, even after continue-as-new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// Where a crash group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CrashGroupStatus {
    /// Seen, no investigation yet.
    New,
    /// The service started its allowance of investigations in this window; waits for the next.
    RateLimited,
    /// An investigation task is running (or waiting for review).
    Investigating,
    /// The investigation's fix was approved or merged; a recurrence re-opens the group.
    Fixed,
    /// The investigation ended without a fix; recurrences are only counted.
    Unresolved,
    /// No investigation could be started (e.g. the playbook does not resolve); see the reason.
    Failed,
}

impl CrashGroupStatus {
    pub const ALL: [CrashGroupStatus; 6] = [
        Self::New,
        Self::RateLimited,
        Self::Investigating,
        Self::Fixed,
        Self::Unresolved,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::RateLimited => "rate_limited",
            Self::Investigating => "investigating",
            Self::Fixed => "fixed",
            Self::Unresolved => "unresolved",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for CrashGroupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A crash group as the workflow counts it: one per service and fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashGroup {
    /// Also the `CrashInvestigation` workflow id.
    pub id: String,
    pub service: String,
    /// The fingerprint's hash.
    pub fingerprint: String,
    /// Derived from untrusted text: quote it, never follow it.
    pub title: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub crash_type: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub count: u64,
    /// Distinct releases and environments seen, sorted, bounded.
    #[serde(default)]
    pub releases: Vec<String>,
    #[serde(default)]
    pub environments: Vec<String>,
    pub status: CrashGroupStatus,
    /// The current (latest) investigation task.
    #[serde(default)]
    pub task_id: Option<String>,
    /// Investigations started so far (a recurrence after a fix starts another).
    #[serde(default)]
    pub investigations: u32,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An occurrence as recorded: numbered within its group (1-based), so that a retried write
/// inserts it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedOccurrence {
    pub seq: u64,
    pub received_at_ms: i64,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub message: String,
    /// The investigation it was attached to.
    #[serde(default)]
    pub task_id: Option<String>,
}

/// Write the group's counts (absolute values, so a retry is harmless) and new occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashGroupUpdate {
    pub group: CrashGroup,
    #[serde(default)]
    pub occurrences: Vec<RecordedOccurrence>,
    /// Occurrences kept per group; older ones are dropped.
    pub keep_occurrences: u32,
}

/// The investigation task as the store has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedTask {
    pub status: TaskStatus,
    /// When the task last changed (Unix milliseconds): for a final task, when it ended.
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashGroupRecorded {
    /// The group's task, if it has one and the store knows it yet.
    #[serde(default)]
    pub task: Option<LinkedTask>,
}

/// Ask for one of the service's investigation slots of the current window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvestigationClaim {
    pub service: String,
    pub group_id: String,
    /// Which investigation of the group (1-based): a retried claim finds its own slot.
    pub investigation: u32,
    pub max_per_window: u32,
    pub window_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimOutcome {
    Granted,
    /// Every slot of the window is taken; the next window starts this much later.
    Limited { retry_after_secs: u64 },
}

/// Activity names are pinned here; activities are verbs.
pub struct CrashActivities;

#[activity_definitions]
impl CrashActivities {
    /// Upsert the group's counts and status, add the new occurrences (keeping the last N),
    /// and say how its investigation task stands.
    #[activity(name = "record_crash_group")]
    pub fn record_crash_group(update: CrashGroupUpdate) -> Result<CrashGroupRecorded, ActivityError> {
        unimplemented!()
    }

    /// Take one of the service's investigation slots in the current window, or say when the
    /// next window opens (idempotent per group and investigation).
    #[activity(name = "claim_investigation")]
    pub fn claim_investigation(claim: InvestigationClaim) -> Result<ClaimOutcome, ActivityError> {
        unimplemented!()
    }
}

/// The definition markers (`crash_definitions::RecordCrashGroup`, ...) implementations link to.
pub mod crash_definitions {
    pub use super::crash_activities::*;
}
