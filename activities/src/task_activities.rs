//! The implementations of the activity contracts in `workflows::contracts`.
//!
//! Each is idempotent: a retry after a lost worker or a timeout finds what the last attempt
//! did and carries on, so Temporal may run any of them more than once.

use std::sync::Arc;
use std::time::Duration;

use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use workflows::contracts::{
    AgentExit, AgentRun, AgentRunRequest, BAD_INPUT, CheckResult, ChecksRequest, DiffRequest,
    DiffSummary, FinishRequest, MERGE_CONFLICT, MergeRequest, Merged, NetworkDecision,
    ProvisionRequest, PushRequest, Pushed, RedGreenProof, RedGreenRequest, RedGreenRun,
    ReviewRecord, ReviewRequest, StatusChange, VerificationRecord, Workspace, definitions,
};
use workflows::task::{TaskSpec, branch_for};

use crate::cost_guard::CallContext;
use crate::data_dir::DataDir;
use crate::gateway::{GatewayHandle, RunAccess};
use crate::git::{self, GitError};
use crate::sandbox::egress::EgressPolicy;
use crate::sandbox::{Exit, INPUTS_MOUNT, Limits, Outcome, RunningCommand, Sandbox, SandboxSpec};
use crate::workspace::{Kind, Workspaces};
use store::Store;

/// How often a running agent or check reports progress (well inside the 10s heartbeat timeout).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

pub struct TaskActivitiesImpl {
    store: Store,
    sandbox: Sandbox,
    data: DataDir,
    /// The model gateway agents reach their models through, when the worker runs one.
    gateway: Option<Arc<GatewayHandle>>,
    /// The price of sandbox time, written to the ledger after each agent and check run.
    sandbox_rate: crate::ledger::SandboxRate,
    /// This worker host: its own task queue, sandbox slots, checkpoints, draining.
    host: crate::host::WorkerHost,
    /// Task workspaces: overlays on prebuilt bases, or clones (shared by both queues).
    workspaces: Arc<Workspaces>,
}

impl TaskActivitiesImpl {
    pub fn new(store: Store, sandbox: Sandbox, data: DataDir) -> Self {
        Self {
            store,
            sandbox,
            gateway: None,
            sandbox_rate: crate::ledger::SandboxRate::default(),
            host: crate::host::WorkerHost::default(),
            workspaces: Arc::new(Workspaces::new(data.clone())),
            data,
        }
    }

    /// Provisions through `workspaces` (one per process: it holds the base-building locks).
    pub fn with_workspaces(mut self, workspaces: Arc<Workspaces>) -> Self {
        self.workspaces = workspaces;
        self
    }

    /// Runs on `host`: its queue goes back with each workspace, its slots bound the sandboxes.
    pub fn on_host(mut self, host: crate::host::WorkerHost) -> Self {
        self.host = host;
        self
    }

    /// Sandbox time is priced at `rate` in the ledger (free by default).
    pub fn with_sandbox_rate(mut self, rate: crate::ledger::SandboxRate) -> Self {
        self.sandbox_rate = rate;
        self
    }

    /// Agents reach models through `gateway`, each run with a token of its own.
    pub fn with_gateway(mut self, gateway: Arc<GatewayHandle>) -> Self {
        self.gateway = Some(gateway);
        self
    }
}

#[activities]
impl TaskActivitiesImpl {
    #[activity(definition = definitions::Admit)]
    pub async fn admit(
        self: Arc<Self>,
        _ctx: ActivityContext,
        spec: TaskSpec,
    ) -> Result<(), ActivityError> {
        self.store.admit(&spec).await?;
        Ok(())
    }

    #[activity(definition = definitions::RecordStatus)]
    pub async fn record_status(
        self: Arc<Self>,
        _ctx: ActivityContext,
        change: StatusChange,
    ) -> Result<(), ActivityError> {
        let reason = change.reason.as_deref();
        self.store
            .set_status(&change.task_id, change.status, change.round, reason)
            .await?;
        Ok(())
    }

