//! Figure 2, time to first agent output: from the trigger request to the first byte the agent
//! writes, on a repository of 10k files. The agent's first line is the wall clock in
//! nanoseconds (the sandbox shares the host's clock), read back from its log on the worker.
//! Warm: the repository's base is built (an earlier task on the same commit), so `provision`
//! mounts an overlay. Cold: a repository the worker has never seen (a fresh copy each run), so
//! `provision` first builds its base.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};

use super::Percentiles;
use super::report::{Row, human, table};
use super::repos::git;
use super::stack::{Stack, task_body};

const GOAL_COLD: Duration = Duration::from_secs(1);
const GOAL_WARM: Duration = Duration::from_millis(300);

pub fn runs(quick: bool) -> usize {
    if quick { 3 } else { 15 }
}

/// Cold runs clone and build a base of 10k files each: fewer of them.
fn cold_runs(runs: usize) -> usize {
    runs.min(5)
}

/// The agent prints the clock first, then makes a change so the task reaches review.
const AGENT: &str = "date +%s%N; echo 'a change' > bench-first-output.txt";
/// The floor of a cold start: a clone, then the first byte of a process in it.
const SCRIPT: &str = r#"set -eu
git clone --quiet "$REMOTE" "$WORKSPACE"
cd "$WORKSPACE"
date +%s%N
"#;

/// One task's times: trigger to first output, to `run_agent` scheduled, and `provision`.
#[derive(Default)]
struct Samples {
    output: Vec<Duration>,
    to_agent_start: Vec<Duration>,
    provision: Vec<Duration>,
}

pub async fn measure(
    stack: &Stack,
    repo: &Path,
    scratch: &Path,
    runs: usize,
) -> anyhow::Result<(Vec<Row>, String)> {
    let mut warm = Samples::default();
    let mut cold = Samples::default();
    let mut script = Vec::new();
    // The first task on the repository builds its base: not counted as warm.
    let mut ignored = Samples::default();
    one_task(stack, repo, &mut ignored).await?;
    for run in 0..runs {
        one_task(stack, repo, &mut warm).await?;
        if run < cold_runs(runs) {
            let fresh = scratch.join(format!("first-output-cold-{run}.git"));
            let _ = std::fs::remove_dir_all(&fresh);
            let status = git(Path::new("/"), &["clone", "--quiet", "--bare"])
                .arg(repo)
                .arg(&fresh)
                .status()?;
            ensure!(status.success(), "cannot copy {}", repo.display());
            one_task(stack, &fresh, &mut cold).await?;

            let workspace = scratch.join(format!("first-output-script-{run}"));
            let sent = now_nanos();
            let output = tokio::process::Command::new("sh")
                .args(["-c", SCRIPT])
                .env("REMOTE", repo)
                .env("WORKSPACE", &workspace)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .await?;
            ensure!(output.status.success(), "the baseline script failed");
            script.push(since(
                sent,
                first_clock(&String::from_utf8_lossy(&output.stdout)),
            )?);
        }
    }
    // Removed only now: on a filesystem that discards freed blocks online (this machine's), a
    // removal of 10k files slows the files created after it for seconds.
    for run in 0..cold_runs(runs) {
        let _ = std::fs::remove_dir_all(scratch.join(format!("first-output-script-{run}")));
    }

    let p = |times: &[Duration]| Percentiles::of(times);
    let (warm_p, cold_p, script_p) = (p(&warm.output), p(&cold.output), p(&script));
    let warm_met = warm_p.p50 <= GOAL_WARM;
    let cold_met = cold_p.p50 <= GOAL_COLD;
    let rows = vec![
        Row::new("warm, 10k files", human(warm_p.p50)).goal("p50 <= 300 ms", warm_met),
        Row::new("cold (new repository), 10k files", human(cold_p.p50))
            .floor(format!("clone + exec {}", human(script_p.p50)))
            .goal("p50 <= 1 s", cold_met),
    ];
    let mut body = format!(
        "From `POST /v1/tasks` to the first byte the agent writes (its first line is the wall \
         clock, `date +%s%N`, read back from its log), on a synthetic repository of 10,000 \
         files; each task a new workspace. Warm: the base of the repository's current commit \
         is built (by an earlier task), so `provision` mounts an overlay on it; {runs} runs. \
         Cold: a copy of the repository the worker has never seen, so `provision` first \
         builds its base (clone, checkout, index refresh); {} runs. The floor of a cold start \
         is a shell script that clones the repository and starts a process in it.\n\n",
        cold_runs(runs)
    );
    let line = |what: &str, times: &[Duration]| {
        let p = Percentiles::of(times);
        vec![what.to_owned(), human(p.p50), human(p.p95)]
    };
    body.push_str(&table(
        &["", "p50", "p95"],
        &[
            line("warm: trigger to first agent output", &warm.output),
            line(
                "of which: trigger to `run_agent` scheduled",
                &warm.to_agent_start,
            ),
            line(
                "of which: `provision` (overlay on the base)",
                &warm.provision,
            ),
            line("cold: trigger to first agent output", &cold.output),
            line(
                "of which: trigger to `run_agent` scheduled",
                &cold.to_agent_start,
            ),
            line(
                "of which: `provision` (base build, then overlay)",
                &cold.provision,
            ),
            line(
                "floor of cold: clone + first output of a process (no engine, no sandbox)",
                &script,
            ),
        ],
    ));
    body.push_str(&format!(
        "\nWarm p50 {} the goal of at most 300 ms; cold p50 {} the goal of at most 1 s.\n",
        if warm_met { "meets" } else { "misses" },
        if cold_met { "meets" } else { "misses" },
    ));
    Ok((rows, body))
}

