//! Harness of the end-to-end tests: the real `errand` binary, a real Temporal dev server, real
//! bare git remotes and real bubblewrap, on free ports and in temporary directories.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use tempfile::TempDir;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::{
    AgentTaskWorkflow, CrashInvestigationWorkflow, PlaybookSlotsWorkflow, ScheduledTaskWorkflow,
};

/// A replayer that knows every workflow Errand runs.
pub fn replayer() -> anyhow::Result<WorkflowReplayer> {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<AgentTaskWorkflow>()?
        .register_workflow::<CrashInvestigationWorkflow>()?
        .register_workflow::<ScheduledTaskWorkflow>()?
        .register_workflow::<PlaybookSlotsWorkflow>()?
        .build();
    Ok(WorkflowReplayer::new(options)?)
}

/// The `errand` binary built by `cargo build --bin errand` (see scripts/test).
pub fn errand_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ERRAND_BIN") {
        return bin.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug/errand")
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768 and up): a port the kernel hands out for `:0`
    // may also go to one of the many outgoing connections of a busy test run between this
    // check and the bind of the process it is for.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(command: &mut Command) -> anyhow::Result<Proc> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot spawn {command:?}"))?;
        Ok(Proc { child })
    }

    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait up to `grace`; true if it exited by itself in time.
    pub fn stop(&mut self, grace: Duration) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_hard();
        false
    }
}

