//! `GET /v1/stats`: how tasks fare, overall and by playbook.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Tasks created in `[from, to)`. Cost figures (median and p90 cost per task and per merged
/// task) come with the cost ledger and will be added as fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskStats {
    /// Null: since the first task.
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    pub overall: StatsGroup,
    /// One group per playbook, ad-hoc tasks (`playbook` null) first, then by name.
    pub by_playbook: Vec<StatsGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsGroup {
    /// The playbook; null for ad-hoc tasks, and for the overall group.
    pub playbook: Option<String>,
    pub tasks: u64,
    /// Tasks by their status now: final statuses are outcomes, the others are in progress.
    pub by_status: BTreeMap<String, u64>,
    /// Tasks in a final status.
    pub finished: u64,
    pub merged: u64,
    /// `merged / finished`; null before any task finished.
    pub merged_share: Option<f64>,
    /// Median time from a task's creation to the agent's first output line; null when no
    /// task has output yet.
    pub median_time_to_first_output_ms: Option<u64>,
}
