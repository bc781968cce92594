//! Prebuilt bases: one full checkout per (repository, base commit) under
//! `<data>/bases/<repo key>/<commit>/`, the lower layer of every task overlay on that commit.
//!
//! A base is never changed once built (overlayfs forbids changing a lower layer while it is
//! mounted): a base branch that moves gets a new base beside the old one, which stays until
//! no workspace uses it. Each repository's directory also records its `origin` and, in
//! `branches`, the newest known commit of each base branch, which the refresh loop follows.
//! A new base of a known repository is cloned from the newest base already built (objects
//! hardlinked) and then fetched, so a moved branch costs the new objects and the checkout.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use tokio::sync::OwnedMutexGuard;

use super::io_error;
use crate::git::{self, Git, GitError};

/// The bases of every repository this worker has provisioned from.
#[derive(Debug)]
pub struct Bases {
    root: PathBuf,
    /// Per repository: held while choosing a base and recording its use, and while pruning,
    /// so a base is never removed between being chosen and being mounted.
    state_locks: Locks,
    /// Per repository: held while building, so two tasks on a cold repository clone once.
    build_locks: Locks,
}

/// Per-repository async locks, by repository key.
pub(super) type Locks = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

impl Bases {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            state_locks: Locks::default(),
            build_locks: Locks::default(),
        }
    }

    /// `<data>/bases/<key>`: a readable stem of the repository and a hash of its full name.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join(repo_key(repo))
    }

    /// The checkout of `repo` at `commit`, if it is built.
    pub fn built(&self, repo: &str, commit: &str) -> Option<PathBuf> {
        let dir = self.repo_dir(repo).join(commit);
        dir.join(".git").is_dir().then_some(dir)
    }

    pub async fn lock_state(&self, repo: &str) -> OwnedMutexGuard<()> {
        lock(&self.state_locks, repo).await
    }

    /// The commit `branch` points at on `repo`, by `git ls-remote` (no objects move).
    pub async fn remote_head(repo: &str, branch: &str) -> Result<Option<String>, GitError> {
        let mut heads = Self::remote_heads(repo, &[branch]).await?;
        Ok(heads.pop().flatten())
    }

    /// The commits `branches` point at on `repo`, in one `git ls-remote`.
    pub async fn remote_heads(
        repo: &str,
        branches: &[&str],
    ) -> Result<Vec<Option<String>>, GitError> {
        check_repo(repo)?;
        let refnames: Vec<String> = branches.iter().map(|b| format!("refs/heads/{b}")).collect();
        let mut args = vec!["ls-remote", "--refs", "--", repo];
        args.extend(refnames.iter().map(String::as_str));
        let listing = Git::anywhere().output(&args).await?;
        if listing.code != Some(0) {
            return Err(GitError::bad_input(format!(
                "cannot reach {repo}: {}",
                listing.stderr
            )));
        }
        Ok(refnames
            .iter()
            .map(|refname| {
                listing.stdout.lines().find_map(|line| {
                    let (commit, name) = line.split_once('\t')?;
                    (name == refname).then(|| commit.to_owned())
                })
            })
            .collect())
    }

    /// The base of `repo` at `commit`, built now if missing (a clone, the commit checked out
    /// detached, the index refreshed). Concurrent callers for one repository build once.
    pub async fn ensure(&self, repo: &str, commit: &str) -> Result<PathBuf, GitError> {
        if let Some(dir) = self.built(repo, commit) {
            return Ok(dir);
        }
        let _building = lock(&self.build_locks, repo).await;
        if let Some(dir) = self.built(repo, commit) {
            return Ok(dir);
        }
        let started = std::time::Instant::now();
        let dir = self.build(repo, commit).await?;
        tracing::info!(
            repo,
            commit,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "built a workspace base"
        );
        Ok(dir)
    }

    async fn build(&self, repo: &str, commit: &str) -> Result<PathBuf, GitError> {
        check_repo(repo)?;
        if commit.len() < 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GitError::bad_input(format!("invalid commit {commit:?}")));
        }
        let repo_dir = self.repo_dir(repo);
        std::fs::create_dir_all(&repo_dir).map_err(|e| io_error("mkdir", &repo_dir, e))?;
        std::fs::write(repo_dir.join("origin"), repo)
            .map_err(|e| io_error("write", &repo_dir, e))?;
        let staging = repo_dir.join(format!(".{commit}.building"));
        let _ = std::fs::remove_dir_all(&staging);
        let result = async {
            self.clone_into(repo, &staging).await?;
            let git = Git::in_dir(&staging);
            let before = unix_seconds() - 1;
            // Detached at the commit: a task branch created there switches without touching
            // a file (git's fast path for a new branch at HEAD). Index version 4
            // (prefix-compressed paths) halves the index of a large tree.
            git.run(&[
                "-c",
                "index.version=4",
                "checkout",
                "--quiet",
                "--detach",
                commit,
            ])
            .await?;
            // Files written in the same second as the index are "racily clean": git would
            // re-read them all on every status in every task. A base is never changed in
            // place, so its files are dated a second before the checkout began and the
            // index refreshed once, instead of waiting for the clock to pass that second.
            let tree = staging.clone();
            tokio::task::spawn_blocking(move || backdate_tree(&tree, before))
                .await
                .unwrap_or_else(|panic| Err(std::io::Error::other(panic)))
                .map_err(|e| io_error("backdate", &staging, e))?;
            // Its status is not checked: a file that a content filter changes on checkout
            // stays "modified" whatever the index says.
            let _ = git.output(&["update-index", "-q", "--refresh"]).await?;
            Ok(())
        }
        .await;
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(err);
        }
        let dir = repo_dir.join(commit);
        std::fs::rename(&staging, &dir).map_err(|e| io_error("rename", &dir, e))?;
        Ok(dir)
    }

    /// Clones `repo` into `dest` without a checkout: from the newest base of `repo` on this
    /// host when there is one (a moved base branch: only the new objects are fetched), else
    /// from `repo` itself.
    async fn clone_into(&self, repo: &str, dest: &Path) -> Result<(), GitError> {
        // Held while the seed's objects are linked, so that no prune removes it meanwhile.
        let state = self.lock_state(repo).await;
        let Some(seed) = self.newest_built(repo) else {
            drop(state);
            return git::clone_no_checkout(repo, dest).await;
        };
        let clone = git::SeededClone {
            repo,
            seed: &seed,
            dest,
        };
        let linked = clone.link().await;
        drop(state);
        match linked {
            Ok(()) => clone.fetch().await,
            Err(err) => {
                tracing::warn!(repo, %err, "cannot clone from an earlier base; cloning anew");
                let _ = std::fs::remove_dir_all(dest);
                git::clone_no_checkout(repo, dest).await
            }
        }
    }

    /// The most recently built base of `repo`, if any.
    fn newest_built(&self, repo: &str) -> Option<PathBuf> {
        std::fs::read_dir(self.repo_dir(repo))
            .ok()?
            .flatten()
            .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
            .filter(|entry| entry.path().join(".git").is_dir())
            .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
            .max()
            .map(|(_, path)| path)
    }

    /// Records `commit` as the newest base of `branch` (the refresh loop follows it). The
    /// caller holds the state lock.
    pub fn record_newest(&self, repo: &str, branch: &str, commit: &str) -> std::io::Result<()> {
        let repo_dir = self.repo_dir(repo);
        std::fs::create_dir_all(&repo_dir)?;
        std::fs::write(repo_dir.join("origin"), repo)?;
        let mut branches = read_branches(&repo_dir);
        if branches.get(branch).map(String::as_str) == Some(commit) {
            return Ok(());
        }
        branches.insert(branch.to_owned(), commit.to_owned());
        let text: String = branches
            .iter()
            .map(|(branch, commit)| format!("{commit} {branch}\n"))
            .collect();
        let tmp = repo_dir.join(".branches.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, repo_dir.join("branches"))
    }

    /// Every repository with bases, and the base branches followed in it.
    pub fn known(&self) -> Vec<(String, Vec<String>)> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let dir = entry.path();
                let origin = std::fs::read_to_string(dir.join("origin")).ok()?;
                Some((origin, read_branches(&dir).into_keys().collect()))
            })
            .collect()
    }

    /// Removes the bases of `repo` that are neither the newest of a branch nor in `in_use`
    /// (the lower layers of existing workspaces), and builds left over by a crash. The
    /// caller holds the state lock.
    pub fn prune(&self, repo: &str, in_use: &HashSet<PathBuf>) -> Vec<PathBuf> {
        let repo_dir = self.repo_dir(repo);
        let newest: HashSet<String> = read_branches(&repo_dir).into_values().collect();
        let no_build_running = lock_is_free(&self.build_locks, repo);
        let mut removed = Vec::new();
        let Ok(entries) = std::fs::read_dir(&repo_dir) else {
            return removed;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = if name.ends_with(".building") {
                no_build_running
            } else {
                path.is_dir() && !newest.contains(&name) && !in_use.contains(&path)
            };
            if stale {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => removed.push(path),
                    Err(err) => {
                        tracing::warn!(path = %path.display(), %err, "cannot remove a base")
                    }
                }
            }
        }
        removed
    }
}

