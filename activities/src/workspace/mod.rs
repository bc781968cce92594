//! Task workspaces whose provisioning does not grow with the repository: a prebuilt base
//! checkout per (repository, base commit) in `base`, and per task an overlayfs mount of it
//! (`overlay`) at the workspace path, in which the usual branch logic of
//! `git::checkout_task` runs. Where an overlay cannot be mounted (not root, or the mount
//! fails) the workspace is a clone, with the reason logged, made from the repository's bare
//! mirror (`mirror`) so that only new objects cross the network.
//!
//! On disk, under the data directory: `bases/<repo>/<commit>/` (immutable checkouts),
//! `overlays/<task>/{upper,work,lower}` (the task's layer and the base it stacks on),
//! `mirrors/<repo>.git` and `workspaces/<task>` (the mount point, or the clone). `lower`
//! outlives a lost mount (a restarted worker, a rebooted host): the next provision mounts the
//! same layers again and finds its work.

pub mod base;
pub mod mirror;
pub mod overlay;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::data_dir::DataDir;
use crate::git::{self, Git, GitError};
pub use base::Bases;
pub use mirror::Mirrors;
pub use overlay::Layers;

/// A repository mirror no task used for this long is removed by the refresh loop.
pub const MIRROR_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How current a prepared workspace's remote-tracking refs are, which says how much of
/// `git::checkout_task` the branch logic needs.
enum Refs {
    /// Possibly behind the remote (a reused workspace, or none yet): fetch (or clone) first.
    Stale,
    /// Just fetched (a clone from the freshly fetched mirror).
    Current,
    /// A new overlay on the base of `head`, and no task branch on the remote: origin/`base`
    /// is set to `head`, nothing is fetched.
    NewOverlay { head: String },
}

/// How a workspace was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An overlay on the base at this path.
    Overlay { base: PathBuf },
    /// A full clone (the fallback), and why.
    Clone { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// The commit of the base branch the task started from (as `git::checkout_task`).
    pub base_commit: String,
    pub kind: Kind,
}

/// The workspaces and bases of one worker's data directory. Share one per process: it holds
/// the per-repository locks that keep two tasks from building a base twice.
#[derive(Debug)]
pub struct Workspaces {
    data: DataDir,
    bases: Bases,
    mirrors: Mirrors,
    /// Overlays are tried (and fall back to clones); false: always clone.
    overlay: bool,
}

impl Workspaces {
    pub fn new(data: DataDir) -> Self {
        Self {
            bases: Bases::new(data.bases()),
            mirrors: Mirrors::new(data.mirrors()),
            data,
            overlay: true,
        }
    }

    /// `false` makes every workspace a full clone (`[workspaces] overlay = false`).
    pub fn with_overlay(mut self, enabled: bool) -> Self {
        self.overlay = enabled;
        self
    }

    pub fn bases(&self) -> &Bases {
        &self.bases
    }

    /// Makes `data.workspace(task_id)` a checkout of `branch` for `repo` (see
    /// `git::checkout_task`): an existing workspace is reused (re-mounted if its mount is
    /// gone), else a new overlay on the base of origin/`base`'s current commit, built first
    /// if this is the first task on that commit, else a clone.
    pub async fn provision(
        &self,
        repo: &str,
        base: &str,
        branch: &str,
        task_id: &str,
    ) -> Result<Provisioned, GitError> {
        git::validate_task_branches(base, branch).await?;
        let dest = self.data.workspace(task_id);
        let (kind, refs) = self.prepare(repo, base, branch, task_id, &dest).await?;
        let base_commit = match refs {
            Refs::Stale => git::checkout_task(repo, base, branch, &dest).await?,
            Refs::Current => git::switch_to_task_branch(repo, base, branch, &dest).await?,
            Refs::NewOverlay { head } => {
                let git = Git::in_dir(&dest);
                git.run(&["update-ref", &format!("refs/remotes/origin/{base}"), &head])
                    .await?;
                git.run(&["update-ref", "-d", &format!("refs/remotes/origin/{branch}")])
                    .await?;
                git::switch_to_task_branch(repo, base, branch, &dest).await?
            }
        };
        Ok(Provisioned { base_commit, kind })
    }