    #[activity(definition = definitions::Provision)]
    pub async fn provision(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: ProvisionRequest,
    ) -> Result<Workspace, ActivityError> {
        let branch = branch_for(&request.task_id);
        let path = self.data.workspace(&request.task_id);
        // An overlay on the prebuilt base of the base branch's head (built on first use), or
        // a clone. Heartbeats meanwhile, so a worker lost mid-build or mid-clone is noticed in
        // seconds (the workflow sets a heartbeat timeout under worker affinity).
        let started = std::time::Instant::now();
        let provisioned = {
            let checkout =
                self.workspaces
                    .provision(&request.repo, &request.base, &branch, &request.task_id);
            tokio::pin!(checkout);
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                tokio::select! {
                    done = &mut checkout => break done.map_err(git_failure)?,
                    _ = tick.tick() => ctx.record_heartbeat(()).await?,
                }
            }
        };
        let overlay = matches!(provisioned.kind, Kind::Overlay { .. });
        tracing::info!(
            overlay,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "provisioned the workspace"
        );
        let base_commit = provisioned.base_commit;
        Ok(Workspace {
            task_id: request.task_id,
            path: path.display().to_string(),
            base_commit,
            branch,
            // The workflow routes this workspace's activities back to this worker.
            task_queue: self.host.queue.clone(),
        })
    }

    #[activity(definition = definitions::RunAgent)]
    pub async fn run_agent(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: AgentRunRequest,
    ) -> Result<AgentRun, ActivityError> {
        let round_dir = self.data.round(&request.workspace.task_id, request.round);
        let inputs = round_dir.join("inputs");
        tokio::fs::create_dir_all(&inputs).await?;
        tokio::fs::write(inputs.join("prompt.md"), &request.prompt).await?;
        let mut env = vec![
            (
                "ERRAND_TASK_ID".to_string(),
                request.workspace.task_id.clone(),
            ),
            ("ERRAND_ROUND".to_string(), request.round.to_string()),
            (
                "ERRAND_PROMPT_FILE".to_string(),
                format!("{INPUTS_MOUNT}/prompt.md"),
            ),
        ];
        if let Some(feedback) = &request.feedback {
            tokio::fs::write(inputs.join("feedback.md"), feedback).await?;
            env.push((
                "ERRAND_FEEDBACK_FILE".to_string(),
                format!("{INPUTS_MOUNT}/feedback.md"),
            ));
        }
        // The adapter of the spec says how its agent starts (argv, never a shell string).
        let invocation = crate::agents::invocation(&request.agent).map_err(bad_input)?;
        env.extend(invocation.env);
        let gateway = self.open_gateway(&request).await?;
        if let Some(gateway) = &gateway {
            env.extend(gateway.env());
        }
        let network = EgressPolicy::from_allowlist(&request.network).map_err(bad_input)?;
        let log_path = round_dir.join("agent.log");
        let spec = SandboxSpec {
            workspace: request.workspace.path.clone().into(),
            inputs_dir: Some(inputs),
            argv: invocation.argv,
            env,
            timeout: Duration::from_secs(request.time_budget_secs),
            log_path: log_path.clone(),
            limits: Limits::default(),
            network,
            model_gateway: gateway.as_ref().map(|gateway| gateway.socket().to_owned()),
        };
        // Every `checkpoint_interval_secs` of the run, its work so far is pushed.
        let mut mid_run = crate::checkpoint::MidRun::new(&self.host, &request, author_email);
        let outcome = self
            .run_sandboxed_with(&ctx, &spec, mid_run.as_mut())
            .await?;
        let after =
            crate::checkpoint::after_run(&self.host, &request, outcome.duration, author_email)
                .await;
        let checkpoints = mid_run.as_ref().map_or(0, |mid_run| mid_run.taken()) + u32::from(after);
        // Revoked before anything else can fail; a refused call ends the task for its budget.
        let budget_refusal = gateway
            .map(RunAccess::finish)
            .and_then(|summary| summary.budget_refusal());
        let exit = match outcome.exit {
            Exit::Code(code) => AgentExit::Exited { code: Some(code) },
            Exit::Signal(_) => AgentExit::Exited { code: None },
            Exit::TimedOut => AgentExit::TimedOut,
            Exit::Cancelled => return Err(ActivityError::cancelled()),
        };
        // What the agent said about its own run, from the events in its output.
        let reported = crate::agents::report_from_log(
            &request.agent,
            &round_dir,
            "agent.log",
            outcome.output_bytes,
            &outcome.output_tail,
        )
        .await;
        // Sandbox time to the ledger; back come the round's cost and any refusal it recorded.
        let (ledger_refusal, cost) = crate::ledger::settle_agent_run(
            &self.store,
            self.sandbox_rate,
            &request.workspace.task_id,
            request.round,
            outcome.duration,
        )
        .await;
        let run = AgentRun {
            checkpoints,
            budget_refusal: budget_refusal.or(ledger_refusal),
            cost,
            reported,
            exit,
            duration_ms: outcome.duration.as_millis() as u64,
            output_tail: outcome.output_tail,
            log_path: log_path.display().to_string(),
            network: outcome
                .egress
                .iter()
                .map(|d| NetworkDecision {
                    target: d.target.clone(),
                    verdict: d.verdict.as_str().to_string(),
                })
                .collect(),
        };
        self.store
            .record_agent_run(&request.workspace.task_id, request.round, &run)
            .await?;
        Ok(run)
    }

    #[activity(definition = definitions::Verify)]
    pub async fn verify(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: ChecksRequest,
    ) -> Result<Vec<CheckResult>, ActivityError> {
        let round_dir = self.data.round(&request.workspace.task_id, request.round);
        tokio::fs::create_dir_all(&round_dir).await?;
        let mut results = Vec::with_capacity(request.checks.len());
        for (i, command) in request.checks.iter().enumerate() {
            let spec = SandboxSpec {
                workspace: request.workspace.path.clone().into(),
                inputs_dir: None,
                argv: vec!["sh".into(), "-c".into(), command.clone()],
                env: Vec::new(),
                timeout: Duration::from_secs(request.time_budget_secs),
                log_path: round_dir.join(format!("check-{}.log", i + 1)),
                limits: Limits::default(),
                network: None,
                model_gateway: None,
            };
            let outcome = self.run_sandboxed(&ctx, &spec).await?;
            crate::ledger::record_sandbox_time(
                &self.store,
                self.sandbox_rate,
                &request.workspace.task_id,
                request.round,
                crate::ledger::STEP_CHECKS,
                outcome.duration,
            )
            .await;
            let (exit_code, timed_out) = match outcome.exit {
                Exit::Code(code) => (Some(code), false),
                Exit::Signal(_) => (None, false),
                Exit::TimedOut => (None, true),
                Exit::Cancelled => return Err(ActivityError::cancelled()),
            };
            results.push(CheckResult {
                command: command.clone(),
                exit_code,
                timed_out,
                duration_ms: outcome.duration.as_millis() as u64,
                output_tail: outcome.output_tail,
            });
        }
        self.store
            .record_checks(&request.workspace.task_id, request.round, &results)
            .await?;
        Ok(results)
    }

    #[activity(definition = definitions::SummarizeDiff)]
    pub async fn summarize_diff(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: DiffRequest,
    ) -> Result<DiffSummary, ActivityError> {
        let ws = &request.workspace;
        crate::diff::summarize(
            std::path::Path::new(&ws.path),
            &ws.base_commit,
            &request.test_paths,
        )
        .await
        .map_err(git_failure)
    }

    #[activity(definition = definitions::ProveRedGreen)]
    pub async fn prove_red_green(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: RedGreenRequest,
    ) -> Result<RedGreenProof, ActivityError> {
        let ws = &request.workspace;
        let round_dir = self.data.round(&ws.task_id, request.round);
        tokio::fs::create_dir_all(&round_dir).await?;
        let probe = round_dir.join("red-green-base");
        crate::red_green::prepare_base(
            std::path::Path::new(&ws.path),
            &ws.base_commit,
            &request.test_files,
            &probe,
        )
        .await
        .map_err(git_failure)?;
        let mut runs = Vec::with_capacity(request.tests.len());
        for (i, test) in request.tests.iter().enumerate() {
            let mut results = Vec::with_capacity(2);
            for (side, workspace) in [("base", probe.clone()), ("result", ws.path.clone().into())] {
                // The same profile as the checks, on the base probe or the workspace.
                let spec = SandboxSpec {
                    workspace,
                    inputs_dir: None,
                    argv: vec!["sh".into(), "-c".into(), test.command.clone()],
                    env: Vec::new(),
                    timeout: Duration::from_secs(request.time_budget_secs),
                    log_path: round_dir.join(format!("red-green-{}-{side}.log", i + 1)),
                    limits: Limits::default(),
                    network: None,
                    model_gateway: None,
                };
                let outcome = self.run_sandboxed(&ctx, &spec).await?;
                results.push(check_result(&test.command, outcome)?);
            }
            let on_result = results.pop().expect("two sides ran");
            let on_base = results.pop().expect("two sides ran");
            runs.push(RedGreenRun {
                command: test.command.clone(),
                test_file: test.test_file.clone(),
                on_base,
                on_result,
            });
        }
        crate::red_green::remove(&probe).map_err(git_failure)?;
        Ok(RedGreenProof {
            base_commit: ws.base_commit.clone(),
            runs,
        })
    }

    #[activity(definition = definitions::RecordVerification)]
    pub async fn record_verification(
        self: Arc<Self>,
        _ctx: ActivityContext,
        record: VerificationRecord,
    ) -> Result<(), ActivityError> {
        self.store
            .record_checks(&record.task_id, record.round, &record.checks)
            .await?;
        Ok(())
    }

    #[activity(definition = definitions::Push)]
    pub async fn push(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: PushRequest,
    ) -> Result<Pushed, ActivityError> {
        let ws = &request.workspace;
        let path = std::path::Path::new(&ws.path);
        let email = author_email(&request.author);
        git::commit_all(path, &request.message, &request.author, &email)
            .await
            .map_err(git_failure)?;
        let (commit, _pushed) = git::push_branch(path, &ws.branch)
            .await
            .map_err(git_failure)?;
        let changed_files = git::changed_files(path, &ws.base_commit)
            .await
            .map_err(git_failure)?;
        Ok(Pushed {
            branch: ws.branch.clone(),
            commit,
            changed_files,
        })
    }

    #[activity(definition = definitions::OpenReview)]
    pub async fn open_review(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: ReviewRequest,
    ) -> Result<(), ActivityError> {
        self.store.open_review(&request).await?;
        Ok(())
    }

    #[activity(definition = definitions::RecordReview)]
    pub async fn record_review(
        self: Arc<Self>,
        _ctx: ActivityContext,
        record: ReviewRecord,
    ) -> Result<(), ActivityError> {
        self.store.record_review(&record).await?;
        Ok(())
    }

    #[activity(definition = definitions::Merge)]
    pub async fn merge(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: MergeRequest,
    ) -> Result<Merged, ActivityError> {
        let path = std::path::Path::new(&request.workspace.path);
        let email = author_email(&request.merged_by);
        let base_commit = git::merge_into_base(
            path,
            &request.base,
            &request.commit,
            &request.merged_by,
            &email,
        )
        .await
        .map_err(git_failure)?;
        Ok(Merged { base_commit })
    }

    #[activity(definition = definitions::Finish)]
    pub async fn finish(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: FinishRequest,
    ) -> Result<(), ActivityError> {
        self.store.finish(&request).await?;
        if let Some(ws) = &request.workspace {
            // Unmounts an overlay workspace before removing it and its layers.
            self.workspaces
                .remove(&ws.task_id, std::path::Path::new(&ws.path))
                .await?;
        }
        Ok(())
    }
}

