//! A playbook's optional schedules and trigger routes. Parsed and validated here; the
//! schedule and trigger machinery that acts on them lives elsewhere.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::inputs::InputValue;
use super::scalars::Positive;

/// A run on a timetable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub cron: Cron,
    /// IANA time zone of the cron expression (default `UTC`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// The inputs of the scheduled runs; required inputs must be given here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputValue>,
    /// The repository the scheduled runs work on.
    pub repo: String,
    /// Pause the schedule after this many failed runs in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_after_failures: Option<Positive<u32>>,
}

fn utc() -> String {
    "UTC".into()
}

impl Schedule {
    /// Problems serde cannot see (other than inputs), as (field under the schedule, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let tz = &self.timezone;
        let valid_tz = !tz.is_empty()
            && tz
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
        if !valid_tz {
            problems.push((
                "timezone".into(),
                format!("expected an IANA time zone such as UTC or Europe/Paris, got {tz:?}"),
            ));
        }
        if self.repo.trim().is_empty() {
            problems.push(("repo".into(), "expected the repository to run on".into()));
        }
        problems
    }
}

/// Where else runs come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Issues carrying one of these labels start a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubTrigger>,
    /// Crash reports start an investigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<CrashTrigger>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubTrigger {
    pub labels: Vec<String>,
    /// The string input that receives the title and body (quoted, as data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrashTrigger {
    /// The string input that receives the crash report (quoted, as data).
    pub input: String,
}

/// A 5-field cron expression (`minute hour day-of-month month day-of-week`), or `@daily`,
/// `@hourly`, `@weekly`, `@monthly`, `@yearly`, or `@every <n><s|m|h|d>`, as Temporal
/// Schedules read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Cron(String);

impl Cron {
    pub fn new(expression: &str) -> Result<Cron, String> {
        check_cron(expression.trim())?;
        Ok(Cron(expression.trim().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CronVisitor;
        impl Visitor<'_> for CronVisitor {
            type Value = Cron;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a cron expression")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cron, E> {
                Cron::new(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(CronVisitor)
    }
}

impl JsonSchema for Cron {
    fn schema_name() -> Cow<'static, str> {
        "Cron".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "5-field cron (minute hour day-of-month month day-of-week), @daily, @hourly, @weekly, @monthly, @yearly or @every <n><s|m|h|d>."
        })
    }
}

const SHORTHANDS: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];
const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn check_cron(expression: &str) -> Result<(), String> {
    if SHORTHANDS.contains(&expression) {
        return Ok(());
    }
    if let Some(every) = expression.strip_prefix("@every ") {
        let every = every.trim();
        let (number, unit) = every.split_at(every.len().saturating_sub(1));
        if number.parse::<u32>().is_ok_and(|n| n > 0) && matches!(unit, "s" | "m" | "h" | "d") {
            return Ok(());
        }
        return Err(format!("expected @every <n><s|m|h|d>, got {expression:?}"));
    }
    let fields: Vec<&str> = expression.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected 5 cron fields (minute hour day-of-month month day-of-week) or a shorthand such as @daily, got {expression:?}"
        ));
    }
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day-of-month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day-of-week", 0, 7, DAYS, 0),
    ];
    for (field, (name, min, max, names, first)) in fields.iter().zip(specs) {
        check_field(field, min, max, names, first)
            .map_err(|why| format!("cron {name} {field:?}: {why}"))?;
    }
    Ok(())
}

fn check_field(field: &str, min: u32, max: u32, names: &[&str], first: u32) -> Result<(), String> {
    let value = |text: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(first + i as u32);
        }
        match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "expected a value from {min} to {max}, got {text:?}"
            )),
        }
    };
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step
            && !step.parse::<u32>().is_ok_and(|s| s > 0)
        {
            return Err(format!("expected a positive step, got {step:?}"));
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((low, high)) => {
                if value(low)? > value(high)? {
                    return Err(format!("range {range:?} runs backwards"));
                }
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_are_checked_field_by_field() {
        for good in [
            "0 6 * * 1",
            "*/15 * * * *",
            "0 9-17/2 1,15 jan-jun MON-FRI",
            "@daily",
            "@every 90m",
            "0 0 * * 7",
        ] {
            assert!(Cron::new(good).is_ok(), "{good}");
        }
        let bad = [
            ("0 6 * *", "expected 5 cron fields"),
            ("0 0 9 * * 1", "expected 5 cron fields"),
            (
                "60 * * * *",
                "cron minute \"60\": expected a value from 0 to 59, got \"60\"",
            ),
            ("* * 0 * *", "cron day-of-month \"0\""),
            (
                "* * * * */0",
                "cron day-of-week \"*/0\": expected a positive step",
            ),
            (
                "* 5-2 * * *",
                "cron hour \"5-2\": range \"5-2\" runs backwards",
            ),
            ("@every soon", "expected @every"),
            ("@sometimes", "expected 5 cron fields"),
        ];
        for (expression, want) in bad {
            let err = Cron::new(expression).unwrap_err();
            assert!(err.starts_with(want), "{expression}: {err}");
        }
    }

    #[test]
    fn schedules_default_to_utc_and_check_their_zone() {
        let s: Schedule = yaml_serde::from_str("cron: '@daily'\nrepo: /r.git").unwrap();
        assert_eq!(s.timezone, "UTC");
        assert!(s.problems().is_empty());
        let s: Schedule =
            yaml_serde::from_str("cron: '@daily'\nrepo: /r.git\ntimezone: 'Mars Base'").unwrap();
        assert_eq!(s.problems()[0].0, "timezone");
    }
}
