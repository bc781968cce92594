//! Test-tamper detection: ways of passing the checks without doing the work, each a named
//! finding when the playbook forbids it. Reads the statuses and changed lines of a diff; counts
//! are per file (lines removed against lines added), so a moved assertion is not a finding.

use std::collections::BTreeMap;

use super::finding::{Finding, FindingKind};
use super::markers::{self, Language, Loosens};
use super::paths::PathSet;
use crate::contracts::{ChangeStatus, DiffSummary, FileChange};
use crate::playbook::ForbiddenAction;

pub fn evaluate(
    forbidden: &[ForbiddenAction],
    tests: &PathSet,
    diff: &DiffSummary,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in &diff.files {
        for action in ForbiddenAction::ALL {
            if forbidden.contains(&action) {
                findings.extend(check(action, file, tests));
            }
        }
    }
    findings
}

fn check(action: ForbiddenAction, file: &FileChange, tests: &PathSet) -> Vec<Finding> {
    let path = file.path.as_str();
    let is_test = tests.is_match(path);
    let language = Language::of(path);
    let rule = action.name();
    // A deleted file is judged by its deletion alone; its removed lines are not a weakening.
    if file.status == ChangeStatus::Deleted && action != ForbiddenAction::DeleteTests {
        return vec![];
    }
    match action {
        ForbiddenAction::DeleteTests => deleted_or_renamed_away(file, tests),
        ForbiddenAction::SkipTests => {
            let marker = |line: &str| markers::is_skip_marker(language, line, is_test);
            match net_added(file, marker) {
                Some(line) => vec![Finding::new(
                    FindingKind::TestSkipped,
                    Some(path),
                    format!(
                        "{path}: adds a skip marker `{}` (forbidden action {rule}): run the test and make it pass instead",
                        line.trim()
                    ),
                )],
                None => vec![],
            }
        }
        ForbiddenAction::WeakenAssertions if is_test => weakened_assertions(file, language, rule),
        ForbiddenAction::WeakenAssertions => vec![],
        ForbiddenAction::LowerThresholds => lowered_thresholds(file, rule),
        ForbiddenAction::SuppressLints => {
            let marker = |line: &str| markers::is_lint_suppression(language, line);
            match net_added(file, marker) {
                Some(line) => vec![Finding::new(
                    FindingKind::LintSuppressed,
                    Some(path),
                    format!(
                        "{path}: adds a lint suppression `{}` (forbidden action {rule}): fix what the linter reports instead",
                        line.trim()
                    ),
                )],
                None => vec![],
            }
        }
    }
}

fn deleted_or_renamed_away(file: &FileChange, tests: &PathSet) -> Vec<Finding> {
    let rule = ForbiddenAction::DeleteTests.name();
    match (file.status, &file.old_path) {
        (ChangeStatus::Deleted, _) if tests.is_match(&file.path) => vec![Finding::new(
            FindingKind::TestDeleted,
            Some(&file.path),
            format!(
                "{}: deletes a test file (forbidden action {rule}): restore it",
                file.path
            ),
        )],
        (ChangeStatus::Renamed, Some(old))
            if tests.is_match(old) && !tests.is_match(&file.path) =>
        {
            vec![Finding::new(
                FindingKind::TestRenamedAway,
                Some(old),
                format!(
                    "{old}: renamed to {}, which is not a test path, so it no longer runs as a test (forbidden action {rule}): restore it",
                    file.path
                ),
            )]
        }
        _ => vec![],
    }
}

fn weakened_assertions(file: &FileChange, language: Language, rule: &str) -> Vec<Finding> {
    let Some(lines) = &file.lines else {
        return vec![];
    };
    let path = file.path.as_str();
    let count = |side: &[String]| {
        side.iter()
            .filter(|l| markers::is_assertion(language, l))
            .count()
    };
    let (removed, added) = (count(&lines.removed), count(&lines.added));
    let mut findings = Vec::new();
    if removed > added {
        findings.push(Finding::new(
            FindingKind::AssertionsRemoved,
            Some(path),
            format!(
                "{path}: {} fewer assertion(s) than before ({removed} removed, {added} added) (forbidden action {rule}): keep every assertion",
                removed - added
            ),
        ));
    }
    if let Some(line) = net_added(file, markers::is_trivial_assertion) {
        findings.push(Finding::new(
            FindingKind::TrivialAssertion,
            Some(path),
            format!("{path}: adds an assertion that is always true `{}` (forbidden action {rule}): assert the behaviour", line.trim()),
        ));
    }
    findings
}

