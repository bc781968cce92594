//! Mid-run checkpoints against the real bwrap, git and a bare remote: while an agent still
//! runs, its work so far reaches the remote task branch, and the run goes on (it was thawed).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use activities::checkpoint::{self, MidRun};
use activities::git;
use activities::host::WorkerHost;
use activities::sandbox::{Exit, Limits, Sandbox, SandboxSpec};
use workflows::contracts::{AgentRunRequest, Workspace};
use workflows::task::AgentSpec;

const TEST_BOUND: Duration = Duration::from_secs(90);
const BRANCH: &str = "errand/t1";

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

fn git_in(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn git_ok(dir: &Path, args: &[&str]) -> String {
    git_in(dir, args).unwrap_or_else(|| panic!("git {args:?} failed in {}", dir.display()))
}

/// Files of `commit` in the bare `remote`.
fn files_of(remote: &Path, commit: &str) -> Vec<String> {
    git_ok(remote, &["ls-tree", "-r", "--name-only", commit])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn request(ws: &Path, base: &str) -> AgentRunRequest {
    AgentRunRequest {
        workspace: Workspace {
            task_id: "t1".into(),
            path: ws.display().to_string(),
            base_commit: base.into(),
            branch: BRANCH.into(),
            task_queue: None,
        },
        round: 1,
        prompt: String::new(),
        feedback: None,
        agent: AgentSpec::Command { command: vec![] },
        time_budget_secs: 60,
        network: vec![],
        checkpoint_author: Some("alice".into()),
    }
}

#[tokio::test]
async fn a_long_run_is_checkpointed_while_it_runs_and_goes_on() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = dir.path().join("seed");
        std::fs::create_dir(&seed).expect("seed");
        std::fs::write(seed.join("README"), "base\n").expect("readme");
        std::fs::write(seed.join(".gitignore"), "target/\n").expect("ignore");
        git_ok(&seed, &["init", "-q", "-b", "main"]);
        git_ok(&seed, &["add", "."]);
        git_ok(&seed, &["commit", "-q", "-m", "seed"]);
        git_ok(dir.path(), &["clone", "-q", "--bare", "seed", "remote.git"]);
        let remote = dir.path().join("remote.git");
        let ws: PathBuf = dir.path().join("ws");
        let base = git::checkout_task(&remote.display().to_string(), "main", BRANCH, &ws)
            .await
            .expect("checkout");

        let host = WorkerHost::new(None, 4, Some(Duration::from_secs(1)));
        let request = request(&ws, &base);
        let mut mid_run =
            MidRun::new(&host, &request, |name| format!("{name}@x.invalid")).expect("enabled");
        // A writes A, waits past the interval, writes B, waits again; build output is ignored.
        let script = "echo A > a.txt; mkdir -p target; echo out > target/out; sleep 4; \
                      echo B > b.txt; sleep 4; echo done";
        let spec = SandboxSpec {
            workspace: ws.clone(),
            inputs_dir: None,
            argv: ["sh", "-c", script].map(str::to_owned).to_vec(),
            env: vec![],
            timeout: Duration::from_secs(60),
            log_path: dir.path().join("agent.log"),
            limits: Limits {
                // SAFETY: a plain syscall.
                workspace_write_bytes: if unsafe { libc::geteuid() } == 0 {
                    Limits::default().workspace_write_bytes
                } else {
                    None
                },
                ..Limits::default()
            },
            network: None,
            model_gateway: None,
        };
        let sandbox = Sandbox::detect()
            .await
            .expect("bwrap must work on the test host");
        let running = sandbox.spawn(&spec).expect("spawn");
        mid_run.attach(running.live_workspace());

        // Watches the remote while the run is in flight: the first commit holding A only.
        let over = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (remote, over) = (remote.clone(), Arc::clone(&over));
            tokio::task::spawn_blocking(move || {
                let refname = format!("refs/heads/{BRANCH}");
                loop {
                    if over.load(Ordering::SeqCst) {
                        return None;
                    }
                    if let Some(head) = git_in(&remote, &["rev-parse", "--verify", "-q", &refname])
                    {
                        let files = files_of(&remote, &head);
                        if files.contains(&"a.txt".to_owned())
                            && !files.contains(&"b.txt".to_owned())
                        {
                            // Still running: the flag is set only once the run is over.
                            return Some((head, files, !over.load(Ordering::SeqCst)));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };

        let wait = running.wait(std::future::pending());
        tokio::pin!(wait);
        let outcome = loop {
            tokio::select! {
                outcome = &mut wait => {
                    mid_run.settle().await;
                    break outcome.expect("wait");
                }
                () = checkpoint::next(Some(&mut mid_run)) => {}
            }
        };
        over.store(true, Ordering::SeqCst);
        let (first, files, while_running) = watcher
            .await
            .expect("watcher")
            .expect("no checkpoint with A reached the remote while the run was in flight");
        assert!(while_running, "the checkpoint came only after the run");
        assert!(
            !files.iter().any(|file| file.starts_with("target/")),
            "ignored build output was checkpointed: {files:?}"
        );
        // The run was thawed after each checkpoint: it went on to write B and finish.
        assert_eq!(outcome.exit, Exit::Code(0), "{}", outcome.output_tail);
        assert_eq!(outcome.output_tail, "done\n");
        assert!(
            mid_run.taken() >= 1,
            "checkpoints taken: {}",
            mid_run.taken()
        );
        assert_eq!(std::fs::read_to_string(ws.join("b.txt")).expect("b"), "B\n");

        // The round's push: commit what is left and push, as the push activity does.
        git::commit_all(&ws, "round 1", "alice", "alice@x.invalid")
            .await
            .expect("commit");
        let (head, _) = git::push_branch(&ws, BRANCH).await.expect("push");
        assert_eq!(
            git_ok(&remote, &["rev-parse", &format!("refs/heads/{BRANCH}")]),
            head
        );
        let files = files_of(&remote, &head);
        for file in ["a.txt", "b.txt", "README", ".gitignore"] {
            assert!(
                files.contains(&file.to_owned()),
                "{file} missing: {files:?}"
            );
        }
        assert!(!files.iter().any(|file| file.starts_with("target/")));
        assert!(
            git_in(&remote, &["merge-base", "--is-ancestor", &first, &head]).is_some(),
            "the checkpoint {first} is not an ancestor of the round's push {head}"
        );
        // No duplicates: one commit per new state (A, then A and B), none empty.
        let commits = git_ok(
            &remote,
            &["rev-list", "--reverse", &format!("{base}..{head}")],
        );
        let commits: Vec<&str> = commits.lines().collect();
        assert_eq!(commits.len(), 2, "commits since the base: {commits:?}");
        assert_eq!(commits[0], first);
        let trees: std::collections::BTreeSet<String> = commits
            .iter()
            .map(|commit| git_ok(&remote, &["rev-parse", &format!("{commit}^{{tree}}")]))
            .collect();
        assert_eq!(trees.len(), commits.len(), "two commits with the same tree");
        // The workspace's worktree was never touched by a checkpoint: clean after the push.
        assert_eq!(git_ok(&ws, &["status", "--porcelain"]), "");
    })
    .await;
}
