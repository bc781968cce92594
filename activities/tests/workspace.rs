//! Warm workspaces against real git and real mounts (the tests run as root): a base built once
//! per (repository, commit) and shared by the tasks on it, a new base when the base branch
//! moves while the old one stays under its task, the clone fallback, re-mounting a lost
//! mount, cleanup that unmounts, and the sandbox's own overlay stacked on a task's layers.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use activities::data_dir::DataDir;
use activities::sandbox::{Exit, Limits, Sandbox, SandboxSpec};
use activities::workspace::{Kind, MIRROR_IDLE, Mirrors, Workspaces, overlay};
use tempfile::TempDir;

const TEST_BOUND: Duration = Duration::from_secs(120);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

/// Runs an overlay test within its bound; overlays need root, so elsewhere it says it skipped.
async fn as_root(test: impl Future<Output = ()>) {
    if !is_root() {
        eprintln!("skipped: overlays need root");
        return;
    }
    bounded(test).await;
}

fn is_root() -> bool {
    // SAFETY: a plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// A bare remote with `main` seeded, a seed clone to push from, and a data directory.
struct Fixture {
    dir: TempDir,
    data: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        Self::with_data_name("data")
    }

    fn with_data_name(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        git_out(
            dir.path(),
            &["init", "--quiet", "--bare", "-b", "main", "remote.git"],
        );
        git_out(dir.path(), &["clone", "--quiet", "remote.git", "seed"]);
        let data = dir.path().join(name);
        std::fs::create_dir(&data).expect("data dir");
        let fx = Self { dir, data };
        fx.commit_on_main("README", "hello\n");
        fx.commit_on_main("doomed.txt", "to be deleted\n");
        fx
    }

    fn url(&self) -> String {
        self.dir.path().join("remote.git").display().to_string()
    }

    fn data(&self) -> DataDir {
        DataDir::new(&self.data)
    }

    fn workspaces(&self) -> Workspaces {
        Workspaces::new(self.data())
    }

    fn workspace(&self, task: &str) -> PathBuf {
        self.data().workspace(task)
    }

    fn commit_on_main(&self, path: &str, content: &str) -> String {
        let seed = self.dir.path().join("seed");
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

    /// The base checkouts on disk (commit directories under bases/<repo>/).
    fn bases(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for repo in std::fs::read_dir(self.data.join("bases"))
            .into_iter()
            .flatten()
        {
            for entry in std::fs::read_dir(repo.expect("entry").path()).expect("repo dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    found.push(path);
                }
            }
        }
        found.sort();
        found
    }

    async fn provision(&self, ws: &Workspaces, task: &str) -> activities::workspace::Provisioned {
        ws.provision(&self.url(), "main", &format!("errand/{task}"), task)
            .await
            .expect("provision")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Never leave a mount behind under a directory the TempDir is about to remove.
        for entry in std::fs::read_dir(self.data.join("workspaces"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = overlay::unmount(&entry.path());
        }
    }
}

/// (device, inode) of every file under the `objects` directory of the git directory `git_dir`.
fn object_inodes(git_dir: &Path) -> std::collections::HashSet<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut inodes = std::collections::HashSet::new();
    let mut dirs = vec![git_dir.join("objects")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("objects").flatten() {
            let meta = entry.metadata().expect("stat");
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                inodes.insert((meta.dev(), meta.ino()));
            }
        }
    }
    inodes
}

fn base_of(kind: &Kind) -> PathBuf {
    match kind {
        Kind::Overlay { base } => base.clone(),
        Kind::Clone { reason } => panic!("expected an overlay, got a clone: {reason}"),
    }
}

