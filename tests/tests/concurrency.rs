//! A playbook's `budget.max_running` under a burst: 20 triggers at once, at most 2 tasks of the
//! playbook running (provisioning to review) at any time, the others waiting for a slot of the
//! `PlaybookSlots` workflow; all 20 reach review. The worker itself could run 8 at once, so the
//! limit that holds is the playbook's.

use std::time::Duration;

use anyhow::ensure;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tests::{Errand, Remote, UpOptions, repo_root};

const TASKS: usize = 20;
const MAX_RUNNING: usize = 2;
const RUN: Duration = Duration::from_secs(300);

const PLAYBOOK: &str = "\
name: limited
description: A small change that may run only twice at a time.
outcome: The file exists.
procedure: Write the file.
verification:
  checks: ['true']
budget:
  max_rounds: 1
  time_per_round_secs: 60
  max_running: 2
";

#[tokio::test]
async fn a_burst_of_triggers_runs_at_most_max_running_at_once() -> anyhow::Result<()> {
    let playbooks = tempfile::tempdir()?;
    std::fs::copy(
        repo_root().join("playbooks/schema.json"),
        playbooks.path().join("schema.json"),
    )?;
    std::fs::write(playbooks.path().join("limited.yaml"), PLAYBOOK)?;
    let errand = Errand::up_with(UpOptions {
        playbooks_dir: Some(playbooks.path().to_owned()),
        env: vec![("ERRAND__WORKER__MAX_CONCURRENT_RUNS".into(), "8".into())],
        ..UpOptions::default()
    })
    .await?;
    let remote = Remote::calculator()?;
    let agent = errand.data_dir.path().join("slow-write.sh");
    std::fs::write(
        &agent,
        "#!/bin/sh\nsleep 2\necho \"$ERRAND_TASK_ID\" > slot.txt\n",
    )?;
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    // The burst: all triggers at once.
    let triggers = (0..TASKS).map(|_| {
        let run = json!({
            "repo": remote.path().display().to_string(),
            "agent": {"kind": "command", "command": [agent.display().to_string()]},
            "requester": "alice",
        });
        errand.post_ok("/v1/playbooks/limited/runs", run, None)
    });
    let ids: Vec<String> = futures::future::try_join_all(triggers)
        .await?
        .iter()
        .map(|answer| answer["id"].as_str().unwrap_or_default().to_string())
        .collect();

    let mut running = Vec::new();
    for id in &ids {
        errand.wait_for_status(id, "awaiting_review", RUN).await?;
        running.push(running_interval(&errand, id).await?);
    }
    let most = most_at_once(&running);
    ensure!(
        most <= MAX_RUNNING,
        "{most} tasks of the playbook ran at once (limit {MAX_RUNNING}): {running:?}"
    );
    // The measure can see overlap: the two slots were both in use.
    ensure!(
        most == MAX_RUNNING,
        "never {MAX_RUNNING} at once: {running:?}"
    );

    errand.check_replay(&ids[TASKS - 1], "playbook-slots-task").await?;
    errand.check_replay("slots-limited", "playbook-slots").await?;
    Ok(())
}

/// From the task's `provision` being scheduled to the end of its `open_review`: a part of the
/// time it held its slot.
async fn running_interval(
    errand: &Errand,
    id: &str,
) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let (status, history) = errand
        .call("GET", &format!("/v1/tasks/{id}/history"), None, None)
        .await?;
    ensure!(status == 200, "history of {id}: {status} {history}");
    let step = |name: &str| -> Option<&Value> {
        history["steps"]
            .as_array()?
            .iter()
            .find(|s| s["step"] == name)
    };
    let time = |name: &str, field: &str| -> anyhow::Result<DateTime<Utc>> {
        let text = step(name)
            .and_then(|s| s[field].as_str())
            .ok_or_else(|| anyhow::anyhow!("{id}: no {field} of {name} in {history}"))?;
        Ok(text.parse()?)
    };
    Ok((
        time("provision", "started_at")?,
        time("open_review", "ended_at")?,
    ))
}

/// The most intervals that overlap at one instant.
fn most_at_once(intervals: &[(DateTime<Utc>, DateTime<Utc>)]) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = intervals
        .iter()
        .flat_map(|(start, end)| [(*start, 1), (*end, -1)])
        .collect();
    // An end before a start at the same instant: touching intervals do not overlap.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}
