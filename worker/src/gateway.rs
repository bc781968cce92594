//! The model gateway as the worker runs it: its `[gateway]` settings, and starting it on a
//! socket under the data directory with the provider keys read from the worker's own
//! environment (they never reach a sandbox: agents get a per-run token instead).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use activities::cost_guard::CostGuard;
use activities::gateway::{
    DEFAULT_LOOP_GUARD_REPEATS, DEFAULT_MAX_BODY_BYTES, Gateway, GatewayConfig, GatewayHandle,
    Upstream,
};
use anyhow::Context;
use serde::Deserialize;
use workflows::cost::PriceTable;

/// `[gateway]`: present when agents should reach models through the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// An OpenAI-compatible upstream (`/chat/completions` below its base URL).
    #[serde(default)]
    pub openai: Option<UpstreamSettings>,
    /// The Anthropic messages API (`/v1/messages` below its base URL).
    #[serde(default)]
    pub anthropic: Option<UpstreamSettings>,
    /// Micro-dollars per million tokens, per model; a model missing here is refused.
    #[serde(default)]
    pub prices: PriceTable,
    /// The identical requests in a row of a run that the loop guard refuses (0: off).
    #[serde(default = "default_loop_guard_repeats")]
    pub loop_guard_repeats: u32,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Also serve on this loopback address (for agents run outside a sandbox); unset: only
    /// the socket.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    pub base_url: String,
    /// The worker's environment variable holding the key (the key itself is never in a file).
    pub key_env: String,
}

fn default_loop_guard_repeats() -> u32 {
    DEFAULT_LOOP_GUARD_REPEATS
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

/// Where the gateway's socket lives under the data directory.
pub const SOCKET: &str = "gateway/gateway.sock";

/// Starts the gateway of this worker.
pub async fn start(
    settings: &GatewaySettings,
    data_dir: &Path,
    guard: Arc<dyn CostGuard>,
) -> anyhow::Result<GatewayHandle> {
    // Absolute: bwrap binds it from wherever it runs.
    let socket = std::path::absolute(data_dir.join(SOCKET))
        .with_context(|| format!("model gateway socket under {}", data_dir.display()))?;
    let upstream = |name: &str, upstream: &Option<UpstreamSettings>| {
        upstream
            .as_ref()
            .map(|upstream| {
                let api_key = std::env::var(&upstream.key_env).with_context(|| {
                    format!(
                        "gateway.{name}.key_env names {}, which is not set in the worker's \
                         environment",
                        upstream.key_env
                    )
                })?;
                anyhow::Ok(Upstream {
                    base_url: upstream.base_url.clone(),
                    api_key,
                })
            })
            .transpose()
    };
    let mut config = GatewayConfig::new(socket, settings.prices.clone());
    config.openai = upstream("openai", &settings.openai)?;
    config.anthropic = upstream("anthropic", &settings.anthropic)?;
    config.tcp_listen = settings.listen;
    config.loop_guard_repeats = settings.loop_guard_repeats;
    config.max_body_bytes = settings.max_body_bytes;
    Ok(Gateway::start(config, guard).await?)
}
