//! Clone workspaces (where no overlay can be mounted) start from a bare mirror of their
//! repository under `<data>/mirrors/`: the mirror is fetched, cloned locally (its objects
//! hardlinked, not copied) and the clone pointed at the repository, so a task costs the objects
//! new since the last task and the checkout, not a full clone over the network. The clone's
//! refs are the mirror's, just fetched: the branch logic needs no other fetch.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::base::{Locks, check_repo, lock, repo_key, try_lock_key};
use super::io_error;
use crate::git::{self, Git, GitError, SeededClone};

#[derive(Debug)]
pub struct Mirrors {
    root: PathBuf,
    /// Per repository: held while its mirror is made or fetched and while a task links its
    /// objects, so no fetch (nor the gc it may run) removes a pack being linked.
    locks: Locks,
}

impl Mirrors {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            locks: Locks::default(),
        }
    }

    /// The bare mirror of `repo`.
    pub fn path(&self, repo: &str) -> PathBuf {
        self.root.join(format!("{}.git", repo_key(repo)))
    }

    /// Makes `dest` (absent or empty) a clone of `repo` without a checkout, its refs as the
    /// repository has them now: built beside it and renamed into place.
    pub async fn clone_into(&self, repo: &str, dest: &Path) -> Result<(), GitError> {
        check_repo(repo)?;
        let mirror = self.path(repo);
        let staging = git::staging_path(dest)?;
        let _ = std::fs::remove_dir_all(&staging);
        let clone = SeededClone {
            repo,
            seed: &mirror,
            dest: &staging,
        };
        let made = async {
            {
                let _mirror = lock(&self.locks, repo).await;
                self.update(repo, &mirror).await?;
                clone.link().await?;
                // Its time of last use, which `prune` reads.
                std::fs::File::open(&mirror)
                    .and_then(|dir| dir.set_modified(SystemTime::now()))
                    .map_err(|e| io_error("touch", &mirror, e))?;
            }
            clone.adopt().await
        }
        .await;
        if let Err(err) = made {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(err);
        }
        std::fs::rename(&staging, dest).map_err(|e| io_error("rename", dest, e))
    }

    /// Removes the mirrors no task has used for `idle` and those a crash left half-made; a
    /// mirror in use (its lock held) stays.
    pub fn prune(&self, idle: Duration) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return removed;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (key, stale) = if let Some(key) = name.strip_suffix(".git.making") {
                (key, true)
            } else if let Some(key) = name.strip_suffix(".git") {
                let idle_for = entry
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .ok()
                    .and_then(|used| used.elapsed().ok());
                (key, idle_for.is_some_and(|idle_for| idle_for > idle))
            } else {
                continue;
            };
            let Some(_unused) = stale.then(|| try_lock_key(&self.locks, key)).flatten() else {
                continue;
            };
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => removed.push(entry.path()),
                Err(err) => {
                    tracing::warn!(path = %entry.path().display(), %err, "cannot remove a mirror")
                }
            }
        }
        removed
    }

    /// Fetches the mirror, or makes it (a bare clone) the first time.
    async fn update(&self, repo: &str, mirror: &Path) -> Result<(), GitError> {
        if mirror.join("HEAD").is_file() {
            return git::fetch_origin(mirror, repo).await;
        }
        std::fs::create_dir_all(&self.root).map_err(|e| io_error("mkdir", &self.root, e))?;
        let tmp = mirror.with_extension("git.making");
        let _ = std::fs::remove_dir_all(&tmp);
        let made = async {
            git::clone_with(repo, &tmp, "--bare").await?;
            let git = Git::in_dir(&tmp);
            // A bare clone fetches nothing by default: every branch, as the repository has it.
            git.run(&[
                "config",
                "remote.origin.fetch",
                "+refs/heads/*:refs/heads/*",
            ])
            .await?;
            // gc in the foreground of the fetch that starts it, under the lock.
            git.run(&["config", "gc.autoDetach", "false"]).await?;
            Ok(())
        }
        .await;
        if let Err(err) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(err);
        }
        std::fs::rename(&tmp, mirror).map_err(|e| io_error("rename", mirror, e))
    }
}
