//! Figure 7, the API: `GET /v1/tasks/{id}` latency at a fixed rate from an open-loop load
//! generator in this process (each request leaves at its scheduled time whatever the earlier
//! ones do, and its latency counts from that time, so a stalled server cannot hide its queue),
//! next to `GET /healthz` at the same rate as the floor; then crash ingestion through
//! `errand bench crashes` against the same stack.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use tokio::time::Instant;

use super::Percentiles;
use super::crash_bench::{self, CrashBenchArgs};
use super::report::{Row, human, table};
use super::stack::{Stack, task_body};

const RATE_PER_SEC: u64 = 200;

pub struct Params {
    pub secs: u64,
    pub crash_requests: usize,
    pub crash_connections: usize,
}

impl Params {
    pub fn new(quick: bool) -> Params {
        if quick {
            Params {
                secs: 4,
                crash_requests: 500,
                crash_connections: 64,
            }
        } else {
            Params {
                secs: 30,
                crash_requests: 5000,
                crash_connections: 256,
            }
        }
    }
}

struct Load {
    latency: Percentiles,
    sent: usize,
    errors: usize,
    /// Requests that left more than 5 ms after their scheduled time (the generator lagged).
    late: usize,
}

pub async fn measure(
    stack: &Stack,
    repo: &Path,
    params: &Params,
) -> anyhow::Result<(Vec<Row>, String)> {
    let id = stack.start_task(&task_body(repo, "true", "true")).await?;
    stack.wait_for_review(&id, Duration::from_secs(120)).await?;
    let task = open_loop(stack, &stack.url(&format!("/v1/tasks/{id}")), params.secs).await;
    let health = open_loop(stack, &stack.url("/healthz"), params.secs).await;
    let rows = vec![
        Row::new(
            format!("GET /v1/tasks/{{id}} p99 at {RATE_PER_SEC} req/s"),
            human(task.latency.p99),
        )
        .floor(format!("/healthz p99 {}", human(health.latency.p99))),
        Row::new("crash ingestion", "see \"Crash ingestion\"").floor("-"),
    ];
    let cells: Vec<Vec<String>> = [
        ("`GET /v1/tasks/{id}`", &task),
        ("floor: `GET /healthz`", &health),
    ]
    .iter()
    .map(|(what, load)| {
        vec![
            what.to_string(),
            load.sent.to_string(),
            load.errors.to_string(),
            load.late.to_string(),
            human(load.latency.p50),
            human(load.latency.p95),
            human(load.latency.p99),
        ]
    })
    .collect();
    let mut body = format!(
        "An open-loop generator in the bench process sends {RATE_PER_SEC} requests per second \
         for {} s (each at its scheduled time, on a pool of keep-alive connections) to `GET \
         /v1/tasks/{{id}}` of a task awaiting review, then to `GET /healthz` (routing and HTTP \
         only: the floor). Latency counts from the scheduled send time. The issue sets no \
         latency goal for this figure.\n\n",
        params.secs
    );
    body.push_str(&table(
        &[
            "route",
            "requests",
            "errors",
            "sent late (> 5 ms)",
            "p50",
            "p95",
            "p99",
        ],
        &cells,
    ));
    body.push_str(
        "\nCrash ingestion (goal: at least 500 requests per second with de-duplication) is \
         measured in the same run by `errand bench crashes` against this stack; see its own \
         section, \"Crash ingestion\".\n",
    );
    Ok((rows, body))
}

/// Runs `errand bench crashes` against the stack (it records its own section in `out`).
pub async fn crashes(stack: &Stack, params: &Params, out: &Path) -> anyhow::Result<()> {
    #[derive(Parser)]
    struct Crashes {
        #[command(flatten)]
        args: CrashBenchArgs,
    }
    let requests = params.crash_requests.to_string();
    let connections = params.crash_connections.to_string();
    let out = out.display().to_string();
    let parsed = Crashes::try_parse_from([
        "crashes",
        "--api",
        &stack.api,
        "--requests",
        &requests,
        "--connections",
        &connections,
        "--out",
        &out,
    ])?;
    crash_bench::crashes(parsed.args).await
}

async fn open_loop(stack: &Stack, url: &str, secs: u64) -> Load {
    let count = (RATE_PER_SEC * secs) as usize;
    let interval = Duration::from_nanos(1_000_000_000 / RATE_PER_SEC);
    let start = Instant::now() + Duration::from_millis(50);
    let mut requests = Vec::with_capacity(count);
    for i in 0..count {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let late = scheduled.elapsed() > Duration::from_millis(5);
        let (http, url) = (stack.http().clone(), url.to_owned());
        requests.push(tokio::spawn(async move {
            let ok = match http.get(&url).send().await {
                Ok(response) => {
                    let ok = response.status().is_success();
                    ok && response.bytes().await.is_ok()
                }
                Err(_) => false,
            };
            (scheduled.elapsed(), ok, late)
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    let (mut errors, mut late) = (0, 0);
    for request in requests {
        match request.await {
            Ok((latency, ok, was_late)) => {
                latencies.push(latency);
                errors += usize::from(!ok);
                late += usize::from(was_late);
            }
            Err(_) => errors += 1,
        }
    }
    Load {
        latency: Percentiles::of(&latencies),
        sent: count,
        errors,
        late,
    }
}
