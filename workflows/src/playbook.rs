//! Playbooks: versioned YAML specs of a kind of task, resolved into a [`TaskSpec`] at trigger
//! time. Parsing and resolving are pure; reading files is the caller's business.
//!
//! This is the minimal model the pipeline needs: inputs, procedure, agent, checks and budget.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::task::{AgentSpec, PlaybookRef};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    /// What done means, in words.
    pub outcome: String,
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    /// Instructions to the agent; `{{input}}` is replaced by the input's value (in checks too).
    pub procedure: String,
    #[serde(default)]
    pub agent: Option<AgentSpec>,
    pub verification: Verification,
    pub budget: Budget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub max_rounds: u32,
    pub time_per_round_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaybookError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
    #[error("inputs.{0}: unknown input for this playbook")]
    UnknownInput(String),
    #[error("inputs.{0}: required input is missing")]
    MissingInput(String),
}

/// A playbook's content resolved against a trigger's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub instructions: String,
    pub checks: Vec<String>,
    pub agent: Option<AgentSpec>,
    pub max_rounds: u32,
    pub time_budget_secs: u64,
    pub playbook: PlaybookRef,
}

impl Playbook {
    /// Parses a playbook file; `file` names it in errors (yaml errors carry line and column).
    pub fn parse(file: &str, content: &str) -> Result<Self, PlaybookError> {
        let playbook: Playbook =
            yaml_serde::from_str(content).map_err(|e| parse_error(file, &e))?;
        let invalid = |field: &str, message: &str| PlaybookError::Invalid {
            file: file.to_string(),
            field: field.to_string(),
            message: message.to_string(),
        };
        if playbook.verification.checks.is_empty() {
            return Err(invalid(
                "verification.checks",
                "expected at least one check command",
            ));
        }
        if playbook.budget.max_rounds == 0 {
            return Err(invalid("budget.max_rounds", "expected a positive integer"));
        }
        if playbook.budget.time_per_round_secs == 0 {
            return Err(invalid(
                "budget.time_per_round_secs",
                "expected a positive integer",
            ));
        }
        Ok(playbook)
    }

    /// Checks and substitutes the inputs; `content` is hashed to pin the revision.
    pub fn resolve(
        &self,
        content: &str,
        inputs: &BTreeMap<String, String>,
    ) -> Result<Resolved, PlaybookError> {
        if let Some(unknown) = inputs.keys().find(|k| !self.inputs.contains_key(*k)) {
            return Err(PlaybookError::UnknownInput(unknown.clone()));
        }
        let mut instructions = self.procedure.clone();
        let mut checks = self.verification.checks.clone();
        for (name, spec) in &self.inputs {
            let value = inputs
                .get(name)
                .or(spec.default.as_ref())
                .ok_or_else(|| PlaybookError::MissingInput(name.clone()))?;
            let placeholder = format!("{{{{{name}}}}}");
            instructions = instructions.replace(&placeholder, value);
            for check in &mut checks {
                *check = check.replace(&placeholder, value);
            }
        }
        Ok(Resolved {
            instructions,
            checks,
            agent: self.agent.clone(),
            max_rounds: self.budget.max_rounds,
            time_budget_secs: self.budget.time_per_round_secs,
            playbook: PlaybookRef {
                name: self.name.clone(),
                content_hash: content_hash(content),
            },
        })
    }
}

/// `file:line:column: field: message`, the way compilers point at a place.
fn parse_error(file: &str, err: &yaml_serde::Error) -> PlaybookError {
    let message = err.to_string();
    let Some(at) = err.location() else {
        return PlaybookError::Parse {
            file: file.to_string(),
            message,
        };
    };
    let suffix = format!(" at line {} column {}", at.line(), at.column());
    PlaybookError::Parse {
        file: format!("{file}:{}:{}", at.line(), at.column()),
        message: message.replacen(&suffix, "", 1),
    }
}

pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = "\
name: fix
description: fix a test
outcome: the test passes
inputs:
  test:
    description: the failing test
  style:
    default: minimal
procedure: Fix {{test}} with a {{style}} change.
verification:
  checks: ['sh test.sh {{test}}']
budget:
  max_rounds: 3
  time_per_round_secs: 60
";

    fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn resolves_inputs_and_defaults() {
        let pb = Playbook::parse("fix.yaml", FIX).unwrap();
        let r = pb.resolve(FIX, &inputs(&[("test", "test_add")])).unwrap();
        assert_eq!(r.instructions, "Fix test_add with a minimal change.");
        assert_eq!(r.playbook.content_hash, content_hash(FIX));
        assert_eq!(r.checks, ["sh test.sh test_add"]);
        assert_eq!(r.max_rounds, 3);
    }

    #[test]
    fn input_errors_name_the_input() {
        let pb = Playbook::parse("fix.yaml", FIX).unwrap();
        assert_eq!(
            pb.resolve(FIX, &inputs(&[])),
            Err(PlaybookError::MissingInput("test".into()))
        );
        assert_eq!(
            pb.resolve(FIX, &inputs(&[("test", "t"), ("tset", "t")])),
            Err(PlaybookError::UnknownInput("tset".into()))
        );
    }

    #[test]
    fn parse_errors_name_file_line_and_field() {
        let bad = FIX.replace("max_rounds: 3", "max_rounds: three");
        let err = Playbook::parse("fix.yaml", &bad).unwrap_err().to_string();
        assert_eq!(
            err,
            r#"fix.yaml:13:15: budget.max_rounds: invalid type: string "three", expected u32"#
        );

        let unknown = FIX.replace("outcome:", "outcomes:");
        let err = Playbook::parse("fix.yaml", &unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `outcomes`"), "{err}");

        let zero = FIX.replace("max_rounds: 3", "max_rounds: 0");
        let err = Playbook::parse("fix.yaml", &zero).unwrap_err().to_string();
        assert_eq!(
            err,
            "fix.yaml: budget.max_rounds: expected a positive integer"
        );
    }
}
