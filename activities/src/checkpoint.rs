//! Work-in-progress checkpoints: what an agent run did in the workspace is committed and
//! pushed to the task branch, so that a task moved to another worker (its host died, or was
//! drained) continues from it instead of from the base, and a lost host loses at most one
//! `[worker] checkpoint_interval_secs` of agent work.
//!
//! When:
//! - during a run, every interval ([`MidRun`]): the run is frozen (cgroup v2 `cgroup.freeze`)
//!   while what it wrote is read, and thawed at once, so the checkpoint is one consistent
//!   state. A root worker's agent writes into an overlay upper layer that is merged into the
//!   workspace only when the run is over (`sandbox/merge.rs`); the checkpoint copies that
//!   layer's taken files aside while the run is frozen (`sandbox/snapshot.rs`). An unprivileged
//!   worker's agent writes into the workspace itself, which is then staged while frozen (or
//!   as it is, without a cgroup v2). The commit is built in a temporary index (the workspace's
//!   state plus the layer's changes, whiteouts and opaque directories honoured, `.git` never
//!   included, ignored files left out as `git add --all` would), so the workspace's worktree
//!   and index are never touched; the task branch (HEAD) then moves to it and it is pushed.
//! - at the end of a run that took at least the interval, and at the end of every run
//!   (finished or cut short) once the worker drains ([`after_run`]).
//!
//! Commits and pushes are safe to repeat: nothing new to commit makes no commit, and a remote
//! branch that already equals HEAD is not pushed again. The round's own commit (`git add
//! --all` of the real worktree into the real index) later has the last checkpoint as its
//! parent and the full state as its tree, and its push adds only what changed since.

use std::collections::BTreeSet;
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use crate::git::IndexGit;
use crate::sandbox::LiveWorkspace;
use crate::sandbox::snapshot::{self, Changed, EntryKind, LayerEntry, Select, Snapshot};
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
/// workflow asked for checkpoints (histories from before worker affinity did not); true when
/// one was pushed. A failed checkpoint is logged, never fatal: the round's result does not
/// depend on it.
pub async fn after_run(
    host: &WorkerHost,
    request: &AgentRunRequest,
    ran: Duration,
    author_email: impl Fn(&str) -> String,
) -> bool {
    let Some(author) = &request.checkpoint_author else {
        return false;
    };
    let Some(due) = due(host, ran) else {
        return false;
    };
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
            true
        }
        Ok(None) => {
            tracing::debug!(task_id = %ws.task_id, round = request.round, "nothing new to checkpoint");
            false
        }
        Err(err) => {
            tracing::warn!(task_id = %ws.task_id, round = request.round, error = %err, "checkpoint failed");
            false
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

/// Why a checkpoint failed; logged, never fatal to the run.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Snapshot(#[from] snapshot::SnapshotError),
    #[error("checkpoint scratch directory {path}: {source}")]
    Scratch {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the checkpoint's worker thread failed: {0}")]
    Thread(String),
}

/// A checkpoint that was committed and pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub commit: String,
    /// Files that differ from the commit before it.
    pub files: usize,
}

type InFlight = Pin<Box<dyn Future<Output = Result<Option<Taken>, CheckpointError>> + Send>>;

/// The mid-run checkpoints of one agent run: every interval, the run's work so far becomes a
/// commit on the task branch, pushed (see the module doc). Drive it with [`next`] beside the
/// run, and [`MidRun::settle`] once the run is over.
pub struct MidRun {
    host: WorkerHost,
    every: Duration,
    next_at: tokio::time::Instant,
    job: Arc<Job>,
    live: Option<LiveWorkspace>,
    in_flight: Option<InFlight>,
    taken: u32,
}

/// What every checkpoint of a run commits where, and as whom.
#[derive(Debug)]
struct Job {
    workspace: PathBuf,
    branch: String,
    message: String,
    author: String,
    email: String,
    task_id: String,
    round: u32,
}

impl MidRun {
    /// Checkpoints for the run of `request` when this host has an interval and the workflow
    /// asked for checkpoints (histories from before worker affinity did not); else None.
    pub fn new(
        host: &WorkerHost,
        request: &AgentRunRequest,
        author_email: impl Fn(&str) -> String,
    ) -> Option<Self> {
        let author = request.checkpoint_author.as_ref()?;
        let every = host.checkpoint_interval?;
        let ws = &request.workspace;
        Some(Self {
            host: host.clone(),
            every,
            next_at: tokio::time::Instant::now() + every,
            job: Arc::new(Job {
                workspace: PathBuf::from(&ws.path),
                branch: ws.branch.clone(),
                message: format!(
                    "errand: checkpoint of round {} of task {} (during the run)",
                    request.round, ws.task_id
                ),
                author: author.clone(),
                email: author_email(author),
                task_id: ws.task_id.clone(),
                round: request.round,
            }),
            live: None,
            in_flight: None,
            taken: 0,
        })
    }

