//! Typed playbook inputs: their declaration, the values a trigger gives, and the `{{name}}`
//! placeholders they fill in the procedure and the commands.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What kind of value an input takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    #[default]
    String,
    Integer,
    Boolean,
    /// One of `values`.
    Enum,
    /// A path relative to the repository root, without `..`.
    RepoPath,
}

impl InputType {
    fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Enum => "enum",
            Self::RepoPath => "repo_path",
        }
    }
}

/// One input of a playbook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The kind of value (default `string`).
    #[serde(rename = "type", default)]
    pub kind: InputType,
    #[serde(default)]
    pub description: String,
    /// Whether a run must give it; by default, inputs without a default are required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Used when a run leaves the input out; must be a valid value of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<InputValue>,
    /// The allowed values of an `enum` input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A value given for an input: a string, a whole number or a boolean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(untagged)]
pub enum InputValue {
    Boolean(bool),
    Integer(i64),
    String(String),
}

impl From<&str> for InputValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_string())
    }
}

impl From<String> for InputValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl fmt::Display for InputValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean(b) => write!(f, "{b}"),
            Self::Integer(i) => write!(f, "{i}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl InputSpec {
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(self.default.is_none())
    }

    /// The value as this input takes it (strings are read as numbers and booleans where the
    /// type asks, since command lines give text), or what was expected instead.
    pub fn accept(&self, value: &InputValue) -> Result<InputValue, String> {
        let text = value.to_string();
        match (self.kind, value) {
            (InputType::String, _) => Ok(InputValue::String(text)),
            (InputType::Integer, InputValue::Integer(_)) => Ok(value.clone()),
            (InputType::Integer, InputValue::String(s)) if s.trim().parse::<i64>().is_ok() => {
                Ok(InputValue::Integer(s.trim().parse().unwrap_or_default()))
            }
            (InputType::Boolean, InputValue::Boolean(_)) => Ok(value.clone()),
            (InputType::Boolean, InputValue::String(s)) if matches!(s.trim(), "true" | "false") => {
                Ok(InputValue::Boolean(s.trim() == "true"))
            }
            (InputType::Enum, _) if self.values.contains(&text) => Ok(InputValue::String(text)),
            (InputType::Enum, _) => Err(format!(
                "expected one of {}, got {}",
                self.values.join(", "),
                shown(value)
            )),
            (InputType::RepoPath, InputValue::String(s)) => repo_path(s).map(InputValue::String),
            (kind, _) => Err(format!("expected {}, got {}", expected(kind), shown(value))),
        }
    }

    /// Problems of the declaration itself, as (field under the input, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.kind == InputType::Enum {
            if self.values.is_empty() {
                problems.push((
                    "values",
                    "expected the allowed values of an enum input".into(),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for v in &self.values {
                if v.trim().is_empty() || !seen.insert(v) {
                    problems.push((
                        "values",
                        format!("expected distinct, non-empty values, got {v:?} twice or blank"),
                    ));
                }
            }
        } else if !self.values.is_empty() {
            problems.push((
                "values",
                format!(
                    "only enum inputs have values; this one is {}",
                    self.kind.name()
                ),
            ));
        }
        if self.required == Some(true) && self.default.is_some() {
            problems.push(("required", "an input with a default is not required".into()));
        }
        if let Some(default) = &self.default
            && let Err(why) = self.accept(default)
        {
            problems.push(("default", why));
        }
        problems
    }

    /// This input's JSON schema, for forms and API clients.
    pub fn json_schema(&self) -> Value {
        let mut schema = match self.kind {
            InputType::String => json!({"type": "string"}),
            InputType::Integer => json!({"type": "integer"}),
            InputType::Boolean => json!({"type": "boolean"}),
            InputType::Enum => json!({"type": "string", "enum": self.values}),
            InputType::RepoPath => json!({
                "type": "string",
                "format": "repo-path",
                "pattern": "^(?!/)(?!.*(^|/)\\.\\.(/|$)).+$"
            }),
        };
        if !self.description.is_empty() {
            schema["description"] = json!(self.description);
        }
        if let Some(default) = &self.default {
            schema["default"] = serde_json::to_value(default).unwrap_or(Value::Null);
        }
        schema
    }
}

/// The JSON schema of a run's `inputs` object.
pub fn inputs_schema(inputs: &BTreeMap<String, InputSpec>) -> Value {
    let properties: serde_json::Map<String, Value> = inputs
        .iter()
        .map(|(name, spec)| (name.clone(), spec.json_schema()))
        .collect();
    let required: Vec<&String> = inputs
        .iter()
        .filter(|(_, spec)| spec.is_required())
        .map(|(name, _)| name)
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// `[a-z][a-z0-9_-]*`: what may stand between `{{` and `}}`.
pub fn is_input_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The input names of the `{{name}}` placeholders in `text` (spaces inside the braces allowed;
/// other `{{...}}`, such as template syntax of the project, are left alone).
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if is_input_name(name) {
            names.push(name);
        }
        rest = &after[end..];
    }
    names
}