pub(super) async fn lock(locks: &Locks, repo: &str) -> OwnedMutexGuard<()> {
    lock_of(locks, &repo_key(repo)).lock_owned().await
}

/// The lock of the repository whose key is `key`, if nobody in this process holds it.
pub(super) fn try_lock_key(locks: &Locks, key: &str) -> Option<OwnedMutexGuard<()>> {
    lock_of(locks, key).try_lock_owned().ok()
}

fn lock_of(locks: &Locks, key: &str) -> Arc<tokio::sync::Mutex<()>> {
    Arc::clone(
        locks
            .lock()
            .expect("a lock map holds no invariant a panic could break")
            .entry(key.to_owned())
            .or_default(),
    )
}

/// True when nobody builds for `repo` in this process (so a `.building` dir is a crash's).
fn lock_is_free(locks: &Locks, repo: &str) -> bool {
    let map = locks
        .lock()
        .expect("a lock map holds no invariant a panic could break");
    map.get(&repo_key(repo))
        .is_none_or(|lock| lock.try_lock().is_ok())
}

/// `<branch>` -> newest base commit, from `<repo dir>/branches` ("<commit> <branch>" lines).
fn read_branches(repo_dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(repo_dir.join("branches"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (commit, branch) = line.split_once(' ')?;
            Some((branch.to_owned(), commit.to_owned()))
        })
        .collect()
}