/// Workspaces of a root worker are overlay mounts under `<data>/workspaces/`; a task that never
/// finished keeps its mount. Detach them before the data directory is removed: removing
/// through a mount fails on the mount point, and the mount would outlive the test.
fn unmount_workspaces(data_dir: &Path) {
    for entry in std::fs::read_dir(data_dir.join("workspaces"))
        .into_iter()
        .flatten()
        .flatten()
    {
        // Not a mount point (a clone, an unprivileged worker): EINVAL, nothing to do.
        let _ = nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

impl Drop for Errand {
    fn drop(&mut self) {
        self.processes.clear();
        unmount_workspaces(self.data_dir.path());
    }
}

impl Drop for ClusterWorker {
    fn drop(&mut self) {
        if let Ok(None) = self.proc.child.try_wait() {
            self.proc.stop(Duration::from_secs(15));
        }
        unmount_workspaces(self.data_dir.path());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop(Duration::from_secs(15));
        }
    }
}

/// A Temporal dev server of the test's own (in memory), for multi-process tests.
pub struct DevServer {
    _proc: Proc,
    pub address: String,
}

impl DevServer {
    pub fn start() -> anyhow::Result<DevServer> {
        let port = free_port();
        let proc = Proc::spawn(
            Command::new("temporal")
                .args([
                    "server",
                    "start-dev",
                    "--headless",
                    "--ip",
                    "127.0.0.1",
                    "--log-level",
                    "error",
                ])
                .args(["--port", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let address = format!("127.0.0.1:{port}");
        wait_for(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&address).is_ok()
        })?;
        Ok(DevServer {
            _proc: proc,
            address,
        })
    }
}

/// Where `UpOptions::keep_logs` puts the process's stderr, under the data directory.
const LOG_FILE: &str = "errand.stderr.log";

/// How [`Errand::up_with`] starts `errand up`.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Extra environment of the errand process (after the harness's own, so it wins).
    pub env: Vec<(String, String)>,
    /// Global flags before the subcommand, e.g. `--log-format json`.
    pub args: Vec<String>,
    /// Keep the process's stderr (its logs) for [`Errand::logs`].
    pub keep_logs: bool,
    /// Playbooks from this folder instead of the shipped ones.
    pub playbooks_dir: Option<PathBuf>,
}

/// One `errand` deployment under test: `up`, or separate `api` and `worker` processes.
pub struct Errand {
    pub api: String,
    /// The Temporal frontend this deployment uses.
    pub temporal_address: String,
    pub data_dir: TempDir,
    pub processes: Vec<Proc>,
    http: reqwest::Client,
}

impl Errand {
    /// `errand up`: its own dev server, SQLite, API and worker in one process.
    pub async fn up() -> anyhow::Result<Errand> {
        Errand::up_with(UpOptions::default()).await
    }

    /// `errand up` with extra environment, flags, or its logs kept (see [`Errand::logs`]).
    pub async fn up_with(options: UpOptions) -> anyhow::Result<Errand> {
        let data_dir = tempfile::tempdir()?;
        let (port, temporal_port) = (free_port(), free_port());
        let shipped = repo_root().join("playbooks");
        let playbooks = options.playbooks_dir.as_deref().unwrap_or(&shipped);
        let mut command = errand_command_with(data_dir.path(), playbooks);
        command
            .args(&options.args)
            .args(["up", "--listen", &format!("127.0.0.1:{port}")])
            .env("ERRAND__TEMPORAL__DEV_PORT", temporal_port.to_string())
            .env("ERRAND__TEMPORAL__DEV_UI_PORT", free_port().to_string())
            .envs(options.env.iter().map(|(k, v)| (k, v)));
        if options.keep_logs {
            command.stderr(std::fs::File::create(data_dir.path().join(LOG_FILE))?);
        }
        let proc = Proc::spawn(&mut command)?;
        let temporal = format!("127.0.0.1:{temporal_port}");
        Errand::ready(
            format!("http://127.0.0.1:{port}"),
            temporal,
            data_dir,
            vec![proc],
        )
        .await
    }

    /// `errand api` plus `errand worker` against `temporal`, sharing a SQLite file.
    pub async fn split(temporal: &DevServer) -> anyhow::Result<Errand> {
        let data_dir = tempfile::tempdir()?;
        let port = free_port();
        let api = Proc::spawn(errand_command(data_dir.path()).args([
            "api",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--temporal-address",
            &temporal.address,
        ]))?;
        let api_url = format!("http://127.0.0.1:{port}");
        let mut errand =
            Errand::ready(api_url, temporal.address.clone(), data_dir, vec![api]).await?;
        errand.start_worker(temporal)?;
        Ok(errand)
    }

    pub fn start_worker(&mut self, temporal: &DevServer) -> anyhow::Result<()> {
        let worker = Proc::spawn(errand_command(self.data_dir.path()).args([
            "worker",
            "--temporal-address",
            &temporal.address,
        ]))?;
        self.processes.push(worker);
        Ok(())
    }

    async fn ready(
        api: String,
        temporal_address: String,
        data_dir: TempDir,
        processes: Vec<Proc>,
    ) -> anyhow::Result<Errand> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut errand = Errand {
            api,
            temporal_address,
            data_dir,
            processes,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = errand
                .http
                .get(format!("{}/healthz", errand.api))
                .send()
                .await
                && r.status().is_success()
            {
                return Ok(errand);
            }
            for p in &mut errand.processes {
                if let Some(status) = p.child.try_wait()? {
                    bail!("errand exited before it was ready: {status}");
                }
            }
            ensure!(
                Instant::now() < deadline,
                "errand did not answer on {} within 90s",
                errand.api
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends a request; returns the HTTP status and the JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.api);
        let mut request = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            other => bail!("unsupported method {other}"),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    pub async fn post_ok(
        &self,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let (status, answer) = self.call("POST", path, Some(body), key).await?;
        ensure!(
            (200..300).contains(&status),
            "POST {path}: {status} {answer}"
        );
        Ok(answer)
    }

    pub async fn task(&self, id: &str) -> anyhow::Result<Value> {
        let (status, task) = self
            .call("GET", &format!("/v1/tasks/{id}"), None, None)
            .await?;
        ensure!(status == 200, "GET task {id}: {status} {task}");
        Ok(task)
    }

    /// Polls the task until its status is `want` (or final), within `within`.
    pub async fn wait_for_status(
        &self,
        id: &str,
        want: &str,
        within: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let task = self.task(id).await?;
            let status = task["status"].as_str().unwrap_or_default();
            if status == want {
                return Ok(task);
            }
            let is_final = matches!(
                status,
                "merged" | "approved" | "closed" | "incomplete" | "cancelled" | "failed"
            );
            ensure!(
                !is_final,
                "task {id} ended {status} while waiting for {want}: {task}"
            );
            ensure!(
                Instant::now() < deadline,
                "task {id} still {status} after {within:?}, waiting for {want}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn review(
        &self,
        id: &str,
        decision: &str,
        reviewer: &str,
        comment: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let body = json!({"decision": decision, "reviewer": reviewer, "comment": comment});
        self.call("POST", &format!("/v1/tasks/{id}/review"), Some(body), None)
            .await
    }

    /// Waits until the workflow of task `id` has closed (its status is recorded by its last
    /// activity, just before the workflow completes).
    pub async fn wait_closed(&self, id: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, history) = self
                .call("GET", &format!("/v1/tasks/{id}/history"), None, None)
                .await?;
            if status == 200 && history["workflow"]["status"] != "running" {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the workflow of {id} is still running: {status} {history}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replays the fresh history of workflow `id` (a task, a crash group, a schedule's fire)
    /// against the current workflow code; with `ERRAND_RECORD_HISTORIES=1` also keeps it for
    /// the replay test of the `workflows` crate.
    pub async fn check_replay(&self, id: &str, scenario: &str) -> anyhow::Result<()> {
        let file = self
            .data_dir
            .path()
            .join(format!("{scenario}.history.json"));
        let status = Command::new(errand_bin())
            .args([
                "export-history",
                id,
                "--temporal-address",
                &self.temporal_address,
                "--out",
            ])
            .arg(&file)
            .status()?;
        ensure!(status.success(), "export-history {id} failed: {status}");
        let json = std::fs::read(&file)?;
        replayer()?
            .replay_workflow(WorkflowHistory::from_json(&json)?)
            .await
            .with_context(|| format!("the history of {scenario} does not replay"))?;
        if std::env::var_os("ERRAND_RECORD_HISTORIES").is_some() {
            let keep = repo_root().join(format!("workflows/tests/histories/{scenario}.json"));
            std::fs::write(&keep, &json)?;
        }
        Ok(())
    }

    /// What the process wrote to stderr so far (with `UpOptions::keep_logs`).
    pub fn logs(&self) -> anyhow::Result<String> {
        let path = self.data_dir.path().join(LOG_FILE);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// A GET answered as it is (status, headers, body read by the caller), with extra headers.
    pub async fn get_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.get(format!("{}{path}", self.api));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Ok(request.send().await?)
    }

    /// The agent's log of a round on the worker host.
    pub fn agent_log(&self, id: &str, round: u32) -> PathBuf {
        self.data_dir
            .path()
            .join(format!("tasks/{id}/round-{round}/agent.log"))
    }
}

fn errand_command(data_dir: &Path) -> Command {
    errand_command_with(data_dir, &repo_root().join("playbooks"))
}

fn errand_command_with(data_dir: &Path, playbooks_dir: &Path) -> Command {
    let mut command = Command::new(errand_bin());
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--playbooks-dir")
        .arg(playbooks_dir)
        .env("ERRAND_LOG", "warn");
    command
}

/// A bare git repository holding the example calculator (its test fails), as a local forge.
pub struct Remote {
    dir: TempDir,
}

impl Remote {
    pub fn calculator() -> anyhow::Result<Remote> {
        let dir = tempfile::tempdir()?;
        let seed = dir.path().join("seed");
        std::fs::create_dir(&seed)?;
        for name in ["calc.sh", "test.sh", "README.md"] {
            std::fs::copy(
                repo_root().join("examples/calculator").join(name),
                seed.join(name),
            )?;
        }
        git(&seed, &["init", "-q", "-b", "main"])?;
        git(&seed, &["add", "."])?;
        git(
            &seed,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "seed",
            ],
        )?;
        git(dir.path(), &["clone", "-q", "--bare", "seed", "remote.git"])?;
        // Every ref update is logged, so tests can count pushes.
        git(
            &dir.path().join("remote.git"),
            &["config", "core.logAllRefUpdates", "always"],
        )?;
        Ok(Remote { dir })
    }

    /// A bare repository seeded with everything in `examples/<name>` (dotfiles included).
    pub fn example(name: &str) -> anyhow::Result<Remote> {
        let dir = tempfile::tempdir()?;
        let seed = dir.path().join("seed");
        copy_tree(&repo_root().join("examples").join(name), &seed)?;
        git(&seed, &["init", "-q", "-b", "main"])?;
        git(&seed, &["add", "."])?;
        git(
            &seed,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "seed",
            ],
        )?;
        git(dir.path(), &["clone", "-q", "--bare", "seed", "remote.git"])?;
        Ok(Remote { dir })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    pub fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        git(&self.path(), args)
    }

    /// A file's content on a branch of the remote.
    pub fn show(&self, branch: &str, file: &str) -> anyhow::Result<String> {
        self.git(&["show", &format!("{branch}:{file}")])
    }

    /// How many times a branch was updated by pushes.
    pub fn updates_of(&self, branch: &str) -> anyhow::Result<usize> {
        Ok(self
            .git(&[
                "reflog",
                "show",
                "--format=%H",
                &format!("refs/heads/{branch}"),
            ])?
            .lines()
            .count())
    }

    /// Commits of `branch` not on `base`, and how many distinct changes (patch ids) they
    /// make: a commit pushed twice, or an empty commit, makes the second number smaller.
    pub fn distinct_changes(&self, base: &str, branch: &str) -> anyhow::Result<(usize, usize)> {
        let range = format!("{base}..{branch}");
        let commits = self.git(&["rev-list", "--no-merges", &range])?.lines().count();
        let out = Command::new("sh")
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "git log -p --no-merges \"$1\" | git patch-id --stable", "sh", &range])
            .output()?;
        ensure!(out.status.success(), "git patch-id: {}", String::from_utf8_lossy(&out.stderr));
        let ids: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().next().map(String::from))
            .collect();
        Ok((commits, ids.len()))
    }

    /// Subjects of the commits of `branch` not on `base`, newest first.
    pub fn subjects(&self, base: &str, branch: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .git(&["log", "--format=%s", &format!("{base}..{branch}")])?
            .lines()
            .map(String::from)
            .collect())
    }

    pub fn branches(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .git(&["branch", "--format=%(refname:short)"])?
            .lines()
            .map(String::from)
            .collect())
    }
}

pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A shipped scripted agent, `examples/agents/<name>`.
pub fn example_agent(name: &str) -> String {
    repo_root()
        .join("examples/agents")
        .join(name)
        .display()
        .to_string()
}

/// Writes an agent script (sh) to a temporary directory and returns its path.
pub fn agent(dir: &Path, name: &str, body: &str) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\nset -eu\n{body}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path.display().to_string())
}

/// The fix the calculator needs.
pub const FIX_ADD: &str = r#"sed -i 's/echo \$((a - b))/echo $((a + b))/' calc.sh"#;

/// An ad-hoc task on the calculator with this agent.
pub fn calculator_task(remote: &Remote, agent: &str, max_rounds: u32) -> Value {
    json!({
        "repo": remote.path().display().to_string(),
        "base": "main",
        "instructions": "Make `sh test.sh` pass.",
        "checks": ["sh test.sh"],
        "agent": {"kind": "command", "command": [agent]},
        "max_rounds": max_rounds,
        "time_budget_secs": 60,
        "requester": "alice",
    })
}

pub fn wait_for(within: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while !ready() {
        ensure!(Instant::now() < deadline, "not ready within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A PostgreSQL database of the test's own on the server of `ERRAND_TEST_POSTGRES_URL`
/// (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped with it.
pub struct Postgres {
    pub url: String,
    admin_url: String,
    name: String,
}

impl Postgres {
    pub fn create() -> anyhow::Result<Postgres> {
        let admin_url = std::env::var("ERRAND_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let name = format!("errand_scale_{}_{nanos}", std::process::id());
        psql(&admin_url, &format!("CREATE DATABASE {name}"))
            .with_context(|| format!("PostgreSQL is needed at {admin_url}"))?;
        let (server, _) = admin_url
            .rsplit_once('/')
            .context("ERRAND_TEST_POSTGRES_URL names a database")?;
        Ok(Postgres {
            url: format!("{server}/{name}"),
            admin_url,
            name,
        })
    }

    /// Runs `sql` in this database; returns psql's unaligned, tuples-only output.
    pub fn query(&self, sql: &str) -> anyhow::Result<String> {
        psql(&self.url, sql)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(err) = psql(&self.admin_url, &drop) {
            eprintln!("could not drop {}: {err:#}", self.name);
        }
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .context("cannot run psql")?;
    ensure!(
        out.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One `errand worker` of a [`Cluster`], on a host of its own (its own data directory).
pub struct ClusterWorker {
    pub proc: Proc,
    pub data_dir: TempDir,
    /// Where it serves `/healthz`, `/readyz` and `/metrics` (`[worker] metrics_listen`).
    pub metrics_url: String,
}

impl ClusterWorker {
    /// GET on the worker's metrics port: status and body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.metrics_url)).await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// Whether this worker ran the agent of `task` (in any round): agent logs are written on
    /// the host that ran the agent.
    pub fn ran_agent(&self, task: &str) -> bool {
        self.agent_logs(task).next().is_some()
    }

    /// Whether one of this worker's agent logs of `task` contains `text`.
    pub fn agent_said(&self, task: &str, text: &str) -> bool {
        self.agent_logs(task)
            .any(|log| std::fs::read_to_string(log).is_ok_and(|l| l.contains(text)))
    }

    fn agent_logs(&self, task: &str) -> impl Iterator<Item = PathBuf> {
        let dir = self.data_dir.path().join("tasks").join(task);
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|round| round.path().join("agent.log"))
            .filter(|log| log.is_file())
    }
}

/// The scaled-out topology: one `errand api` and N `errand worker` processes, each worker with
/// a data directory of its own (a host of its own), sharing a Temporal server and PostgreSQL.
pub struct Cluster {
    pub errand: Errand,
    pub workers: Vec<ClusterWorker>,
    temporal: String,
    database_url: String,
    worker_env: Vec<(String, String)>,
}

impl Cluster {
    pub async fn start(
        temporal: &DevServer,
        database_url: &str,
        workers: usize,
        worker_env: &[(&str, &str)],
    ) -> anyhow::Result<Cluster> {
        let data_dir = tempfile::tempdir()?;
        let port = free_port();
        let api = Proc::spawn(errand_command(data_dir.path()).args([
            "api",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--temporal-address",
            &temporal.address,
            "--database-url",
            database_url,
        ]))?;
        let errand = Errand::ready(
            format!("http://127.0.0.1:{port}"),
            temporal.address.clone(),
            data_dir,
            vec![api],
        )
        .await?;
        let mut cluster = Cluster {
            errand,
            workers: Vec::new(),
            temporal: temporal.address.clone(),
            database_url: database_url.to_string(),
            worker_env: worker_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        for _ in 0..workers {
            cluster.add_worker()?;
        }
        Ok(cluster)
    }

    /// Starts one more worker; its stderr (logs) goes to `worker.log` in its data directory.
    pub fn add_worker(&mut self) -> anyhow::Result<()> {
        let data_dir = tempfile::tempdir()?;
        let log = std::fs::File::create(data_dir.path().join("worker.log"))?;
        let metrics = format!("127.0.0.1:{}", free_port());
        let proc = Proc::spawn(
            errand_command(data_dir.path())
                .args([
                    "worker",
                    "--temporal-address",
                    &self.temporal,
                    "--database-url",
                    &self.database_url,
                ])
                .env("ERRAND__WORKER__METRICS_LISTEN", &metrics)
                .envs(self.worker_env.iter().map(|(k, v)| (k, v)))
                .stderr(log),
        )?;
        self.workers.push(ClusterWorker {
            proc,
            data_dir,
            metrics_url: format!("http://{metrics}"),
        });
        Ok(())
    }

    /// The worker that is running (or ran) the agent of `task` and is still alive.
    pub fn worker_running(&mut self, task: &str) -> Option<usize> {
        self.workers.iter_mut().position(|w| {
            matches!(w.proc.child.try_wait(), Ok(None)) && w.ran_agent(task)
        })
    }
}

/// [`wait_for`] for a check that must await (an HTTP request): polls until it holds.
pub async fn wait_for_async<F, Fut>(within: Duration, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !ready().await {
        ensure!(Instant::now() < deadline, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
