//! `errand bench crashes`: how fast a running stack takes crash reports. N requests over K
//! concurrent connections with a realistic mix (most requests are repeats of a few hot crashes
//! from other machines and releases, the rest spread over many distinct ones); reports
//! requests per second and the p50 and p99 latency, the client's own CPU time (so a saturated
//! client shows), and how long after the last answer every occurrence was counted by its
//! group's workflow (de-duplication end to end); records them in BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::proc_stats::{Sample, own_cpu_secs};
use super::{Machine, record};

const SECTION_START: &str = "<!-- errand bench crashes: start -->";
const SECTION_END: &str = "<!-- errand bench crashes: end -->";
/// The goal, on this machine, with de-duplication.
const GOAL_PER_SEC: f64 = 500.0;
/// Share of requests that repeat one of the hot crashes.
const HOT_SHARE_PERCENT: usize = 80;
const HOT_CRASHES: usize = 5;
/// How long to wait for the workflows to count every occurrence after the last answer.
const DELIVERY_WAIT: Duration = Duration::from_secs(180);

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
    anyhow::ensure!(
        args.distinct > HOT_CRASHES,
        "--distinct must be more than {HOT_CRASHES}"
    );
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
        post(&http, &url, serde_json::to_vec(&body(crash, 0))?).await?;
    }
    // The bodies are made before the clock starts: the figure is the server's, not the
    // client's JSON encoding.
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.requests)
            .map(|i| serde_json::to_vec(&body(pick(i, args.distinct), i + 1)))
            .collect::<Result<_, _>>()?,
    );

    let client_before = Sample::of(std::process::id())?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (http, url, next, bodies) = (http.clone(), url.clone(), next.clone(), bodies.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return anyhow::Ok(latencies);
                };
                let sent = Instant::now();
                post(&http, &url, body.clone()).await?;
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    for worker in workers {
        latencies.extend(worker.await.context("a benchmark connection panicked")??);
    }
    let elapsed = started.elapsed();
    let client_cpu = own_cpu_secs(&client_before, &Sample::of(std::process::id())?);
    let sent = (args.requests + args.distinct) as u64;
    let (counted, counted_after) = counted(&http, &args.api, &service, sent).await?;
    let delivery = if counted == sent {
        format!(
            "Every one of the {sent} occurrences (warm-up included) was counted by its group's \
             workflow {:.1} s after the last answer (the groups' counts add up exactly: none lost, \
             none counted twice).",
            counted_after.as_secs_f64()
        )
    } else {
        format!(
            "The groups' workflows had counted {counted} of the {sent} occurrences {:.0} s after the \
             last answer.",
            counted_after.as_secs_f64()
        )
    };
    println!("{delivery}");
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
    let verdict = if per_sec >= GOAL_PER_SEC {
        "meets"
    } else {
        "misses"
    };
    let section = format!(
        "{SECTION_START}\n## Crash ingestion\n\n\
         Measured by `errand bench crashes --requests {} --connections {}` against `errand up` \
         ({} build of the benchmark client; under `errand bench` the server is this same binary, \
         else the build that is running) on {} ({}).\n\
         Each request is a plain crash record (a Python traceback) posted to `POST /v1/crashes`: \
         parse, fingerprint, read the playbook, and one row in the app database's outbox \
         (SQLite), committed together with the requests that arrived meanwhile; the answer \
         comes after that commit. A background sender delivers each group's new occurrences in \
         batches, one signal-with-start of the group's `CrashInvestigation` workflow on the \
         embedded Temporal dev server per batch. \
         {HOT_SHARE_PERCENT}% of the requests repeat one of {HOT_CRASHES} hot crashes (other \
         machines, releases and line numbers), the rest spread over {} distinct ones. The \
         client (this process, {} connections, bodies encoded before the clock starts) used \
         {client_cpu:.1} s of CPU in the {:.1} s.\n\n{table}\n\n\
         This {verdict} the goal of {GOAL_PER_SEC:.0} requests per second. {delivery}\n{SECTION_END}\n",
        args.requests,
        args.connections,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        machine.date,
        machine.summary(),
        args.distinct,
        args.connections,
        elapsed.as_secs_f64(),
    );
    record(&args.out, SECTION_START, SECTION_END, &section)?;
    println!("recorded in {}", args.out.display());
    Ok(())
}

async fn post(http: &reqwest::Client, url: &str, body: Vec<u8>) -> anyhow::Result<()> {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .context("POST /v1/crashes")?;
    let status = response.status();
    anyhow::ensure!(
        status == reqwest::StatusCode::ACCEPTED,
        "POST /v1/crashes answered {status}: {}",
        response.text().await.unwrap_or_default()
    );
    Ok(())
}

/// Polls the service's crash groups until their counts add up to `sent` (or
/// [`DELIVERY_WAIT`] passes): answers the sum and when it was seen.
async fn counted(
    http: &reqwest::Client,
    api: &str,
    service: &str,
    sent: u64,
) -> anyhow::Result<(u64, Duration)> {
    let url = format!(
        "{}/v1/crashes?service={service}&limit=500",
        api.trim_end_matches('/')
    );
    let since = Instant::now();
    loop {
        let groups: Value = http
            .get(&url)
            .send()
            .await
            .context("GET /v1/crashes")?
            .json()
            .await
            .context("GET /v1/crashes")?;
        let sum: u64 = groups
            .as_array()
            .map(|g| g.iter().filter_map(|g| g["count"].as_u64()).sum())
            .unwrap_or(0);
        if sum >= sent || since.elapsed() > DELIVERY_WAIT {
            return Ok((sum, since.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
