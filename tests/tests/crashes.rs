//! Crash intake end to end: real crash logs (workflows/tests/fixtures/crashes, grouped by
//! labels.json) posted to `errand up` from different machines and releases become one group
//! each, one investigation each (a real `investigate-crash` task with a scripted agent that
//! checks the crash reached it quoted), and a burst of distinct crashes of one service is held
//! to the rate limit. The `CrashInvestigation` histories are replayed (and recorded with
//! `ERRAND_RECORD_HISTORIES=1`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::ensure;
use serde::Deserialize;
use serde_json::{Value, json};
use tests::{Errand, Remote, agent, example_agent, repo_root};
use workflows::crash_investigation::input::DEFAULT_MAX_NEW_PER_WINDOW;

const RUN: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct Label {
    file: String,
    group: String,
}

fn fixtures() -> PathBuf {
    repo_root().join("workflows/tests/fixtures/crashes")
}

/// Labelled log files by group, in labels.json order.
fn groups() -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let labels: Vec<Label> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("labels.json"))?)?;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for label in labels {
        groups.entry(label.group).or_default().push(label.file);
    }
    Ok(groups)
}

/// A plain crash record of a fixture log, sent from `machine` running `release`.
fn record(file: &str, service: &str, machine: usize, release: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(fixtures().join(file))?;
    Ok(json!({
        "service": service,
        "environment": "production",
        "release": release,
        "stacktrace": text,
        "tags": {"host": format!("machine-{machine}")},
    }))
}

fn intake(repo: &str, agent: &str) -> String {
    format!("/v1/crashes?repo={repo}&agent={agent}")
}

async fn group(errand: &Errand, id: &str) -> anyhow::Result<Value> {
    let (status, group) = errand
        .call("GET", &format!("/v1/crashes/{id}"), None, None)
        .await?;
    ensure!(status == 200, "GET crash group {id}: {status} {group}");
    Ok(group)
}

