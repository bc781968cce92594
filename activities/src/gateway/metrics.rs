//! The gateway's Prometheus counters: model calls by model and outcome, refusals by reason,
//! tokens by model and kind. The worker registers them on the registry it exports.

use prometheus::{IntCounterVec, Opts, Registry};
use workflows::cost::Usage;

/// Cloning shares the counters.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    /// `model`, `outcome`: `ok`, `upstream_status` (an error status from upstream),
    /// `upstream_error` (unreachable), `refused`, `unpriced`.
    pub calls: IntCounterVec,
    /// `reason`: the refused budget (`task_dollars`, `loop_guard`, ...), `unpriced_model`,
    /// `unauthorized`, `too_large`.
    pub refusals: IntCounterVec,
    /// `model`, `kind`: `input`, `output`, `cache_read`, `cache_write`.
    pub tokens: IntCounterVec,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayMetrics {
    pub fn new() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
                .expect("the counters' names and labels are valid")
        };
        Self {
            calls: counter(
                "errand_gateway_calls_total",
                "Model calls through the gateway, by model and outcome",
                &["model", "outcome"],
            ),
            refusals: counter(
                "errand_gateway_refusals_total",
                "Model calls the gateway refused, by reason",
                &["reason"],
            ),
            tokens: counter(
                "errand_gateway_tokens_total",
                "Tokens used by model calls through the gateway, by model and kind",
                &["model", "kind"],
            ),
        }
    }

    /// Adds the counters to `registry` (once per registry).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.calls.clone()))?;
        registry.register(Box::new(self.refusals.clone()))?;
        registry.register(Box::new(self.tokens.clone()))?;
        Ok(())
    }

    pub(super) fn call(&self, model: &str, outcome: &str) {
        self.calls.with_label_values(&[model, outcome]).inc();
    }

    pub(super) fn refusal(&self, reason: &str) {
        self.refusals.with_label_values(&[reason]).inc();
    }

    pub(super) fn usage(&self, model: &str, usage: &Usage) {
        for (kind, count) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ] {
            self.tokens.with_label_values(&[model, kind]).inc_by(count);
        }
    }
}