#[tokio::test]
async fn a_base_is_built_once_and_shared_by_two_tasks() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let head = git_out(&fx.dir.path().join("seed"), &["rev-parse", "HEAD"]);
        let one = fx.provision(&ws, "task-1").await;
        let two = fx.provision(&ws, "task-2").await;
        assert_eq!(base_of(&one.kind), base_of(&two.kind));
        assert_eq!(fx.bases(), vec![base_of(&one.kind)]);
        assert_eq!(
            (one.base_commit.as_str(), two.base_commit.as_str()),
            (head.as_str(), head.as_str())
        );
        for task in ["task-1", "task-2"] {
            let dest = fx.workspace(task);
            assert!(overlay::is_mounted(&dest).expect("mountinfo"), "{task}");
            assert_eq!(
                git_out(&dest, &["symbolic-ref", "--short", "HEAD"]),
                format!("errand/{task}")
            );
            assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
        }
        // Copy-on-write: one task's change is its own, and the base never changes.
        std::fs::write(fx.workspace("task-1").join("README"), "changed\n").expect("write");
        std::fs::remove_file(fx.workspace("task-1").join("doomed.txt")).expect("rm");
        let read = |dir: &Path, name: &str| std::fs::read_to_string(dir.join(name)).ok();
        assert_eq!(
            read(&fx.workspace("task-2"), "README").as_deref(),
            Some("hello\n")
        );
        assert!(read(&fx.workspace("task-2"), "doomed.txt").is_some());
        assert_eq!(
            read(&base_of(&one.kind), "README").as_deref(),
            Some("hello\n")
        );
        assert!(read(&base_of(&one.kind), "doomed.txt").is_some());
        // Provisioning again reuses the mounted workspace and its work.
        let again = fx.provision(&ws, "task-1").await;
        assert_eq!(again.kind, one.kind);
        assert_eq!(
            read(&fx.workspace("task-1"), "README").as_deref(),
            Some("changed\n")
        );
    })
    .await;
}

/// A base's index is written after every file's time, so git trusts its stat data (no "racily
/// clean" entry to re-read on every status), yet an edit of the same size made at once in a
/// task, within the second of the build, is still seen.
#[tokio::test]
async fn a_new_base_has_no_racily_clean_entry_and_same_second_edits_show() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let provisioned = fx.provision(&ws, "task-1").await;
        let base = base_of(&provisioned.kind);
        let seconds = |path: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(path).expect("lstat").mtime()
        };
        let index = seconds(&base.join(".git/index"));
        for name in ["README", "doomed.txt"] {
            assert!(seconds(&base.join(name)) < index, "{name} is racily clean");
        }
        let dest = fx.workspace("task-1");
        std::fs::write(dest.join("README"), "HELLO\n").expect("write");
        assert_eq!(git_out(&dest, &["status", "--porcelain"]), "M README");
    })
    .await;
}

#[tokio::test]
async fn an_overlay_continues_from_a_pushed_checkpoint() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        // The base is built (and knows no task branch) before the checkpoint is pushed.
        fx.provision(&ws, "task-1").await;
        let seed = fx.dir.path().join("seed");
        git_out(&seed, &["checkout", "--quiet", "-b", "errand/task-9"]);
        std::fs::write(seed.join("wip.txt"), "checkpoint\n").expect("write");
        git_out(&seed, &["add", "wip.txt"]);
        git_out(&seed, &["commit", "--quiet", "-m", "wip"]);
        git_out(&seed, &["push", "--quiet", "origin", "errand/task-9"]);
        let checkpoint = git_out(&seed, &["rev-parse", "HEAD"]);
        let made = fx.provision(&ws, "task-9").await;
        base_of(&made.kind);
        let dest = fx.workspace("task-9");
        assert_eq!(git_out(&dest, &["rev-parse", "HEAD"]), checkpoint);
        assert_eq!(
            std::fs::read_to_string(dest.join("wip.txt")).expect("wip"),
            "checkpoint\n"
        );
    })
    .await;
}

