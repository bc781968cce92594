//! A playbook's review section: when a task may merge. Decided by [`crate::policy::merge`].

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::scalars::{Glob, Positive};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// When a task may merge (default `on_approval`).
    #[serde(default)]
    pub merge: MergePolicy,
    /// How long the gate waits for a decision, in seconds (default 7 days; a run may lower it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<Positive<u64>>,
}

/// When a task may merge. A requester's own approval never counts, whatever the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MergePolicy {
    /// Errand never merges: a person merges the branch outside; an approval ends the task
    /// `approved`.
    Never,
    /// Merge once a reviewer other than the requester approves.
    #[default]
    OnApproval,
    /// Merge without waiting for a reviewer when every condition holds (and the checks are
    /// green with no policy finding); otherwise wait for an approval.
    AutoWhen(AutoWhen),
}

/// The conditions of an automatic merge; at least one must be given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoWhen {
    /// Every changed path matches one of these (e.g. docs only: `docs/**`, `**/*.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<Glob>,
    /// At most this many lines added plus removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changed_lines: Option<Positive<u32>>,
    /// At most this many files changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changed_files: Option<Positive<u32>>,
}

const MERGE_POLICIES: &str = "never, on_approval or auto_when: {...}";

impl MergePolicy {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::OnApproval => "on_approval",
            Self::AutoWhen(_) => "auto_when",
        }
    }
}

impl Serialize for MergePolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::AutoWhen(conditions) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("auto_when", conditions)?;
                map.end()
            }
            other => serializer.serialize_str(other.name()),
        }
    }
}

impl<'de> Deserialize<'de> for MergePolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MergePolicyVisitor;
        impl<'de> Visitor<'de> for MergePolicyVisitor {
            type Value = MergePolicy;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(MERGE_POLICIES)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MergePolicy, E> {
                match v {
                    "never" => Ok(MergePolicy::Never),
                    "on_approval" => Ok(MergePolicy::OnApproval),
                    other => Err(E::custom(format!(
                        "expected {MERGE_POLICIES}, got {other:?}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MergePolicy, A::Error> {
                let key: Option<String> = map.next_key()?;
                if key.as_deref() != Some("auto_when") {
                    return Err(de::Error::custom(format!(
                        "expected {MERGE_POLICIES}, got a map with {key:?}"
                    )));
                }
                let conditions: AutoWhen = map.next_value()?;
                if conditions.paths.is_empty()
                    && conditions.max_changed_lines.is_none()
                    && conditions.max_changed_files.is_none()
                {
                    return Err(de::Error::custom(
                        "auto_when: expected at least one condition (paths, max_changed_lines, max_changed_files)",
                    ));
                }
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "expected only `auto_when` in this map, got also {extra:?}"
                    )));
                }
                Ok(MergePolicy::AutoWhen(conditions))
            }
        }
        deserializer.deserialize_any(MergePolicyVisitor)
    }
}

impl JsonSchema for MergePolicy {
    fn schema_name() -> Cow<'static, str> {
        "MergePolicy".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let auto_when = generator.subschema_for::<AutoWhen>();
        json_schema!({
            "oneOf": [
                {
                    "type": "string",
                    "enum": ["never", "on_approval"],
                    "description": "never: a person merges outside Errand; on_approval: merge once a reviewer other than the requester approves."
                },
                {
                    "type": "object",
                    "properties": {"auto_when": auto_when},
                    "required": ["auto_when"],
                    "additionalProperties": false,
                    "description": "Merge without a reviewer when every condition holds and the checks are green; otherwise wait for an approval."
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_policies_parse_and_round_trip() {
        let cases = [
            ("merge: never", MergePolicy::Never),
            ("{}", MergePolicy::OnApproval),
            (
                "merge:\n  auto_when:\n    paths: ['docs/**']\n    max_changed_lines: 200\n",
                MergePolicy::AutoWhen(AutoWhen {
                    paths: vec![Glob::new("docs/**").unwrap()],
                    max_changed_lines: Some(Positive(200)),
                    max_changed_files: None,
                }),
            ),
        ];
        for (yaml, want) in cases {
            let review: Review = yaml_serde::from_str(yaml).unwrap();
            assert_eq!(review.merge, want, "{yaml}");
            let json = serde_json::to_value(&review.merge).unwrap();
            assert_eq!(serde_json::from_value::<MergePolicy>(json).unwrap(), want);
        }
        let errors = [
            (
                "merge: sometimes",
                "merge: expected never, on_approval or auto_when: {...}, got \"sometimes\"",
            ),
            (
                "merge: {auto_when: {}}",
                "merge: auto_when: expected at least one condition",
            ),
            (
                "merge: {auto_when: {lines: 3}}",
                "merge.auto_when: unknown field `lines`",
            ),
        ];
        for (yaml, want) in errors {
            let err = yaml_serde::from_str::<Review>(yaml)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{yaml}: {err}");
        }
    }
}