/// A directory name for a repository: its last path segment (for people) and an FNV-1a hash
/// of the whole string (for uniqueness).
pub(super) fn repo_key(repo: &str) -> String {
    let hash = repo.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let stem: String = repo
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default()
        .trim_end_matches(".git")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    format!("{}-{hash:016x}", stem.trim_start_matches('.'))
}

pub(super) fn check_repo(repo: &str) -> Result<(), GitError> {
    if repo.is_empty() || repo.starts_with('-') {
        return Err(GitError::bad_input(format!("invalid repository {repo:?}")));
    }
    Ok(())
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// Sets the modification time of everything under `dir` but `.git` to `seconds` (symlinks
/// themselves, not their targets).
fn backdate_tree(dir: &Path, seconds: i64) -> std::io::Result<()> {
    let time = TimeSpec::new(seconds, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            backdate_tree(&path, seconds)?;
        }
        utimensat(
            AT_FDCWD,
            &path,
            &time,
            &time,
            UtimensatFlags::NoFollowSymlink,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_keys_are_readable_and_distinct() {
        let a = repo_key("/srv/git/shop.git");
        assert!(a.starts_with("shop-"), "{a}");
        assert_ne!(a, repo_key("/other/shop.git"));
        assert!(repo_key("git@host:org/x").starts_with("x-"));
        assert!(!repo_key("/..").starts_with('.'));
    }
}