    /// The run has started: this is what its checkpoints read.
    pub fn attach(&mut self, live: LiveWorkspace) {
        self.live = Some(live);
    }

    /// Checkpoints taken (committed and pushed) so far.
    pub fn taken(&self) -> u32 {
        self.taken
    }

    /// Waits for the next checkpoint to be due, takes it and logs it. Cancel-safe: dropped
    /// while a checkpoint is under way, the next call carries on with the same one.
    async fn step(&mut self) {
        if self.in_flight.is_none() {
            tokio::time::sleep_until(self.next_at).await;
            let Some(live) = self.live.clone() else {
                self.next_at = tokio::time::Instant::now() + self.every;
                return;
            };
            self.in_flight = Some(Box::pin(take(Arc::clone(&self.job), live)));
        }
        if let Some(in_flight) = &mut self.in_flight {
            let result = in_flight.await;
            self.in_flight = None;
            self.next_at = tokio::time::Instant::now() + self.every;
            self.record(result);
        }
    }

    /// Finishes a checkpoint still under way (the run is over), so that nothing else commits
    /// in the workspace at the same time.
    pub async fn settle(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            let result = in_flight.await;
            self.record(result);
        }
    }

    fn record(&mut self, result: Result<Option<Taken>, CheckpointError>) {
        let job = &self.job;
        match result {
            Ok(Some(taken)) => {
                self.taken += 1;
                self.host.count_checkpoint();
                tracing::info!(
                    task_id = %job.task_id, round = job.round, commit = %taken.commit,
                    files = taken.files, reason = "interval", "checkpoint pushed"
                );
            }
            Ok(None) => {
                tracing::debug!(task_id = %job.task_id, round = job.round, "nothing new to checkpoint");
            }
            Err(err) => {
                tracing::warn!(task_id = %job.task_id, round = job.round, error = %err, "checkpoint failed");
            }
        }
    }
}

/// The next mid-run checkpoint of `mid_run`, for a `select!` beside the run; never resolves
/// without checkpoints.
pub async fn next(mid_run: Option<&mut MidRun>) {
    match mid_run {
        Some(mid_run) => mid_run.step().await,
        None => std::future::pending().await,
    }
}

/// Takes one checkpoint of a run in flight: builds the commit (the run frozen only while it is
/// read), moves the task branch to it and pushes it.
async fn take(job: Arc<Job>, live: LiveWorkspace) -> Result<Option<Taken>, CheckpointError> {
    let built = {
        let job = Arc::clone(&job);
        tokio::task::spawn_blocking(move || build(&job, &live))
            .await
            .map_err(|err| CheckpointError::Thread(err.to_string()))??
    };
    let Some(taken) = built else { return Ok(None) };
    let (head, _pushed) = git::push_branch(&job.workspace, &job.branch).await?;
    Ok(Some(Taken {
        commit: head,
        files: taken.files,
    }))
}

