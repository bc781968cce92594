//! Figure 1, engine overhead: a task whose agent and check take a fixed time, from the trigger
//! request to `awaiting_review`, against a plain shell script doing the same steps (clone, run
//! the agent, run the check, commit, push). Runs alternate, so both see the same load.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;

use super::Percentiles;
use super::report::{Row, human, table};
use super::stack::{Stack, task_body};

/// The goal: the engine takes at most 5% longer than the script.
const GOAL_RATIO: f64 = 1.05;

pub struct Params {
    pub runs: usize,
    pub agent_secs: u64,
    pub check_secs: u64,
}

impl Params {
    pub fn new(quick: bool) -> Params {
        if quick {
            Params {
                runs: 3,
                agent_secs: 2,
                check_secs: 1,
            }
        } else {
            Params {
                runs: 5,
                agent_secs: 6,
                check_secs: 4,
            }
        }
    }
}

/// The same steps as a task, with nothing of the engine: what a person would script.
const SCRIPT: &str = r#"set -eu
git clone --quiet "$REMOTE" "$WORKSPACE"
cd "$WORKSPACE"
git switch --quiet --create "$BRANCH"
sh -c "$AGENT"
sh -c "$CHECK"
git add --all
git -c user.name=bench -c user.email=bench@errand.invalid commit --quiet --message bench
git push --quiet origin "$BRANCH"
"#;

pub async fn measure(
    stack: &Stack,
    repo: &Path,
    scratch: &Path,
    params: &Params,
) -> anyhow::Result<(Vec<Row>, String)> {
    let agent = format!(
        "echo started; sleep {}; echo 'a change' > bench-change.txt; echo done",
        params.agent_secs
    );
    let check = format!("sleep {}; test -f bench-change.txt", params.check_secs);
    let mut engine = Vec::new();
    let mut script = Vec::new();
    let mut steps: Vec<Vec<(String, u64)>> = Vec::new();
    for run in 0..params.runs {
        let workspace = scratch.join(format!("overhead-script-{run}"));
        let started = Instant::now();
        let status = tokio::process::Command::new("sh")
            .args(["-c", SCRIPT])
            .env("REMOTE", repo)
            .env("WORKSPACE", &workspace)
            .env(
                "BRANCH",
                format!("bench/script-{}-{run}", std::process::id()),
            )
            .env("AGENT", &agent)
            .env("CHECK", &check)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdout(std::process::Stdio::null())
            .status()
            .await?;
        script.push(started.elapsed());
        ensure!(status.success(), "the baseline script failed: {status}");
        let _ = std::fs::remove_dir_all(&workspace);

        let started = Instant::now();
        let id = stack.start_task(&task_body(repo, &agent, &check)).await?;
        stack.wait_for_review(&id, Duration::from_secs(300)).await?;
        engine.push(started.elapsed());
        steps.push(stack.step_durations(&id).await?);
    }

    let (engine_p, script_p) = (Percentiles::of(&engine), Percentiles::of(&script));
    let ratio = engine_p.p50.as_secs_f64() / script_p.p50.as_secs_f64();
    let met = ratio <= GOAL_RATIO;
    let work = Duration::from_secs(params.agent_secs + params.check_secs);
    let rows = vec![
        Row::new(
            format!("task to review ({} s of agent and check)", work.as_secs()),
            format!("{} (ratio {ratio:.2})", human(engine_p.p50)),
        )
        .floor(format!("script {}", human(script_p.p50)))
        .goal(format!("ratio <= {GOAL_RATIO}"), met),
    ];
    let mut body = format!(
        "A task whose agent sleeps {} s and writes a file and whose check sleeps {} s, on a \
         synthetic repository of 1,000 files, from `POST /v1/tasks` to `awaiting_review` \
         (polled every 50 ms), against `sh -c` running the same steps (clone, agent, check, \
         commit, push) with no engine and no sandbox. {} runs of each, alternating.\n\n",
        params.agent_secs, params.check_secs, params.runs
    );
    body.push_str(&table(
        &["", "p50", "p95"],
        &[
            vec![
                "engine (task to review)".into(),
                human(engine_p.p50),
                human(engine_p.p95),
            ],
            vec![
                "shell script (floor)".into(),
                human(script_p.p50),
                human(script_p.p95),
            ],
        ],
    ));
    body.push_str(&format!(
        "\nRatio of the medians: **{ratio:.2}**; it {} the goal of at most {GOAL_RATIO}.\n",
        if met { "meets" } else { "misses" }
    ));
    body.push_str(&breakdown(&steps, engine_p.p50));
    Ok((rows, body))
}

/// Where the engine's time goes: the median of each step across runs, and what is left
/// between the steps (API, workflow tasks, queueing, polling).
fn breakdown(runs: &[Vec<(String, u64)>], total: Duration) -> String {
    let names: Vec<String> = runs
        .first()
        .map(|steps| steps.iter().map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut sum = Duration::ZERO;
    for name in &names {
        let times: Vec<Duration> = runs
            .iter()
            .filter_map(|steps| steps.iter().find(|(n, _)| n == name))
            .map(|(_, ms)| Duration::from_millis(*ms))
            .collect();
        let p50 = Percentiles::of(&times).p50;
        sum += p50;
        rows.push(vec![format!("`{name}`"), human(p50)]);
    }
    rows.push(vec![
        "between the steps (API, workflow tasks, scheduling)".into(),
        human(total.saturating_sub(sum)),
    ]);
    format!(
        "\nWhere the task's time goes (median per activity, from the task's history; an \
         activity's time runs from its scheduling to its end):\n\n{}",
        table(&["step", "p50"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breakdown_leaves_the_rest_to_the_engine() {
        let runs = vec![
            vec![
                ("provision".to_string(), 100),
                ("run_agent".to_string(), 2000),
            ],
            vec![
                ("provision".to_string(), 300),
                ("run_agent".to_string(), 2200),
            ],
            vec![
                ("provision".to_string(), 200),
                ("run_agent".to_string(), 2100),
            ],
        ];
        let text = breakdown(&runs, Duration::from_millis(2500));
        assert!(text.contains("| `provision` | 200.0 ms |"), "{text}");
        assert!(text.contains("| `run_agent` | 2.10 s |"), "{text}");
        assert!(text.contains("scheduling) | 200.0 ms |"), "{text}");
    }
}
