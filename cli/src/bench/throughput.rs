//! Figure 6, throughput: N tasks with a no-op agent and a no-op check, all triggered at once,
//! completed end to end (to review) per second, and how the CPU spent meanwhile splits between
//! the engine (`errand up` and its Temporal dev server) and the work it ran (sandboxes, git).

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::proc_stats::{Sample, children_cpu_secs, own_cpu_secs};
use super::report::{Row, human, table};
use super::stack::{Stack, is_final, task_body};

const GOAL_PER_SEC: f64 = 3.0;

pub fn tasks(quick: bool) -> usize {
    if quick { 12 } else { 60 }
}

pub async fn measure(
    stack: &Stack,
    repo: &Path,
    tasks: usize,
) -> anyhow::Result<(Vec<Row>, String)> {
    let pid = stack.pid();
    let temporal = stack.temporal_pid();
    let body = task_body(repo, "true", "true");
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let machine_before = machine_busy_secs();
    let errand_before = Sample::of(pid)?;
    let temporal_before = temporal.and_then(|t| Sample::of(t).ok());
    let started = Instant::now();
    let mut ids = HashSet::new();
    for _ in 0..tasks {
        ids.insert(stack.start_task(&body).await?);
    }
    let submitted = started.elapsed();
    let deadline = started + Duration::from_secs(60 + 10 * tasks as u64);
    let (reached, failed) = loop {
        let statuses = stack.statuses().await?;
        let reached = ids
            .iter()
            .filter(|id| statuses.get(*id).is_some_and(|s| s == "awaiting_review"))
            .count();
        let failed = ids
            .iter()
            .filter(|id| statuses.get(*id).is_some_and(|s| is_final(s)))
            .count();
        if reached + failed == ids.len() || Instant::now() >= deadline {
            break (reached, failed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    anyhow::ensure!(
        reached == tasks,
        "{reached} of {tasks} tasks reached review ({failed} ended otherwise) in {}",
        human(elapsed)
    );
    let errand_after = Sample::of(pid)?;
    let temporal_after = temporal.and_then(|t| Sample::of(t).ok());
    let machine_after = machine_busy_secs();

    let per_sec = tasks as f64 / elapsed.as_secs_f64();
    let errand_cpu = own_cpu_secs(&errand_before, &errand_after);
    let work_cpu = children_cpu_secs(&errand_before, &errand_after);
    let temporal_cpu = match (temporal_before, temporal_after) {
        (Some(a), Some(b)) => own_cpu_secs(&a, &b),
        _ => 0.0,
    };
    let ours = errand_cpu + work_cpu + temporal_cpu;
    let engine_share = (errand_cpu + temporal_cpu) / ours.max(1e-9) * 100.0;
    let capacity = elapsed.as_secs_f64() * cores;
    let machine = match (machine_before, machine_after) {
        (Some(a), Some(b)) => format!("{:.0}%", (b - a) / capacity * 100.0),
        _ => "unknown".into(),
    };
    let met = per_sec >= GOAL_PER_SEC;
    let rows = vec![
        Row::new(
            format!("{tasks} no-op tasks"),
            format!("{per_sec:.2} tasks/s"),
        )
        .floor(format!("engine {engine_share:.0}% of the CPU"))
        .goal(">= 3 tasks/s", met),
    ];
    let mut out = format!(
        "{tasks} tasks with a no-op agent (`true`) and a no-op check (`true`) on a small \
         repository, triggered at once (in {}), until every one is `awaiting_review`: \
         provision (an overlay on the repository's base), the agent and the check in the sandbox, push, review request. CPU \
         seconds from /proc over the same {}: the `errand up` process itself (API and worker), \
         the processes it ran and reaped (sandboxes, git), and its Temporal dev server; the \
         machine's busy time (from /proc/stat, other users' work included) against its {} \
         cores.\n\n",
        human(submitted),
        human(elapsed),
        cores
    );
    out.push_str(&table(
        &[
            "tasks",
            "wall",
            "tasks/s",
            "errand CPU",
            "Temporal CPU",
            "sandboxes and git CPU",
            "engine share of that CPU",
            "machine busy",
        ],
        &[vec![
            tasks.to_string(),
            human(elapsed),
            format!("{per_sec:.2}"),
            format!("{errand_cpu:.1} s"),
            format!("{temporal_cpu:.1} s"),
            format!("{work_cpu:.1} s"),
            format!("{engine_share:.0}%"),
            machine,
        ]],
    ));
    out.push_str(&format!(
        "\n{per_sec:.2} tasks per second {} the goal of at least 3.\n",
        if met { "meets" } else { "misses" }
    ));
    Ok((rows, out))
}

/// CPU seconds the whole machine spent busy since boot (all but idle and iowait).
fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_secs(stat.lines().next()?)
}

fn busy_secs(cpu_line: &str) -> Option<f64> {
    let fields: Vec<u64> = cpu_line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: guests are already in user.
    let busy: u64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Some(busy as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_leaves_out_idle_and_iowait() {
        let line = "cpu  100 10 50 1000 20 5 5 10 0 0";
        assert_eq!(busy_secs(line), Some(1.8));
        assert_eq!(busy_secs("cpu0 1 2 3"), None);
    }
}
