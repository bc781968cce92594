//! The diff summary of a workspace against its base commit, read through git on the host (with
//! the hooks-free, config-isolated `Git`): every changed path with its status and line counts,
//! and the removed and added lines of the files worth inspecting for test tampering, within
//! fixed size limits. Judging the diff is `workflows::policy`'s business.

use std::collections::BTreeMap;
use std::path::Path;

use workflows::contracts::{
    ChangeStatus, ChangedLines, DiffSummary, FileChange, MAX_DIFF_FILE_LINES_BYTES, MAX_DIFF_FILES,
    MAX_DIFF_LINE_CHARS, MAX_DIFF_LINES_BYTES,
};
use workflows::playbook::Glob;
use workflows::policy::markers::Language;
use workflows::policy::paths::PathSet;

use crate::git::{Git, GitError};

/// Stages everything in `workspace` (as a push would) and summarizes it against `base_commit`.
/// `test_paths` are globs of test files: their lines are kept first.
pub async fn summarize(
    workspace: &Path,
    base_commit: &str,
    test_paths: &[String],
) -> Result<DiffSummary, GitError> {
    let git = Git::in_dir(workspace);
    let Some(base) = git.commit_of(base_commit).await? else {
        return Err(GitError::BadInput {
            message: format!(
                "base commit {base_commit:?} not found in {}",
                workspace.display()
            ),
        });
    };
    git.run(&["add", "--all"]).await?;
    let diff = |format: &'static str| {
        let git = git.clone();
        let base = base.clone();
        async move {
            git.run(&[
                "diff",
                "--cached",
                format,
                "-z",
                "-M",
                "--no-ext-diff",
                &base,
                "--",
            ])
            .await
        }
    };
    let statuses = parse_name_status(&diff("--name-status").await?);
    let counts = parse_numstat(&diff("--numstat").await?);

    let mut files: Vec<FileChange> = statuses
        .into_iter()
        .map(|(status, old_path, path)| {
            let (added, removed, binary) = counts.get(&path).copied().unwrap_or((0, 0, false));
            FileChange {
                path,
                old_path,
                status,
                lines_added: added,
                lines_removed: removed,
                binary,
                lines: None,
            }
        })
        .collect();
    let lines_added = files.iter().map(|f| u64::from(f.lines_added)).sum();
    let lines_removed = files.iter().map(|f| u64::from(f.lines_removed)).sum();
    let files_omitted = files.len().saturating_sub(MAX_DIFF_FILES);
    files.truncate(MAX_DIFF_FILES);
    keep_lines(&git, &base, &mut files, test_paths).await?;
    Ok(DiffSummary {
        base_commit: base,
        files,
        files_omitted: u32::try_from(files_omitted).unwrap_or(u32::MAX),
        lines_added,
        lines_removed,
    })
}

/// Fills `lines` of the files worth inspecting (tests first, then code, then the rest), until
/// the total budget is spent. Deleted and binary files have nothing to read.
async fn keep_lines(
    git: &Git,
    base: &str,
    files: &mut [FileChange],
    test_paths: &[String],
) -> Result<(), GitError> {
    let globs: Vec<Glob> = test_paths
        .iter()
        .filter_map(|p| Glob::new(p).ok())
        .collect();
    let tests = PathSet::new(&globs);
    let mut order: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].status != ChangeStatus::Deleted && !files[i].binary)
        .collect();
    order.sort_by_key(|&i| {
        let path = &files[i].path;
        (!tests.is_match(path), !Language::of(path).is_code(), i)
    });
    let mut budget = MAX_DIFF_LINES_BYTES;
    for i in order {
        if budget == 0 {
            break;
        }
        let file = &files[i];
        let mut args = vec![
            "diff",
            "--cached",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "-M",
            base,
            "--",
        ];
        if let Some(old) = &file.old_path {
            args.push(old);
        }
        args.push(&file.path);
        let patch = git.run(&args).await?;
        let (lines, used) = changed_lines(&patch, budget.min(MAX_DIFF_FILE_LINES_BYTES));
        budget -= used;
        files[i].lines = Some(lines);
    }
    Ok(())
}

