//! What a playbook demands of the result beyond its checks: postconditions on the diff, and the
//! forbidden actions that test-tamper detection looks for.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::scalars::Glob;

/// A property the diff of a round must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Postcondition {
    /// The round changed at least one file.
    ChangesSomething,
    /// The round added or changed at least one test file (a reproduction, a regression test).
    AddsTests,
    /// At least one changed path matches one of these globs.
    Touches(Vec<Glob>),
}

impl Postcondition {
    pub fn name(&self) -> &'static str {
        match self {
            Self::ChangesSomething => "changes_something",
            Self::AddsTests => "adds_tests",
            Self::Touches(_) => "touches",
        }
    }
}

const POSTCONDITIONS: &str = "changes_something, adds_tests or touches: [globs]";

impl Serialize for Postcondition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Touches(globs) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("touches", globs)?;
                map.end()
            }
            other => serializer.serialize_str(other.name()),
        }
    }
}

impl<'de> Deserialize<'de> for Postcondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PostconditionVisitor;
        impl<'de> Visitor<'de> for PostconditionVisitor {
            type Value = Postcondition;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(POSTCONDITIONS)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Postcondition, E> {
                match v {
                    "changes_something" => Ok(Postcondition::ChangesSomething),
                    "adds_tests" => Ok(Postcondition::AddsTests),
                    other => Err(E::custom(format!(
                        "expected {POSTCONDITIONS}, got {other:?}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Postcondition, A::Error> {
                let key: Option<String> = map.next_key()?;
                if key.as_deref() != Some("touches") {
                    return Err(de::Error::custom(format!(
                        "expected {POSTCONDITIONS}, got a map with {key:?}"
                    )));
                }
                let globs: Vec<Glob> = map.next_value()?;
                if globs.is_empty() {
                    return Err(de::Error::custom("touches: expected at least one glob"));
                }
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "expected only `touches` in this map, got also {extra:?}"
                    )));
                }
                Ok(Postcondition::Touches(globs))
            }
        }
        deserializer.deserialize_any(PostconditionVisitor)
    }
}

impl JsonSchema for Postcondition {
    fn schema_name() -> Cow<'static, str> {
        "Postcondition".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let glob = generator.subschema_for::<Glob>();
        json_schema!({
            "oneOf": [
                {
                    "type": "string",
                    "enum": ["changes_something", "adds_tests"],
                    "description": "changes_something: the round changed at least one file; adds_tests: it added or changed a test file."
                },
                {
                    "type": "object",
                    "properties": {"touches": {"type": "array", "items": glob, "minItems": 1}},
                    "required": ["touches"],
                    "additionalProperties": false,
                    "description": "At least one changed path matches one of the globs."
                }
            ]
        })
    }
}

/// A way of passing the checks without doing the work; test-tamper detection looks for each
/// one the playbook forbids (all of them by default).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ForbiddenAction {
    /// Deleting a test file, or renaming it to a path that is not a test path.
    DeleteTests,
    /// Adding skip, ignore, xfail or focus markers (`#[ignore]`, `.skip(`, `@pytest.mark.skip`,
    /// `.only(`, an early `exit 0` in a shell test, ...).
    SkipTests,
    /// Leaving a test file with fewer assertions than before, or adding trivially true ones.
    WeakenAssertions,
    /// Lowering a coverage threshold or raising a lint limit in configuration.
    LowerThresholds,
    /// Adding lint suppressions (`#[allow(...)]`, `# noqa`, `eslint-disable`, ...).
    SuppressLints,
}

impl ForbiddenAction {
    pub const ALL: [ForbiddenAction; 5] = [
        Self::DeleteTests,
        Self::SkipTests,
        Self::WeakenAssertions,
        Self::LowerThresholds,
        Self::SuppressLints,
    ];

    pub fn all() -> Vec<ForbiddenAction> {
        Self::ALL.to_vec()
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::DeleteTests => "delete_tests",
            Self::SkipTests => "skip_tests",
            Self::WeakenAssertions => "weaken_assertions",
            Self::LowerThresholds => "lower_thresholds",
            Self::SuppressLints => "suppress_lints",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        post: Vec<Postcondition>,
    }

    #[test]
    fn postconditions_are_names_or_a_touches_map() {
        let doc: Doc =
            yaml_serde::from_str("post:\n  - adds_tests\n  - touches: ['docs/**']\n").unwrap();
        assert_eq!(doc.post[0], Postcondition::AddsTests);
        assert_eq!(
            doc.post[1],
            Postcondition::Touches(vec![Glob::new("docs/**").unwrap()])
        );
        let round_trip: Vec<Postcondition> =
            serde_json::from_value(serde_json::to_value(&doc.post).unwrap()).unwrap();
        assert_eq!(round_trip, doc.post);

        let cases = [
            (
                "post: [adds_test]",
                "post[0]: expected changes_something, adds_tests or touches: [globs], got \"adds_test\"",
            ),
            (
                "post: [{touch: [a]}]",
                "post[0]: expected changes_something, adds_tests or touches: [globs], got a map with Some(\"touch\")",
            ),
            (
                "post: [{touches: []}]",
                "post[0]: touches: expected at least one glob",
            ),
            (
                "post: [{touches: ['/abs']}]",
                "post[0].touches[0]: expected a glob relative to the repository root, got \"/abs\"",
            ),
        ];
        for (yaml, want) in cases {
            let err = yaml_serde::from_str::<Doc>(yaml).unwrap_err().to_string();
            assert!(err.starts_with(want), "{yaml}: {err}");
        }
    }

    #[test]
    fn forbidden_action_names_match_serde() {
        for action in ForbiddenAction::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), action.name());
        }
    }
}