impl TaskActivitiesImpl {
    /// A gateway token for this agent run, if the worker runs a gateway.
    async fn open_gateway(
        &self,
        request: &AgentRunRequest,
    ) -> Result<Option<RunAccess>, ActivityError> {
        let Some(gateway) = &self.gateway else {
            return Ok(None);
        };
        // Read once per run, so that every model call's ledger entry names its playbook (the
        // per-playbook period budgets and the cost by playbook count them).
        let playbook = self
            .store
            .task_spec(&request.workspace.task_id)
            .await?
            .and_then(|spec| spec.playbook)
            .map(|p| p.name);
        let call = CallContext {
            task_id: request.workspace.task_id.clone(),
            round: request.round,
            playbook,
        };
        Ok(Some(gateway.open_run(call)?))
    }

    /// Runs one sandboxed command, heartbeating its progress; a cancel from the workflow (which
    /// arrives through a heartbeat) kills the whole process tree.
    async fn run_sandboxed(
        &self,
        ctx: &ActivityContext,
        spec: &SandboxSpec,
    ) -> Result<Outcome, ActivityError> {
        self.run_sandboxed_with(ctx, spec, None).await
    }

    /// `run_sandboxed`, taking the run's `mid_run` checkpoints beside it when there are any.
    async fn run_sandboxed_with(
        &self,
        ctx: &ActivityContext,
        spec: &SandboxSpec,
        mut mid_run: Option<&mut crate::checkpoint::MidRun>,
    ) -> Result<Outcome, ActivityError> {
        use crate::agent_output::{AgentOutputEvents, redacted_outcome, redacted_progress};
        // At most `[worker] max_concurrent_runs` sandboxes at once on this host.
        let _slot = self.host.run_slot(ctx).await?;
        let running: RunningCommand = self
            .sandbox
            .spawn(spec)
            .map_err(|e| ActivityError::from(ApplicationFailure::non_retryable(e)))?;
        let progress = running.progress();
        if let Some(mid_run) = mid_run.as_deref_mut() {
            mid_run.attach(running.live_workspace());
        }
        // An agent's latest line also goes out as an event; nothing leaves unredacted.
        let mut agent_output = AgentOutputEvents::for_spec(spec);
        let wait = running.wait(ctx.cancelled());
        tokio::pin!(wait);
        let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            tokio::select! {
                outcome = &mut wait => {
                    if let Some(mid_run) = mid_run.as_deref_mut() {
                        // Nothing else may commit in the workspace while one is under way.
                        mid_run.settle().await;
                    }
                    let outcome = outcome?;
                    if let Some(events) = &mut agent_output {
                        // A quick agent ends before a tick: its last line still goes out.
                        events.observe(&self.store, &redacted_progress(progress.snapshot())).await;
                    }
                    return Ok(redacted_outcome(outcome));
                }
                _ = tick.tick() => {
                    let snapshot = redacted_progress(progress.snapshot());
                    if let Some(events) = &mut agent_output {
                        events.observe(&self.store, &snapshot).await;
                    }
                    ctx.record_heartbeat(snapshot).await?;
                }
                () = crate::checkpoint::next(mid_run.as_deref_mut()) => {}
            }
        }
    }
}

