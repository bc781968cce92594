//! How a playbook's result is verified: setup and check commands, which files are tests, and the
//! red->green proof for bug fixes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalars::{Glob, globs};

/// Paths that hold tests, unless a playbook says otherwise; test-tamper detection and the
/// red->green proof read them.
pub const DEFAULT_TEST_PATHS: &[&str] = &[
    "**/test/**",
    "**/tests/**",
    "**/spec/**",
    "**/__tests__/**",
    "**/test_*",
    "**/test.*",
    "**/tests.*",
    "**/*_test.*",
    "**/*_tests.*",
    "**/*.test.*",
    "**/*.spec.*",
    "**/*_spec.*",
    "**/conftest.py",
];

/// The placeholder of `red_green.changed_tests` that names one test file.
pub const TEST_FILE_PLACEHOLDER: &str = "{file}";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Commands that prepare the workspace (parsed and carried; run by provisioning later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    /// Shell commands that must all exit 0 in the repository root for a round to pass.
    pub checks: Vec<String>,
    /// Asks for proof that the fix fixes something: the tests fail on the base commit and pass
    /// on the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_green: Option<RedGreen>,
    /// Which paths hold tests (default: the usual conventions, `tests/**`, `*_test.*`, ...).
    #[serde(default = "default_test_paths")]
    pub test_paths: Vec<Glob>,
}

pub fn default_test_paths() -> Vec<Glob> {
    globs(DEFAULT_TEST_PATHS)
}

/// The tests of a red->green proof: named commands, and a command per test file the agent
/// added or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedGreen {
    /// Commands that run the tests the fix is about (e.g. `{{test}}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// A command that runs one test file, with `{file}` for its path; it runs for every test
    /// file the agent added or changed (e.g. `sh {file}`, `pytest {file}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_tests: Option<String>,
}

impl Verification {
    /// Problems serde cannot see, as (field under `verification`, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.checks.is_empty() {
            problems.push((
                "checks".into(),
                "expected at least one check command".into(),
            ));
        }
        for (list, commands) in [("checks", &self.checks), ("setup", &self.setup)] {
            for (i, command) in commands.iter().enumerate() {
                if command.trim().is_empty() {
                    problems.push((
                        format!("{list}[{i}]"),
                        "expected a command, got a blank line".into(),
                    ));
                }
            }
        }
        if self.test_paths.is_empty() {
            problems.push(("test_paths".into(), "expected at least one glob".into()));
        }
        if let Some(red_green) = &self.red_green {
            if red_green.commands.is_empty() && red_green.changed_tests.is_none() {
                problems.push((
                    "red_green".into(),
                    "expected commands, changed_tests or both: the tests to prove the fix with"
                        .into(),
                ));
            }
            for (i, command) in red_green.commands.iter().enumerate() {
                if command.trim().is_empty() {
                    problems.push((
                        format!("red_green.commands[{i}]"),
                        "expected a command, got a blank line".into(),
                    ));
                }
            }
            // A template filled from an input is checked once resolved.
            if let Some(template) = &red_green.changed_tests
                && !template.contains(TEST_FILE_PLACEHOLDER)
                && super::inputs::placeholders(template).is_empty()
            {
                problems.push((
                    "red_green.changed_tests".into(),
                    format!("expected a command with {TEST_FILE_PLACEHOLDER} for the test file, got {template:?}"),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_test_paths_are_valid_and_match_the_usual_places() {
        for p in DEFAULT_TEST_PATHS {
            assert!(Glob::new(p).is_ok(), "{p}");
        }
        let mut builder = globset::GlobSetBuilder::new();
        for g in default_test_paths() {
            builder.add(g.matcher());
        }
        let set = builder.build().unwrap();
        for path in [
            "test.sh",
            "tests/div.sh",
            "src/foo_test.go",
            "web/a.test.ts",
            "pkg/tests/x/y.py",
            "test_calc.py",
        ] {
            assert!(set.is_match(path), "{path}");
        }
        for path in ["src/lib.rs", "docs/testing.md", "contest.py"] {
            assert!(!set.is_match(path), "{path}");
        }
    }

    #[test]
    fn red_green_needs_tests_and_a_file_placeholder() {
        let v: Verification =
            yaml_serde::from_str("checks: [make]\nred_green:\n  changed_tests: pytest\n").unwrap();
        assert_eq!(v.problems()[0].0, "red_green.changed_tests");
        let v: Verification = yaml_serde::from_str("checks: []\nred_green: {}\n").unwrap();
        let fields: Vec<String> = v.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["checks", "red_green"]);
    }
}
