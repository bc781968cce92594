//! Admission's one look outside: is the repository reachable, and does it have the base
//! branch? Asked with `git ls-remote` (argv only, no prompts, no system config, bounded time),
//! which reads refs and never runs anything from the repository.

use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::process::Command;

use crate::error::ApiError;

/// How long `git ls-remote` may take before the repository counts as unreachable.
pub const REPO_CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// Transports a task's repository may use; `ext::` (which runs commands) is not among them.
const ALLOWED_PROTOCOLS: &str = "file:git:http:https:ssh";

/// Longest stderr excerpt quoted back to the client.
const MAX_DETAIL: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoCheckError {
    #[error("repository {repo} is not reachable: {detail}")]
    Unreachable { repo: String, detail: String },
    #[error("repository {repo} has no branch {base}")]
    NoBranch { repo: String, base: String },
    #[error("repository {repo} did not answer within {}s", .timeout.as_secs())]
    TimedOut { repo: String, timeout: Duration },
    #[error("cannot run git to check repository {repo}: {detail}")]
    Git { repo: String, detail: String },
}

impl From<RepoCheckError> for ApiError {
    fn from(err: RepoCheckError) -> Self {
        let message = err.to_string();
        match err {
            RepoCheckError::Unreachable { .. } | RepoCheckError::TimedOut { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "repo_unreachable",
                message,
            )
            .with_field("repo"),
            RepoCheckError::NoBranch { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "branch_not_found",
                message,
            )
            .with_field("base"),
            RepoCheckError::Git { .. } => {
                tracing::error!(error = %message, "repository check failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

/// Checks that `repo` answers and has `refs/heads/<base>`, within `timeout`.
///
/// `base` must already be a valid branch name (`admission::check_branch_name`), so it holds no
/// glob characters for ls-remote to expand.
pub async fn check_remote_branch(
    repo: &str,
    base: &str,
    timeout: Duration,
) -> Result<(), RepoCheckError> {
    let reference = format!("refs/heads/{base}");
    let mut command = Command::new("git");
    command
        .args(["ls-remote", "--exit-code", "--", repo, &reference])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_ALLOW_PROTOCOL", ALLOWED_PROTOCOLS)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let git_error = |err: std::io::Error| RepoCheckError::Git {
        repo: repo.to_string(),
        detail: err.to_string(),
    };
    let child = command.spawn().map_err(git_error)?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => output.map_err(git_error)?,
        // Dropping the future kills git (kill_on_drop).
        Err(_) => {
            return Err(RepoCheckError::TimedOut {
                repo: repo.to_string(),
                timeout,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let has_branch = stdout.lines().any(|line| {
        line.split_once('\t')
            .is_some_and(|(_, name)| name == reference)
    });
    match output.status.code() {
        Some(0) if has_branch => Ok(()),
        // 2: the remote answered and has no such ref. 0 without an exact match: only a ref
        // that merely ends the same way (ls-remote matches patterns on their tail).
        Some(0) | Some(2) => Err(RepoCheckError::NoBranch {
            repo: repo.to_string(),
            base: base.to_string(),
        }),
        _ => Err(RepoCheckError::Unreachable {
            repo: repo.to_string(),
            detail: detail(&String::from_utf8_lossy(&output.stderr), output.status),
        }),
    }
}

/// The first meaningful lines of git's stderr, bounded.
fn detail(stderr: &str, status: std::process::ExitStatus) -> String {
    let text = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if text.is_empty() {
        return format!("git ls-remote {status}");
    }
    match text.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}