/// A sandboxed command's outcome as a check result (a cancel is the activity's cancel).
fn check_result(command: &str, outcome: Outcome) -> Result<CheckResult, ActivityError> {
    let (exit_code, timed_out) = match outcome.exit {
        Exit::Code(code) => (Some(code), false),
        Exit::Signal(_) => (None, false),
        Exit::TimedOut => (None, true),
        Exit::Cancelled => return Err(ActivityError::cancelled()),
    };
    Ok(CheckResult {
        command: command.to_string(),
        exit_code,
        timed_out,
        duration_ms: outcome.duration.as_millis() as u64,
        output_tail: outcome.output_tail,
    })
}

fn git_failure(err: GitError) -> ActivityError {
    match err {
        GitError::BadInput { .. } => bad_input(err),
        GitError::MergeConflict { .. } => ApplicationFailure::builder(err)
            .type_name(MERGE_CONFLICT.into())
            .non_retryable(true)
            .build()
            .into(),
        other => other.into(),
    }
}

fn bad_input(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ActivityError {
    ApplicationFailure::builder(err)
        .type_name(BAD_INPUT.into())
        .non_retryable(true)
        .build()
        .into()
}

/// A stable, non-routable address for commits authored on a person's behalf.
fn author_email(name: &str) -> String {
    let local: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{}@users.errand.invalid", local.trim_matches('-'))
}
