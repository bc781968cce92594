//! Figure 5, density: N concurrent tasks whose agents sleep, and what the `errand up` process
//! (API and worker; the agents are sandboxed processes of their own) costs in memory and CPU
//! while they wait, from /proc; all N must then reach review.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use super::proc_stats::{Sample, mib, own_cpu_percent};
use super::report::{Row, human, table};
use super::stack::{Stack, is_final, task_body};

const GOAL_RSS_BYTES: u64 = 300 * 1_000_000;
const GOAL_CPU_PERCENT: f64 = 10.0;
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

pub struct Params {
    pub tasks: usize,
    pub sleep_secs: u64,
}

impl Params {
    pub fn new(quick: bool) -> Params {
        if quick {
            Params {
                tasks: 10,
                sleep_secs: 12,
            }
        } else {
            Params {
                tasks: 50,
                sleep_secs: 60,
            }
        }
    }
}

pub async fn measure(
    stack: &Stack,
    repo: &Path,
    params: &Params,
) -> anyhow::Result<(Vec<Row>, String)> {
    let pid = stack.pid();
    let temporal = stack.temporal_pid();
    let idle = Sample::of(pid)?;
    let agent = format!(
        "sleep {}; echo 'a change' > bench-density.txt",
        params.sleep_secs
    );
    let body = task_body(repo, &agent, "true");
    let submitted = Instant::now();
    let mut ids = HashSet::new();
    for _ in 0..params.tasks {
        ids.insert(stack.start_task(&body).await?);
    }
    let submit_time = submitted.elapsed();

    // The agents' sleep started when each reached running_agent; the window closes before the
    // first of them can wake up.
    let window_end =
        submitted + Duration::from_secs(params.sleep_secs).saturating_sub(Duration::from_secs(2));
    let all_running = loop {
        let statuses = stack.statuses().await?;
        let running = ids
            .iter()
            .filter(|id| statuses.get(*id).is_some_and(|s| s == "running_agent"))
            .count();
        if running == ids.len() {
            break Some(submitted.elapsed());
        }
        if Instant::now() >= window_end {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_running = all_running.context(format!(
        "not all {} agents were running {} s after they were triggered: the wait cannot be \
         measured (raise the sleep or lower the count)",
        params.tasks, params.sleep_secs
    ))?;
    let mut samples = vec![Sample::of(pid)?];
    let mut temporal_samples: Vec<Sample> = temporal
        .and_then(|t| Sample::of(t).ok())
        .into_iter()
        .collect();
    while Instant::now() + SAMPLE_EVERY <= window_end {
        tokio::time::sleep(SAMPLE_EVERY).await;
        samples.push(Sample::of(pid)?);
        if let Some(t) = temporal.and_then(|t| Sample::of(t).ok()) {
            temporal_samples.push(t);
        }
    }
    ensure!(
        samples.len() >= 3,
        "the waiting window was too short to sample"
    );

    // Then every task must reach review.
    let deadline = submitted + Duration::from_secs(params.sleep_secs + 300);
    let reached = loop {
        let statuses = stack.statuses().await?;
        let reached = ids
            .iter()
            .filter(|id| statuses.get(*id).is_some_and(|s| s == "awaiting_review"))
            .count();
        let ended = ids
            .iter()
            .filter(|id| statuses.get(*id).is_some_and(|s| is_final(s)))
            .count();
        if reached + ended == ids.len() || Instant::now() >= deadline {
            break reached;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let all_done = submitted.elapsed();

    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let cpu = own_cpu_percent(&first, &last);
    let rss_max = samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0);
    let mut rss: Vec<u64> = samples.iter().map(|s| s.rss_bytes).collect();
    rss.sort_unstable();
    let rss_p50 = rss[rss.len() / 2];
    let window = last.at - first.at;
    let temporal_line = match (temporal_samples.first(), temporal_samples.last()) {
        (Some(a), Some(b)) if temporal_samples.len() >= 2 => Some((
            own_cpu_percent(a, b),
            temporal_samples
                .iter()
                .map(|s| s.rss_bytes)
                .max()
                .unwrap_or(0),
        )),
        _ => None,
    };

    let n = params.tasks;
    let rows = vec![
        Row::new(format!("RSS, {n} agents waiting"), mib(rss_max))
            .floor(format!("idle {}", mib(idle.rss_bytes)))
            .goal("<= 300 MB", rss_max <= GOAL_RSS_BYTES),
        Row::new(
            format!("CPU, {n} agents waiting"),
            format!("{cpu:.1}% of a core"),
        )
        .goal("<= 10%", cpu <= GOAL_CPU_PERCENT),
        Row::new("reached review", format!("{reached}/{n}")).goal(format!("{n}/{n}"), reached == n),
    ];
    let mut cells = vec![vec![
        "`errand up` (API and worker)".into(),
        mib(idle.rss_bytes),
        mib(rss_p50),
        mib(rss_max),
        format!("{cpu:.1}%"),
    ]];
    if let Some((cpu, rss)) = temporal_line {
        cells.push(vec![
            "Temporal dev server (its child)".into(),
            "-".into(),
            "-".into(),
            mib(rss),
            format!("{cpu:.1}%"),
        ]);
    }
    let mut body = format!(
        "{n} tasks triggered at once (in {}) on a small repository, each agent sleeping {} s in \
         its sandbox; all {n} were running after {}. The `errand up` process (API and worker \
         in one; each sandboxed agent is a process of its own and not counted) was sampled \
         from /proc every second over {} while every agent slept: resident memory (VmRSS) and \
         CPU time (utime + stime over the window, in percent of one core).\n\n",
        human(submit_time),
        params.sleep_secs,
        human(all_running),
        human(window)
    );
    body.push_str(&table(
        &[
            "process",
            "RSS idle",
            "RSS p50 waiting",
            "RSS max waiting",
            "CPU waiting",
        ],
        &cells,
    ));
    body.push_str(&format!(
        "\n{reached} of {n} tasks reached review ({} after they were triggered). Memory {} \
         the goal of at most 300 MB; CPU {} the goal of at most 10% of one core.\n",
        human(all_done),
        if rss_max <= GOAL_RSS_BYTES {
            "meets"
        } else {
            "misses"
        },
        if cpu <= GOAL_CPU_PERCENT {
            "meets"
        } else {
            "misses"
        },
    ));
    Ok((rows, body))
}
