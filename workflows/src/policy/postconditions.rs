//! Postconditions: properties the diff of a round must have.

use super::finding::{Finding, FindingKind};
use super::paths::PathSet;
use crate::contracts::{ChangeStatus, DiffSummary};
use crate::playbook::Postcondition;

pub fn evaluate(
    postconditions: &[Postcondition],
    tests: &PathSet,
    diff: &DiffSummary,
) -> Vec<Finding> {
    postconditions
        .iter()
        .filter_map(|p| check(p, tests, diff))
        .collect()
}

fn check(postcondition: &Postcondition, tests: &PathSet, diff: &DiffSummary) -> Option<Finding> {
    match postcondition {
        Postcondition::ChangesSomething => (diff.changed_files() == 0).then(|| {
            Finding::new(
                FindingKind::NoChanges,
                None,
                "nothing changed against the base commit (postcondition changes_something): make the change the task asks for",
            )
        }),
        Postcondition::AddsTests => {
            let adds = diff
                .files
                .iter()
                .any(|f| f.status != ChangeStatus::Deleted && tests.is_match(&f.path));
            (!adds).then(|| {
                Finding::new(
                    FindingKind::NoTestsAdded,
                    None,
                    format!(
                        "no test file was added or changed (postcondition adds_tests; test paths: {}): add a test that shows the problem",
                        tests.describe()
                    ),
                )
            })
        }
        Postcondition::Touches(globs) => {
            let wanted = PathSet::new(globs);
            let touched = diff.touched_paths().any(|p| wanted.is_match(p));
            (!touched).then(|| {
                Finding::new(
                    FindingKind::RequiredPathsUntouched,
                    None,
                    format!(
                        "no changed path matches {} (postcondition touches): the task is about those files",
                        wanted.describe()
                    ),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::FileChange;
    use crate::playbook::scalars::globs;
    use crate::playbook::verification::DEFAULT_TEST_PATHS;

    fn diff(changes: &[(&str, ChangeStatus)]) -> DiffSummary {
        DiffSummary {
            files: changes
                .iter()
                .map(|(path, status)| FileChange {
                    path: path.to_string(),
                    old_path: None,
                    status: *status,
                    lines_added: 1,
                    lines_removed: 0,
                    binary: false,
                    lines: None,
                })
                .collect(),
            ..DiffSummary::default()
        }
    }

    #[test]
    fn postconditions_on_a_table_of_diffs() {
        use ChangeStatus::*;
        use FindingKind::*;
        let tests = PathSet::of(DEFAULT_TEST_PATHS);
        let docs = Postcondition::Touches(globs(&["docs/**"]));
        let cases = [
            (Postcondition::ChangesSomething, diff(&[]), Some(NoChanges)),
            (
                Postcondition::ChangesSomething,
                diff(&[("a", Modified)]),
                None,
            ),
            (
                Postcondition::AddsTests,
                diff(&[("src/div.sh", Modified)]),
                Some(NoTestsAdded),
            ),
            (
                Postcondition::AddsTests,
                diff(&[("tests/test_div.sh", Added)]),
                None,
            ),
            (
                Postcondition::AddsTests,
                diff(&[("tests/test_div.sh", Deleted)]),
                Some(NoTestsAdded),
            ),
            (
                docs.clone(),
                diff(&[("README.md", Modified)]),
                Some(RequiredPathsUntouched),
            ),
            (docs, diff(&[("docs/usage.md", Modified)]), None),
        ];
        for (postcondition, d, want) in cases {
            let got = evaluate(std::slice::from_ref(&postcondition), &tests, &d)
                .first()
                .map(|f| f.kind);
            assert_eq!(got, want, "{postcondition:?} on {:?}", d.files);
        }
    }
}