/// Commits the run's work so far on top of HEAD without touching the workspace's worktree or
/// index, and moves HEAD (the task branch) to it. None: nothing new since HEAD.
fn build(job: &Job, live: &LiveWorkspace) -> Result<Option<Taken>, CheckpointError> {
    let scratch = Scratch::create(&job.workspace)?;
    let git = IndexGit::new(&job.workspace, &scratch.path.join("index"))
        .identity(&job.author, &job.email)?;
    let head = git.text(&["rev-parse", "--verify", "HEAD^{commit}"], None)?;
    // The workspace's own index as the start: its stat cache spares rehashing what is unchanged.
    let own_index = job.workspace.join(".git").join("index");
    if std::fs::symlink_metadata(&own_index).is_ok_and(|meta| meta.is_file()) {
        std::fs::copy(&own_index, scratch.path.join("index")).map_err(|source| {
            CheckpointError::Scratch {
                path: own_index.clone(),
                source,
            }
        })?;
    } else {
        git.run(&["read-tree", &head], None)?;
    }
    let stage_workspace = || git.run(&["add", "--all"], None);
    let update = if live.has_layer() {
        // The workspace is the overlay's lower layer: nothing writes to it during the run.
        stage_workspace()?;
        let index = IndexEntries::read(&git)?;
        let files = scratch.path.join("files");
        scratch.mkdir(&files)?;
        let mut select =
            NotIgnored::new(&git, &index, &job.workspace, &scratch.path.join("shadow"))?;
        live.while_frozen(|layer| {
            let layer = layer.expect("a run with a layer");
            snapshot::read_layer(layer, &files, &mut select)
        })??
        .into_update(&index, &git)?
    } else {
        live.while_frozen(|_| stage_workspace())??;
        Vec::new()
    };
    if !update.is_empty() {
        git.run(
            &["update-index", "--replace", "-z", "--index-info"],
            Some(&update),
        )?;
    }
    let tree = git.text(&["write-tree"], None)?;
    if tree == git.text(&["rev-parse", "--verify", "HEAD^{tree}"], None)? {
        return Ok(None);
    }
    let message = format!("{}\n\n{}", job.message, git::AGENT_TRAILER);
    let commit = git.text(&["commit-tree", &tree, "-p", &head, "-m", &message], None)?;
    let changed = git.run(
        &["diff-tree", "-r", "-z", "--name-only", &head, &commit],
        None,
    )?;
    let files = changed
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .count();
    // Only from the HEAD the commit was built on: never over a move nobody expected.
    git.run(
        &["update-ref", "-m", &job.message, "HEAD", &commit, &head],
        None,
    )?;
    Ok(Some(Taken { commit, files }))
}

/// A host-private directory beside the workspace (never inside it), removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(workspace: &std::path::Path) -> Result<Self, CheckpointError> {
        let name = workspace.file_name().unwrap_or_default().to_string_lossy();
        let path = workspace.with_file_name(format!(".{name}.checkpoint"));
        // Left over by a worker that died mid-checkpoint: only ever ours.
        let _ = std::fs::remove_dir_all(&path);
        let scratch = Self { path };
        scratch.mkdir(&scratch.path)?;
        Ok(scratch)
    }

    fn mkdir(&self, path: &std::path::Path) -> Result<(), CheckpointError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|source| CheckpointError::Scratch {
                path: path.to_owned(),
                source,
            })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The entries of the temporary index once the workspace is staged: what git tracks.
struct IndexEntries {
    /// Every path (bytes, as git has them).
    paths: BTreeSet<Vec<u8>>,
    /// The `.gitignore` files among them, with their blobs.
    gitignores: Vec<(Vec<u8>, String)>,
}

impl IndexEntries {
    fn read(git: &IndexGit) -> Result<Self, GitError> {
        let listing = git.run(&["ls-files", "--stage", "-z"], None)?;
        let mut paths = BTreeSet::new();
        let mut gitignores = Vec::new();
        // "<mode> <object> <stage>\t<path>"
        for record in listing.split(|byte| *byte == 0).filter(|r| !r.is_empty()) {
            let Some(tab) = record.iter().position(|byte| *byte == b'\t') else {
                continue;
            };
            let (meta, path) = (&record[..tab], &record[tab + 1..]);
            let is_gitignore = path == b".gitignore" || path.ends_with(b"/.gitignore");
            if is_gitignore && meta.starts_with(b"100") {
                let object = meta.split(|byte| *byte == b' ').nth(1).unwrap_or_default();
                gitignores.push((path.to_vec(), String::from_utf8_lossy(object).into_owned()));
            }
            paths.insert(path.to_vec());
        }
        Ok(Self { paths, gitignores })
    }

    fn contains(&self, path: &[u8]) -> bool {
        self.paths.contains(path)
    }

    /// Tracked paths strictly below the directory `path`.
    fn below<'a>(&'a self, path: &[u8]) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        let mut prefix = path.to_vec();
        prefix.push(b'/');
        self.paths
            .range(prefix.clone()..)
            .take_while(move |tracked| tracked.starts_with(&prefix))
    }
}