fn lowered_thresholds(file: &FileChange, rule: &str) -> Vec<Finding> {
    let Some(lines) = &file.lines else {
        return vec![];
    };
    let path = file.path.as_str();
    let settings = |side: &[String]| -> BTreeMap<String, (f64, Loosens, String)> {
        side.iter()
            .filter_map(|l| {
                markers::threshold(path, l).map(|(k, v, d)| (k, (v, d, l.trim().to_string())))
            })
            .collect()
    };
    let (before, after) = (settings(&lines.removed), settings(&lines.added));
    let mut findings = Vec::new();
    for (key, (old, loosens, old_line)) in before {
        let verdict = match after.get(&key) {
            None => Some(format!("removes `{old_line}`")),
            Some((new, _, _)) if loosens == Loosens::WhenLowered && new < &old => {
                Some(format!("lowers {key} from {old} to {new}"))
            }
            Some((new, _, _)) if loosens == Loosens::WhenRaised && new > &old => {
                Some(format!("raises {key} from {old} to {new}"))
            }
            Some(_) => None,
        };
        if let Some(what) = verdict {
            findings.push(Finding::new(
                FindingKind::ThresholdLowered,
                Some(path),
                format!(
                    "{path}: {what}, loosening a quality gate (forbidden action {rule}): restore it"
                ),
            ));
        }
    }
    findings
}

