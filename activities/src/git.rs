//! The task's git operations on the host: checkout, commit, push, diff size and merge, each
//! safe to repeat (a retry never commits twice, pushes twice or rewrites history).

mod cli;

use std::path::{Path, PathBuf};

pub(crate) use cli::Git;
pub use cli::GitError;

/// The agent's share in every commit it helped write.
pub const AGENT_TRAILER: &str = "Co-authored-by: errand-agent <agent@errand.invalid>";
/// Records which `repo` argument a checkout was cloned from, to recognise it on reuse.
const REPO_CONFIG_KEY: &str = "errand.repo";

/// Clone `repo` (URL or path) into `dest` and check out `branch`: from the remote's `branch`
/// if it exists (a checkpoint of earlier work), else new at origin/`base`. If `dest` is already
/// a checkout of that repo, reuse it (fetch, keep local work). Returns the commit of
/// origin/`base` the task started from (the merge-base if the branch exists). An unreachable
/// repo or missing base branch is `GitError::BadInput` naming it.
pub async fn checkout_task(
    repo: &str,
    base: &str,
    branch: &str,
    dest: &Path,
) -> Result<String, GitError> {
    validate_task_branches(base, branch).await?;
    if is_checkout_of(repo, dest).await? {
        Git::in_dir(dest)
            .run(&["fetch", "--quiet", "--prune", "origin"])
            .await?;
    } else {
        clone(repo, dest).await?;
    }
    switch_to_task_branch(repo, base, branch, dest).await
}

/// The branch logic of `checkout_task` in a checkout of `repo` whose remote-tracking refs are
/// current (just fetched, or a new overlay on a base whose origin/`base` was just checked),
/// with `base` and `branch` already validated.
pub(crate) async fn switch_to_task_branch(
    repo: &str,
    base: &str,
    branch: &str,
    dest: &Path,
) -> Result<String, GitError> {
    let git = Git::in_dir(dest);
    let base_ref = format!("refs/remotes/origin/{base}");
    let Some(_) = git.commit_of(&base_ref).await? else {
        return Err(GitError::bad_input(format!(
            "base branch {base:?} not found in {repo}"
        )));
    };
    let local_ref = format!("refs/heads/{branch}");
    let remote_ref = format!("refs/remotes/origin/{branch}");
    let remote = git.commit_of(&remote_ref).await?;
    if git.commit_of(&local_ref).await?.is_some() {
        let current = git.output(&["symbolic-ref", "--quiet", "HEAD"]).await?;
        if current.stdout.trim() != local_ref {
            // switch, unlike checkout, never reads its argument as a path.
            git.run(&["switch", "--quiet", branch]).await?;
        }
        // The remote checkpoint may be ahead (pushed from another workspace): catch up when
        // that cannot lose anything; local commits ahead of it are kept as they are.
        if let Some(remote) = remote
            && git
                .check(&["merge-base", "--is-ancestor", "HEAD", &remote])
                .await?
        {
            git.run(&["merge", "--quiet", "--ff-only", &remote]).await?;
        }
    } else {
        let start = if remote.is_some() {
            &remote_ref
        } else {
            &base_ref
        };
        let detached = !git.check(&["symbolic-ref", "--quiet", "HEAD"]).await?;
        if detached && git.commit_of("HEAD").await? == git.commit_of(start).await? {
            // A prebuilt base is checked out detached at the start commit: naming the branch
            // is all a switch would do, without switch's walk of the whole index and tree
            // (hundreds of milliseconds at 100k files).
            let refname = format!("refs/heads/{branch}");
            git.run(&["update-ref", "--no-deref", &refname, "HEAD", ""])
                .await?;
            git.run(&["symbolic-ref", "HEAD", &refname]).await?;
        } else {
            git.run(&["switch", "--quiet", "--no-track", "--create", branch, start])
                .await?;
        }
    }
    git.run(&["merge-base", "HEAD", &base_ref]).await
}