/// Runs one task on `repo` to review and records its times.
async fn one_task(stack: &Stack, repo: &Path, samples: &mut Samples) -> anyhow::Result<()> {
    let sent = now_nanos();
    let id = stack
        .start_task(&task_body(repo, AGENT, "test -f bench-first-output.txt"))
        .await?;
    stack.wait_for_review(&id, Duration::from_secs(300)).await?;
    let log = std::fs::read_to_string(stack.agent_log(&id))
        .with_context(|| format!("cannot read the agent log of {id}"))?;
    samples.output.push(since(sent, first_clock(&log))?);
    let history = stack.get(&format!("/v1/tasks/{id}/history")).await?;
    for step in history["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let at = |field: &str| {
            step[field]
                .as_str()
                .and_then(|text| text.parse::<DateTime<Utc>>().ok())
                .and_then(|time| time.timestamp_nanos_opt())
                .map(|nanos| nanos as u128)
        };
        match step["step"].as_str() {
            Some("provision") => {
                if let Some(ms) = step["duration_ms"].as_u64() {
                    samples.provision.push(Duration::from_millis(ms));
                }
            }
            Some("run_agent") => {
                if let Some(start) = at("started_at") {
                    samples.to_agent_start.push(since(sent, Some(start))?);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

/// The first line of `output` that is a clock in nanoseconds.
fn first_clock(output: &str) -> Option<u128> {
    output
        .lines()
        .find_map(|line| line.trim().parse::<u128>().ok())
}

fn since(sent: u128, at: Option<u128>) -> anyhow::Result<Duration> {
    let at = at.context("the agent's output holds no clock line")?;
    Ok(Duration::from_nanos(at.saturating_sub(sent) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_line_is_found_among_other_output() {
        let log = "[sandbox] starting\n1763750000123456789\nmore\n";
        assert_eq!(first_clock(log), Some(1_763_750_000_123_456_789));
        assert_eq!(first_clock("nothing\n"), None);
        assert_eq!(
            since(1_000, Some(1_000_500)).unwrap(),
            Duration::from_nanos(999_500)
        );
    }
}