/// The removed and added lines of a one-file patch, within `budget` bytes; returns the bytes
/// kept. Header lines come before the first hunk, so `--- x` inside a hunk is content.
fn changed_lines(patch: &str, budget: usize) -> (ChangedLines, usize) {
    let mut lines = ChangedLines::default();
    let mut used = 0;
    let mut in_hunks = false;
    for line in patch.lines() {
        if line.starts_with("@@") {
            in_hunks = true;
            continue;
        }
        if !in_hunks {
            continue;
        }
        let (side, text) = match line.split_at_checked(1) {
            Some(("+", text)) => (&mut lines.added, text),
            Some(("-", text)) => (&mut lines.removed, text),
            _ => continue,
        };
        let text: String = text.chars().take(MAX_DIFF_LINE_CHARS).collect();
        if used + text.len() + 1 > budget {
            lines.truncated = true;
            break;
        }
        used += text.len() + 1;
        side.push(text);
    }
    (lines, used)
}

/// `--name-status -z`: a status token, then one path (or two for renames and copies).
fn parse_name_status(output: &str) -> Vec<(ChangeStatus, Option<String>, String)> {
    let mut tokens = output.split('\0').filter(|t| !t.is_empty());
    let mut changes = Vec::new();
    while let Some(code) = tokens.next() {
        let status = match code.chars().next() {
            Some('A') => ChangeStatus::Added,
            Some('M') => ChangeStatus::Modified,
            Some('D') => ChangeStatus::Deleted,
            Some('R') => ChangeStatus::Renamed,
            Some('C') => ChangeStatus::Copied,
            Some('T') => ChangeStatus::TypeChanged,
            // Unmerged or unknown entries carry one path; count them as modified.
            _ => ChangeStatus::Modified,
        };
        let two_paths = matches!(status, ChangeStatus::Renamed | ChangeStatus::Copied);
        let first = tokens.next().unwrap_or_default().to_string();
        if two_paths {
            let second = tokens.next().unwrap_or_default().to_string();
            changes.push((status, Some(first), second));
        } else {
            changes.push((status, None, first));
        }
    }
    changes
}

/// `--numstat -z`: `added<TAB>removed<TAB>path`, or with an empty path followed by the old and
/// new paths of a rename; `-` counts mean binary. Keyed by the new path.
fn parse_numstat(output: &str) -> BTreeMap<String, (u32, u32, bool)> {
    let mut tokens = output.split('\0');
    let mut counts = BTreeMap::new();
    while let Some(entry) = tokens.next() {
        let mut fields = entry.trim_start_matches('\n').splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = if path.is_empty() {
            let _old = tokens.next();
            tokens.next().unwrap_or_default().to_string()
        } else {
            path.to_string()
        };
        let binary = added == "-" || removed == "-";
        let number = |n: &str| n.parse::<u32>().unwrap_or(0);
        counts.insert(path, (number(added), number(removed), binary));
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_status_and_numstat_are_parsed_with_renames() {
        let statuses = parse_name_status(
            "M\0calc.sh\0R087\0tests/a.sh\0tests/b.sh\0D\0old.txt\0A\0new file.md\0",
        );
        assert_eq!(
            statuses,
            [
                (ChangeStatus::Modified, None, "calc.sh".to_string()),
                (
                    ChangeStatus::Renamed,
                    Some("tests/a.sh".to_string()),
                    "tests/b.sh".to_string()
                ),
                (ChangeStatus::Deleted, None, "old.txt".to_string()),
                (ChangeStatus::Added, None, "new file.md".to_string()),
            ]
        );
        let counts = parse_numstat(concat!(
            "1\t1\tcalc.sh\0",
            "3\t0\t\0tests/a.sh\0tests/b.sh\0",
            "-\t-\tlogo.png\0"
        ));
        assert_eq!(counts["calc.sh"], (1, 1, false));
        assert_eq!(counts["tests/b.sh"], (3, 0, false));
        assert_eq!(counts["logo.png"], (0, 0, true));
    }

    #[test]
    fn changed_lines_skip_headers_and_respect_the_budget() {
        let patch = "diff --git a/t.sh b/t.sh\n--- a/t.sh\n+++ b/t.sh\n@@ -1 +1 @@\n--- not a header\n+exit 0\n\\ No newline at end of file\n";
        let (lines, used) = changed_lines(patch, 1000);
        assert_eq!(lines.removed, ["-- not a header"]);
        assert_eq!(lines.added, ["exit 0"]);
        assert_eq!(used, "-- not a header".len() + "exit 0".len() + 2);
        let (lines, _) = changed_lines(patch, 10);
        assert!(lines.truncated && lines.removed.is_empty());
    }
}