/// Stage everything and commit if anything changed, with the agent as co-author. Returns the
/// new commit, or None when there was nothing to commit.
pub async fn commit_all(
    dest: &Path,
    message: &str,
    author_name: &str,
    author_email: &str,
) -> Result<Option<String>, GitError> {
    if message.trim().is_empty() {
        return Err(GitError::bad_input("commit message is empty"));
    }
    validate_identity(author_name, author_email)?;
    let git = Git::in_dir(dest);
    git.run(&["add", "--all"]).await?;
    if git.check(&["diff", "--cached", "--quiet"]).await? {
        return Ok(None);
    }
    let git = git.identity(author_name, author_email);
    git.run(&[
        "commit",
        "--quiet",
        "--no-verify",
        "--message",
        message,
        "--trailer",
        AGENT_TRAILER,
    ])
    .await?;
    git.run(&["rev-parse", "HEAD"]).await.map(Some)
}

/// Push HEAD to refs/heads/`branch` on origin, never forced. Does nothing if the remote branch
/// already equals HEAD. Returns (remote head, whether this call pushed).
pub async fn push_branch(dest: &Path, branch: &str) -> Result<(String, bool), GitError> {
    validate_branch("branch", branch).await?;
    let git = Git::in_dir(dest);
    let head = git.run(&["rev-parse", "--verify", "HEAD^{commit}"]).await?;
    let refname = format!("refs/heads/{branch}");
    if remote_head(&git, &refname).await?.as_deref() == Some(head.as_str()) {
        return Ok((head, false));
    }
    push(&git, &format!("{head}:{refname}"), &refname).await?;
    Ok((head, true))
}

/// Number of files changed between `base_commit` and HEAD (a rename counts as two paths).
pub async fn changed_files(dest: &Path, base_commit: &str) -> Result<u32, GitError> {
    let git = Git::in_dir(dest);
    let Some(base) = git.commit_of(base_commit).await? else {
        return Err(GitError::bad_input(format!(
            "base commit {base_commit:?} not found in {}",
            dest.display()
        )));
    };
    let names = git
        .run(&[
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            &base,
            "HEAD",
            "--",
        ])
        .await?;
    let count = names.split('\0').filter(|name| !name.is_empty()).count();
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Merge `commit` into origin's `base` with a merge commit (author and committer `merger`)
/// and push it. If `commit` is already part of origin/`base`, does nothing. Returns the base
/// head. The merge is computed without a worktree, so the workspace is never touched, and a
/// conflict is `GitError::MergeConflict`.
pub async fn merge_into_base(
    dest: &Path,
    base: &str,
    commit: &str,
    merger_name: &str,
    merger_email: &str,
) -> Result<String, GitError> {
    validate_branch("base", base).await?;
    validate_identity(merger_name, merger_email)?;
    let git = Git::in_dir(dest);
    let Some(commit) = git.commit_of(commit).await? else {
        return Err(GitError::bad_input(format!(
            "commit {commit:?} not found in {}",
            dest.display()
        )));
    };
    let base_ref = format!("refs/remotes/origin/{base}");
    let fetch = git
        .output(&[
            "fetch",
            "--quiet",
            "origin",
            &format!("+refs/heads/{base}:{base_ref}"),
        ])
        .await?;
    if fetch.code != Some(0) {
        if fetch.stderr.contains("couldn't find remote ref") {
            return Err(GitError::bad_input(format!(
                "base branch {base:?} not found on origin"
            )));
        }
        return Err(cli::failed(&["fetch", "origin", base], &fetch));
    }
    let base_head = git.run(&["rev-parse", "--verify", &base_ref]).await?;
    if git
        .check(&["merge-base", "--is-ancestor", &commit, &base_head])
        .await?
    {
        return Ok(base_head);
    }
    let args = [
        "merge-tree",
        "--write-tree",
        "--no-messages",
        "--name-only",
        &base_head,
        &commit,
    ];
    let merged = git.output(&args).await?;
    let mut lines = merged.stdout.lines();
    let tree = match merged.code {
        Some(0) => lines.next().unwrap_or_default().to_owned(),
        Some(1) => {
            let files = lines.skip(1).map(str::to_owned).collect();
            return Err(GitError::MergeConflict {
                base: base.to_owned(),
                commit,
                files,
            });
        }
        _ => return Err(cli::failed(&args, &merged)),
    };
    // The task branch is what is checked out; name it, as a forge's merge button would.
    let branch = git
        .run(&["symbolic-ref", "--quiet", "--short", "HEAD"])
        .await
        .unwrap_or_else(|_| commit.clone());
    let message = format!("Merge {branch} into {base}\n\nApproved by {merger_name}.");
    let merge = git
        .clone()
        .identity(merger_name, merger_email)
        .run(&[
            "commit-tree",
            &tree,
            "-p",
            &base_head,
            "-p",
            &commit,
            "-m",
            &message,
        ])
        .await?;
    let refname = format!("refs/heads/{base}");
    push(&git, &format!("{merge}:{refname}"), &refname).await?;
    Ok(merge)
}

/// The commit `refname` points at on origin, if it exists there.
async fn remote_head(git: &Git, refname: &str) -> Result<Option<String>, GitError> {
    let listing = git.run(&["ls-remote", "--refs", "origin", refname]).await?;
    Ok(listing.lines().find_map(|line| {
        let (commit, name) = line.split_once('\t')?;
        (name == refname).then(|| commit.to_owned())
    }))
}

/// A non-forced push; a refusal by the remote is `PushRejected`.
async fn push(git: &Git, refspec: &str, refname: &str) -> Result<(), GitError> {
    let args = ["push", "--porcelain", "--no-verify", "origin", refspec];
    let output = git.output(&args).await?;
    if output.code == Some(0) {
        return Ok(());
    }
    // Porcelain marks a refused ref with a line "!<TAB>from:to<TAB>summary (reason)".
    let rejected = output
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("!\t"));
    match rejected {
        Some(line) => Err(GitError::PushRejected {
            refname: refname.to_owned(),
            reason: line.split('\t').nth(1).unwrap_or(line).to_owned(),
        }),
        None => Err(cli::failed(&args, &output)),
    }
}

