//! The long-running commands: `up` (everything in one process), `worker` and `api`.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use store::Store;
use temporalio_client::Client;
use temporalio_sdk::Runtime;
use tokio::net::TcpListener;

use crate::settings::Settings;
use crate::temporal_server::{self, DevServer};

const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// Temporal, as `up` found or started it.
pub struct Temporal {
    pub client: Client,
    pub ui_url: Option<String>,
    pub dev_server: Option<DevServer>,
}

impl Temporal {
    /// Attaches to the configured address, or starts a dev server under the data directory.
    pub async fn attach_or_start(settings: &Settings, role: &str) -> anyhow::Result<Temporal> {
        let identity = format!("errand-{role}@{}", std::process::id());
        if let Some(address) = &settings.temporal.address {
            let client = temporal_server::connect(
                address,
                &settings.temporal.namespace,
                &identity,
                CONNECT_WAIT,
            )
            .await?;
            return Ok(Temporal {
                client,
                ui_url: None,
                dev_server: None,
            });
        }
        let mut server = DevServer::start(&settings.temporal, &settings.data_dir).await?;
        let client = match temporal_server::connect(
            &server.address,
            &settings.temporal.namespace,
            &identity,
            CONNECT_WAIT,
        )
        .await
        {
            Ok(client) => client,
            Err(err) => {
                server.check_alive()?;
                return Err(err);
            }
        };
        Ok(Temporal {
            client,
            ui_url: Some(server.ui_url.clone()),
            dev_server: Some(server),
        })
    }

    /// Connects to the configured address only (`worker` and `api` never start a server).
    pub async fn attach(settings: &Settings, role: &str) -> anyhow::Result<Temporal> {
        anyhow::ensure!(
            settings.temporal.address.is_some(),
            "`errand {role}` needs --temporal-address (or ERRAND__TEMPORAL__ADDRESS)"
        );
        Self::attach_or_start(settings, role).await
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        match self.dev_server {
            Some(server) => server.stop().await,
            None => Ok(()),
        }
    }
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    Store::connect(&url)
        .await
        .with_context(|| format!("cannot open the app database {}", redact(&url)))
}

/// The API as a spawned task that stops when `shutdown` resolves.
pub async fn spawn_api(
    settings: &Settings,
    temporal: &Temporal,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let state = api::ApiState {
        client: temporal.client.clone(),
        store,
        playbooks_dir: settings.playbooks_dir.clone(),
        temporal_ui_url: temporal.ui_url.clone(),
        namespace: settings.temporal.namespace.clone(),
    };
    let app = api::router_with_triggers(state, settings.github.clone());
    let app = api::with_crash_settings(app, settings.crashes.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((url, server))
}

/// The workers and the runtime they run on (keep both alive together). `own_queue`: also poll
/// a task queue of this worker's own (worker affinity; `errand worker`, not `up`).
pub async fn build_worker(
    settings: &Settings,
    temporal: &Temporal,
    store: Store,
    own_queue: bool,
) -> anyhow::Result<(Runtime, worker::Workers)> {
    let (runtime, sdk_metrics) =
        worker::sdk_metrics::runtime(settings.temporal.sdk_metrics_listen)?;
    if let Some(addr) = sdk_metrics {
        tracing::info!(%addr, "serving the Temporal SDK metrics at /metrics");
    }
    let worker_settings = worker::WorkerSettings {
        data_dir: settings.data_dir.clone(),
        graceful_shutdown: Duration::from_secs(settings.worker.graceful_shutdown_secs),
        gateway: settings.gateway.clone(),
        uncapped_workspace: settings.sandbox.uncapped_workspace,
        sandbox_micro_dollars_per_second: settings.cost.sandbox_micro_dollars_per_second,
        own_queue,
        max_concurrent_runs: settings.worker.max_concurrent_runs,
        checkpoint_interval: (settings.worker.checkpoint_interval_secs > 0)
            .then(|| Duration::from_secs(settings.worker.checkpoint_interval_secs)),
        workspaces: worker::WorkspaceSettings {
            overlay: settings.workspaces.overlay,
            base_refresh: (settings.workspaces.base_refresh_secs > 0)
                .then(|| Duration::from_secs(settings.workspaces.base_refresh_secs)),
        },
    };
    let workers = worker::build(&runtime, temporal.client.clone(), store, &worker_settings).await?;
    Ok((runtime, workers))
}

/// Runs both of a host's workers until `until` resolves; then drains: no new tasks are taken,
/// running rounds get the grace period, and what is still running after it is cancelled,
/// pushed as a checkpoint and handed back (it re-provisions on another worker).
async fn run_workers(
    workers: worker::Workers,
    until: impl Future<Output = ()>,
    then: impl FnOnce(),
) -> anyhow::Result<()> {
    let worker::Workers {
        mut shared,
        own,
        host,
        ..
    } = workers;
    let stop_shared = shared.shutdown_handle();
    let stop_own = own.as_ref().map(|w| w.shutdown_handle());
    let mut own = own;
    // The workers' futures are not Send: they run on this task, beside the stop trigger.
    let (shared_result, own_result, ()) = tokio::join!(
        shared.run(),
        async {
            match own.as_mut() {
                Some(own) => own.run().await,
                None => Ok(()),
            }
        },
        async move {
            until.await;
            tracing::info!(
                runs_active = host.gauges().runs_active,
                "draining: no new tasks; running rounds get the grace period"
            );
            host.start_draining();
            stop_shared();
            if let Some(stop_own) = stop_own {
                stop_own();
            }
            then();
        }
    );
    shared_result.context("the worker stopped with an error")?;
    own_result.context("the worker of this host's own queue stopped with an error")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives while the process is still starting
/// (its API may already answer) must stop it cleanly, not kill it.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt =
        signal(SignalKind::interrupt()).expect("installing a SIGINT handler cannot fail on Linux");
    let mut term =
        signal(SignalKind::terminate()).expect("installing a SIGTERM handler cannot fail on Linux");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    }
}

