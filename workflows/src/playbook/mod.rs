//! Playbooks: versioned YAML specs of a kind of task (outcome, typed inputs, procedure, agent,
//! boundary, verification, postconditions, forbidden actions, budget, review and merge policy,
//! retry, schedules, triggers), resolved into a [`TaskSpec`](crate::TaskSpec) at trigger time.
//!
//! Parsing and resolving are pure; reading files is the caller's business. A bad file is an
//! error that names `file:line:column`, the field and what was expected: values check
//! themselves while they are read ([`scalars`]), and what needs the whole file is checked after
//! and located in the text ([`locate`]). `playbooks/schema.json` is generated from these types.

pub mod boundary;
pub mod budget;
pub mod inputs;
pub mod locate;
mod resolve;
pub mod review;
pub mod rules;
pub mod scalars;
pub mod schedule;
pub mod verification;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use boundary::{Boundary, Permission};
pub use budget::{Budget, Retry};
pub use inputs::{InputSpec, InputType, InputValue};
pub use resolve::Resolved;
pub use review::{AutoWhen, MergePolicy, Review};
pub use rules::{ForbiddenAction, Postcondition};
pub use scalars::{Dollars, Glob, Positive};
pub use schedule::{Cron, Schedule, Triggers};
pub use verification::{RedGreen, Verification};

use crate::task::AgentSpec;

/// Longest playbook name: it is also a file name and part of URLs.
pub const MAX_NAME_LEN: usize = 64;
/// The longest review timeout a playbook may set (a year).
pub const MAX_REVIEW_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// A playbook file, as written (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Errand playbook",
    description = "A versioned spec of a kind of task that Errand delegates to a coding agent and enforces."
)]
pub struct Playbook {
    /// Lowercase words joined by `-`; the file is `<name>.yaml`.
    pub name: String,
    pub description: String,
    /// What done means, in words.
    pub outcome: String,
    /// Typed inputs, filled in `{{name}}` placeholders of the procedure and the commands.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    /// Instructions to the agent, as markdown.
    pub procedure: String,
    /// The agent adapter and its settings; a run may name another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentSpec>,
    #[serde(default)]
    pub boundary: Boundary,
    pub verification: Verification,
    /// Properties the diff of a round must have.
    #[serde(default)]
    pub postconditions: Vec<Postcondition>,
    /// Ways of passing the checks without doing the work that count as failures (default: all).
    #[serde(default = "ForbiddenAction::all")]
    pub forbidden_actions: Vec<ForbiddenAction>,
    pub budget: Budget,
    #[serde(default)]
    pub review: Review,
    #[serde(default)]
    pub retry: Retry,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub triggers: Triggers,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaybookError {
    /// Not YAML, or not the shape of a playbook; `file` carries `:line:column` when known and
    /// the message starts with the field.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// Well-formed, but wrong; `file` carries `:line:column` when the field is found.
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
    #[error("inputs.{input}: {message}")]
    BadInput { input: String, message: String },
}

/// Something wrong with a playbook that parses: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Playbook {
    /// Parses and validates a playbook file; `file` names it in errors (and, when it ends in
    /// `.yaml`, must be the playbook's name).
    pub fn parse(file: &str, content: &str) -> Result<Self, PlaybookError> {
        let playbook: Playbook =
            yaml_serde::from_str(content).map_err(|e| parse_error(file, &e))?;
        let mut problems = playbook.problems();
        if let Some(stem) = file_stem(file)
            && stem != playbook.name
        {
            problems.insert(
                0,
                Problem {
                    field: "name".into(),
                    message: format!(
                        "expected {stem:?}, the file's name, got {:?}",
                        playbook.name
                    ),
                },
            );
        }
        match problems.into_iter().next() {
            None => Ok(playbook),
            Some(problem) => Err(invalid(file, content, problem)),
        }
    }

    /// Everything wrong with a playbook that parsed, in file order of the sections.
    pub fn problems(&self) -> Vec<Problem> {
        let mut found: Vec<(String, String)> = Vec::new();
        let mut section = |prefix: &str, problems: Vec<(String, String)>| {
            for (field, message) in problems {
                let sep = if prefix.is_empty() || field.starts_with('[') {
                    ""
                } else {
                    "."
                };
                found.push((format!("{prefix}{sep}{field}"), message));
            }
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LEN
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            section(
                "",
                vec![(
                    "name".into(),
                    format!(
                        "expected 1 to {MAX_NAME_LEN} of a-z, 0-9 and '-', got {:?}",
                        self.name
                    ),
                )],
            );
        }
        for (field, text) in [
            ("description", &self.description),
            ("outcome", &self.outcome),
            ("procedure", &self.procedure),
        ] {
            if text.trim().is_empty() {
                section(
                    "",
                    vec![(field.into(), "expected text, got nothing".into())],
                );
            }
        }
        for (name, spec) in &self.inputs {
            if !inputs::is_input_name(name) {
                section(
                    "inputs",
                    vec![(
                        name.clone(),
                        format!(
                            "expected an input name of a-z, 0-9, '_' and '-' starting with a letter, got {name:?}"
                        ),
                    )],
                );
            }
            let problems = spec
                .problems()
                .into_iter()
                .map(|(f, m)| (f.to_string(), m))
                .collect();
            section(&format!("inputs.{name}"), problems);
        }
        section("", self.placeholder_problems());
        if let Some(agent) = &self.agent {
            section("agent", agent.problems());
        }
        section("boundary", self.boundary.problems());
        section("verification", self.verification.problems());
        section("budget", self.budget.problems());
        if let Some(timeout) = self.review.timeout_secs
            && timeout.get() > MAX_REVIEW_TIMEOUT_SECS
        {
            section(
                "review",
                vec![(
                    "timeout_secs".into(),
                    format!(
                        "expected at most {MAX_REVIEW_TIMEOUT_SECS} seconds (a year), got {}",
                        timeout.get()
                    ),
                )],
            );
        }
        section("retry", self.retry.problems());
        for (i, schedule) in self.schedules.iter().enumerate() {
            let mut problems = schedule.problems();
            problems.extend(self.schedule_input_problems(schedule));
            section(&format!("schedules[{i}]"), problems);
        }
        section("triggers", self.trigger_problems());
        found
            .into_iter()
            .map(|(field, message)| Problem { field, message })
            .collect()
    }