/// Clones into a sibling directory first and renames it into place, so a crash mid-clone
/// never leaves a half-made `dest` that a retry would mistake for a checkout.
async fn clone(repo: &str, dest: &Path) -> Result<(), GitError> {
    if repo.is_empty() || repo.starts_with('-') {
        return Err(GitError::bad_input(format!("invalid repository {repo:?}")));
    }
    if is_nonempty_dir(dest) {
        return Err(GitError::bad_input(format!(
            "{} exists and is not a checkout of {repo}",
            dest.display()
        )));
    }
    let staging = staging_path(dest)?;
    let _ = std::fs::remove_dir_all(&staging);
    let staging_str = staging.to_string_lossy();
    if let Err(err) = clone_no_checkout(repo, &staging).await {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(err);
    }
    // rename(2) replaces an empty directory, so a pre-made empty `dest` is fine.
    std::fs::rename(&staging, dest).map_err(|source| GitError::Spawn {
        args: vec![
            "rename".into(),
            staging_str.into_owned(),
            dest.display().to_string(),
        ],
        source,
    })
}

/// `git clone --no-checkout repo dest`, with `repo` recorded in its config (to recognise the
/// checkout on reuse).
pub(crate) async fn clone_no_checkout(repo: &str, dest: &Path) -> Result<(), GitError> {
    clone_with(repo, dest, "--no-checkout").await?;
    Git::in_dir(dest)
        .run(&["config", REPO_CONFIG_KEY, repo])
        .await?;
    Ok(())
}

