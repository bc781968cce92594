//! What a `CrashInvestigation` workflow starts with: the group's identity, where and how to
//! investigate, its limits, and (after continue-as-new) the state carried over.

use serde::{Deserialize, Serialize};

use crate::crash::Fingerprint;
use crate::crash_contracts::{CrashGroup, Occurrence};
use crate::task::AgentSpec;

/// The input of a `CrashInvestigation` run. Signal-with-start sends it with every occurrence;
/// only the call that starts the workflow is read, so a later change of target or limits
/// applies to new groups only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashInvestigationInput {
    pub group_id: String,
    pub service: String,
    pub fingerprint: Fingerprint,
    pub target: InvestigationTarget,
    #[serde(default)]
    pub limits: CrashLimits,
    /// State of the previous run, after continue-as-new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<Carried>,
}

/// Where an investigation runs and what it follows: the playbook's content travels here,
/// never a path, so editing the file never changes a running group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvestigationTarget {
    pub repo: String,
    pub base: String,
    pub agent: AgentSpec,
    pub playbook_name: String,
    pub playbook_content: String,
    /// Who the investigation is on behalf of (authors its commits; cannot approve it).
    pub requester: String,
}

/// How many investigations a service may start, and how a group keeps its history bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashLimits {
    /// New investigations per service per window.
    pub max_new_per_window: u32,
    pub window_secs: u64,
    /// Occurrences the store keeps per group.
    pub keep_occurrences: u32,
    /// Occurrences one run handles before it continues as new.
    pub occurrences_per_run: u32,
}

pub const DEFAULT_MAX_NEW_PER_WINDOW: u32 = 3;
pub const DEFAULT_WINDOW_SECS: u64 = 3600;
pub const DEFAULT_KEEP_OCCURRENCES: u32 = 100;
pub const DEFAULT_OCCURRENCES_PER_RUN: u32 = 1000;

impl Default for CrashLimits {
    fn default() -> Self {
        Self {
            max_new_per_window: DEFAULT_MAX_NEW_PER_WINDOW,
            window_secs: DEFAULT_WINDOW_SECS,
            keep_occurrences: DEFAULT_KEEP_OCCURRENCES,
            occurrences_per_run: DEFAULT_OCCURRENCES_PER_RUN,
        }
    }
}

/// What one run hands the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    pub group: CrashGroup,
    /// Occurrences signalled but not yet recorded.
    #[serde(default)]
    pub pending: Vec<Occurrence>,
    /// The crash text the investigations quote (the first occurrence's).
    #[serde(default)]
    pub excerpt: String,
    /// The latest delivery batches taken, oldest first (see [`Occurrence::batch`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<String>,
}
