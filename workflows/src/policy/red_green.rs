//! Red->green: proof that a fix fixes something. The tests the playbook names, and every test
//! file the agent added or changed, must fail on the base commit (with the agent's test files
//! laid over it) and pass on the result.

use super::finding::{Finding, FindingKind};
use super::paths::PathSet;
use crate::contracts::{ChangeStatus, DiffSummary, RedGreenProof, RedGreenTest};
use crate::playbook::RedGreen;
use crate::playbook::verification::TEST_FILE_PLACEHOLDER;

/// More changed test files than this are not each run twice; the first ones are.
pub const MAX_CHANGED_TESTS: usize = 20;

/// What to run for a proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub tests: Vec<RedGreenTest>,
    /// Test files the agent added or changed, to lay over the base commit.
    pub test_files: Vec<String>,
}

pub fn plan(spec: &RedGreen, tests: &PathSet, diff: &DiffSummary) -> Plan {
    let test_files: Vec<String> = diff
        .files
        .iter()
        .filter(|f| f.status != ChangeStatus::Deleted && !f.binary && tests.is_match(&f.path))
        .map(|f| f.path.clone())
        .collect();
    let mut runs: Vec<RedGreenTest> = spec
        .commands
        .iter()
        .map(|command| RedGreenTest {
            command: command.clone(),
            test_file: None,
        })
        .collect();
    if let Some(template) = &spec.changed_tests {
        runs.extend(
            test_files
                .iter()
                .take(MAX_CHANGED_TESTS)
                .map(|file| RedGreenTest {
                    command: template.replace(TEST_FILE_PLACEHOLDER, &shell_word(file)),
                    test_file: Some(file.clone()),
                }),
        );
    }
    Plan {
        tests: runs,
        test_files,
    }
}

/// A plan with nothing to run proves nothing.
pub fn nothing_to_prove(spec: &RedGreen) -> Finding {
    let what = if spec.changed_tests.is_some() {
        "add or change a test file that shows the bug"
    } else {
        "the playbook names no test"
    };
    Finding::new(
        FindingKind::NothingToProve,
        None,
        format!("red->green: no test to prove the fix with ({what})"),
    )
}

pub fn evaluate(proof: &RedGreenProof) -> Vec<Finding> {
    let mut findings = Vec::new();
    for run in &proof.runs {
        let path = run.test_file.as_deref();
        if run.on_base.passed() {
            findings.push(Finding::new(
                FindingKind::NotRedOnBase,
                path,
                format!(
                    "red->green: `{}` already passes on the base commit {}, so it does not show the bug: make the test fail without the fix",
                    run.command,
                    short(&proof.base_commit)
                ),
            ));
        }
        if !run.on_result.passed() {
            findings.push(Finding::new(
                FindingKind::NotGreenOnResult,
                path,
                format!(
                    "red->green: `{}` fails on the result ({}): make it pass\n{}",
                    run.command,
                    outcome(&run.on_result),
                    run.on_result.output_tail.trim_end()
                ),
            ));
        }
    }
    findings
}

/// One line per test, for the report: what failed on the base and passed on the result.
pub fn describe(proof: &RedGreenProof) -> Vec<String> {
    proof
        .runs
        .iter()
        .map(|run| {
            let proven = !run.on_base.passed() && run.on_result.passed();
            format!(
                "{} `{}`: {} on base {}, {} on the result",
                if proven { "proven" } else { "NOT proven" },
                run.command,
                outcome(&run.on_base),
                short(&proof.base_commit),
                outcome(&run.on_result)
            )
        })
        .collect()
}

fn outcome(check: &crate::contracts::CheckResult) -> String {
    match (check.timed_out, check.exit_code) {
        (true, _) => "timed out".into(),
        (false, Some(0)) => "passes".into(),
        (false, Some(code)) => format!("fails (exit {code})"),
        (false, None) => "killed by a signal".into(),
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// `path` as one shell word: as is when it is plain, else single-quoted.
fn shell_word(path: &str) -> String {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if plain {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{CheckResult, FileChange, RedGreenRun};
    use crate::playbook::verification::DEFAULT_TEST_PATHS;

    fn check(code: i32) -> CheckResult {
        CheckResult {
            command: "t".into(),
            exit_code: Some(code),
            timed_out: false,
            duration_ms: 1,
            output_tail: "out".into(),
        }
    }

    fn changed(path: &str, status: ChangeStatus) -> FileChange {
        FileChange {
            path: path.into(),
            old_path: None,
            status,
            lines_added: 1,
            lines_removed: 0,
            binary: false,
            lines: None,
        }
    }

    #[test]
    fn plans_run_named_commands_and_each_changed_test_file() {
        let spec = RedGreen {
            commands: vec!["sh test.sh".into()],
            changed_tests: Some("sh {file}".into()),
        };
        let diff = DiffSummary {
            files: vec![
                changed("calc.sh", ChangeStatus::Modified),
                changed("tests/test_div.sh", ChangeStatus::Added),
                changed("tests/it's.sh", ChangeStatus::Added),
                changed("tests/test_old.sh", ChangeStatus::Deleted),
            ],
            ..DiffSummary::default()
        };
        let plan = plan(&spec, &PathSet::of(DEFAULT_TEST_PATHS), &diff);
        let commands: Vec<&str> = plan.tests.iter().map(|t| t.command.as_str()).collect();
        assert_eq!(
            commands,
            [
                "sh test.sh",
                "sh tests/test_div.sh",
                r"sh 'tests/it'\''s.sh'"
            ]
        );
        assert_eq!(plan.test_files, ["tests/test_div.sh", "tests/it's.sh"]);
    }

    #[test]
    fn a_proof_needs_red_on_base_and_green_on_the_result() {
        let run = |base: i32, result: i32| RedGreenRun {
            command: "sh test.sh".into(),
            test_file: None,
            on_base: check(base),
            on_result: check(result),
        };
        let kinds = |runs: Vec<RedGreenRun>| -> Vec<FindingKind> {
            evaluate(&RedGreenProof {
                base_commit: "0123456789abcdef".into(),
                runs,
            })
            .into_iter()
            .map(|f| f.kind)
            .collect()
        };
        assert_eq!(kinds(vec![run(1, 0)]), []);
        assert_eq!(kinds(vec![run(0, 0)]), [FindingKind::NotRedOnBase]);
        assert_eq!(kinds(vec![run(1, 1)]), [FindingKind::NotGreenOnResult]);
        assert_eq!(
            describe(&RedGreenProof {
                base_commit: "0123456789abcdef".into(),
                runs: vec![run(1, 0)]
            }),
            ["proven `sh test.sh`: fails (exit 1) on base 0123456789ab, passes on the result"]
        );
    }
}
