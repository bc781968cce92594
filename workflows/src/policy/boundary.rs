//! The boundary over a diff: allowed and forbidden paths, CI configuration, dependencies, and
//! the size limits.

use std::collections::BTreeSet;

use super::finding::{Finding, FindingKind};
use super::paths::PathSet;
use crate::contracts::DiffSummary;
use crate::playbook::boundary::{CI_CONFIG_PATHS, DEPENDENCY_PATHS};
use crate::playbook::{Boundary, Permission};

pub fn evaluate(boundary: &Boundary, diff: &DiffSummary) -> Vec<Finding> {
    let mut findings = Vec::new();
    if diff.files_omitted > 0 {
        findings.push(Finding::new(
            FindingKind::DiffTooLarge,
            None,
            format!(
                "{} changed files, more than can be inspected; {} were not checked against the boundary",
                diff.changed_files(),
                diff.files_omitted
            ),
        ));
    }
    let allowed = PathSet::new(&boundary.allowed_paths);
    let forbidden = PathSet::new(&boundary.forbidden_paths);
    let ci = PathSet::of(CI_CONFIG_PATHS);
    let dependencies = PathSet::of(DEPENDENCY_PATHS);
    let paths: BTreeSet<&str> = diff.touched_paths().collect();
    for path in paths {
        if !allowed.matches_everything() && !allowed.is_match(path) {
            findings.push(Finding::new(
                FindingKind::OutsideAllowedPaths,
                Some(path),
                format!(
                    "{path} is outside the allowed paths ({}; boundary.allowed_paths): leave it unchanged",
                    allowed.describe()
                ),
            ));
        }
        if forbidden.is_match(path) {
            findings.push(Finding::new(
                FindingKind::ForbiddenPath,
                Some(path),
                format!(
                    "{path} is a forbidden path ({}; boundary.forbidden_paths): restore it",
                    forbidden.describe()
                ),
            ));
        }
        if boundary.ci_config == Permission::Forbid && ci.is_match(path) {
            findings.push(Finding::new(
                FindingKind::CiConfigChanged,
                Some(path),
                format!(
                    "{path} is CI configuration, which this task may not change (boundary.ci_config: forbid): restore it"
                ),
            ));
        }
        if boundary.dependencies == Permission::Forbid && dependencies.is_match(path) {
            findings.push(Finding::new(
                FindingKind::DependenciesChanged,
                Some(path),
                format!(
                    "{path} declares or locks dependencies, which this task may not change (boundary.dependencies: forbid): restore it"
                ),
            ));
        }
    }
    if let Some(max) = boundary.max_changed_files
        && diff.changed_files() > u64::from(max.get())
    {
        findings.push(Finding::new(
            FindingKind::TooManyFiles,
            None,
            format!(
                "{} files changed, more than the {} allowed (boundary.max_changed_files): make a smaller change",
                diff.changed_files(),
                max.get()
            ),
        ));
    }
    if let Some(max) = boundary.max_changed_lines
        && diff.changed_lines() > u64::from(max.get())
    {
        findings.push(Finding::new(
            FindingKind::TooManyLines,
            None,
            format!(
                "{} lines changed (+{} -{}), more than the {} allowed (boundary.max_changed_lines): make a smaller change",
                diff.changed_lines(),
                diff.lines_added,
                diff.lines_removed,
                max.get()
            ),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{ChangeStatus, FileChange};
    use crate::playbook::{Positive, scalars::globs};

    fn change(path: &str, status: ChangeStatus, added: u32, removed: u32) -> FileChange {
        FileChange {
            path: path.into(),
            old_path: None,
            status,
            lines_added: added,
            lines_removed: removed,
            binary: false,
            lines: None,
        }
    }

    fn diff(files: Vec<FileChange>) -> DiffSummary {
        DiffSummary {
            base_commit: "b".into(),
            lines_added: files.iter().map(|f| u64::from(f.lines_added)).sum(),
            lines_removed: files.iter().map(|f| u64::from(f.lines_removed)).sum(),
            files,
            files_omitted: 0,
        }
    }

    fn kinds(boundary: &Boundary, d: &DiffSummary) -> Vec<(FindingKind, Option<String>)> {
        evaluate(boundary, d)
            .into_iter()
            .map(|f| (f.kind, f.path))
            .collect()
    }

    /// A case: its name, the boundary, the diff, the findings wanted.
    type Case<'a> = (
        &'a str,
        &'a Boundary,
        DiffSummary,
        Vec<(FindingKind, Option<String>)>,
    );

    #[test]
    fn boundary_rules_on_a_table_of_diffs() {
        use ChangeStatus::*;
        use FindingKind::*;
        let docs_only = Boundary {
            allowed_paths: globs(&["docs/**", "**/*.md"]),
            forbidden_paths: globs(&["docs/secret/**"]),
            ..Boundary::default()
        };
        let small = Boundary {
            max_changed_files: Some(Positive(1)),
            max_changed_lines: Some(Positive(10)),
            ..Boundary::default()
        };
        let lenient = Boundary {
            ci_config: Permission::Allow,
            dependencies: Permission::Allow,
            ..Boundary::default()
        };
        let p = |s: &str| Some(s.to_string());
        let default = Boundary::default();
        let mut renamed = change("docs/b.md", Renamed, 0, 0);
        renamed.old_path = Some("src/b.md.txt".into());
        let cases: Vec<Case> = vec![
            (
                "docs inside docs",
                &docs_only,
                diff(vec![change("docs/a.md", Modified, 3, 1)]),
                vec![],
            ),
            (
                "code outside docs",
                &docs_only,
                diff(vec![change("src/main.rs", Modified, 1, 1)]),
                vec![(OutsideAllowedPaths, p("src/main.rs"))],
            ),
            (
                "both sides of a rename",
                &docs_only,
                diff(vec![renamed]),
                vec![(OutsideAllowedPaths, p("src/b.md.txt"))],
            ),
            (
                "forbidden inside allowed",
                &docs_only,
                diff(vec![change("docs/secret/k.md", Added, 1, 0)]),
                vec![(ForbiddenPath, p("docs/secret/k.md"))],
            ),
            (
                "ci config by default",
                &default,
                diff(vec![change(".github/workflows/ci.yml", Modified, 1, 1)]),
                vec![(CiConfigChanged, p(".github/workflows/ci.yml"))],
            ),
            (
                "lockfile by default",
                &default,
                diff(vec![change("Cargo.lock", Modified, 5, 5)]),
                vec![(DependenciesChanged, p("Cargo.lock"))],
            ),
            (
                "nested manifest",
                &default,
                diff(vec![change("web/package.json", Modified, 1, 1)]),
                vec![(DependenciesChanged, p("web/package.json"))],
            ),
            (
                "allowed when the playbook says so",
                &lenient,
                diff(vec![
                    change(".gitlab-ci.yml", Modified, 1, 1),
                    change("go.sum", Modified, 2, 2),
                ]),
                vec![],
            ),
            (
                "too many files and lines",
                &small,
                diff(vec![change("a", Added, 8, 0), change("b", Added, 3, 0)]),
                vec![(TooManyFiles, None), (TooManyLines, None)],
            ),
            (
                "limits hold",
                &small,
                diff(vec![change("a", Modified, 5, 5)]),
                vec![],
            ),
        ];
        for (name, boundary, d, want) in cases {
            assert_eq!(kinds(boundary, &d), want, "{name}");
        }
    }

    #[test]
    fn messages_say_what_to_do_and_which_rule() {
        let d = diff(vec![change(
            ".github/workflows/ci.yml",
            ChangeStatus::Modified,
            1,
            1,
        )]);
        let f = &evaluate(&Boundary::default(), &d)[0];
        assert_eq!(
            f.message,
            ".github/workflows/ci.yml is CI configuration, which this task may not change (boundary.ci_config: forbid): restore it"
        );
        let mut big = diff(vec![]);
        big.files_omitted = 3;
        assert_eq!(
            evaluate(&Boundary::default(), &big)[0].kind,
            FindingKind::DiffTooLarge
        );
    }
}