impl Snapshot {
    /// The `update-index -z --index-info` records that apply this snapshot to an index holding
    /// `index`: removals first where the run deleted or replaced something, then the new
    /// entries, in the snapshot's order (parents before children).
    fn into_update(self, index: &IndexEntries, git: &IndexGit) -> Result<Vec<u8>, GitError> {
        let staged: Vec<&std::path::Path> = self
            .changes
            .iter()
            .filter_map(|change| match &change.what {
                Changed::File { staged, .. } | Changed::Symlink { staged } => {
                    Some(staged.as_path())
                }
                _ => None,
            })
            .collect();
        let mut objects = Vec::new();
        if !staged.is_empty() {
            // Scratch paths: plain names made by the snapshot, never a newline in them.
            let mut input = Vec::new();
            for path in &staged {
                input.extend_from_slice(path.as_os_str().as_bytes());
                input.push(b'\n');
            }
            let out = git.run(
                &["hash-object", "-w", "--no-filters", "--stdin-paths"],
                Some(&input),
            )?;
            objects = String::from_utf8_lossy(&out)
                .lines()
                .map(str::to_owned)
                .collect();
        }
        if objects.len() != staged.len() {
            return Err(GitError::bad_input(format!(
                "hash-object named {} objects for {} files",
                objects.len(),
                staged.len()
            )));
        }
        let zero = "0".repeat(objects.first().map_or(40, String::len));
        let mut objects = objects.into_iter();
        let mut records = Vec::new();
        let mut record = |mode: &str, object: &str, path: &[u8]| {
            records.extend_from_slice(format!("{mode} {object}\t").as_bytes());
            records.extend_from_slice(path);
            records.push(0);
        };
        for change in &self.changes {
            let path = change.path.as_os_str().as_bytes();
            let mut remove = |path: &[u8]| record("0", &zero, path);
            match &change.what {
                Changed::Removed => {
                    index.below(path).for_each(|p| remove(p));
                    remove(path);
                }
                Changed::Dir { opaque } => {
                    if index.contains(path) {
                        remove(path);
                    }
                    if *opaque {
                        index.below(path).for_each(|p| remove(p));
                    }
                }
                Changed::File { executable, .. } => {
                    index.below(path).for_each(|p| remove(p));
                    let mode = if *executable { "100755" } else { "100644" };
                    let object = objects.next().unwrap_or_default();
                    record(mode, &object, path);
                }
                Changed::Symlink { .. } => {
                    index.below(path).for_each(|p| remove(p));
                    let object = objects.next().unwrap_or_default();
                    record("120000", &object, path);
                }
            }
        }
        Ok(records)
    }
}

/// Takes what `git add --all` would: tracked paths always, untracked ones unless ignored. The
/// rules are git's own (`check-ignore` against the temporary index), read from a shadow
/// worktree that holds only the `.gitignore` files in effect: the workspace's, as the run
/// changed them level by level.
struct NotIgnored<'a> {
    git: &'a IndexGit,
    index: &'a IndexEntries,
    /// Absolute, as the workspace's `.git`.
    shadow: PathBuf,
    git_dir: PathBuf,
}

impl<'a> NotIgnored<'a> {
    fn new(
        git: &'a IndexGit,
        index: &'a IndexEntries,
        workspace: &std::path::Path,
        shadow: &std::path::Path,
    ) -> Result<Self, CheckpointError> {
        let scratch_err = |source| CheckpointError::Scratch {
            path: shadow.to_owned(),
            source,
        };
        std::fs::create_dir(shadow).map_err(scratch_err)?;
        for (path, object) in &index.gitignores {
            let content = git.run(&["cat-file", "blob", object], None)?;
            let target = shadow.join(std::ffi::OsStr::from_bytes(path));
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(scratch_err)?;
            }
            std::fs::write(&target, content).map_err(scratch_err)?;
        }
        let absolute = |path: &std::path::Path| {
            std::path::absolute(path).map_err(|source| CheckpointError::Scratch {
                path: path.to_owned(),
                source,
            })
        };
        Ok(Self {
            git,
            index,
            shadow: absolute(shadow)?,
            git_dir: absolute(&workspace.join(".git"))?,
        })
    }

    /// Brings the shadow worktree's `.gitignore` files up to this level of the layer.
    fn follow(&self, level: &[LayerEntry]) -> std::io::Result<()> {
        for entry in level {
            let target = self.shadow.join(&entry.path);
            let gone = match entry.kind {
                EntryKind::Removed | EntryKind::Dir { opaque: true } => true,
                EntryKind::Dir { opaque: false } => !target.is_dir(),
                EntryKind::File { .. } | EntryKind::Symlink | EntryKind::Special => true,
            };
            if gone {
                match std::fs::symlink_metadata(&target) {
                    Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&target)?,
                    Ok(_) => std::fs::remove_file(&target)?,
                    Err(_) => {}
                }
            }
            if let Some(content) = &entry.gitignore {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&target, content)?;
            }
        }
        Ok(())
    }
}

