//! Scalar values of playbook files that check themselves while they are parsed, so that a bad
//! value is reported at its own line and column: the YAML parser attaches the place of the value
//! being read (and its field path) to any error raised while reading it.
//!
//! The same types travel in workflow payloads (they serialize as plain numbers and strings).

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A whole number of at least 1 (`T` is `u32` or `u64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Positive<T>(pub T);

impl<T: Copy> Positive<T> {
    pub fn get(self) -> T {
        self.0
    }
}

impl<T: Serialize> Serialize for Positive<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Positive<T>
where
    T: TryFrom<u64> + Copy,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PositiveVisitor<T>(std::marker::PhantomData<T>);
        impl<T: TryFrom<u64>> Visitor<'_> for PositiveVisitor<T> {
            type Value = Positive<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a positive integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                if v == 0 {
                    return Err(E::custom("expected a positive integer, got 0"));
                }
                T::try_from(v).map(Positive).map_err(|_| {
                    E::custom(format!("expected a positive integer, got {v}: too large"))
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("expected a positive integer, got {v}"))),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!("expected a positive integer, got {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Err(E::custom(format!("expected a positive integer, got {v:?}")))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Err(E::custom(format!("expected a positive integer, got {v}")))
            }
        }
        deserializer.deserialize_any(PositiveVisitor(std::marker::PhantomData))
    }
}

impl<T> JsonSchema for Positive<T> {
    fn schema_name() -> Cow<'static, str> {
        "PositiveInteger".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "minimum": 1})
    }
}

/// An amount of US dollars: a finite number above 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
pub struct Dollars(pub f64);

// Parsing rejects NaN, so equality is an equivalence (payload types derive Eq).
impl Eq for Dollars {}

impl<'de> Deserialize<'de> for Dollars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DollarsVisitor;
        impl Visitor<'_> for DollarsVisitor {
            type Value = Dollars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount of dollars above 0")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dollars, E> {
                if v.is_finite() && v > 0.0 {
                    Ok(Dollars(v))
                } else {
                    Err(E::custom(format!(
                        "expected an amount of dollars above 0, got {v}"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dollars, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dollars, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dollars, E> {
                Err(E::custom(format!(
                    "expected an amount of dollars above 0, got {v:?}"
                )))
            }
        }
        deserializer.deserialize_any(DollarsVisitor)
    }
}

impl JsonSchema for Dollars {
    fn schema_name() -> Cow<'static, str> {
        "Dollars".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "number", "exclusiveMinimum": 0})
    }
}

/// A path glob, matched against paths relative to the repository root: `*` and `?` stay inside
/// one directory, `**` spans directories (`docs/**`, `**/*.md`), `{a,b}` is either.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.trim().is_empty() {
            return Err("expected a path glob, got an empty string".into());
        }
        if pattern.starts_with('/') {
            return Err(format!(
                "expected a glob relative to the repository root, got {pattern:?}"
            ));
        }
        compile(pattern)
            .map(|_| Glob(pattern.to_string()))
            .map_err(|e| format!("invalid glob {pattern:?}: {}", e.kind()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The compiled matcher (checked at parse time, so this cannot fail).
    pub fn matcher(&self) -> globset::Glob {
        compile(&self.0).expect("globs are validated when they are made")
    }
}

fn compile(pattern: &str) -> Result<globset::Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Glob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GlobVisitor;
        impl Visitor<'_> for GlobVisitor {
            type Value = Glob;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path glob")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Glob, E> {
                Glob::new(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(GlobVisitor)
    }
}

impl JsonSchema for Glob {
    fn schema_name() -> Cow<'static, str> {
        "Glob".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A path glob relative to the repository root: `*` and `?` stay inside one directory, `**` spans directories, `{a,b}` is either."
        })
    }
}

/// Globs from string literals; for built-in defaults, which tests check are valid.
pub fn globs(patterns: &[&str]) -> Vec<Glob> {
    patterns.iter().map(|p| Glob(p.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        n: Positive<u32>,
    }

    #[test]
    fn positive_integers_name_what_they_got() {
        let cases = [
            ("n: 3", Ok(3)),
            (
                "n: 0",
                Err("n: expected a positive integer, got 0 at line 1 column 4"),
            ),
            (
                "n: -2",
                Err("n: expected a positive integer, got -2 at line 1 column 4"),
            ),
            (
                "n: three",
                Err("n: expected a positive integer, got \"three\" at line 1 column 4"),
            ),
            (
                "n: 2.5",
                Err("n: expected a positive integer, got 2.5 at line 1 column 4"),
            ),
            (
                "n: 4294967296",
                Err("n: expected a positive integer, got 4294967296: too large at line 1 column 4"),
            ),
        ];
        for (yaml, want) in cases {
            let got = yaml_serde::from_str::<Doc>(yaml)
                .map(|d| d.n.get())
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(String::from), "{yaml}");
        }
    }

    #[test]
    fn globs_are_checked_and_match_whole_relative_paths() {
        assert!(Glob::new("docs/**").is_ok());
        assert!(Glob::new("").is_err());
        assert!(Glob::new("/etc/**").is_err());
        assert!(Glob::new("src/[a").unwrap_err().contains("src/[a"));
        let md = Glob::new("*.md").unwrap().matcher().compile_matcher();
        assert!(md.is_match("README.md"));
        assert!(!md.is_match("docs/a.md"), "* stays in one directory");
        let deep = Glob::new("**/*.md").unwrap().matcher().compile_matcher();
        assert!(deep.is_match("README.md") && deep.is_match("docs/a/b.md"));
    }

    #[test]
    fn dollars_are_positive_and_finite() {
        #[derive(Debug, Deserialize)]
        struct D {
            d: Dollars,
        }
        assert_eq!(yaml_serde::from_str::<D>("d: 2.5").unwrap().d, Dollars(2.5));
        assert_eq!(yaml_serde::from_str::<D>("d: 3").unwrap().d, Dollars(3.0));
        for bad in ["d: 0", "d: -1", "d: .nan", "d: lots"] {
            assert!(yaml_serde::from_str::<D>(bad).is_err(), "{bad}");
        }
    }
}
