//! The git operations against a real bare remote whose `update` hook logs every ref update,
//! so idempotency is checked by counting what the remote actually received.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use activities::git::{self, GitError};
use tempfile::TempDir;

const TEST_BOUND: Duration = Duration::from_secs(60);
const BRANCH: &str = "errand/task-1";

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

/// A bare remote with `main` seeded by one commit, and a seed clone to push more from.
struct Remote {
    dir: TempDir,
    base_commit: String,
}

impl Remote {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let remote = Self {
            dir,
            base_commit: String::new(),
        };
        git_out(
            remote.dir.path(),
            &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
        );
        let hook = remote.bare().join("hooks/update");
        let log = remote.dir.path().join("updates.log");
        std::fs::write(
            &hook,
            format!("#!/bin/sh\necho \"$1 $2 $3\" >> '{}'\n", log.display()),
        )
        .expect("hook");
        set_executable(&hook);
        git_out(
            remote.dir.path(),
            &["clone", "--quiet", "remote.git", "seed"],
        );
        let mut remote = remote;
        remote.base_commit = remote.commit_on_main("README", "hello\n");
        remote
    }

    fn bare(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    fn url(&self) -> String {
        self.bare().to_str().expect("utf-8 path").to_owned()
    }

    fn seed(&self) -> PathBuf {
        self.dir.path().join("seed")
    }

    fn dest(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Commits `path` = `content` on main through the seed clone and pushes it.
    fn commit_on_main(&self, path: &str, content: &str) -> String {
        let seed = self.seed();
        git_out(&seed, &["checkout", "--quiet", "-B", "main"]);
        std::fs::write(seed.join(path), content).expect("write");
        git_out(&seed, &["add", path]);
        git_out(
            &seed,
            &["commit", "--quiet", "-m", &format!("change {path}")],
        );
        git_out(&seed, &["push", "--quiet", "origin", "main"]);
        git_out(&seed, &["rev-parse", "HEAD"])
    }

    /// Ref updates the remote received for `refname`.
    fn updates_of(&self, refname: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("updates.log")).unwrap_or_default();
        log.lines()
            .filter(|line| line.split(' ').next() == Some(refname))
            .count()
    }

    fn remote_ref(&self, refname: &str) -> Option<String> {
        let output = git_command(&self.bare(), &["rev-parse", "--verify", "--quiet", refname])
            .output()
            .expect("git");
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

#[tokio::test]
async fn checkout_starts_a_new_branch_at_the_base() {
    bounded(async {
        let remote = Remote::new();
        let dest = remote.dest("ws");
        let start = git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        assert_eq!(start, remote.base_commit);
        assert_eq!(
            git_out(&dest, &["symbolic-ref", "HEAD"]),
            format!("refs/heads/{BRANCH}")
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("README")).expect("README"),
            "hello\n"
        );
    })
    .await;
}

#[tokio::test]
async fn checkout_again_reuses_the_workspace_and_keeps_local_work() {
    bounded(async {
        let remote = Remote::new();
        let dest = remote.dest("ws");
        git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        std::fs::write(dest.join("work.txt"), "unfinished\n").expect("write");
        let committed = git::commit_all(&dest, "local work", "Ada", "ada@example.com")
            .await
            .expect("commit");
        std::fs::write(dest.join("draft.txt"), "not committed\n").expect("write");

        let start = git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("again");
        assert_eq!(start, remote.base_commit);
        assert_eq!(Some(git_out(&dest, &["rev-parse", "HEAD"])), committed);
        assert!(dest.join("draft.txt").exists());
    })
    .await;
}

#[tokio::test]
async fn checkout_resumes_from_a_pushed_checkpoint() {
    bounded(async {
        let remote = Remote::new();
        let first = remote.dest("first");
        git::checkout_task(&remote.url(), "main", BRANCH, &first)
            .await
            .expect("checkout");
        std::fs::write(first.join("progress.txt"), "half done\n").expect("write");
        let checkpoint = git::commit_all(&first, "checkpoint", "Ada", "ada@example.com")
            .await
            .expect("commit")
            .expect("a commit");
        git::push_branch(&first, BRANCH).await.expect("push");
        // The base moves on meanwhile; the task still started where it started.
        remote.commit_on_main("other.txt", "someone else\n");

        let second = remote.dest("second");
        let start = git::checkout_task(&remote.url(), "main", BRANCH, &second)
            .await
            .expect("resume");
        assert_eq!(start, remote.base_commit);
        assert_eq!(git_out(&second, &["rev-parse", "HEAD"]), checkpoint);
        assert_eq!(
            std::fs::read_to_string(second.join("progress.txt")).expect("progress"),
            "half done\n"
        );
    })
    .await;
}

#[tokio::test]
async fn checkout_refuses_bad_inputs_by_name() {
    bounded(async {
        let remote = Remote::new();
        let url = remote.url();
        let cases = [
            (
                "/nonexistent/errand/repo.git",
                "main",
                BRANCH,
                "/nonexistent/errand/repo.git",
            ),
            (url.as_str(), "no-such-base", BRANCH, "no-such-base"),
            (url.as_str(), "main", "bad..name", "bad..name"),
            (url.as_str(), "main", "main", "main"),
        ];
        for (index, (repo, base, branch, named)) in cases.into_iter().enumerate() {
            let dest = remote.dest(&format!("ws{index}"));
            match git::checkout_task(repo, base, branch, &dest).await {
                Err(GitError::BadInput { message }) => {
                    assert!(message.contains(named), "{message}")
                }
                other => panic!("expected bad input naming {named}, got {other:?}"),
            }
        }
        assert!(
            !remote.dest("ws0").exists(),
            "a failed clone leaves nothing behind"
        );

        // A destination holding another repository is not silently reused.
        let other = Remote::new();
        let dest = remote.dest("taken");
        git::checkout_task(&other.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        let result = git::checkout_task(&remote.url(), "main", BRANCH, &dest).await;
        assert!(
            matches!(result, Err(GitError::BadInput { .. })),
            "{result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn commit_all_commits_once_with_the_agent_as_co_author() {
    bounded(async {
        let remote = Remote::new();
        let dest = remote.dest("ws");
        git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        let clean = git::commit_all(&dest, "nothing", "Ada", "ada@example.com")
            .await
            .expect("commit");
        assert_eq!(clean, None);

        std::fs::write(dest.join("new.txt"), "new\n").expect("write");
        std::fs::remove_file(dest.join("README")).expect("remove");
        let commit = git::commit_all(&dest, "Fix the thing", "Ada", "ada@example.com")
            .await
            .expect("commit");
        let again = git::commit_all(&dest, "Fix the thing", "Ada", "ada@example.com")
            .await
            .expect("again");
        assert!(commit.is_some());
        assert_eq!(again, None);
        assert_eq!(git_out(&dest, &["rev-list", "--count", "HEAD"]), "2");
        assert_eq!(
            git_out(&dest, &["log", "-1", "--format=%an <%ae>"]),
            "Ada <ada@example.com>"
        );
        let message = git_out(&dest, &["log", "-1", "--format=%B"]);
        assert!(message.starts_with("Fix the thing"), "{message}");
        assert!(message.ends_with(git::AGENT_TRAILER), "{message}");
        assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    })
    .await;
}

#[tokio::test]
async fn push_branch_pushes_once() {
    bounded(async {
        let remote = Remote::new();
        let dest = remote.dest("ws");
        git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        std::fs::write(dest.join("new.txt"), "new\n").expect("write");
        let commit = git::commit_all(&dest, "work", "Ada", "ada@example.com")
            .await
            .expect("commit")
            .expect("a commit");

        let refname = format!("refs/heads/{BRANCH}");
        assert_eq!(
            git::push_branch(&dest, BRANCH).await.expect("push"),
            (commit.clone(), true)
        );
        assert_eq!(
            git::push_branch(&dest, BRANCH).await.expect("again"),
            (commit.clone(), false)
        );
        assert_eq!(remote.updates_of(&refname), 1);
        assert_eq!(remote.remote_ref(&refname), Some(commit));
    })
    .await;
}

#[tokio::test]
async fn push_branch_never_rewrites_remote_history() {
    bounded(async {
        let remote = Remote::new();
        let refname = format!("refs/heads/{BRANCH}");
        // Someone else's checkpoint on the branch, unknown to our workspace.
        let theirs = remote.dest("theirs");
        git::checkout_task(&remote.url(), "main", BRANCH, &theirs)
            .await
            .expect("checkout");
        let ours = remote.dest("ours");
        git::checkout_task(&remote.url(), "main", BRANCH, &ours)
            .await
            .expect("checkout");
        std::fs::write(theirs.join("a.txt"), "theirs\n").expect("write");
        git::commit_all(&theirs, "theirs", "Bob", "bob@example.com")
            .await
            .expect("commit");
        let (their_head, _) = git::push_branch(&theirs, BRANCH).await.expect("push");

        std::fs::write(ours.join("b.txt"), "ours\n").expect("write");
        git::commit_all(&ours, "ours", "Ada", "ada@example.com")
            .await
            .expect("commit");
        let result = git::push_branch(&ours, BRANCH).await;
        assert!(
            matches!(result, Err(GitError::PushRejected { .. })),
            "{result:?}"
        );
        assert_eq!(remote.remote_ref(&refname), Some(their_head));
    })
    .await;
}

#[tokio::test]
async fn changed_files_counts_paths_since_the_start() {
    bounded(async {
        let remote = Remote::new();
        let dest = remote.dest("ws");
        let start = git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        assert_eq!(git::changed_files(&dest, &start).await.expect("diff"), 0);
        std::fs::write(dest.join("README"), "changed\n").expect("write");
        std::fs::create_dir(dest.join("src")).expect("mkdir");
        std::fs::write(dest.join("src/a.rs"), "fn a() {}\n").expect("write");
        std::fs::write(dest.join("src/b.rs"), "fn b() {}\n").expect("write");
        git::commit_all(&dest, "work", "Ada", "ada@example.com")
            .await
            .expect("commit");
        assert_eq!(git::changed_files(&dest, &start).await.expect("diff"), 3);
        let unknown = git::changed_files(&dest, "0123456789abcdef0123456789abcdef01234567").await;
        assert!(
            matches!(unknown, Err(GitError::BadInput { .. })),
            "{unknown:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn merge_into_base_merges_once() {
    bounded(async {
        let remote = Remote::new();
        let dest = remote.dest("ws");
        git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        std::fs::write(dest.join("feature.txt"), "feature\n").expect("write");
        let commit = git::commit_all(&dest, "feature", "Ada", "ada@example.com")
            .await
            .expect("commit")
            .expect("a commit");
        git::push_branch(&dest, BRANCH).await.expect("push");
        // The base moved on without conflict: the merge still goes through.
        remote.commit_on_main("other.txt", "other\n");
        let main_updates = remote.updates_of("refs/heads/main");

        let merged = git::merge_into_base(&dest, "main", &commit, "Rev Iewer", "rev@example.com")
            .await
            .expect("merge");
        let again = git::merge_into_base(&dest, "main", &commit, "Rev Iewer", "rev@example.com")
            .await
            .expect("again");
        assert_eq!(again, merged);
        assert_eq!(remote.remote_ref("refs/heads/main"), Some(merged.clone()));
        assert_eq!(remote.updates_of("refs/heads/main"), main_updates + 1);
        let info = git_out(
            &remote.bare(),
            &["log", "-1", "--format=%P|%an <%ae>|%cn <%ce>", &merged],
        );
        let (parents, identities) = info.split_once('|').expect("format");
        assert_eq!(parents.split(' ').count(), 2);
        assert!(parents.ends_with(&commit));
        assert_eq!(
            identities,
            "Rev Iewer <rev@example.com>|Rev Iewer <rev@example.com>"
        );
        assert_eq!(
            git_out(&remote.bare(), &["show", &format!("{merged}:feature.txt")]),
            "feature"
        );
        // The workspace is left as it was.
        assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), commit);
    })
    .await;
}

#[tokio::test]
async fn merge_conflict_leaves_base_and_workspace_alone() {
    bounded(async {
        let remote = Remote::new();
        let dest = remote.dest("ws");
        git::checkout_task(&remote.url(), "main", BRANCH, &dest)
            .await
            .expect("checkout");
        std::fs::write(dest.join("README"), "ours\n").expect("write");
        let commit = git::commit_all(&dest, "ours", "Ada", "ada@example.com")
            .await
            .expect("commit")
            .expect("a commit");
        let base_head = remote.commit_on_main("README", "theirs\n");

        let result =
            git::merge_into_base(&dest, "main", &commit, "Rev Iewer", "rev@example.com").await;
        match result {
            Err(GitError::MergeConflict { base, files, .. }) => {
                assert_eq!(base, "main");
                assert_eq!(files, ["README"]);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(remote.remote_ref("refs/heads/main"), Some(base_head));
        assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), commit);
        assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    })
    .await;
}

/// git as a test fixture tool (not the code under test), isolated from the host's config.
fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .args(["-c", "user.name=Seed", "-c", "user.email=seed@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    command
}

/// Runs git in `dir`, which must succeed; returns trimmed stdout.
fn git_out(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir, args).output().expect("git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