#[tokio::test]
async fn a_moved_base_branch_gets_a_new_base_and_the_old_one_stays_under_its_task() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let old = fx.provision(&ws, "task-1").await;
        let moved = fx.commit_on_main("README", "moved\n");
        let new = fx.provision(&ws, "task-2").await;
        assert_ne!(base_of(&old.kind), base_of(&new.kind));
        assert_eq!(new.base_commit, moved);
        assert!(base_of(&new.kind).ends_with(&moved));
        // The old base is still the lower layer of task-1's mount.
        assert_eq!(fx.bases().len(), 2);
        let readme = |task: &str| {
            std::fs::read_to_string(fx.workspace(task).join("README")).expect("README")
        };
        assert_eq!(
            (readme("task-1"), readme("task-2")),
            ("hello\n".into(), "moved\n".into())
        );
        // Once task-1 is gone, the next refresh removes its base (not the newest one).
        ws.remove("task-1", &fx.workspace("task-1"))
            .await
            .expect("remove");
        ws.refresh().await;
        assert_eq!(fx.bases(), vec![base_of(&new.kind)]);
        assert_eq!(readme("task-2"), "moved\n");
    })
    .await;
}

/// The base of a moved branch starts from the previous base: its objects are hardlinked, and
/// only the new ones are fetched. (Over `file://`, git copies what it fetches, as it would over
/// the network, so shared inodes can only come from the previous base.)
#[tokio::test]
async fn a_new_base_links_the_objects_of_the_previous_one() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let url = format!("file://{}", fx.url());
        let provision = |task: &'static str| {
            let (ws, url) = (&ws, url.clone());
            async move {
                ws.provision(&url, "main", &format!("errand/{task}"), task)
                    .await
                    .expect("provision")
            }
        };
        let old = base_of(&provision("task-1").await.kind);
        let moved = fx.commit_on_main("README", "moved\n");
        let new = provision("task-2").await;
        assert_eq!(new.base_commit, moved);
        let new = base_of(&new.kind);
        let shared = object_inodes(&old.join(".git"))
            .intersection(&object_inodes(&new.join(".git")))
            .count();
        assert!(
            shared > 0,
            "the new base shares no object file with the old one"
        );
        // It is a clone of the repository, not of the old base, with its branches as the
        // repository has them now.
        assert_eq!(
            git_out(&new, &["config", "remote.origin.url"]),
            url,
            "origin of the new base"
        );
        assert_eq!(
            git_out(&new, &["rev-parse", "main", "origin/main"]),
            format!("{moved}\n{moved}")
        );
        assert_eq!(
            std::fs::read_to_string(fx.workspace("task-2").join("README")).expect("README"),
            "moved\n"
        );
    })
    .await;
}

#[tokio::test]
async fn the_refresh_prebuilds_the_base_of_a_moved_branch() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let first = fx.provision(&ws, "task-1").await;
        ws.remove("task-1", &fx.workspace("task-1"))
            .await
            .expect("remove");
        let moved = fx.commit_on_main("README", "moved\n");
        ws.refresh().await;
        let bases = fx.bases();
        assert_eq!(bases.len(), 1, "{bases:?}");
        assert!(bases[0].ends_with(&moved), "{bases:?}");
        assert_ne!(bases[0], base_of(&first.kind));
        // The next task finds it warm.
        let next = fx.provision(&ws, "task-2").await;
        assert_eq!(base_of(&next.kind), bases[0]);
    })
    .await;
}

#[tokio::test]
async fn without_an_overlay_the_workspace_is_a_clone() {
    bounded(async {
        let fx = Fixture::new();
        let ws = fx.workspaces().with_overlay(false);
        let made = fx.provision(&ws, "task-1").await;
        assert!(matches!(made.kind, Kind::Clone { .. }), "{:?}", made.kind);
        let dest = fx.workspace("task-1");
        assert!(!overlay::is_mounted(&dest).expect("mountinfo"));
        assert_eq!(
            git_out(&dest, &["symbolic-ref", "--short", "HEAD"]),
            "errand/task-1"
        );
        assert!(!fx.data.join("bases").exists());
        ws.remove("task-1", &dest).await.expect("remove");
        assert!(!dest.exists());
    })
    .await;
}

