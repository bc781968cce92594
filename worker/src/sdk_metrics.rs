//! The Temporal runtime the worker runs on, with the SDK's own metrics (pollers, slots, task
//! latencies, sticky cache) served by the SDK's Prometheus exporter when an address is set.
//! Errand's task metrics stay at the API's `/metrics`; these are the engine's.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_common::telemetry::{
    PrometheusExporterOptions, TelemetryOptions, start_prometheus_metric_exporter,
};
use temporalio_sdk::Runtime;
use temporalio_sdk::runtime::RuntimeOptions;

/// The runtime, and the address its SDK metrics are served on (None: not exported).
pub fn runtime(sdk_metrics: Option<SocketAddr>) -> anyhow::Result<(Runtime, Option<SocketAddr>)> {
    let (telemetry, bound) = match sdk_metrics {
        None => (TelemetryOptions::builder().build(), None),
        Some(addr) => {
            let options = PrometheusExporterOptions::builder()
                .socket_addr(addr)
                .counters_total_suffix(true)
                .use_seconds_for_durations(true)
                .build();
            let server = start_prometheus_metric_exporter(options)
                .with_context(|| format!("cannot serve the Temporal SDK metrics on {addr}"))?;
            let meter: Arc<dyn CoreMeter> = server.meter;
            (
                TelemetryOptions::builder().metrics(meter).build(),
                Some(server.bound_addr),
            )
        }
    };
    let options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(anyhow::Error::msg)?;
    let runtime =
        Runtime::from_current_tokio(options).context("cannot start the Temporal runtime")?;
    Ok((runtime, bound))
}