/// The first line matching `marker` among the added lines, when the file gains more of them
/// than it loses.
fn net_added(file: &FileChange, marker: impl Fn(&str) -> bool) -> Option<&str> {
    let lines = file.lines.as_ref()?;
    let removed = lines.removed.iter().filter(|l| marker(l)).count();
    let added = lines.added.iter().filter(|l| marker(l));
    let first = added.clone().next()?;
    (added.count() > removed).then_some(first.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::ChangedLines;
    use crate::playbook::verification::DEFAULT_TEST_PATHS;

    fn file(path: &str, status: ChangeStatus, removed: &[&str], added: &[&str]) -> FileChange {
        FileChange {
            path: path.into(),
            old_path: None,
            status,
            lines_added: added.len() as u32,
            lines_removed: removed.len() as u32,
            binary: false,
            lines: Some(ChangedLines {
                removed: removed.iter().map(|s| s.to_string()).collect(),
                added: added.iter().map(|s| s.to_string()).collect(),
                truncated: false,
            }),
        }
    }

    fn findings(
        files: Vec<FileChange>,
        forbidden: &[ForbiddenAction],
    ) -> Vec<(FindingKind, String)> {
        let diff = DiffSummary {
            base_commit: "b".into(),
            files,
            ..DiffSummary::default()
        };
        evaluate(forbidden, &PathSet::of(DEFAULT_TEST_PATHS), &diff)
            .into_iter()
            .map(|f| (f.kind, f.path.unwrap_or_default()))
            .collect()
    }

    /// A case: its name, the changed files, the findings wanted.
    type Case = (&'static str, Vec<FileChange>, Vec<(FindingKind, String)>);

    #[test]
    fn tamper_rules_on_a_table_of_diffs() {
        use ChangeStatus::*;
        use FindingKind::*;
        let all = ForbiddenAction::ALL;
        let mut renamed_away = file("attic/add.sh.bak", Renamed, &[], &[]);
        renamed_away.old_path = Some("tests/test_add.sh".into());
        let mut renamed_within = file("tests/test_sum.sh", Renamed, &[], &[]);
        renamed_within.old_path = Some("tests/test_add.sh".into());
        let p = |s: &str| s.to_string();
        let cases: Vec<Case> = vec![
            (
                "a fix in the code",
                vec![file(
                    "calc.sh",
                    Modified,
                    &["echo $((a - b))"],
                    &["echo $((a + b))"],
                )],
                vec![],
            ),
            (
                "a deleted test",
                vec![file(
                    "tests/test_add.py",
                    Deleted,
                    &["assert add(1, 2) == 3"],
                    &[],
                )],
                vec![(TestDeleted, p("tests/test_add.py"))],
            ),
            (
                "a deleted non-test",
                vec![file("notes.txt", Deleted, &[], &[])],
                vec![],
            ),
            (
                "a test renamed away",
                vec![renamed_away],
                vec![(TestRenamedAway, p("tests/test_add.sh"))],
            ),
            ("a test renamed to a test", vec![renamed_within], vec![]),
            (
                "an ignore in rust",
                vec![file("src/lib.rs", Modified, &[], &["    #[ignore]"])],
                vec![(TestSkipped, p("src/lib.rs"))],
            ),
            (
                "an ignore moved, not added",
                vec![file("tests/a.rs", Modified, &["#[ignore]"], &["#[ignore]"])],
                vec![],
            ),
            (
                "an early exit in a shell test",
                vec![file("test.sh", Modified, &[], &["exit 0"])],
                vec![(TestSkipped, p("test.sh"))],
            ),
            (
                "pytest skip",
                vec![file(
                    "tests/test_x.py",
                    Modified,
                    &[],
                    &["@pytest.mark.skip(reason='flaky')"],
                )],
                vec![(TestSkipped, p("tests/test_x.py"))],
            ),
            (
                "an assertion removed",
                vec![file("test.sh", Modified, &["check add 2 3 5"], &[])],
                vec![(AssertionsRemoved, p("test.sh"))],
            ),
            (
                "an assertion rewritten",
                vec![file(
                    "tests/a_test.go",
                    Modified,
                    &["\tt.Errorf(\"x\")"],
                    &["\tt.Fatalf(\"y\")"],
                )],
                vec![],
            ),
            (
                "an always-true assertion",
                vec![file(
                    "tests/test_a.py",
                    Modified,
                    &["assert add(1, 2) == 3"],
                    &["assert True"],
                )],
                vec![(TrivialAssertion, p("tests/test_a.py"))],
            ),
            (
                "assertions removed outside tests do not count",
                vec![file("src/lib.rs", Modified, &["debug_assert!(x)"], &[])],
                vec![],
            ),
            (
                "coverage lowered",
                vec![file(
                    "pyproject.toml",
                    Modified,
                    &["fail_under = 90"],
                    &["fail_under = 80"],
                )],
                vec![(ThresholdLowered, p("pyproject.toml"))],
            ),
            (
                "coverage raised",
                vec![file(
                    "pyproject.toml",
                    Modified,
                    &["fail_under = 80"],
                    &["fail_under = 90"],
                )],
                vec![],
            ),
            (
                "lint limit raised",
                vec![file(
                    ".eslintrc.json",
                    Modified,
                    &["\"max-warnings\": 0,"],
                    &["\"max-warnings\": 10,"],
                )],
                vec![(ThresholdLowered, p(".eslintrc.json"))],
            ),
            (
                "threshold removed",
                vec![file("setup.cfg", Modified, &["fail_under = 90"], &[])],
                vec![(ThresholdLowered, p("setup.cfg"))],
            ),
            (
                "a lint suppression",
                vec![file(
                    "src/main.rs",
                    Modified,
                    &[],
                    &["#[allow(clippy::unwrap_used)]"],
                )],
                vec![(LintSuppressed, p("src/main.rs"))],
            ),
        ];
        for (name, files, want) in cases {
            assert_eq!(findings(files, &all), want, "{name}");
        }
    }

    #[test]
    fn only_forbidden_actions_are_findings() {
        let skip = file("tests/a.rs", ChangeStatus::Modified, &[], &["#[ignore]"]);
        assert!(findings(vec![skip.clone()], &[ForbiddenAction::DeleteTests]).is_empty());
        assert_eq!(findings(vec![skip], &[ForbiddenAction::SkipTests]).len(), 1);
    }

    #[test]
    fn messages_quote_the_marker_and_name_the_rule() {
        let diff = DiffSummary {
            files: vec![file("test.sh", ChangeStatus::Modified, &[], &["  exit 0"])],
            ..DiffSummary::default()
        };
        let found = evaluate(
            &ForbiddenAction::all(),
            &PathSet::of(DEFAULT_TEST_PATHS),
            &diff,
        );
        assert_eq!(
            found[0].message,
            "test.sh: adds a skip marker `exit 0` (forbidden action skip_tests): run the test and make it pass instead"
        );
    }
}