/// `text` with every `{{name}}` of a known input replaced by its value.
pub fn substitute(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        match values.get(after[..end].trim()) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn repo_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim().trim_start_matches("./");
    let bad = trimmed.is_empty()
        || trimmed.starts_with('/')
        || trimmed.chars().any(char::is_control)
        || trimmed.split('/').any(|part| part == "..");
    if bad {
        return Err(format!(
            "expected a path relative to the repository root without `..`, got {path:?}"
        ));
    }
    Ok(trimmed.to_string())
}

fn expected(kind: InputType) -> &'static str {
    match kind {
        InputType::Integer => "an integer",
        InputType::Boolean => "true or false",
        InputType::RepoPath => "a path relative to the repository root",
        InputType::String | InputType::Enum => "a string",
    }
}

fn shown(value: &InputValue) -> String {
    match value {
        InputValue::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: InputType) -> InputSpec {
        InputSpec {
            kind,
            values: if kind == InputType::Enum {
                vec!["patch".into(), "minor".into()]
            } else {
                vec![]
            },
            ..InputSpec::default()
        }
    }

    #[test]
    fn values_are_taken_as_their_type() {
        use InputType::*;
        let s = |v: &str| InputValue::String(v.into());
        let cases = [
            (String, InputValue::Integer(3), Ok(s("3"))),
            (Integer, s(" 42 "), Ok(InputValue::Integer(42))),
            (
                Integer,
                s("forty"),
                Err("expected an integer, got \"forty\""),
            ),
            (
                Integer,
                InputValue::Boolean(true),
                Err("expected an integer, got true"),
            ),
            (Boolean, s("false"), Ok(InputValue::Boolean(false))),
            (
                Boolean,
                s("yes"),
                Err("expected true or false, got \"yes\""),
            ),
            (Enum, s("minor"), Ok(s("minor"))),
            (
                Enum,
                s("major"),
                Err("expected one of patch, minor, got \"major\""),
            ),
            (RepoPath, s("./tests/a.rs"), Ok(s("tests/a.rs"))),
            (
                RepoPath,
                s("../etc/passwd"),
                Err(
                    "expected a path relative to the repository root without `..`, got \"../etc/passwd\"",
                ),
            ),
            (
                RepoPath,
                s("/etc"),
                Err("expected a path relative to the repository root without `..`, got \"/etc\""),
            ),
        ];
        for (kind, value, want) in cases {
            assert_eq!(
                spec(kind).accept(&value),
                want.map_err(std::string::String::from),
                "{kind:?} {value:?}"
            );
        }
    }

    #[test]
    fn declarations_are_checked() {
        let mut bad_default = spec(InputType::Integer);
        bad_default.default = Some("soon".into());
        assert_eq!(
            bad_default.problems(),
            [("default", "expected an integer, got \"soon\"".to_string())]
        );
        let mut no_values = spec(InputType::Enum);
        no_values.values.clear();
        assert_eq!(no_values.problems()[0].0, "values");
        let mut stray_values = spec(InputType::String);
        stray_values.values = vec!["a".into()];
        assert_eq!(stray_values.problems()[0].0, "values");
        let mut both = spec(InputType::String);
        both.required = Some(true);
        both.default = Some("x".into());
        assert_eq!(both.problems()[0].0, "required");
        assert!(spec(InputType::Enum).problems().is_empty());
    }

    #[test]
    fn placeholders_are_found_and_filled() {
        let text = "run {{test}} then {{ style }}; keep {{.Go}} and {{unknown}}";
        assert_eq!(placeholders(text), ["test", "style", "unknown"]);
        let values = BTreeMap::from([
            ("test".to_string(), "sh t.sh".to_string()),
            ("style".to_string(), "minimal".to_string()),
        ]);
        assert_eq!(
            substitute(text, &values),
            "run sh t.sh then minimal; keep {{.Go}} and {{unknown}}"
        );
        assert_eq!(substitute("{{a", &values), "{{a");
    }

    #[test]
    fn the_inputs_schema_lists_required_inputs() {
        let mut with_default = spec(InputType::Boolean);
        with_default.default = Some(InputValue::Boolean(false));
        let inputs = BTreeMap::from([
            ("flag".to_string(), with_default),
            ("level".to_string(), spec(InputType::Enum)),
        ]);
        let schema = inputs_schema(&inputs);
        assert_eq!(schema["required"], json!(["level"]));
        assert_eq!(
            schema["properties"]["flag"],
            json!({"type": "boolean", "default": false})
        );
        assert_eq!(
            schema["properties"]["level"]["enum"],
            json!(["patch", "minor"])
        );
    }
}
