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
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((url, server))
}

/// The worker and the runtime it runs on (keep both alive together).
pub async fn build_worker(
    settings: &Settings,
    temporal: &Temporal,
    store: Store,
) -> anyhow::Result<(Runtime, temporalio_sdk::Worker)> {
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
    };
    let worker = worker::build(&runtime, temporal.client.clone(), store, &worker_settings).await?;
    Ok((runtime, worker))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on Linux");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `errand up`: dev server (or attach), SQLite, API and worker in one process.
pub async fn up(settings: Settings) -> anyhow::Result<()> {
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
        shutdown_signal(),
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
    let (_runtime, mut worker) = build_worker(settings, temporal, store.clone()).await?;
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let (api_url, api) = spawn_api(settings, temporal, store, async {
        let _ = api_stopped.await;
    })
    .await?;
    on_ready(&api_url);
    let stop_worker = worker.shutdown_handle();
    // The worker's future is not Send: it runs on this task, beside the stop trigger.
    let (worker_result, ()) = tokio::join!(worker.run(), async move {
        until.await;
        tracing::info!("shutting down");
        stop_worker();
        let _ = stop_api.send(());
    });
    worker_result.context("the worker stopped with an error")?;
    api.await
        .context("the API task panicked")?
        .context("the API server failed")?;
    Ok(())
}

/// `errand worker`: polls the task queue against the configured Temporal and database.
pub async fn worker(settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let temporal = Temporal::attach(&settings, "worker").await?;
    let store = open_store(&settings).await?;
    let (_runtime, mut worker) = build_worker(&settings, &temporal, store).await?;
    let stop = worker.shutdown_handle();
    println!(
        "Errand worker polling task queue {:?}",
        workflows::TASK_QUEUE
    );
    let (result, ()) = tokio::join!(worker.run(), async move {
        shutdown_signal().await;
        stop();
    });
    result.context("the worker stopped with an error")
}

/// `errand api`: serves the REST API against the configured Temporal and database.
pub async fn api(settings: Settings) -> anyhow::Result<()> {
    let temporal = Temporal::attach(&settings, "api").await?;
    let store = open_store(&settings).await?;
    let (url, server) = spawn_api(&settings, &temporal, store, shutdown_signal()).await?;
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
