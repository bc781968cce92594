//! Cron schedules end to end on `errand up`: a playbook's schedule is synced at start, fires
//! on trigger into a task that reaches review, pauses and resumes; an ad-hoc schedule whose
//! runs keep failing pauses itself after two of them, saying why.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use serde_json::{Value, json};
use tests::{Errand, FIX_ADD, Remote, UpOptions, agent};

const WAIT: Duration = Duration::from_secs(75);

/// A playbook that fixes the calculator in one round, scheduled nightly on `remote`.
fn write_playbook(dir: &Path, remote: &Remote, fix_agent: &str) -> anyhow::Result<()> {
    let yaml = format!(
        r#"name: calc-fix
description: Fix the calculator.
outcome: sh test.sh passes.
procedure: Make `sh test.sh` pass.
agent:
  kind: command
  command: ["{fix_agent}"]
verification:
  checks:
    - sh test.sh
budget:
  max_rounds: 1
  time_per_round_secs: 60
schedules:
  - cron: "0 3 * * *"
    timezone: Europe/Paris
    repo: {repo}
    pause_after_failures: 3
"#,
        repo = remote.path().display()
    );
    std::fs::write(dir.join("calc-fix.yaml"), yaml)?;
    Ok(())
}

async fn up_with_playbook(
    remote: &Remote,
    fix_agent: &str,
) -> anyhow::Result<(Errand, tempfile::TempDir)> {
    let playbooks = tempfile::tempdir()?;
    write_playbook(playbooks.path(), remote, fix_agent)?;
    let errand = Errand::up_with(UpOptions {
        playbooks_dir: Some(playbooks.path().to_path_buf()),
        ..Default::default()
    })
    .await?;
    Ok((errand, playbooks))
}