/// Clone workspaces start from the repository's mirror: a task's clone links the mirror's
/// objects (over `file://`, git copies what it fetches, so shared inodes come from the mirror)
/// and is a clone of the repository, current with it. Idle mirrors go.
#[tokio::test]
async fn a_clone_workspace_starts_from_the_repository_mirror() {
    bounded(async {
        let fx = Fixture::new();
        let ws = fx.workspaces().with_overlay(false);
        let url = format!("file://{}", fx.url());
        let provision = |task: &'static str| {
            let (ws, url) = (&ws, url.clone());
            async move {
                let made = ws
                    .provision(&url, "main", &format!("errand/{task}"), task)
                    .await
                    .expect("provision");
                assert!(matches!(made.kind, Kind::Clone { .. }), "{:?}", made.kind);
            }
        };
        provision("task-1").await;
        let moved = fx.commit_on_main("README", "moved\n");
        provision("task-2").await;
        let mirror = Mirrors::new(fx.data().mirrors()).path(&url);
        let dest = fx.workspace("task-2");
        let shared = object_inodes(&mirror)
            .intersection(&object_inodes(&dest.join(".git")))
            .count();
        assert!(
            shared > 0,
            "the clone shares no object file with the mirror"
        );
        assert_eq!(git_out(&dest, &["config", "remote.origin.url"]), url);
        assert_eq!(
            git_out(&dest, &["rev-parse", "HEAD", "origin/main"]),
            format!("{moved}\n{moved}")
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("README")).expect("README"),
            "moved\n"
        );
        assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
        // The mirror followed the repository.
        assert_eq!(git_out(&mirror, &["rev-parse", "main"]), moved);

        // The refresh keeps a mirror in use and removes one idle for longer than MIRROR_IDLE,
        // and what a crash left half-made.
        let half_made = mirror.with_extension("git.making");
        std::fs::create_dir(&half_made).expect("mkdir");
        ws.refresh().await;
        assert!(mirror.is_dir() && !half_made.exists());
        let long_ago = std::time::SystemTime::now() - MIRROR_IDLE - Duration::from_secs(60);
        std::fs::File::open(&mirror)
            .and_then(|dir| dir.set_modified(long_ago))
            .expect("age the mirror");
        ws.refresh().await;
        assert!(!mirror.exists(), "an idle mirror was kept");
    })
    .await;
}

#[tokio::test]
async fn a_failed_mount_falls_back_to_a_clone() {
    as_root(async {
        // overlayfs cannot take a layer path with a comma in its options: the mount fails.
        let fx = Fixture::with_data_name("da,ta");
        let ws = fx.workspaces();
        let made = fx.provision(&ws, "task-1").await;
        match &made.kind {
            Kind::Clone { reason } => assert!(reason.contains("mount"), "{reason}"),
            kind => panic!("expected the clone fallback, got {kind:?}"),
        }
        let dest = fx.workspace("task-1");
        assert!(!overlay::is_mounted(&dest).expect("mountinfo"));
        assert!(!fx.data().overlay("task-1").exists());
        assert_eq!(
            git_out(&dest, &["symbolic-ref", "--short", "HEAD"]),
            "errand/task-1"
        );
        // And it is reused as a clone on the next provision.
        let again = fx.provision(&ws, "task-1").await;
        assert!(matches!(again.kind, Kind::Clone { .. }));
    })
    .await;
}