impl Select for NotIgnored<'_> {
    fn select(&mut self, level: &[LayerEntry]) -> std::io::Result<Vec<bool>> {
        self.follow(level)?;
        let tracked = |entry: &LayerEntry| {
            let path = entry.path.as_os_str().as_bytes();
            self.index.contains(path)
                || (matches!(entry.kind, EntryKind::Dir { .. })
                    && self.index.below(path).next().is_some())
        };
        // Untracked candidates go to check-ignore; a directory with a trailing slash, so that
        // directory-only patterns (`target/`) match it.
        let mut input = Vec::new();
        let mut asked = Vec::new();
        for (i, entry) in level.iter().enumerate() {
            let candidate = matches!(
                entry.kind,
                EntryKind::Dir { .. } | EntryKind::File { .. } | EntryKind::Symlink
            );
            if !candidate || tracked(entry) {
                continue;
            }
            let mut name = entry.path.as_os_str().as_bytes().to_vec();
            if matches!(entry.kind, EntryKind::Dir { .. }) {
                name.push(b'/');
            }
            input.extend_from_slice(&name);
            input.push(0);
            asked.push((i, name));
        }
        let mut keep = vec![true; level.len()];
        if asked.is_empty() {
            return Ok(keep);
        }
        // Run in the shadow worktree, so that the paths are relative to its root.
        let shadow = self.shadow.to_string_lossy();
        let git_dir = format!("--git-dir={}", self.git_dir.display());
        let work_tree = format!("--work-tree={shadow}");
        let args = [
            "-C",
            &shadow,
            &git_dir,
            &work_tree,
            "check-ignore",
            "-z",
            "--stdin",
        ];
        // Exit 1: nothing is ignored.
        let out = self
            .git
            .run_accepting(&args, Some(&input), &[0, 1])
            .map_err(std::io::Error::other)?;
        let ignored: BTreeSet<&[u8]> = out.split(|byte| *byte == 0).collect();
        for (i, name) in asked {
            if ignored.contains(name.as_slice()) {
                keep[i] = false;
            }
        }
        Ok(keep)
    }
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

    fn job(ws: &Path) -> Job {
        Job {
            workspace: ws.to_owned(),
            branch: "errand/t1".into(),
            message: "errand: checkpoint (test)".into(),
            author: "alice".into(),
            email: "alice@x.invalid".into(),
            task_id: "t1".into(),
            round: 1,
        }
    }

    /// A workspace checked out from a bare remote, with `files` committed on main.
    async fn workspace(dir: &Path, files: &[(&str, &str)]) -> (PathBuf, String) {
        let seed = dir.join("seed");
        for (path, content) in files {
            let path = seed.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        git(&seed, &["init", "-q", "-b", "main"]);
        git(&seed, &["add", "."]);
        git(&seed, &["commit", "-q", "-m", "seed"]);
        git(dir, &["clone", "-q", "--bare", "seed", "remote.git"]);
        let ws = dir.join("ws");
        let remote = dir.join("remote.git").display().to_string();
        let base = git::checkout_task(&remote, "main", "errand/t1", &ws)
            .await
            .unwrap();
        (ws, base)
    }

    fn whiteout(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; a 0/0 character device is how overlayfs marks a deletion.
        let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, 0) };
        assert_eq!(
            rc,
            0,
            "mknod needs root: {}",
            std::io::Error::last_os_error()
        );
    }

    fn set_opaque(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid strings; root may set trusted.* attributes.
        let rc = unsafe {
            libc::setxattr(
                path.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }

    /// The commit is the workspace plus the layer: whiteouts delete, an opaque directory hides
    /// what was below it, ignored files (by the workspace's rules and by a `.gitignore` the run
    /// wrote) stay out, and neither `.git`, special files nor the worktree and index are touched.
    #[tokio::test]
    async fn builds_the_tree_from_an_upper_layer_with_a_whiteout() {
        let dir = tempfile::tempdir().unwrap();
        let (ws, base) = workspace(
            dir.path(),
            &[
                (".gitignore", "target/\n"),
                ("keep.txt", "keep\n"),
                ("gone.txt", "gone\n"),
                ("edit.txt", "old\n"),
                ("dir/old.txt", "old\n"),
            ],
        )
        .await;
        // An earlier round's work, not committed yet.
        std::fs::write(ws.join("earlier.txt"), "earlier\n").unwrap();
        let index_before = std::fs::read(ws.join(".git/index")).unwrap();

        let layer = dir.path().join("layer");
        let upper = layer.join("upper");
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(upper.join("edit.txt"), "new\n").unwrap();
        whiteout(&upper.join("gone.txt"));
        std::fs::create_dir(upper.join("dir")).unwrap();
        set_opaque(&upper.join("dir"));
        std::fs::write(upper.join("dir/new.txt"), "new\n").unwrap();
        std::fs::create_dir_all(upper.join("target/debug")).unwrap();
        std::fs::write(upper.join("target/debug/out"), "binary").unwrap();
        std::fs::create_dir_all(upper.join("added/sub")).unwrap();
        std::fs::write(upper.join("added/sub/f.txt"), "f\n").unwrap();
        std::fs::write(upper.join("added/.gitignore"), "*.tmp\n").unwrap();
        std::fs::write(upper.join("added/sub/scratch.tmp"), "tmp").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", upper.join("link")).unwrap();
        std::fs::create_dir(upper.join(".git")).unwrap();
        std::fs::write(upper.join(".git/config"), "[core]\nhooksPath=/tmp").unwrap();
        let fifo = std::ffi::CString::new(upper.join("fifo").display().to_string()).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let fd: std::os::fd::OwnedFd = std::fs::File::open(&layer).unwrap().into();
        let live = LiveWorkspace::of_layer(Arc::new(fd));
        let taken = build(&job(&ws), &live).unwrap().expect("a checkpoint");

        assert_eq!(git(&ws, &["rev-parse", "HEAD"]), taken.commit);
        assert_eq!(git(&ws, &["rev-parse", "HEAD^"]), base);
        assert_eq!(
            git(&ws, &["ls-tree", "-r", "--name-only", "HEAD"]),
            [
                ".gitignore",
                "added/.gitignore",
                "added/sub/f.txt",
                "dir/new.txt",
                "earlier.txt",
                "edit.txt",
                "keep.txt",
                "link",
            ]
            .join("\n")
        );
        assert_eq!(git(&ws, &["show", "HEAD:edit.txt"]), "new");
        assert!(git(&ws, &["ls-tree", "HEAD", "link"]).starts_with("120000 "));
        assert_eq!(git(&ws, &["cat-file", "-p", "HEAD:link"]), "/etc/passwd");
        assert_eq!(
            taken.files, 8,
            "earlier, edit, gone, dir/old, dir/new, added x2, link"
        );
        // The worktree and the workspace's own index are as they were.
        assert_eq!(std::fs::read(ws.join(".git/index")).unwrap(), index_before);
        assert_eq!(
            std::fs::read_to_string(ws.join("edit.txt")).unwrap(),
            "old\n"
        );
        assert!(ws.join("gone.txt").exists() && ws.join("dir/old.txt").exists());
        assert!(
            !dir.path().join(".ws.checkpoint").exists(),
            "scratch removed"
        );

        // The same state again makes no commit.
        assert_eq!(build(&job(&ws), &live).unwrap(), None);
        assert_eq!(git(&ws, &["rev-parse", "HEAD"]), taken.commit);
    }

    /// Without a layer (an unprivileged worker), the workspace itself is committed through a
    /// temporary index; the real one stays as it was.
    #[tokio::test]
    async fn without_a_layer_commits_the_workspace_through_a_temporary_index() {
        let dir = tempfile::tempdir().unwrap();
        let (ws, base) = workspace(dir.path(), &[("a.txt", "a\n")]).await;
        let index_before = std::fs::read(ws.join(".git/index")).unwrap();
        std::fs::write(ws.join("a.txt"), "b\n").unwrap();
        let taken = build(&job(&ws), &LiveWorkspace::default())
            .unwrap()
            .expect("a checkpoint");
        assert_eq!(git(&ws, &["rev-parse", "HEAD^"]), base);
        assert_eq!(git(&ws, &["show", &format!("{}:a.txt", taken.commit)]), "b");
        assert_eq!(std::fs::read(ws.join(".git/index")).unwrap(), index_before);
        // The round's own commit later finds nothing new on top of the checkpoint.
        let after = git::commit_all(&ws, "round", "alice", "alice@x.invalid")
            .await
            .unwrap();
        assert_eq!(after, None);
    }
}