/// Polls the schedule until `ready` holds, within [`WAIT`]; the last answer in the error.
async fn wait_schedule(
    errand: &Errand,
    id: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = errand
            .call("GET", &format!("/v1/schedules/{id}"), None, None)
            .await?;
        if status == 200 && ready(&body) {
            return Ok(body);
        }
        if Instant::now() > deadline {
            bail!("schedule {id}: {what} not seen within {WAIT:?}; last answer {status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn run_status(schedule: &Value, i: usize) -> Option<&str> {
    schedule["recent_runs"][i]["status"].as_str()
}

#[tokio::test]
async fn a_playbook_schedule_fires_into_a_task_and_pauses_and_resumes() -> anyhow::Result<()> {
    let remote = Remote::calculator()?;
    let agents = tempfile::tempdir()?;
    let fix = agent(agents.path(), "fix.sh", FIX_ADD)?;
    let (errand, _playbooks) = up_with_playbook(&remote, &fix).await?;
    let id = "calc-fix-0";

    // Synced at start, with Temporal's preview of the next fires in its zone.
    let schedule = wait_schedule(&errand, id, "the synced schedule", |_| true).await?;
    ensure!(schedule["playbook"] == "calc-fix", "{schedule}");
    ensure!(
        schedule["cron"] == "0 3 * * *" && schedule["timezone"] == "Europe/Paris",
        "{schedule}"
    );
    ensure!(schedule["paused"] == false, "{schedule}");
    let next = schedule["next_runs"].as_array().map(Vec::len).unwrap_or(0);
    ensure!(next > 0, "no next runs: {schedule}");
    ensure!(
        schedule["next_runs"][0]
            .as_str()
            .unwrap_or("")
            .contains("T01:00:00Z")
            || schedule["next_runs"][0]
                .as_str()
                .unwrap_or("")
                .contains("T02:00:00Z"),
        "03:00 in Paris is 01:00 or 02:00 UTC: {schedule}"
    );
    let listed = errand.call("GET", "/v1/schedules", None, None).await?.1;
    ensure!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|s| s["id"] == id)),
        "{listed}"
    );

    // Trigger now: the fire's task is recorded by its workflow and reaches review.
    let (status, body) = errand
        .call("POST", &format!("/v1/schedules/{id}/trigger"), None, None)
        .await?;
    ensure!(status == 202, "trigger: {status} {body}");
    let schedule = wait_schedule(&errand, id, "a task awaiting review", |s| {
        run_status(s, 0) == Some("awaiting_review")
    })
    .await?;
    let task_id = schedule["recent_runs"][0]["task_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(task_id.starts_with("s-calc-fix-0-"), "{schedule}");
    let fire = schedule["recent_runs"][0]["workflow_id"]
        .as_str()
        .unwrap_or_default();
    errand.check_replay(fire, "scheduled_task_fires").await?;
    let task = errand.task(&task_id).await?;
    ensure!(task["requester"] == "schedule calc-fix-0", "{task}");
    ensure!(
        remote
            .show(&format!("errand/{task_id}"), "calc.sh")?
            .contains("a + b")
    );

    // Pause and resume show in the description.
    let (status, body) = errand
        .call("POST", &format!("/v1/schedules/{id}/pause"), None, None)
        .await?;
    ensure!(status == 200, "pause: {status} {body}");
    let schedule = wait_schedule(&errand, id, "paused", |s| s["paused"] == true).await?;
    ensure!(schedule["note"] == "paused through the API", "{schedule}");
    let (status, body) = errand
        .call("POST", &format!("/v1/schedules/{id}/resume"), None, None)
        .await?;
    ensure!(status == 200, "resume: {status} {body}");
    let schedule = wait_schedule(&errand, id, "resumed", |s| s["paused"] == false).await?;
    ensure!(
        schedule["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("resumed through the API")),
        "{schedule}"
    );

    // Deleted: gone from the API; its task runs on.
    let response = reqwest::Client::new()
        .delete(format!("{}/v1/schedules/{id}", errand.api))
        .send()
        .await?;
    ensure!(response.status() == 204, "delete: {}", response.status());
    let (status, _) = errand
        .call("GET", &format!("/v1/schedules/{id}"), None, None)
        .await?;
    ensure!(status == 404, "deleted schedule answers {status}");
    ensure!(errand.task(&task_id).await?["status"] == "awaiting_review");
    Ok(())
}

#[tokio::test]
async fn a_schedule_pauses_itself_after_two_failed_runs() -> anyhow::Result<()> {
    let remote = Remote::calculator()?;
    let agents = tempfile::tempdir()?;
    let fix = agent(agents.path(), "fix.sh", FIX_ADD)?;
    let idle = agent(agents.path(), "idle.sh", "echo 'changing nothing'")?;
    let (errand, _playbooks) = up_with_playbook(&remote, &fix).await?;
    let id = "failing";

    // Bad requests change nothing.
    let bad = json!({"id": id, "playbook": "calc-fix", "cron": "0 0 9 * * 1",
        "repo": remote.path().display().to_string()});
    let (status, body) = errand
        .call("POST", "/v1/schedules", Some(bad), None)
        .await?;
    ensure!(
        status == 422 && body["error"]["field"] == "cron",
        "{status} {body}"
    );
    let (status, _) = errand
        .call("GET", &format!("/v1/schedules/{id}"), None, None)
        .await?;
    ensure!(status == 404);

    let request = json!({
        "id": id,
        "playbook": "calc-fix",
        "cron": "@daily",
        "repo": remote.path().display().to_string(),
        "agent": {"kind": "command", "command": [idle]},
        "pause_after_failures": 2,
    });
    let (status, body) = errand
        .call("POST", "/v1/schedules", Some(request), None)
        .await?;
    ensure!(status == 201, "create: {status} {body}");
    ensure!(
        body["pause_after_failures"] == 2 && body["paused"] == false,
        "{body}"
    );

    for fire in 1..=2 {
        // The previous fire's task has ended, but its fire may not have finished yet: a trigger
        // then is skipped by the overlap policy, so trigger until the fire is taken.
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, body) = errand
                .call("POST", &format!("/v1/schedules/{id}/trigger"), None, None)
                .await?;
            ensure!(status == 202, "trigger {fire}: {status} {body}");
            let (_, schedule) = errand
                .call("GET", &format!("/v1/schedules/{id}"), None, None)
                .await?;
            if schedule["fires"] == fire || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        wait_schedule(
            &errand,
            id,
            &format!("fire {fire} ending incomplete"),
            |s| {
                s["recent_runs"].as_array().map(Vec::len) == Some(fire)
                    && run_status(s, 0) == Some("incomplete")
            },
        )
        .await?;
    }
    let schedule = wait_schedule(&errand, id, "the auto-pause", |s| s["paused"] == true).await?;
    let note = schedule["note"].as_str().unwrap_or_default();
    ensure!(
        note.starts_with("auto-paused after 2 consecutive failed or incomplete runs"),
        "{schedule}"
    );
    ensure!(schedule["consecutive_failures"] == 2, "{schedule}");

    // Resumed, it counts afresh: the old failures no longer pause it.
    let (status, _) = errand
        .call("POST", &format!("/v1/schedules/{id}/resume"), None, None)
        .await?;
    ensure!(status == 200);
    let schedule = wait_schedule(&errand, id, "resumed", |s| s["paused"] == false).await?;
    ensure!(schedule["consecutive_failures"] == 0, "{schedule}");
    tokio::time::sleep(Duration::from_secs(3)).await; // two watcher passes
    let (_, schedule) = errand
        .call("GET", &format!("/v1/schedules/{id}"), None, None)
        .await?;
    ensure!(
        schedule["paused"] == false,
        "re-paused after resume: {schedule}"
    );
    Ok(())
}
