//! A finding: one rule of the policy that a round broke, with a message precise enough for the
//! agent to act on in the next round and for a reviewer to read in the report.

use serde::{Deserialize, Serialize};

use crate::contracts::CheckResult;

/// The rule a finding is about. Payload type: variants are only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    // boundary
    OutsideAllowedPaths,
    ForbiddenPath,
    CiConfigChanged,
    DependenciesChanged,
    TooManyFiles,
    TooManyLines,
    DiffTooLarge,
    // test tampering
    TestDeleted,
    TestRenamedAway,
    TestSkipped,
    AssertionsRemoved,
    TrivialAssertion,
    ThresholdLowered,
    LintSuppressed,
    // postconditions
    NoChanges,
    NoTestsAdded,
    RequiredPathsUntouched,
    // red->green
    NothingToProve,
    NotRedOnBase,
    NotGreenOnResult,
}

impl FindingKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::OutsideAllowedPaths => "outside_allowed_paths",
            Self::ForbiddenPath => "forbidden_path",
            Self::CiConfigChanged => "ci_config_changed",
            Self::DependenciesChanged => "dependencies_changed",
            Self::TooManyFiles => "too_many_files",
            Self::TooManyLines => "too_many_lines",
            Self::DiffTooLarge => "diff_too_large",
            Self::TestDeleted => "test_deleted",
            Self::TestRenamedAway => "test_renamed_away",
            Self::TestSkipped => "test_skipped",
            Self::AssertionsRemoved => "assertions_removed",
            Self::TrivialAssertion => "trivial_assertion",
            Self::ThresholdLowered => "threshold_lowered",
            Self::LintSuppressed => "lint_suppressed",
            Self::NoChanges => "no_changes",
            Self::NoTestsAdded => "no_tests_added",
            Self::RequiredPathsUntouched => "required_paths_untouched",
            Self::NothingToProve => "nothing_to_prove",
            Self::NotRedOnBase => "not_red_on_base",
            Self::NotGreenOnResult => "not_green_on_result",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The path the finding is about, if it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What is wrong and which rule says so.
    pub message: String,
}

impl Finding {
    pub fn new(kind: FindingKind, path: Option<&str>, message: impl Into<String>) -> Finding {
        Finding {
            kind,
            path: path.map(str::to_string),
            message: message.into(),
        }
    }

    /// The finding as a failed check, the way the store and the API list a round's checks.
    pub fn as_check(&self) -> CheckResult {
        let command = match &self.path {
            Some(path) => format!("policy: {} ({path})", self.kind),
            None => format!("policy: {}", self.kind),
        };
        CheckResult {
            command,
            exit_code: Some(1),
            timed_out: false,
            duration_ms: 0,
            output_tail: self.message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_serde() {
        let kinds = [
            FindingKind::OutsideAllowedPaths,
            FindingKind::TestSkipped,
            FindingKind::NotRedOnBase,
        ];
        for kind in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        let check =
            Finding::new(FindingKind::TestDeleted, Some("tests/a.rs"), "deleted").as_check();
        assert_eq!(check.command, "policy: test_deleted (tests/a.rs)");
        assert!(!check.passed());
    }
}
