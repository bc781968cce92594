//! The repository check against real git: a bare repository in a temporary directory.

mod support;

use std::time::Duration;

use api::ApiError;
use api::repo_check::{REPO_CHECK_TIMEOUT, RepoCheckError, check_remote_branch};
use support::bare_repo;

#[tokio::test]
async fn reachable_repo_with_its_branch() {
    let root = tempfile::tempdir().unwrap();
    let repo = bare_repo(root.path());
    check_remote_branch(&repo, "main", REPO_CHECK_TIMEOUT)
        .await
        .unwrap();
    check_remote_branch(&format!("file://{repo}"), "main", REPO_CHECK_TIMEOUT)
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_branch_is_a_422_on_base() {
    let root = tempfile::tempdir().unwrap();
    let repo = bare_repo(root.path());
    for base in ["develop", "dev"] {
        let err = check_remote_branch(&repo, base, REPO_CHECK_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            RepoCheckError::NoBranch {
                repo: repo.clone(),
                base: base.to_string()
            }
        );
        let api: ApiError = err.into();
        assert_eq!(
            (api.status.as_u16(), api.code, api.field.as_deref()),
            (422, "branch_not_found", Some("base"))
        );
        assert_eq!(
            api.message,
            format!("repository {repo} has no branch {base}")
        );
    }
}

#[tokio::test]
async fn missing_repo_is_a_422_on_repo() {
    let root = tempfile::tempdir().unwrap();
    let empty_dir = root.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    let missing = root.path().join("nope.git");
    for repo in [missing.to_str().unwrap(), empty_dir.to_str().unwrap()] {
        let err = check_remote_branch(repo, "main", REPO_CHECK_TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RepoCheckError::Unreachable { repo: r, .. } if r == repo),
            "{err:?}"
        );
        let api: ApiError = err.into();
        assert_eq!(
            (api.status.as_u16(), api.code, api.field.as_deref()),
            (422, "repo_unreachable", Some("repo"))
        );
        assert!(
            api.message
                .starts_with(&format!("repository {repo} is not reachable: ")),
            "{}",
            api.message
        );
    }
}

#[tokio::test]
async fn command_running_transports_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let marker = root.path().join("ran");
    let repo = format!("ext::sh -c touch% {}", marker.display());
    let err = check_remote_branch(&repo, "main", REPO_CHECK_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, RepoCheckError::Unreachable { .. }), "{err:?}");
    assert!(!marker.exists(), "the ext:: transport ran a command");
}

#[tokio::test]
async fn a_repo_that_does_not_answer_in_time_is_unreachable() {
    let root = tempfile::tempdir().unwrap();
    let repo = bare_repo(root.path());
    let err = check_remote_branch(&repo, "main", Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RepoCheckError::TimedOut {
            repo: repo.clone(),
            timeout: Duration::ZERO
        }
    );
    let api: ApiError = err.into();
    assert_eq!(
        (api.status.as_u16(), api.field.as_deref()),
        (422, Some("repo"))
    );
}