    /// The JSON schema of a run's `inputs`.
    pub fn inputs_schema(&self) -> serde_json::Value {
        inputs::inputs_schema(&self.inputs)
    }

    /// Every `{{name}}` must name a declared input.
    fn placeholder_problems(&self) -> Vec<(String, String)> {
        let v = &self.verification;
        let mut texts: Vec<(String, &str)> = vec![("procedure".into(), &self.procedure)];
        for (list, commands) in [("checks", &v.checks), ("setup", &v.setup)] {
            for (i, c) in commands.iter().enumerate() {
                texts.push((format!("verification.{list}[{i}]"), c));
            }
        }
        if let Some(rg) = &v.red_green {
            for (i, c) in rg.commands.iter().enumerate() {
                texts.push((format!("verification.red_green.commands[{i}]"), c));
            }
            if let Some(template) = &rg.changed_tests {
                texts.push(("verification.red_green.changed_tests".into(), template));
            }
        }
        let declared: Vec<&str> = self.inputs.keys().map(String::as_str).collect();
        let mut problems = Vec::new();
        for (field, text) in texts {
            for name in inputs::placeholders(text) {
                if !self.inputs.contains_key(name) {
                    let known = if declared.is_empty() {
                        "the playbook declares no inputs".to_string()
                    } else {
                        format!("declared inputs are {}", declared.join(", "))
                    };
                    problems.push((
                        field.clone(),
                        format!("unknown input {{{{{name}}}}}: {known}"),
                    ));
                }
            }
        }
        problems
    }

    fn schedule_input_problems(&self, schedule: &Schedule) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, value) in &schedule.inputs {
            match self.inputs.get(name) {
                None => problems.push((
                    format!("inputs.{name}"),
                    "unknown input for this playbook".into(),
                )),
                Some(spec) => {
                    if let Err(why) = spec.accept(value) {
                        problems.push((format!("inputs.{name}"), why));
                    }
                }
            }
        }
        for (name, spec) in &self.inputs {
            if spec.is_required() && !schedule.inputs.contains_key(name) {
                problems.push((
                    "inputs".into(),
                    format!("expected a value for the required input {name}"),
                ));
            }
        }
        problems
    }

    fn trigger_problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(github) = &self.triggers.github {
            if let Some(input) = &github.input {
                problems.extend(self.string_input_problem("github.input", input));
            }
            if github.labels.is_empty() || github.labels.iter().any(|l| l.trim().is_empty()) {
                problems.push((
                    "github.labels".into(),
                    "expected at least one label, none blank".into(),
                ));
            }
        }
        if let Some(crash) = &self.triggers.crash {
            problems.extend(self.string_input_problem("crash.input", &crash.input));
        }
        problems
    }

    /// A trigger hands its text to a string input; `name` must be one.
    fn string_input_problem(&self, field: &str, name: &str) -> Option<(String, String)> {
        let message = match self.inputs.get(name) {
            None => format!("expected a declared input, got {name:?}"),
            Some(spec) if spec.kind != InputType::String => {
                format!("expected a string input, but {name} is {:?}", spec.kind)
            }
            Some(_) => return None,
        };
        Some((field.to_string(), message))
    }
}

/// The playbook name a file path implies: its file name without `.yaml`.
fn file_stem(file: &str) -> Option<&str> {
    file.rsplit('/').next()?.strip_suffix(".yaml")
}

fn invalid(file: &str, content: &str, problem: Problem) -> PlaybookError {
    let file = match locate::locate(content, &problem.field) {
        Some((line, column)) => format!("{file}:{line}:{column}"),
        None => file.to_string(),
    };
    PlaybookError::Invalid {
        file,
        field: problem.field,
        message: problem.message,
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

/// The JSON schema of playbook files, committed as `playbooks/schema.json` (a test keeps it
/// fresh); editors use it to complete and check playbooks.
pub fn file_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Playbook)).unwrap_or_default()
}

pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

#[cfg(test)]
mod tests;