    /// Everything before the branch logic: the workspace directory exists and, when it is an
    /// overlay, is mounted; and how current its remote-tracking refs are.
    async fn prepare(
        &self,
        repo: &str,
        base: &str,
        branch: &str,
        task_id: &str,
        dest: &Path,
    ) -> Result<(Kind, Refs), GitError> {
        let state = self.data.overlay(task_id);
        let recorded = std::fs::read_to_string(state.join("lower"))
            .ok()
            .map(PathBuf::from);
        if let Some(lower) = recorded {
            if overlay::is_mounted(dest).map_err(|e| io_error("mountinfo", dest, e))? {
                return Ok((Kind::Overlay { base: lower }, Refs::Stale));
            }
            if lower.join(".git").is_dir() {
                // The mount is gone (a restarted worker in a new mount namespace, a reboot):
                // the same layers hold the same work.
                std::fs::create_dir_all(dest).map_err(|e| io_error("mkdir", dest, e))?;
                match overlay::mount(&layers(&state, &lower), dest) {
                    Ok(()) => {
                        tracing::info!(task_id, "re-mounted the workspace overlay");
                        return Ok((Kind::Overlay { base: lower }, Refs::Stale));
                    }
                    Err(err) => {
                        tracing::warn!(task_id, %err, "cannot re-mount the workspace overlay; making it anew")
                    }
                }
            }
            // Its base is gone (or will not mount): the upper layer means nothing without it.
            // Start over; the remote task branch holds the last checkpoint.
            remove_dir(dest)?;
            remove_dir(&state)?;
        }
        if is_nonempty_dir(dest) {
            // A clone from before (the fallback, or an older worker): reuse it as a clone.
            let reason = "the workspace is an existing clone".into();
            return Ok((Kind::Clone { reason }, Refs::Stale));
        }
        let reason = if !self.overlay {
            "overlay workspaces are disabled ([workspaces] overlay = false)".to_owned()
        } else if !is_root() {
            "mounting an overlay needs a root worker".to_owned()
        } else {
            match self.mount_new(repo, base, branch, task_id, dest).await? {
                Ok((base, refs)) => return Ok((Kind::Overlay { base }, refs)),
                Err(reason) => reason,
            }
        };
        tracing::warn!(task_id, %reason, "workspace: falling back to a clone");
        let refs = match self.mirrors.clone_into(repo, dest).await {
            Ok(()) => Refs::Current,
            Err(err) => {
                // `checkout_task` clones the repository itself.
                tracing::warn!(task_id, %err, "cannot clone through the repository's mirror");
                Refs::Stale
            }
        };
        Ok((Kind::Clone { reason }, refs))
    }

    /// A new overlay on the base of origin/`base`'s head, with its refs (`NewOverlay` when the
    /// remote has no `branch` yet, so nothing to fetch). `Ok(Err(reason))`: no overlay, clone.
    async fn mount_new(
        &self,
        repo: &str,
        base: &str,
        branch: &str,
        task_id: &str,
        dest: &Path,
    ) -> Result<Result<(PathBuf, Refs), String>, GitError> {
        let heads = Bases::remote_heads(repo, &[base, branch]).await?;
        let (Some(head), checkpoint) = (heads[0].clone(), heads[1].clone()) else {
            return Err(GitError::bad_input(format!(
                "base branch {base:?} not found in {repo}"
            )));
        };
        let state = self.data.overlay(task_id);
        // A refresh may prune the base between its build and our use: at most a few rounds.
        let mut attempts = 0;
        let (lower, newer, _guard) = loop {
            let lower = self.bases.ensure(repo, &head).await?;
            let guard = self.bases.lock_state(repo).await;
            if lower.join(".git").is_dir() {
                let newer = self.newest_of(repo, base) != Some(head.clone());
                break (lower, newer, guard);
            }
            attempts += 1;
            if attempts == 3 {
                return Ok(Err("the base kept being pruned while provisioning".into()));
            }
        };
        if newer {
            self.bases
                .record_newest(repo, base, &head)
                .map_err(|e| io_error("record", &lower, e))?;
        }
        let layers = layers(&state, &lower);
        let made = (|| {
            std::fs::create_dir_all(&layers.upper)?;
            std::fs::create_dir_all(&layers.work)?;
            std::fs::create_dir_all(dest)?;
            // Written before the mount, under the state lock: from here on no prune removes
            // this base, and a lost mount can be made again.
            let tmp = state.join(".lower.tmp");
            std::fs::write(&tmp, lower.as_os_str().as_encoded_bytes())?;
            std::fs::rename(&tmp, state.join("lower"))?;
            overlay::mount(&layers, dest)
        })();
        if let Err(err) = made {
            let _ = std::fs::remove_dir_all(&state);
            return Ok(Err(format!("cannot mount an overlay workspace: {err}")));
        }
        if newer {
            // The base branch moved: bases no workspace uses any more go.
            let in_use = self.in_use();
            for removed in self.bases.prune(repo, &in_use) {
                tracing::info!(path = %removed.display(), "removed an unused workspace base");
            }
        }
        let refs = match checkpoint {
            None => Refs::NewOverlay { head },
            Some(_) => Refs::Stale,
        };
        Ok(Ok((lower, refs)))
    }

