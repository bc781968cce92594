//! Playbook answers: the listing, and one playbook as parsed, with the JSON schema of its inputs
//! and its content hash. The playbook itself is `workflows::playbook::Playbook` serialized (its
//! schema is `playbooks/schema.json`), so the API cannot drift from the model.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlaybookView {
    pub name: String,
    pub description: String,
    /// What done means, in words.
    pub outcome: String,
    /// The JSON schema of a run's `inputs` object: each input's type, description, default,
    /// allowed values, and which are required.
    #[schema(value_type = Object)]
    pub inputs_schema: serde_json::Value,
    /// The whole playbook as parsed, defaults filled in: inputs, procedure, agent, boundary,
    /// verification, postconditions, forbidden actions, budget, review, retry, schedules and
    /// triggers (their schema is `playbooks/schema.json`).
    #[schema(value_type = Object)]
    pub playbook: serde_json::Value,
    /// sha256 of the file's content: the revision a run made now is pinned to.
    pub content_hash: String,
}

impl PlaybookView {
    pub fn new(playbook: Playbook, content_hash: String) -> Self {
        PlaybookView {
            inputs_schema: playbook.inputs_schema(),
            name: playbook.name.clone(),
            description: playbook.description.clone(),
            outcome: playbook.outcome.clone(),
            playbook: serde_json::to_value(&playbook).unwrap_or_default(),
            content_hash,
        }
    }
}
