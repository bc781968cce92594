//! `errand bench crashes`: how fast a running stack takes crash reports. N requests over K
//! concurrent connections with a realistic mix (most requests are repeats of a few hot crashes
//! from other machines and releases, the rest spread over many distinct ones); reports
//! requests per second and the p50 and p99 latency, and records them in BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::{Machine, record};

const SECTION_START: &str = "<!-- errand bench crashes: start -->";
const SECTION_END: &str = "<!-- errand bench crashes: end -->";
/// The goal, on this machine, with de-duplication.
const GOAL_PER_SEC: f64 = 500.0;
/// Share of requests that repeat one of the hot crashes.
const HOT_SHARE_PERCENT: usize = 80;
const HOT_CRASHES: usize = 5;

#[derive(Debug, clap::Args)]
pub struct CrashBenchArgs {
    /// The API of a running stack (`errand up`)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Requests in all
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Concurrent connections
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Distinct crashes (hot ones included)
    #[arg(long, default_value_t = 50)]
    distinct: usize,
    /// Where to record the result
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
}

pub async fn crashes(args: CrashBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.requests >= 100, "--requests must be at least 100");
    anyhow::ensure!(args.connections >= 1, "--connections must be at least 1");
    anyhow::ensure!(args.distinct > HOT_CRASHES, "--distinct must be more than {HOT_CRASHES}");
    let machine = Machine::describe();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .context("cannot build the HTTP client")?;
    // Investigations of the benchmark's groups start (up to the rate limit) and fail fast on
    // a repository that does not exist: the figure is about intake, not agents.
    let service = format!("bench-{}", std::process::id());
    let url = format!(
        "{}/v1/crashes?service={service}&repo=/nonexistent/errand-bench.git&agent=/bin/true",
        args.api.trim_end_matches('/')
    );
    // Warm up: one of each crash (this also creates every group).
    for crash in 0..args.distinct {
        post(&http, &url, &body(crash, 0)).await?;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        let (requests, distinct) = (args.requests, args.distinct);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return anyhow::Ok(latencies);
                }
                let body = body(pick(i, distinct), i + 1);
                let sent = Instant::now();
                post(&http, &url, &body).await?;
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    for worker in workers {
        latencies.extend(worker.await.context("a benchmark connection panicked")??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let rank = |p: usize| latencies[(p * latencies.len()).div_ceil(100).max(1) - 1];
    let per_sec = args.requests as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (rank(50), rank(99));
    let table = format!(
        "| requests | connections | distinct crashes | req/s | p50 | p99 |\n|---|---|---|---|---|---|\n\
         | {} | {} | {} | {per_sec:.0} | {} | {} |",
        args.requests,
        args.connections,
        args.distinct,
        ms(p50),
        ms(p99)
    );
    println!("{table}");
    let verdict = if per_sec >= GOAL_PER_SEC { "meets" } else { "misses" };
    let section = format!(
        "{SECTION_START}\n## Crash ingestion\n\n\
         Measured by `errand bench crashes --requests {} --connections {}` against `errand up` \
         ({} build of the benchmark client; the server's build is the one running) on {} ({}).\n\
         Each request is a plain crash record (a Python traceback) posted to `POST /v1/crashes`: \
         parse, fingerprint, read the playbook, one signal-with-start of the group's \
         `CrashInvestigation` workflow on the embedded Temporal dev server (SQLite). \
         {HOT_SHARE_PERCENT}% of the requests repeat one of {HOT_CRASHES} hot crashes (other \
         machines, releases and line numbers), the rest spread over {} distinct ones.\n\n{table}\n\n\
         This {verdict} the goal of {GOAL_PER_SEC:.0} requests per second.\n{SECTION_END}\n",
        args.requests,
        args.connections,
        if cfg!(debug_assertions) { "debug" } else { "release" },
        machine.date,
        machine.summary(),
        args.distinct,
    );
    record(&args.out, SECTION_START, SECTION_END, &section)?;
    println!("recorded in {}", args.out.display());
    Ok(())
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<()> {
    let response = http.post(url).json(body).send().await.context("POST /v1/crashes")?;
    let status = response.status();
    anyhow::ensure!(
        status == reqwest::StatusCode::ACCEPTED,
        "POST /v1/crashes answered {status}: {}",
        response.text().await.unwrap_or_default()
    );
    Ok(())
}

/// Which crash request `i` sends: mostly a hot one, deterministically.
fn pick(i: usize, distinct: usize) -> usize {
    let spread = i.wrapping_mul(2_654_435_761) % 100;
    if spread < HOT_SHARE_PERCENT {
        i % HOT_CRASHES
    } else {
        HOT_CRASHES + i % (distinct - HOT_CRASHES)
    }
}

/// Crash `crash` as machine `n` sends it: same code path, its own paths, lines and release.
fn body(crash: usize, n: usize) -> Value {
    let stacktrace = format!(
        "Traceback (most recent call last):\n  File \"/srv/host-{m}/app/server.py\", line {l1}, in dispatch\n    return handler(request)\n  File \"/srv/host-{m}/app/handlers/h{crash}.py\", line {l2}, in handle_{crash}\n    value = parse_{crash}(request.body)\nValueError: invalid literal for int() with base 10: 'req-{n}'\n",
        m = n % 17,
        l1 = 100 + n % 7,
        l2 = 10 + n % 5,
    );
    json!({
        "environment": "production",
        "release": format!("2026.11.{}", n % 9),
        "message": format!("ValueError: invalid literal for int() with base 10: 'req-{n}'"),
        "stacktrace": stacktrace,
        "tags": {"host": format!("web-{}", n % 17)},
    })
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_mostly_hot_and_covers_every_crash() {
        let picks: Vec<usize> = (0..1000).map(|i| pick(i, 50)).collect();
        let hot = picks.iter().filter(|c| **c < HOT_CRASHES).count();
        assert!((700..=900).contains(&hot), "{hot}");
        assert!(picks.iter().all(|c| *c < 50));
        assert!((HOT_CRASHES..50).all(|c| picks.contains(&c)));
    }
}
