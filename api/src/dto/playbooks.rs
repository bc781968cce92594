//! Playbook answers: the listing, and one playbook as parsed with its content hash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::AgentSpec;
use workflows::playbook::Playbook;

/// A playbook in the listing. A file that does not parse is listed with its error, so that a
/// broken playbook is visible rather than missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlaybookSummary {
    /// The file name without `.yaml`; the `{name}` of the playbook's routes.
    pub name: String,
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One playbook, as the API would resolve it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlaybookView {
    pub name: String,
    pub description: String,
    /// What done means, in words.
    pub outcome: String,
    pub inputs: BTreeMap<String, PlaybookInput>,
    /// Instructions to the agent; `{{input}}` is replaced by the input's value.
    pub procedure: String,
    pub agent: Option<AgentSpec>,
    /// Commands that must all exit 0 for a round to pass.
    pub checks: Vec<String>,
    pub budget: PlaybookBudget,
    /// sha256 of the file's content: the revision a run made now is pinned to.
    pub content_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlaybookInput {
    pub description: String,
    /// Used when a run leaves the input out; without one the input is required.
    pub default: Option<String>,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlaybookBudget {
    pub max_rounds: u32,
    pub time_per_round_secs: u64,
}

impl PlaybookView {
    pub fn new(playbook: Playbook, content_hash: String) -> Self {
        PlaybookView {
            name: playbook.name,
            description: playbook.description,
            outcome: playbook.outcome,
            inputs: playbook
                .inputs
                .into_iter()
                .map(|(name, spec)| {
                    let required = spec.default.is_none();
                    (
                        name,
                        PlaybookInput {
                            description: spec.description,
                            default: spec.default,
                            required,
                        },
                    )
                })
                .collect(),
            procedure: playbook.procedure,
            agent: playbook.agent,
            checks: playbook.verification.checks,
            budget: PlaybookBudget {
                max_rounds: playbook.budget.max_rounds,
                time_per_round_secs: playbook.budget.time_per_round_secs,
            },
            content_hash,
        }
    }
}
