//! The base side of a red->green proof: a checkout of the base commit with the agent's added or
//! changed test files laid over it, so that new tests run against the old code. Made on the host
//! with git only (a shared clone of the workspace, then `git apply` of the tests' diff); the
//! tests themselves run in the sandbox.

use std::path::Path;

use crate::git::{Git, GitError};

/// Makes `probe` (replacing whatever is there) a checkout of `base_commit` of `workspace`, with
/// the staged versions of `test_files` from the workspace applied.
pub async fn prepare_base(
    workspace: &Path,
    base_commit: &str,
    test_files: &[String],
    probe: &Path,
) -> Result<(), GitError> {
    remove(probe)?;
    let (workspace_str, probe_str) = (workspace.to_string_lossy(), probe.to_string_lossy());
    Git::anywhere()
        .run(&[
            "clone",
            "--quiet",
            "--shared",
            "--no-checkout",
            "--",
            &workspace_str,
            &probe_str,
        ])
        .await?;
    let probe_git = Git::in_dir(probe);
    probe_git
        .run(&["switch", "--quiet", "--detach", base_commit])
        .await?;
    if test_files.is_empty() {
        return Ok(());
    }
    let patch = probe.with_extension("tests.patch");
    let patch_str = patch.to_string_lossy().into_owned();
    let output = format!("--output={patch_str}");
    let mut args = vec![
        "diff",
        "--cached",
        "--binary",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        &output,
        base_commit,
        "--",
    ];
    args.extend(test_files.iter().map(String::as_str));
    Git::in_dir(workspace).run(&args).await?;
    let applied = if std::fs::metadata(&patch).map(|m| m.len()).unwrap_or(0) > 0 {
        probe_git
            .run(&["apply", "--whitespace=nowarn", &patch_str])
            .await
            .map(|_| ())
    } else {
        Ok(())
    };
    let _ = std::fs::remove_file(&patch);
    applied
}

/// Removes a probe checkout; a missing one is fine.
pub fn remove(probe: &Path) -> Result<(), GitError> {
    match std::fs::remove_dir_all(probe) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(GitError::Spawn {
            args: vec!["remove".into(), probe.display().to_string()],
            source: e,
        }),
        _ => Ok(()),
    }
}