/// `errand up`: dev server (or attach), SQLite, API and worker in one process.
pub async fn up(settings: Settings) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let temporal = Temporal::attach_or_start(&settings, "up").await?;
    let result = run_both(
        &settings,
        &temporal,
        |api_url| {
            println!("Errand is up.");
            println!("  API:         {api_url}  (OpenAPI: {api_url}/openapi.json)");
            if let Some(ui) = &temporal.ui_url {
                println!("  Temporal UI: {ui}");
            }
            println!("  Data:        {}", settings.data_dir.display());
            println!("Press Ctrl-C to stop.");
        },
        stop,
    )
    .await;
    temporal.stop().await?;
    result
}

/// Runs the API and the worker until `until` resolves, then drains both.
pub async fn run_both(
    settings: &Settings,
    temporal: &Temporal,
    on_ready: impl FnOnce(&str),
    until: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let (_runtime, workers) = build_worker(settings, temporal, store.clone(), false).await?;
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let (api_url, api) = spawn_api(settings, temporal, store, async {
        let _ = api_stopped.await;
    })
    .await?;
    on_ready(&api_url);
    let worker_result = run_workers(workers, until, move || {
        tracing::info!("shutting down");
        let _ = stop_api.send(());
    })
    .await;
    worker_result?;
    api.await
        .context("the API task panicked")?
        .context("the API server failed")?;
    Ok(())
}

/// `errand worker`: polls the task queue against the configured Temporal and database.
pub async fn worker(settings: Settings) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    std::fs::create_dir_all(&settings.data_dir)?;
    let temporal = Temporal::attach(&settings, "worker").await?;
    let store = open_store(&settings).await?;
    let (_runtime, workers) = build_worker(&settings, &temporal, store.clone(), true).await?;
    let host = workers.host.clone();
    println!(
        "Errand worker polling task queues {:?} and {:?} ({} sandboxes at once)",
        workflows::TASK_QUEUE,
        host.queue.as_deref().unwrap_or_default(),
        host.gauges().runs_limit,
    );
    let health = match settings.worker.metrics_listen {
        Some(addr) => {
            let gateway = workers.gateway_metrics.clone();
            Some(spawn_worker_health(addr, temporal.client.clone(), store, host, gateway).await?)
        }
        None => None,
    };
    let result = run_workers(workers, stop, || {}).await;
    if let Some(health) = health {
        health.abort();
    }
    result
}

/// The worker's `/healthz` (process up), `/readyz` (Temporal and the database answer, and
/// not draining) and `/metrics` (this host's sandbox slots, draining, checkpoints).
async fn spawn_worker_health(
    addr: std::net::SocketAddr,
    client: Client,
    store: Store,
    host: worker::WorkerHost,
    gateway: Option<activities::gateway::GatewayMetrics>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot serve the worker's health and metrics on {addr}"))?;
    let ready_host = host.clone();
    let app = axum::Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let (client, store, host) = (client.clone(), store.clone(), ready_host.clone());
                async move {
                    let readiness = api::readiness(&client, &store).await;
                    // A draining worker takes no new work: it is alive, not ready.
                    let ready = readiness.is_ready() && !host.is_draining();
                    let code = if ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let mut body = serde_json::to_value(&readiness).unwrap_or_default();
                    body["draining"] = host.is_draining().into();
                    if !ready {
                        body["status"] = "not_ready".into();
                    }
                    (code, axum::Json(body))
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let mut text = worker_metrics(&host);
                if let Some(gateway) = &gateway {
                    text.push_str(&gateway.render());
                }
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                        text,
                    )
                }
            }),
        );
    tracing::info!(%addr, "serving the worker's /healthz, /readyz and /metrics");
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "the worker's health server failed");
        }
    }))
}

/// Prometheus text of one worker host.
fn worker_metrics(host: &worker::WorkerHost) -> String {
    let g = host.gauges();
    let queue = host.queue.as_deref().unwrap_or_default();
    format!(
        "# HELP errand_worker_runs_active Sandboxes (agent and check runs) running on this worker.\n\
         # TYPE errand_worker_runs_active gauge\n\
         errand_worker_runs_active{{queue=\"{queue}\"}} {}\n\
         # HELP errand_worker_runs_limit Sandboxes this worker runs at once ([worker] max_concurrent_runs).\n\
         # TYPE errand_worker_runs_limit gauge\n\
         errand_worker_runs_limit{{queue=\"{queue}\"}} {}\n\
         # HELP errand_worker_draining 1 while the worker hands its tasks back after SIGTERM.\n\
         # TYPE errand_worker_draining gauge\n\
         errand_worker_draining{{queue=\"{queue}\"}} {}\n\
         # HELP errand_worker_checkpoints_pushed_total Work-in-progress checkpoints pushed by this worker.\n\
         # TYPE errand_worker_checkpoints_pushed_total counter\n\
         errand_worker_checkpoints_pushed_total{{queue=\"{queue}\"}} {}\n",
        g.runs_active,
        g.runs_limit,
        u8::from(g.draining),
        g.checkpoints_pushed,
    )
}

/// `errand api`: serves the REST API against the configured Temporal and database.
pub async fn api(settings: Settings) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let temporal = Temporal::attach(&settings, "api").await?;
    let store = open_store(&settings).await?;
    let (url, server) = spawn_api(&settings, &temporal, store, stop).await?;
    println!("Errand API on {url}");
    server
        .await
        .context("the API task panicked")?
        .context("the API server failed")
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
