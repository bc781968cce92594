//! The model gateway: a host-side HTTP server, run by the worker, through which every model
//! call of a sandboxed agent passes. It speaks the OpenAI-compatible chat completions API and
//! the Anthropic messages API (streaming and not), holds the provider keys (the agent only
//! ever has a per-run token), asks the cost guard before forwarding, and prices and records
//! every call after.
//!
//! It listens on a Unix socket, which the sandbox's shim relays to 127.0.0.1:`GATEWAY_PORT`
//! inside the sandbox, and optionally on loopback TCP (tests, unsandboxed use).

mod anthropic;
mod loop_guard;
mod metrics;
mod openai;
mod run;
mod server;
mod sse;
mod tokens;
mod upstream;

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use workflows::cost::PriceTable;

use crate::cost_guard::CostGuard;

pub use loop_guard::BUDGET as LOOP_GUARD_BUDGET;
pub use metrics::GatewayMetrics;
pub use run::RunAccess;
pub use tokens::{RunSummary, TOKEN_PREFIX, TokenLease, TokenRegistry};
pub use upstream::Upstream;

/// Requests larger than this are refused (413) unless configured otherwise: a long agent
/// conversation is a few megabytes at most.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
/// The identical requests in a row that the loop guard refuses, unless configured otherwise.
pub const DEFAULT_LOOP_GUARD_REPEATS: u32 = 5;

/// Which API a call speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenAi,
    Anthropic,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::OpenAi => "openai",
            Flavor::Anthropic => "anthropic",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where the gateway listens; its directory is created (0700) if missing, and a stale
    /// socket from an earlier worker is replaced.
    pub socket_path: PathBuf,
    /// Also listen on this loopback address (port 0: any free port).
    pub tcp_listen: Option<SocketAddr>,
    pub openai: Option<Upstream>,
    pub anthropic: Option<Upstream>,
    /// A call to a model missing from the table is refused: unknown cost is unbounded cost.
    pub prices: PriceTable,
    /// The loop guard refuses the this-many-th identical request in a row of a run (0: off).
    pub loop_guard_repeats: u32,
    pub max_body_bytes: usize,
}

impl GatewayConfig {
    /// A gateway on `socket_path` with the defaults and no upstream yet.
    pub fn new(socket_path: impl Into<PathBuf>, prices: PriceTable) -> Self {
        Self {
            socket_path: socket_path.into(),
            tcp_listen: None,
            openai: None,
            anthropic: None,
            prices,
            loop_guard_repeats: DEFAULT_LOOP_GUARD_REPEATS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("model gateway: no upstream is configured (neither openai nor anthropic)")]
    NoUpstream,
    #[error("model gateway: the {flavor} upstream's key is not a valid header value")]
    BadKey { flavor: &'static str },
    #[error("model gateway: {addr} is not a loopback address")]
    NotLoopback { addr: SocketAddr },
    #[error("model gateway: {path} exists and is not a socket")]
    NotASocket { path: PathBuf },
    #[error("model gateway: listening on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
    #[error("model gateway: building the upstream client: {0}")]
    Client(#[from] reqwest::Error),
}

pub struct Gateway;

impl Gateway {
    /// Binds the socket (and the TCP address) and serves until the handle is shut down or
    /// dropped. Needs a tokio runtime.
    pub async fn start(
        config: GatewayConfig,
        guard: Arc<dyn CostGuard>,
    ) -> Result<GatewayHandle, GatewayError> {
        if config.openai.is_none() && config.anthropic.is_none() {
            return Err(GatewayError::NoUpstream);
        }
        for (flavor, upstream) in [
            (Flavor::OpenAi, &config.openai),
            (Flavor::Anthropic, &config.anthropic),
        ] {
            if let Some(upstream) = upstream
                && axum::http::HeaderValue::try_from(format!("Bearer {}", upstream.api_key))
                    .is_err()
            {
                return Err(GatewayError::BadKey {
                    flavor: flavor.name(),
                });
            }
        }
        if let Some(addr) = config.tcp_listen
            && !addr.ip().is_loopback()
        {
            return Err(GatewayError::NotLoopback { addr });
        }
        let unix = bind_socket(&config.socket_path)?;
        let tcp = match config.tcp_listen {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| GatewayError::Listen {
                            what: addr.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let tcp_addr = tcp
            .as_ref()
            .map(|listener| listener.local_addr())
            .transpose()
            .map_err(|source| GatewayError::Listen {
                what: "tcp".into(),
                source,
            })?;

        let tokens = TokenRegistry::default();
        let metrics = GatewayMetrics::new();
        let shared = Arc::new(server::Shared {
            tokens: tokens.clone(),
            guard,
            upstreams: upstream::Upstreams::new(config.openai, config.anthropic)?,
            prices: config.prices,
            loop_guard_repeats: config.loop_guard_repeats,
            max_body_bytes: config.max_body_bytes,
            metrics: metrics.clone(),
        });
        let router = server::router(shared);
        let (shutdown, stopped) = watch::channel(false);
        let until_shutdown = move || {
            let mut stopped = stopped.clone();
            // Resolves on shutdown, or when the handle (the sender) is gone.
            async move {
                let _ = stopped.wait_for(|&stop| stop).await;
            }
        };
        let mut servers = vec![tokio::spawn({
            let serve = axum::serve(unix, router.clone()).with_graceful_shutdown(until_shutdown());
            async move { serve.await }
        })];
        if let Some(tcp) = tcp {
            let serve = axum::serve(tcp, router).with_graceful_shutdown(until_shutdown());
            servers.push(tokio::spawn(async move { serve.await }));
        }
        tracing::info!(socket = %config.socket_path.display(), tcp = ?tcp_addr, "model gateway listening");
        Ok(GatewayHandle {
            socket_path: config.socket_path,
            tcp_addr,
            tokens,
            metrics,
            shutdown,
            servers,
        })
    }
}

/// Binds the Unix socket, readable and writable by every uid: a sandbox's per-run uid must
/// connect, and the token, not the socket's mode, is what authenticates a call. The directory
/// above stays private (0700); the sandbox reaches the socket through a bind mount.
fn bind_socket(path: &Path) -> Result<UnixListener, GatewayError> {
    let listen_error = |source| GatewayError::Listen {
        what: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir)
            .map_err(listen_error)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(listen_error)?
        }
        Ok(_) => {
            return Err(GatewayError::NotASocket {
                path: path.to_owned(),
            });
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(listen_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(listen_error)?;
    Ok(listener)
}

/// A running gateway; dropping it stops the servers and removes the socket.
#[derive(Debug)]
pub struct GatewayHandle {
    socket_path: PathBuf,
    tcp_addr: Option<SocketAddr>,
    tokens: TokenRegistry,
    metrics: GatewayMetrics,
    shutdown: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl GatewayHandle {
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Where the worker registers and revokes each run's token.
    pub fn tokens(&self) -> &TokenRegistry {
        &self.tokens
    }

    pub fn metrics(&self) -> &GatewayMetrics {
        &self.metrics
    }

    /// Stops accepting, lets calls in flight finish, and removes the socket.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for server in std::mem::take(&mut self.servers) {
            let _ = server.await;
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = std::fs::remove_file(&self.socket_path);
    }
}
