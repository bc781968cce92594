//! The stack the suite measures: this binary's own `errand up` as a child process, on free
//! ports with a fresh data directory, and the few API calls the figures drive it with. A child
//! rather than in-process, so /proc of that process is the engine alone (API, worker and, as
//! its child, the Temporal dev server), never the load generator.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// How often the figures look at a task: fine enough against runs of seconds.
pub const POLL_EVERY: Duration = Duration::from_millis(50);
const READY_WITHIN: Duration = Duration::from_secs(120);
const INVESTIGATE_CRASH: &str = include_str!("../../../playbooks/investigate-crash.yaml");
const CONCURRENT_RUNS_VAR: &str = "ERRAND__WORKER__MAX_CONCURRENT_RUNS";
/// Above the largest number of tasks any figure runs at once.
const CONCURRENT_RUNS: &str = "128";

pub struct Stack {
    child: Child,
    pub api: String,
    pub data_dir: PathBuf,
    http: reqwest::Client,
}

impl Stack {
    /// Starts `errand up` with its data under `data_dir` (created empty) and waits until the
    /// API answers. Sandboxes at once are raised to [`CONCURRENT_RUNS`]: the density figure
    /// needs every agent running together, which the host's default limit (a few per core)
    /// would queue; a build that does not know the setting starts without it.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Stack> {
        match Self::start_with(data_dir, &[(CONCURRENT_RUNS_VAR, CONCURRENT_RUNS)]).await {
            Err(err) if format!("{err:#}").contains("max_concurrent_runs") => {
                Self::start_with(data_dir, &[]).await
            }
            other => other,
        }
    }

    async fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Stack> {
        let _ = std::fs::remove_dir_all(data_dir);
        let playbooks = data_dir.join("playbooks");
        std::fs::create_dir_all(&playbooks)
            .with_context(|| format!("cannot create {}", playbooks.display()))?;
        // Crash intake starts this playbook; the others stay out (their schedules would run).
        std::fs::write(playbooks.join("investigate-crash.yaml"), INVESTIGATE_CRASH)?;
        let data_dir = data_dir.canonicalize()?;
        let port = free_port()?;
        // This very build, even when target/debug/errand was rebuilt under a running bench
        // (its path then reads "... (deleted)").
        let exe = match Path::new("/proc/self/exe").exists() {
            true => PathBuf::from("/proc/self/exe"),
            false => std::env::current_exe().context("cannot find this binary")?,
        };
        let log = std::fs::File::create(data_dir.join("errand.log"))?;
        let mut command = Command::new(exe);
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--playbooks-dir")
            .arg(&playbooks)
            .args(["up", "--listen", &format!("127.0.0.1:{port}")])
            .env("ERRAND__TEMPORAL__DEV_PORT", free_port()?.to_string())
            .env("ERRAND__TEMPORAL__DEV_UI_PORT", free_port()?.to_string())
            .env("ERRAND__WORKER__GRACEFUL_SHUTDOWN_SECS", "5")
            .env("ERRAND_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; the stack must not outlive an interrupted bench.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                Ok(())
            });
        }
        let child = command.spawn().context("cannot start errand up")?;
        let mut stack = Stack {
            child,
            api: format!("http://127.0.0.1:{port}"),
            data_dir,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(response) = stack.http.get(stack.url("/healthz")).send().await
                && response.status().is_success()
            {
                return Ok(stack);
            }
            if let Some(status) = stack.child.try_wait()? {
                let log_path = stack.data_dir.join("errand.log");
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" / ");
                bail!(
                    "errand up exited before it was ready ({status}); {} says: {tail}",
                    log_path.display()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "errand up did not answer within {READY_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// The Temporal dev server `errand up` started, if it started one.
    pub fn temporal_pid(&self) -> Option<u32> {
        super::proc_stats::child_named(self.pid(), "temporal")
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// `POST /v1/tasks`; the new task's id.
    pub async fn start_task(&self, body: &Value) -> anyhow::Result<String> {
        let response = self
            .http
            .post(self.url("/v1/tasks"))
            .json(body)
            .send()
            .await
            .context("POST /v1/tasks")?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "POST /v1/tasks: {status} {answer}");
        Ok(answer["id"]
            .as_str()
            .context("no id in the answer to POST /v1/tasks")?
            .to_owned())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        Ok(body)
    }

    /// Polls the task until it is `awaiting_review`; any other final status is an error.
    pub async fn wait_for_review(&self, id: &str, within: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let task = self.get(&format!("/v1/tasks/{id}")).await?;
            let status = task["status"].as_str().unwrap_or_default();
            if status == "awaiting_review" {
                return Ok(task);
            }
            ensure!(
                !is_final(status),
                "task {id} ended {status} instead of reaching review: {}",
                task["reason"]
            );
            ensure!(
                Instant::now() < deadline,
                "task {id} still {status} after {within:?}"
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The status of every task the store lists (the newest 500).
    pub async fn statuses(&self) -> anyhow::Result<HashMap<String, String>> {
        let tasks = self.get("/v1/tasks?limit=500").await?;
        Ok(tasks
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|task| {
                Some((
                    task["id"].as_str()?.to_owned(),
                    task["status"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    /// Durations of the task's steps (activities), summed per step name, in milliseconds.
    pub async fn step_durations(&self, id: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let history = self.get(&format!("/v1/tasks/{id}/history")).await?;
        let mut steps: Vec<(String, u64)> = Vec::new();
        for step in history["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if step["kind"] != "activity" {
                continue;
            }
            let (Some(name), Some(ms)) = (step["step"].as_str(), step["duration_ms"].as_u64())
            else {
                continue;
            };
            match steps.iter_mut().find(|(known, _)| known == name) {
                Some((_, total)) => *total += ms,
                None => steps.push((name.to_owned(), ms)),
            }
        }
        Ok(steps)
    }

    /// The agent's raw log of round 1 (the worker keeps it under its data directory).
    pub fn agent_log(&self, id: &str) -> PathBuf {
        self.data_dir.join(format!("tasks/{id}/round-1/agent.log"))
    }

    /// Stops the stack (SIGTERM: it stops its dev server in order), then for good.
    pub async fn stop(mut self) {
        self.stop_child().await;
        // Tasks left at review keep their workspace overlays mounted: detach them, or removing
        // the data directory would fail on them and they would outlive the run.
        let _ =
            activities::workspace::overlay::unmount_all_under(&self.data_dir.join("workspaces"));
    }

    async fn stop_child(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// An ad-hoc task on `repo` with one round: `agent` and `check` are shell scripts.
pub fn task_body(repo: &Path, agent: &str, check: &str) -> Value {
    json!({
        "repo": repo.display().to_string(),
        "base": "main",
        "instructions": "Benchmark task (errand bench): a scripted agent, no model.",
        "checks": [check],
        "agent": {"kind": "command", "command": ["sh", "-c", agent]},
        "max_rounds": 1,
        "time_budget_secs": 600,
        "requester": "errand-bench",
    })
}

pub fn is_final(status: &str) -> bool {
    matches!(
        status,
        "merged" | "approved" | "closed" | "incomplete" | "cancelled" | "failed"
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
