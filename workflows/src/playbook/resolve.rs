//! Resolving a playbook at trigger time: inputs checked against their types and filled in, the
//! policy taken along, the content pinned by its hash. The result travels inside the workflow's
//! input, so editing the file later never changes a running or past task.

use std::collections::BTreeMap;

use super::inputs::{InputValue, placeholders, substitute};
use super::verification::TEST_FILE_PLACEHOLDER;
use super::{Playbook, PlaybookError, content_hash};
use crate::policy::Policy;
use crate::task::{AgentSpec, PlaybookRef};

/// A playbook's content resolved against a trigger's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub instructions: String,
    pub checks: Vec<String>,
    pub agent: Option<AgentSpec>,
    pub max_rounds: u32,
    pub time_budget_secs: u64,
    /// The playbook's review timeout, if it sets one.
    pub review_timeout_secs: Option<u64>,
    pub playbook: PlaybookRef,
    /// Boundary, postconditions, forbidden actions, red->green, merge policy, retry.
    pub policy: Policy,
    /// Every input's value as used (defaults included).
    pub inputs: BTreeMap<String, InputValue>,
}

impl Playbook {
    /// Checks the inputs against their declarations and fills them in; `content` (the file) is
    /// hashed to pin the revision.
    pub fn resolve(
        &self,
        content: &str,
        given: &BTreeMap<String, InputValue>,
    ) -> Result<Resolved, PlaybookError> {
        if let Some(unknown) = given.keys().find(|k| !self.inputs.contains_key(*k)) {
            return Err(PlaybookError::UnknownInput(unknown.clone()));
        }
        let mut values = BTreeMap::new();
        let mut texts = BTreeMap::new();
        for (name, spec) in &self.inputs {
            let value = match (given.get(name), &spec.default) {
                (Some(value), _) | (None, Some(value)) => {
                    spec.accept(value)
                        .map_err(|message| PlaybookError::BadInput {
                            input: name.clone(),
                            message,
                        })?
                }
                (None, None) if spec.is_required() => {
                    return Err(PlaybookError::MissingInput(name.clone()));
                }
                (None, None) => InputValue::String(String::new()),
            };
            texts.insert(name.clone(), value.to_string());
            values.insert(name.clone(), value);
        }
        let fill = |text: &String| substitute(text, &texts);
        let v = &self.verification;
        let red_green = v.red_green.as_ref().map(|rg| crate::playbook::RedGreen {
            commands: rg.commands.iter().map(fill).collect(),
            changed_tests: rg.changed_tests.as_ref().map(fill),
        });
        if let Some(template) = v
            .red_green
            .as_ref()
            .and_then(|rg| rg.changed_tests.as_ref())
            && !fill(template).contains(TEST_FILE_PLACEHOLDER)
            && let Some(input) = placeholders(template).first()
        {
            return Err(PlaybookError::BadInput {
                input: input.to_string(),
                message: format!(
                    "expected a command with {TEST_FILE_PLACEHOLDER} for the test file (verification.red_green.changed_tests), got {:?}",
                    texts.get(*input).map(String::as_str).unwrap_or_default()
                ),
            });
        }
        let policy = Policy {
            boundary: self.boundary.clone(),
            forbidden_actions: self.forbidden_actions.clone(),
            postconditions: self.postconditions.clone(),
            test_paths: v.test_paths.clone(),
            red_green,
            setup: v.setup.iter().map(fill).collect(),
            merge: self.review.merge.clone(),
            retry: self.retry,
            max_dollars: self.budget.dollars,
            max_tokens: self.budget.tokens,
            max_running: self.budget.max_running,
        };
        Ok(Resolved {
            instructions: fill(&self.procedure),
            checks: v.checks.iter().map(fill).collect(),
            agent: self.agent.clone(),
            max_rounds: self.budget.max_rounds.get(),
            time_budget_secs: self.budget.time_per_round_secs.get(),
            review_timeout_secs: self.review.timeout_secs.map(|t| t.get()),
            playbook: PlaybookRef {
                name: self.name.clone(),
                content_hash: content_hash(content),
            },
            policy,
            inputs: values,
        })
    }
}