    fn newest_of(&self, repo: &str, branch: &str) -> Option<String> {
        let dir = self.bases.repo_dir(repo);
        std::fs::read_to_string(dir.join("branches"))
            .ok()?
            .lines()
            .find_map(|line| {
                let (commit, name) = line.split_once(' ')?;
                (name == branch).then(|| commit.to_owned())
            })
    }

    /// Removes a task's workspace: unmounts its overlay first (removing through the mount
    /// would whiteout every file of the base, and the mount point would stay busy), then its
    /// layers. Missing pieces are fine: this runs again after a retry.
    pub async fn remove(&self, task_id: &str, path: &Path) -> std::io::Result<()> {
        if overlay::is_mounted(path)? {
            overlay::unmount(path)?;
        }
        remove_dir_io(path).await?;
        remove_dir_io(&self.data.overlay(task_id)).await
    }

    /// The bases that existing task overlays stack on.
    pub fn in_use(&self) -> HashSet<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.data.root().join("overlays")) else {
            return HashSet::new();
        };
        entries
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path().join("lower")).ok())
            .map(PathBuf::from)
            .collect()
    }

    /// One pass of the refresh loop: for each known repository and base branch, if the
    /// branch moved (`git ls-remote`), build the base of its new head now, so the next task
    /// finds it warm; then remove the bases nothing uses, and the mirrors no task used for
    /// `MIRROR_IDLE`.
    pub async fn refresh(&self) {
        for removed in self.mirrors.prune(MIRROR_IDLE) {
            tracing::info!(path = %removed.display(), "removed an unused repository mirror");
        }
        for (repo, branches) in self.bases.known() {
            for branch in branches {
                let head = match Bases::remote_head(&repo, &branch).await {
                    Ok(Some(head)) => head,
                    Ok(None) => continue,
                    Err(err) => {
                        tracing::warn!(repo, branch, %err, "cannot refresh a workspace base");
                        continue;
                    }
                };
                if self.newest_of(&repo, &branch).as_deref() == Some(head.as_str()) {
                    continue;
                }
                if let Err(err) = self.bases.ensure(&repo, &head).await {
                    tracing::warn!(repo, branch, %err, "cannot build a workspace base");
                    continue;
                }
                let _guard = self.bases.lock_state(&repo).await;
                if let Err(err) = self.bases.record_newest(&repo, &branch, &head) {
                    tracing::warn!(repo, branch, %err, "cannot record a workspace base");
                }
            }
            let _guard = self.bases.lock_state(&repo).await;
            let in_use = self.in_use();
            for removed in self.bases.prune(&repo, &in_use) {
                tracing::info!(path = %removed.display(), "removed an unused workspace base");
            }
        }
    }

    /// Runs `refresh` every `every` until the returned handle is dropped.
    pub fn spawn_refresh(self: Arc<Self>, every: Duration) -> RefreshLoop {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                self.refresh().await;
            }
        });
        RefreshLoop(task)
    }
}

/// The background refresh of bases; stops when dropped.
#[derive(Debug)]
pub struct RefreshLoop(tokio::task::JoinHandle<()>);

impl Drop for RefreshLoop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn layers(state: &Path, lower: &Path) -> Layers {
    Layers {
        lower: vec![lower.to_owned()],
        upper: state.join("upper"),
        work: state.join("work"),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn is_nonempty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}

fn remove_dir(path: &Path) -> Result<(), GitError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("rm", path, e)),
        _ => Ok(()),
    }
}

async fn remove_dir_io(path: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// An I/O failure on `path` as a `GitError` (the error type of everything provisioning does).
fn io_error(what: &str, path: &Path, source: std::io::Error) -> GitError {
    GitError::Spawn {
        args: vec![what.to_owned(), path.display().to_string()],
        source,
    }
}
