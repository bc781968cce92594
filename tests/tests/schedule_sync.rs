//! A playbook that drops a schedule, or is deleted, loses its Temporal Schedule at the next
//! sync (an API start), while the schedules it still declares and ad-hoc ones stay; an ad-hoc
//! schedule cannot take a playbook schedule's id.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use serde_json::json;
use tests::{Errand, Proc, Remote, UpOptions, errand_bin, free_port};

const WAIT: Duration = Duration::from_secs(75);

fn playbook(name: &str, remote: &Remote, crons: &[&str]) -> String {
    let schedules: String = crons
        .iter()
        .map(|cron| {
            format!(
                "  - cron: \"{cron}\"\n    repo: {}\n",
                remote.path().display()
            )
        })
        .collect();
    format!(
        r#"name: {name}
description: Fix the calculator.
outcome: sh test.sh passes.
procedure: Make `sh test.sh` pass.
agent:
  kind: command
  command: ["/bin/true"]
verification:
  checks:
    - sh test.sh
budget:
  max_rounds: 1
  time_per_round_secs: 60
schedules:
{schedules}"#
    )
}

/// Polls `GET /v1/schedules/{id}` until it answers `status`.
async fn wait_status(errand: &Errand, id: &str, status: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let (got, body) = errand
            .call("GET", &format!("/v1/schedules/{id}"), None, None)
            .await?;
        if got == status {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("schedule {id}: never answered {status}; last {got} {body}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Another API process on the same Temporal and database: its start syncs the playbooks.
async fn start_api(errand: &Errand, playbooks: &Path) -> anyhow::Result<Proc> {
    let data_dir = tempfile::tempdir()?;
    let port = free_port();
    let database = format!(
        "sqlite://{}?mode=rwc",
        errand.data_dir.path().join("errand.db").display()
    );
    let proc = Proc::spawn(
        Command::new(errand_bin())
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--playbooks-dir")
            .arg(playbooks)
            .env("ERRAND_LOG", "warn")
            .args([
                "api",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--temporal-address",
                &errand.temporal_address,
                "--database-url",
                &database,
            ]),
    )?;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    while !http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        ensure!(
            Instant::now() < deadline,
            "the second API never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Keep the directory as long as the process.
    std::mem::forget(data_dir);
    Ok(proc)
}

#[tokio::test]
async fn dropped_playbook_schedules_are_deleted_at_sync() -> anyhow::Result<()> {
    let remote = Remote::calculator()?;
    let playbooks = tempfile::tempdir()?;
    let dir = playbooks.path();
    std::fs::write(
        dir.join("calc-fix.yaml"),
        playbook("calc-fix", &remote, &["0 3 * * *", "0 4 * * *"]),
    )?;
    std::fs::write(
        dir.join("calc-other.yaml"),
        playbook("calc-other", &remote, &["0 5 * * *"]),
    )?;
    let errand = Errand::up_with(UpOptions {
        playbooks_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
    .await?;
    for id in ["calc-fix-0", "calc-fix-1", "calc-other-0"] {
        wait_status(&errand, id, 200).await?;
    }

    // Ad-hoc schedules: never with a playbook schedule's id; with another, kept by the sync.
    let repo = remote.path().display().to_string();
    let reserved =
        json!({"id": "calc-fix-7", "playbook": "calc-fix", "cron": "0 6 * * *", "repo": repo});
    let (status, body) = errand
        .call("POST", "/v1/schedules", Some(reserved), None)
        .await?;
    ensure!(
        status == 422 && body["error"]["field"] == "id",
        "{status} {body}"
    );
    let ad_hoc =
        json!({"id": "calc-nightly", "playbook": "calc-fix", "cron": "0 6 * * *", "repo": repo});
    let (status, body) = errand
        .call("POST", "/v1/schedules", Some(ad_hoc), None)
        .await?;
    ensure!(status == 201 || status == 200, "{status} {body}");

    // calc-fix drops its second schedule; calc-other is deleted.
    std::fs::write(
        dir.join("calc-fix.yaml"),
        playbook("calc-fix", &remote, &["0 3 * * *"]),
    )?;
    std::fs::remove_file(dir.join("calc-other.yaml"))?;
    let _api = start_api(&errand, dir).await?;
    wait_status(&errand, "calc-fix-1", 404).await?;
    wait_status(&errand, "calc-other-0", 404).await?;
    wait_status(&errand, "calc-fix-0", 200).await?;
    wait_status(&errand, "calc-nightly", 200).await?;
    let (_, listed) = errand.call("GET", "/v1/schedules", None, None).await?;
    let mut ids: Vec<&str> = listed
        .as_array()
        .map(|l| l.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    ids.sort();
    ensure!(ids == ["calc-fix-0", "calc-nightly"], "{listed}");
    Ok(())
}