#[tokio::test]
async fn cleanup_unmounts_before_removing() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let made = fx.provision(&ws, "task-1").await;
        let dest = fx.workspace("task-1");
        std::fs::write(dest.join("new.txt"), "x").expect("write");
        ws.remove("task-1", &dest).await.expect("remove");
        assert!(!overlay::is_mounted(&dest).expect("mountinfo"));
        assert!(!dest.exists());
        assert!(!fx.data().overlay("task-1").exists());
        // The base stays (the newest of main) and was not written through.
        let base = base_of(&made.kind);
        assert!(base.join("README").is_file() && base.join("doomed.txt").is_file());
        assert!(!base.join("new.txt").exists());
        // Removing twice is fine.
        ws.remove("task-1", &dest).await.expect("remove again");
    })
    .await;
}

#[tokio::test]
async fn a_lost_mount_is_mounted_again_with_its_work() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let made = fx.provision(&ws, "task-1").await;
        let dest = fx.workspace("task-1");
        std::fs::write(dest.join("work.txt"), "in progress\n").expect("write");
        // As after a reboot, or a worker restarted in a new mount namespace.
        overlay::unmount(&dest).expect("unmount");
        assert!(!dest.join("work.txt").exists());
        let again = Workspaces::new(fx.data())
            .provision(&fx.url(), "main", "errand/task-1", "task-1")
            .await
            .expect("provision");
        assert_eq!(again.kind, made.kind);
        assert!(overlay::is_mounted(&dest).expect("mountinfo"));
        assert_eq!(
            std::fs::read_to_string(dest.join("work.txt")).expect("work"),
            "in progress\n"
        );

        // With its base gone too, the workspace is made anew from the remote.
        overlay::unmount(&dest).expect("unmount");
        std::fs::remove_dir_all(base_of(&made.kind)).expect("rm base");
        let anew = fx.provision(&ws, "task-1").await;
        assert!(overlay::is_mounted(&dest).expect("mountinfo"));
        assert!(base_of(&anew.kind).join(".git").is_dir());
        assert!(!dest.join("work.txt").exists());
        assert_eq!(git_out(&dest, &["status", "--porcelain"]), "");
    })
    .await;
}

#[tokio::test]
async fn the_sandbox_stacks_its_overlay_on_a_task_overlay() {
    as_root(async {
        let fx = Fixture::new();
        let ws = fx.workspaces();
        let made = fx.provision(&ws, "task-1").await;
        let dest = fx.workspace("task-1");
        // A change of the task's own before the run: the sandbox must see it too.
        std::fs::write(dest.join("earlier.txt"), "earlier\n").expect("write");
        let sandbox = Sandbox::detect()
            .await
            .expect("bwrap must work on the test host");
        let spec = SandboxSpec {
            workspace: dest.clone(),
            inputs_dir: None,
            argv: [
                "sh",
                "-c",
                "cat earlier.txt README && echo edited > README && rm doomed.txt \
                 && mkdir -p dir && echo new > dir/new.txt",
            ]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect(),
            env: vec![],
            timeout: Duration::from_secs(30),
            log_path: fx.dir.path().join("run.log"),
            limits: Limits::default(),
            network: None,
            model_gateway: None,
        };
        let outcome = sandbox
            .spawn(&spec)
            .expect("spawn")
            .wait(std::future::pending())
            .await
            .expect("wait");
        assert_eq!(outcome.exit, Exit::Code(0), "{}", outcome.output_tail);
        assert!(
            outcome.output_tail.starts_with("earlier\nhello\n"),
            "{}",
            outcome.output_tail
        );
        let read = |name: &str| std::fs::read_to_string(dest.join(name)).ok();
        assert_eq!(read("README").as_deref(), Some("edited\n"));
        assert_eq!(read("doomed.txt"), None);
        assert_eq!(read("dir/new.txt").as_deref(), Some("new\n"));
        let base = base_of(&made.kind);
        assert_eq!(
            std::fs::read_to_string(base.join("README")).expect("base"),
            "hello\n"
        );
        assert!(base.join("doomed.txt").is_file());
        let status = git_out(&dest, &["status", "--porcelain"]);
        assert!(
            status.contains("M README") && status.contains(" D doomed.txt"),
            "{status}"
        );
    })
    .await;
}

fn git_out(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