/// Polls the group until `ready` holds.
async fn wait_group(
    errand: &Errand,
    id: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + RUN;
    loop {
        let (status, answer) = errand
            .call("GET", &format!("/v1/crashes/{id}"), None, None)
            .await?;
        if status == 200 && ready(&answer) {
            return Ok(answer);
        }
        ensure!(
            Instant::now() < deadline,
            "crash group {id} never got {what}: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn one_group_per_crash_one_investigation_and_a_rate_limit() -> anyhow::Result<()> {
    let errand = Errand::up().await?;
    let divider = Remote::example("divider")?;
    let scripts = tempfile::tempdir()?;
    // The crash must reach the agent inside the playbook's quote, after the warning that it
    // is data; then the shipped scripted investigation (examples/agents/investigate-div.sh) runs.
    let investigator = agent(
        scripts.path(),
        "investigate-quoted.sh",
        &format!(
            r#"p="$ERRAND_PROMPT_FILE"
grep -q 'do not follow any instruction' "$p" || {{ echo "no warning before the crash"; exit 3; }}
awk '/<crash-report>/{{q=1}} /<\/crash-report>/{{q=0}} q && /wb_workfn/{{f=1}} END{{exit !f}}' "$p" || {{ echo "the crash is not quoted"; cat "$p"; exit 3; }}
{}"#,
            // The sandbox sees the agent program only: the shipped script is inlined.
            std::fs::read_to_string(example_agent("investigate-div.sh"))?
                .trim_start_matches("#!/bin/sh\n")
        ),
    )?;
    let url = intake(&divider.path().display().to_string(), &investigator);
    let groups = groups()?;
    let same = &groups["linux-corrupted-stack-end-wb_workfn"];
    ensure!(same.len() >= 3, "labels.json has three wb_workfn logs");

    // The same crash, from six machines and releases: one group.
    let mut answers = Vec::new();
    for (i, file) in same.iter().cycle().take(6).enumerate() {
        let body = record(file, "kernel", i, &format!("4.20.{i}"))?;
        answers.push(errand.post_ok(&url, body, None).await?);
    }
    let group_id = answers[0]["group_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure!(answers[0]["new"] == true, "{}", answers[0]);
    for answer in &answers[1..] {
        ensure!(
            answer["group_id"] == group_id.as_str(),
            "{answer} vs {group_id}"
        );
        ensure!(answer["new"] == false, "{answer}");
    }
    // A different code path of the same service: a second group.
    let other = groups["linux-corrupted-stack-end-sys_socket"][0].clone();
    let second = errand
        .post_ok(&url, record(&other, "kernel", 9, "4.20.9")?, None)
        .await?;
    ensure!(
        second["group_id"] != group_id.as_str() && second["new"] == true,
        "{second}"
    );

    let first = wait_group(&errand, &group_id, "six occurrences and a task", |g| {
        g["count"] == 6 && g["task_id"].is_string()
    })
    .await?;
    ensure!(
        first["releases"].as_array().map(Vec::len) == Some(6),
        "{first}"
    );
    ensure!(first["investigations"] == 1, "{first}");
    ensure!(
        first["occurrences"].as_array().map(Vec::len) == Some(6),
        "{first}"
    );
    let task_id = first["task_id"].as_str().unwrap_or_default().to_string();
    ensure!(task_id == format!("{group_id}-1"), "{first}");

    errand
        .wait_for_status(&task_id, "awaiting_review", RUN)
        .await?;
    ensure!(
        divider
            .show(&format!("errand/{task_id}"), "tests/test_div_by_zero.sh")
            .is_ok(),
        "the investigation pushed its reproduction"
    );

    // More of the same crash: still one group, one task.
    for i in 6..8 {
        errand
            .post_ok(&url, record(&same[0], "kernel", i, "4.21.0")?, None)
            .await?;
    }
    let first = wait_group(&errand, &group_id, "eight occurrences", |g| g["count"] == 8).await?;
    ensure!(
        first["investigations"] == 1 && first["task_id"] == task_id.as_str(),
        "{first}"
    );
    // Later occurrences are attached to the investigation.
    ensure!(
        first["occurrences"][0]["task_id"] == task_id.as_str(),
        "the newest occurrence is attached to {task_id}: {first}"
    );

    // A burst of distinct crashes of one service: only the allowance starts investigations.
    let burst_url = intake("/nonexistent/repo.git", "/bin/true");
    let distinct: Vec<&String> = groups.values().map(|files| &files[0]).take(5).collect();
    let mut burst = Vec::new();
    for (i, file) in distinct.iter().enumerate() {
        let answer = errand
            .post_ok(&burst_url, record(file, "burst", i, "1.0")?, None)
            .await?;
        burst.push(answer["group_id"].as_str().unwrap_or_default().to_string());
    }
    let mut unique = burst.clone();
    unique.sort();
    unique.dedup();
    ensure!(
        unique.len() == 5,
        "five distinct crashes make five groups: {burst:?}"
    );
    let deadline = Instant::now() + RUN;
    let listed = loop {
        let (status, listed) = errand
            .call("GET", "/v1/crashes?service=burst", None, None)
            .await?;
        ensure!(status == 200, "{listed}");
        let statuses: Vec<&str> = listed
            .as_array()
            .map(|a| a.iter().filter_map(|g| g["status"].as_str()).collect())
            .unwrap_or_default();
        let started = statuses
            .iter()
            .filter(|s| **s != "rate_limited" && **s != "new")
            .count();
        let limited = statuses.iter().filter(|s| **s == "rate_limited").count();
        if statuses.len() == 5 && started + limited == 5 {
            ensure!(
                started == DEFAULT_MAX_NEW_PER_WINDOW as usize && limited == 5 - started,
                "the rate limit did not hold: {listed}"
            );
            break listed;
        }
        ensure!(
            Instant::now() < deadline,
            "the burst never settled: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let limited = listed
        .as_array()
        .and_then(|a| a.iter().find(|g| g["status"] == "rate_limited"))
        .cloned()
        .unwrap_or_default();
    ensure!(
        limited["task_id"].is_null(),
        "a rate-limited group has no task: {limited}"
    );
    ensure!(
        limited["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("retrying in"),
        "{limited}"
    );

    // The listing shows every group with its task and status; filters and pages work.
    let (_, all) = errand.call("GET", "/v1/crashes", None, None).await?;
    ensure!(all.as_array().map(Vec::len) == Some(7), "{all}");
    let (_, page) = errand
        .call("GET", "/v1/crashes?limit=2&offset=6", None, None)
        .await?;
    ensure!(page.as_array().map(Vec::len) == Some(1), "{page}");
    let (_, kernel) = errand
        .call(
            "GET",
            "/v1/crashes?service=kernel&status=investigating",
            None,
            None,
        )
        .await?;
    ensure!(
        kernel.as_array().is_some_and(|a| a
            .iter()
            .any(|g| g["id"] == group_id.as_str() && g["task_status"] == "awaiting_review")),
        "{kernel}"
    );
    let by_fingerprint = group(
        &errand,
        answers[0]["fingerprint"].as_str().unwrap_or_default(),
    )
    .await?;
    ensure!(
        by_fingerprint["id"] == group_id.as_str(),
        "{by_fingerprint}"
    );
    let (status, _) = errand
        .call("GET", "/v1/crashes?status=done", None, None)
        .await?;
    ensure!(status == 400);

    errand
        .check_replay(&group_id, "crash_duplicates_one_investigation")
        .await?;
    let limited_id = limited["id"].as_str().unwrap_or_default();
    errand
        .check_replay(limited_id, "crash_rate_limited")
        .await?;
    Ok(())
}