/// `git clone --quiet <mode> repo dest` (`--no-checkout`, `--bare`); a clone that fails is bad
/// input (unreachable, not a repository).
pub(crate) async fn clone_with(repo: &str, dest: &Path, mode: &str) -> Result<(), GitError> {
    let dest_str = dest.to_string_lossy();
    let cloned = Git::anywhere()
        .output(&["clone", "--quiet", mode, "--", repo, &dest_str])
        .await?;
    if cloned.code != Some(0) {
        return Err(GitError::bad_input(format!(
            "cannot clone {repo}: {}",
            cloned.stderr
        )));
    }
    Ok(())
}

/// `git fetch --prune origin` in the clone (or bare repository) `dir` of `repo`; a fetch that
/// fails is bad input (unreachable).
pub(crate) async fn fetch_origin(dir: &Path, repo: &str) -> Result<(), GitError> {
    let fetched = Git::in_dir(dir)
        .output(&["fetch", "--quiet", "--prune", "origin"])
        .await?;
    if fetched.code != Some(0) {
        return Err(GitError::bad_input(format!(
            "cannot fetch {repo}: {}",
            fetched.stderr
        )));
    }
    Ok(())
}

/// Like `clone_no_checkout`, starting from `seed`, an earlier clone of `repo` on this host:
/// `link` clones it locally (its objects hardlinked, not copied; done while the caller keeps
/// `seed` from being removed), `adopt` makes `repo` the clone's `origin`, and `fetch` adopts
/// and fetches, so only what is new since the seed crosses the network.
pub(crate) struct SeededClone<'a> {
    pub repo: &'a str,
    pub seed: &'a Path,
    pub dest: &'a Path,
}

impl SeededClone<'_> {
    pub(crate) async fn link(&self) -> Result<(), GitError> {
        let (seed, dest) = (self.seed.to_string_lossy(), self.dest.to_string_lossy());
        Git::anywhere()
            .run(&[
                "clone",
                "--quiet",
                "--no-checkout",
                "--local",
                "--",
                &seed,
                &dest,
            ])
            .await?;
        Ok(())
    }

    /// `repo` as origin, and recorded as `clone_no_checkout` records it.
    pub(crate) async fn adopt(&self) -> Result<(), GitError> {
        let git = Git::in_dir(self.dest);
        git.run(&["remote", "set-url", "origin", self.repo]).await?;
        git.run(&["config", REPO_CONFIG_KEY, self.repo]).await?;
        Ok(())
    }

    pub(crate) async fn fetch(&self) -> Result<(), GitError> {
        self.adopt().await?;
        fetch_origin(self.dest, self.repo).await?;
        let git = Git::in_dir(self.dest);
        // The clone's local branch (the seed's) moves to where `repo` has it now, as a clone
        // of `repo` would have it.
        let local = git
            .run(&["for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads"])
            .await?;
        for branch in local.lines() {
            let remote = format!("refs/remotes/origin/{branch}");
            if let Some(commit) = git.commit_of(&remote).await? {
                git.run(&["update-ref", &format!("refs/heads/{branch}"), &commit])
                    .await?;
            }
        }
        Ok(())
    }
}

async fn is_checkout_of(repo: &str, dest: &Path) -> Result<bool, GitError> {
    if !dest.join(".git").is_dir() {
        return Ok(false);
    }
    let recorded = Git::in_dir(dest)
        .output(&["config", "--get", REPO_CONFIG_KEY])
        .await?;
    if recorded.code == Some(0) && recorded.stdout.trim_end() == repo {
        return Ok(true);
    }
    Err(GitError::bad_input(format!(
        "{} is a checkout of another repository than {repo}",
        dest.display()
    )))
}

pub(crate) fn staging_path(dest: &Path) -> Result<PathBuf, GitError> {
    let name = dest
        .file_name()
        .ok_or_else(|| GitError::bad_input(format!("invalid checkout path {}", dest.display())))?;
    Ok(dest.with_file_name(format!(".{}.cloning", name.to_string_lossy())))
}

fn is_nonempty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some())
}

/// A task's base and branch: valid branch names, and not the same branch.
pub(crate) async fn validate_task_branches(base: &str, branch: &str) -> Result<(), GitError> {
    validate_branch("base", base).await?;
    validate_branch("branch", branch).await?;
    if base == branch {
        return Err(GitError::bad_input(format!(
            "branch {branch:?} must differ from the base branch"
        )));
    }
    Ok(())
}

