//! Request bodies of the two triggers. Unknown fields are rejected; defaults and rules live in
//! [`crate::admission`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::AgentSpec;
use workflows::playbook::InputValue;

/// An ad-hoc task: what to do, where, and how to tell it is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// Git URL or path of the repository, reachable from the API and the workers.
    #[schema(example = "https://github.com/acme/app.git")]
    pub repo: String,
    /// Branch to start from and merge into.
    #[serde(default)]
    #[schema(default = "main")]
    pub base: Option<String>,
    /// What the agent is asked to do, as markdown.
    pub instructions: String,
    /// Shell commands that must all exit 0 for a round to pass; at least one.
    pub checks: Vec<String>,
    pub agent: AgentSpec,
    /// Rounds (agent run plus checks) before the task ends incomplete; at least 1.
    #[serde(default)]
    #[schema(default = 3, minimum = 1, maximum = 100)]
    pub max_rounds: Option<u32>,
    /// Wall-clock budget of one agent run, in seconds; at least 1.
    #[serde(default)]
    #[schema(default = 600, minimum = 1, maximum = 86400)]
    pub time_budget_secs: Option<u64>,
    /// Who asks; authors the commits and cannot approve the task.
    #[serde(default)]
    #[schema(default = "anonymous")]
    pub requester: Option<String>,
    /// How long the review gate waits for a decision, in seconds (default: 7 days).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31536000)]
    pub review_timeout_secs: Option<u64>,
    /// Most dollars the task may spend on models (and sandbox time); a playbook's
    /// `budget.dollars` caps it.
    #[serde(default)]
    pub max_dollars: Option<f64>,
    /// Most model tokens the task may use; a playbook's `budget.tokens` caps it.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
}

/// A run of a playbook: its inputs, and optional overrides that may only tighten it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookRunRequest {
    /// Git URL or path of the repository, reachable from the API and the workers.
    pub repo: String,
    #[serde(default)]
    #[schema(default = "main")]
    pub base: Option<String>,
    /// Values of the playbook's inputs, by name (strings, integers or booleans, as the input's
    /// type asks); inputs with a default may be left out.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputValue>,
    #[serde(default)]
    #[schema(default = "anonymous")]
    pub requester: Option<String>,
    /// Overrides the playbook's agent; required when the playbook names none.
    #[serde(default)]
    pub agent: Option<AgentSpec>,
    /// At most the playbook's `budget.max_rounds`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_rounds: Option<u32>,
    /// At most the playbook's `budget.time_per_round_secs`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub time_budget_secs: Option<u64>,
    /// How long the review gate waits for a decision, in seconds (default: 7 days).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31536000)]
    pub review_timeout_secs: Option<u64>,
    /// Most dollars the task may spend on models (and sandbox time); a playbook's
    /// `budget.dollars` caps it.
    #[serde(default)]
    pub max_dollars: Option<f64>,
    /// Most model tokens the task may use; a playbook's `budget.tokens` caps it.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
}
