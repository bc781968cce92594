//! The gateway's Prometheus counters: model calls by model and outcome, refusals by reason,
//! tokens by model and kind. The worker serves them at its `/metrics` (`worker.metrics_listen`).

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};
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

    /// The counters in Prometheus's text exposition format.
    pub fn render(&self) -> String {
        let registry = Registry::new();
        let mut text = Vec::new();
        if self.register(&registry).is_ok() {
            let _ = TextEncoder::new().encode(&registry.gather(), &mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_render_as_prometheus_text() {
        let metrics = GatewayMetrics::new();
        metrics.call("gpt-4.1", "ok");
        metrics.refusal("task_dollars");
        metrics.usage(
            "gpt-4.1",
            &Usage {
                input_tokens: 12,
                output_tokens: 3,
                ..Usage::default()
            },
        );
        let text = metrics.render();
        for line in [
            r#"errand_gateway_calls_total{model="gpt-4.1",outcome="ok"} 1"#,
            r#"errand_gateway_refusals_total{reason="task_dollars"} 1"#,
            r#"errand_gateway_tokens_total{kind="input",model="gpt-4.1"} 12"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
    }
}
