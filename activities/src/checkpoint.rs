//! Work-in-progress checkpoints: what an agent run left in the workspace is committed and
//! pushed to the task branch, so that a task moved to another worker (its host died, or was
//! drained) continues from it instead of from the base.
//!
//! When: at the end of a run that took at least `[worker] checkpoint_interval_secs`, and at the
//! end of every run (finished or cut short) once the worker drains. Not during a run: a root
//! worker's agent writes into an overlay upper layer that only the sandbox module can reach,
//! and it is merged into the workspace only when the run is over (see `sandbox/merge.rs`).
//!
//! Commits and pushes go through `git.rs`, so they are safe to repeat: nothing new to commit
//! makes no commit, and a remote branch that already equals HEAD is not pushed again; the
//! round's own push later finds the checkpoint on the remote and adds only what changed since.

use std::path::Path;
use std::time::Duration;

use workflows::contracts::AgentRunRequest;

use crate::git::{self, GitError};
use crate::host::WorkerHost;

/// Why a run's work is pushed now, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// The worker drains: the task continues elsewhere from what is pushed.
    Draining,
    /// The run took longer than the checkpoint interval: losing it would cost that much again.
    LongRun,
}

impl Due {
    fn as_str(self) -> &'static str {
        match self {
            Due::Draining => "worker draining",
            Due::LongRun => "long run",
        }
    }
}

/// Whether a run that took `ran` is checkpointed on this host.
pub fn due(host: &WorkerHost, ran: Duration) -> Option<Due> {
    if host.is_draining() {
        Some(Due::Draining)
    } else if host.checkpoint_interval.is_some_and(|every| ran >= every) {
        Some(Due::LongRun)
    } else {
        None
    }
}

/// Checkpoints the workspace of `request` after a run when one is due (see [`due`]) and the
/// workflow asked for checkpoints (histories from before worker affinity did not). A failed
/// checkpoint is logged, never fatal: the round's result does not depend on it.
pub async fn after_run(
    host: &WorkerHost,
    request: &AgentRunRequest,
    ran: Duration,
    author_email: impl Fn(&str) -> String,
) {
    let Some(author) = &request.checkpoint_author else {
        return;
    };
    let Some(due) = due(host, ran) else { return };
    let ws = &request.workspace;
    let message = format!(
        "errand: checkpoint of round {} of task {} ({})",
        request.round,
        ws.task_id,
        due.as_str()
    );
    match push(
        Path::new(&ws.path),
        &ws.branch,
        &message,
        author,
        &author_email(author),
    )
    .await
    {
        Ok(Some(commit)) => {
            host.count_checkpoint();
            tracing::info!(task_id = %ws.task_id, round = request.round, %commit, reason = due.as_str(), "checkpoint pushed");
        }
        Ok(None) => {
            tracing::debug!(task_id = %ws.task_id, round = request.round, "nothing new to checkpoint");
        }
        Err(err) => {
            tracing::warn!(task_id = %ws.task_id, round = request.round, error = %err, "checkpoint failed");
        }
    }
}

/// Commits everything in `workspace` and pushes it to `branch`; returns the pushed commit, or
/// None when there was nothing new (then nothing is pushed: a branch is never created at the
/// bare base commit by a checkpoint).
pub async fn push(
    workspace: &Path,
    branch: &str,
    message: &str,
    author: &str,
    email: &str,
) -> Result<Option<String>, GitError> {
    let Some(commit) = git::commit_all(workspace, message, author, email).await? else {
        return Ok(None);
    };
    let (head, _pushed) = git::push_branch(workspace, branch).await?;
    debug_assert_eq!(head, commit);
    Ok(Some(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_always_checkpoints_and_interval_only_long_runs() {
        let quiet = WorkerHost::new(None, 1, None);
        assert_eq!(due(&quiet, Duration::from_secs(3600)), None);
        let timed = WorkerHost::new(None, 1, Some(Duration::from_secs(60)));
        assert_eq!(due(&timed, Duration::from_secs(59)), None);
        assert_eq!(due(&timed, Duration::from_secs(60)), Some(Due::LongRun));
        timed.start_draining();
        assert_eq!(due(&timed, Duration::from_secs(1)), Some(Due::Draining));
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A checkpoint pushes once per new state, and never creates the branch with nothing in it.
    #[tokio::test]
    async fn pushes_only_new_work_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed");
        std::fs::create_dir(&seed).unwrap();
        std::fs::write(seed.join("a.txt"), "a\n").unwrap();
        git(&seed, &["init", "-q", "-b", "main"]);
        git(&seed, &["add", "."]);
        git(&seed, &["commit", "-q", "-m", "seed"]);
        git(dir.path(), &["clone", "-q", "--bare", "seed", "remote.git"]);
        let remote = dir.path().join("remote.git");
        let ws = dir.path().join("ws");
        let base = git::checkout_task(&remote.display().to_string(), "main", "errand/t1", &ws)
            .await
            .unwrap();

        let nothing = push(&ws, "errand/t1", "cp", "alice", "alice@x.invalid")
            .await
            .unwrap();
        assert_eq!(nothing, None);
        assert_eq!(git(&remote, &["branch", "--list", "errand/t1"]), "");

        std::fs::write(ws.join("a.txt"), "b\n").unwrap();
        let first = push(&ws, "errand/t1", "cp", "alice", "alice@x.invalid")
            .await
            .unwrap();
        let first = first.expect("new work is pushed");
        assert_eq!(git(&remote, &["rev-parse", "errand/t1"]), first);
        assert_eq!(git(&remote, &["rev-parse", "errand/t1^"]), base);
        let again = push(&ws, "errand/t1", "cp", "alice", "alice@x.invalid")
            .await
            .unwrap();
        assert_eq!(
            again, None,
            "the same state is not committed or pushed again"
        );
        assert_eq!(git(&remote, &["rev-parse", "errand/t1"]), first);
    }
}