async fn validate_branch(what: &str, name: &str) -> Result<(), GitError> {
    let valid = !name.starts_with('-')
        && Git::anywhere()
            .check(&["check-ref-format", &format!("refs/heads/{name}")])
            .await?;
    if valid {
        Ok(())
    } else {
        Err(GitError::bad_input(format!(
            "invalid {what} branch name {name:?}"
        )))
    }
}

fn validate_identity(name: &str, email: &str) -> Result<(), GitError> {
    let bad = |text: &str| text.trim().is_empty() || text.contains(['<', '>', '\n', '\0']);
    if bad(name) || bad(email) {
        return Err(GitError::bad_input(format!(
            "invalid git identity {name:?} <{email}>"
        )));
    }
    Ok(())
}

/// Git on the host with an index of its own (`GIT_INDEX_FILE`), so that a commit can be built
/// while the workspace's worktree and index stay as they are (mid-run checkpoints). Blocking:
/// call it off the async runtime. The same hygiene as every other call here: hooks and
/// fsmonitor off, no system or global config, no inherited `GIT_*` variable, argv only.
#[derive(Debug, Clone)]
pub(crate) struct IndexGit {
    dir: PathBuf,
    index: PathBuf,
    config: Vec<String>,
}

impl IndexGit {
    /// Git in the checkout `dir`, its index at `index` (a host-private path).
    pub fn new(dir: &Path, index: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            index: index.to_owned(),
            config: Vec::new(),
        }
    }

    /// Sets author and committer for the commands run with this context.
    pub fn identity(mut self, name: &str, email: &str) -> Result<Self, GitError> {
        validate_identity(name, email)?;
        self.config
            .extend(["-c".into(), format!("user.name={name}")]);
        self.config
            .extend(["-c".into(), format!("user.email={email}")]);
        Ok(self)
    }

    /// Runs `git args` with `input` on its stdin; it must succeed. Returns stdout as is.
    pub fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, GitError> {
        self.run_accepting(args, input, &[0])
    }

    /// Like `run`, where any exit code in `accepted` counts as success.
    pub fn run_accepting(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        accepted: &[i32],
    ) -> Result<Vec<u8>, GitError> {
        let output = self.output(args, input)?;
        let code = output.status.code();
        if code.is_some_and(|code| accepted.contains(&code)) {
            return Ok(output.stdout);
        }
        Err(cli::failed(
            args,
            &cli::Output {
                code,
                stdout: String::new(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            },
        ))
    }

    /// Like `run`, as text without the trailing newline.
    pub fn text(&self, args: &[&str], input: Option<&[u8]>) -> Result<String, GitError> {
        let out = self.run(args, input)?;
        Ok(String::from_utf8_lossy(&out).trim_end().to_owned())
    }

    fn output(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<std::process::Output, GitError> {
        use std::io::Write;
        use std::process::Stdio;
        let spawn_error = |source| GitError::Spawn {
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            source,
        };
        let mut command = cli::command(Some(&self.dir), &self.config, args);
        command
            .env("GIT_INDEX_FILE", &self.index)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(spawn_error)?;
        // Written from a thread: git may fill its stdout before it has read all its input.
        let writer = match (input, child.stdin.take()) {
            (Some(input), Some(mut stdin)) => {
                let input = input.to_vec();
                Some(std::thread::spawn(move || stdin.write_all(&input)))
            }
            _ => None,
        };
        let output = child.wait_with_output().map_err(spawn_error)?;
        if let Some(writer) = writer {
            match writer.join() {
                Ok(Ok(())) => {}
                // git may stop reading early when it fails; its exit status tells why.
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {}
                Ok(Err(err)) => return Err(spawn_error(err)),
                Err(_) => return Err(spawn_error(std::io::Error::other("stdin writer panicked"))),
            }
        }
        Ok(output)
    }
}
