//! What engineers read about a task, end to end: the timeline, the live event stream (and
//! resuming it), the report, metrics and statistics, the CLI's views of them; and a secret
//! planted in the worker's environment, printed by the agent, never showing in any of them,
//! in the raw Temporal history or in the logs.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{Errand, FIX_ADD, Remote, UpOptions, agent, calculator_task, errand_bin, free_port};

const RUN: Duration = Duration::from_secs(120);
/// In the worker's environment under a secret-looking name; not shaped like a known token,
/// so only the environment rule can mask it.
const ENV_SECRET: &str = "planted-env-secret-7c41d2";
/// Shaped like a GitHub token; in no environment, so only the shape rule can mask it.
const SHAPED_TOKEN: &str = "ghp_PlantedShapedToken0123456789abcdefXYZ";

#[tokio::test]
async fn a_task_reads_as_timeline_events_report_and_metrics() -> anyhow::Result<()> {
    let sdk_metrics = format!("127.0.0.1:{}", free_port());
    let errand = Errand::up_with(UpOptions {
        env: vec![
            ("ERRAND_TEST_SECRET_TOKEN".into(), ENV_SECRET.into()),
            ("ERRAND_LOG".into(), "info".into()),
            (
                "ERRAND__TEMPORAL__SDK_METRICS_LISTEN".into(),
                sdk_metrics.clone(),
            ),
        ],
        args: vec!["--log-format".into(), "json".into()],
        keep_logs: true,
        ..UpOptions::default()
    })
    .await?;
    let remote = Remote::calculator()?;
    // The agent leaks both secrets on its first line, works, and leaks them again last: one
    // line is caught by a heartbeat tick, the last one when the agent ends.
    let agent = agent(
        errand.data_dir.path(),
        "leaky.sh",
        &format!(
            r#"echo "using {ENV_SECRET} and {SHAPED_TOKEN}"; {FIX_ADD}; sleep 3; echo "done with {ENV_SECRET} {SHAPED_TOKEN}""#
        ),
    )?;
    let id = errand
        .post_ok("/v1/tasks", calculator_task(&remote, &agent, 3), None)
        .await?["id"]
        .as_str()
        .unwrap()
        .to_string();
    errand.wait_for_status(&id, "awaiting_review", RUN).await?;
    let mut seen: Vec<(&str, String)> = Vec::new();

    // Under review, the report is the review request's draft.
    let draft = errand
        .get_raw(&format!("/v1/tasks/{id}/report"), &[])
        .await?;
    assert_eq!(draft.status(), 200);
    assert_eq!(draft.headers()["errand-report"], "draft");
    assert!(
        draft.headers()["content-type"]
            .to_str()?
            .starts_with("text/markdown")
    );
    seen.push(("draft report", draft.text().await?));

    // A follower that starts now gets everything so far, then waits for the rest.
    let follower = {
        let response = errand
            .get_raw(&format!("/v1/tasks/{id}/events"), &[])
            .await?;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        tokio::spawn(async move { response.text().await })
    };
    let (status, body) = errand.review(&id, "approve", "bob", None).await?;
    assert!((200..300).contains(&status), "{status} {body}");
    errand.wait_for_status(&id, "merged", RUN).await?;
    let stream = tokio::time::timeout(RUN, follower).await???;
    seen.push(("live events", stream.clone()));
    let mut events = server_sent_events(&stream);
    // Once the task has ended, `end` closes the stream.
    let end = events.pop().unwrap();
    assert_eq!(
        (end.kind.as_str(), &end.data["status"]),
        ("end", &Value::from("merged"))
    );

    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "status")
        .map(|e| e.data["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "admitted",
            "provisioning",
            "running_agent",
            "verifying",
            "pushing",
            "awaiting_review",
            "merged"
        ]
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), &last.data["data"]["final"]),
        ("status", &Value::Bool(true))
    );
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "ids grow");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in ["agent_output", "checks", "review_requested", "review"] {
        assert!(kinds.contains(&kind), "no {kind} event: {kinds:?}");
    }
    let checks = events.iter().find(|e| e.kind == "checks").unwrap();
    assert_eq!(checks.data["data"]["passed"], true, "{}", checks.data);
    let review = events.iter().find(|e| e.kind == "review").unwrap();
    assert_eq!(review.data["data"]["decision"], "approve");
    // The agent's lines went out, masked.
    let lines: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "agent_output")
        .map(|e| e.data["data"]["line"].as_str().unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("done with [redacted] [redacted]")),
        "{lines:?}"
    );

    // Resuming after an event gives exactly the events after it.
    let after = events[2].id.to_string();
    let resumed = errand
        .get_raw(
            &format!("/v1/tasks/{id}/events"),
            &[("Last-Event-ID", &after)],
        )
        .await?
        .text()
        .await?;
    let resumed_ids: Vec<i64> = server_sent_events(&resumed)
        .iter()
        .filter(|e| e.kind != "end")
        .map(|e| e.id)
        .collect();
    let want: Vec<i64> = events[3..].iter().map(|e| e.id).collect();
    assert_eq!(resumed_ids, want);

    // The timeline: every step in order, each ended, with its attempts.
    let (status, history) = errand
        .call("GET", &format!("/v1/tasks/{id}/history"), None, None)
        .await?;
    assert_eq!(status, 200, "{history}");
    seen.push(("history", history.to_string()));
    assert_eq!(history["workflow"]["status"], "completed");
    let steps = history["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    let mut rest = names.iter();
    for want in [
        "admit",
        "provision",
        "run_agent",
        "verify",
        "push",
        "open_review",
        "timer",
        "review",
        "record_review",
        "merge",
        "finish",
    ] {
        assert!(
            rest.any(|n| *n == want),
            "{want} missing or out of order in {names:?}"
        );
    }
    for step in steps {
        assert!(step["attempts"].as_u64().unwrap() >= 1, "{step}");
        assert!(step["ended_at"].is_string(), "{step}");
        if step["kind"] == "activity" {
            assert_eq!(step["outcome"], "completed", "{step}");
        }
    }
    let agent_step = steps.iter().find(|s| s["step"] == "run_agent").unwrap();
    assert_eq!(agent_step["round"], 1);
    assert!(
        agent_step["duration_ms"].as_u64().unwrap() >= 3000,
        "{agent_step}"
    );
    let rules: Vec<(&str, &str)> = history["policy_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["decision"].as_str().unwrap()))
        .collect();
    assert_eq!(rules, [("review_gate", "approve"), ("merge", "merged")]);

    // The final report.
    let report = errand
        .get_raw(&format!("/v1/tasks/{id}/report"), &[])
        .await?;
    assert_eq!(report.status(), 200);
    assert_eq!(report.headers()["errand-report"], "final");
    let report = report.text().await?;
    assert!(
        report.starts_with(&format!("# Errand task `{id}`: merged")),
        "{report}"
    );
    seen.push(("report", report));

    // Metrics and statistics.
    let metrics = errand.get_raw("/metrics", &[]).await?.text().await?;
    for line in [
        r#"errand_tasks_started_total{playbook="ad-hoc"} 1"#,
        r#"errand_tasks_finished_total{outcome="merged",playbook="ad-hoc"} 1"#,
        r#"errand_task_rounds_count{playbook="ad-hoc"} 1"#,
        "errand_review_wait_seconds_count 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
    assert!(
        metrics.contains(r#"errand_step_duration_seconds_count{step="running_agent"} 1"#),
        "{metrics}"
    );
    // The worker's Temporal SDK metrics, on their own address.
    let sdk = reqwest::get(format!("http://{sdk_metrics}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        sdk.lines()
            .any(|l| l.starts_with("temporal_activity_execution_latency_count{")),
        "{sdk}"
    );
    let (status, stats) = errand.call("GET", "/v1/stats", None, None).await?;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["overall"]["tasks"], 1);
    assert_eq!(stats["overall"]["merged_share"], 1.0);
    assert!(
        stats["overall"]["median_time_to_first_output_ms"].is_u64(),
        "{stats}"
    );

    // The CLI's views.
    let table = cli(&errand, &["history", &id])?;
    assert!(
        table.contains("run_agent") && table.contains("merge"),
        "{table}"
    );
    assert!(
        !table.contains('\x1b'),
        "no colours off a terminal: {table}"
    );
    let logs = cli(&errand, &["logs", &id])?;
    assert!(
        logs.contains("merged (round 1)") && logs.contains("agent |"),
        "{logs}"
    );
    let followed = cli(&errand, &["logs", "-f", &id])?;
    assert_eq!(
        followed, logs,
        "following a finished task prints the same and ends"
    );
    seen.extend([("cli history", table), ("cli logs", logs)]);

    // The task as the API shows it, and the raw Temporal history, payloads decoded.
    seen.push(("task", errand.task(&id).await?.to_string()));
    seen.push(("raw history", raw_history(&errand, &id)?));

    // The process's own logs: JSON lines (--log-format json).
    // Every line written during a step carries the task, the round and the step.
    let log = errand.logs()?;
    let mut steps = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("a log line is not JSON ({e}): {line}"))?;
        assert!(parsed["level"].is_string(), "{line}");
        if parsed["span"]["name"] == "step" {
            assert_eq!(parsed["span"]["task_id"], id.as_str(), "{line}");
            steps.push((
                parsed["span"]["step"].as_str().unwrap_or("").to_string(),
                parsed["span"]["round"].as_u64(),
                parsed["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
    }
    assert!(
        steps.contains(&("run_agent".into(), Some(1), "step started".into()))
            && steps.contains(&("run_agent".into(), Some(1), "step finished".into())),
        "{steps:?}"
    );
    assert!(
        steps.contains(&("merge".into(), None, "step finished".into())),
        "{steps:?}"
    );
    seen.push(("logs", log));

    for (what, text) in &seen {
        for secret in [ENV_SECRET, SHAPED_TOKEN] {
            assert!(
                !text.contains(secret),
                "{what} shows the planted secret {secret}:\n{text}"
            );
        }
    }
    Ok(())
}

/// One server-sent event, its data parsed.
struct Sse {
    id: i64,
    kind: String,
    data: Value,
}

fn server_sent_events(stream: &str) -> Vec<Sse> {
    stream
        .split("\n\n")
        .filter_map(|block| {
            let mut event = Sse {
                id: 0,
                kind: String::new(),
                data: Value::Null,
            };
            for line in block.lines() {
                let (field, value) = line.split_once(':')?;
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => event.id = value.parse().ok()?,
                    "event" => event.kind = value.to_string(),
                    "data" => event.data = serde_json::from_str(value).ok()?,
                    _ => {}
                }
            }
            (!event.kind.is_empty()).then_some(event)
        })
        .collect()
}

/// Runs an `errand` client subcommand against this deployment; its stdout.
fn cli(errand: &Errand, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(errand_bin())
        .args(args)
        .args(["--api", &errand.api])
        .env("ERRAND_LOG", "warn")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "errand {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The task's history as Temporal keeps it, with every base64 payload decoded next to it.
fn raw_history(errand: &Errand, id: &str) -> anyhow::Result<String> {
    let file = errand.data_dir.path().join("raw-history.json");
    let status = Command::new(errand_bin())
        .args([
            "export-history",
            id,
            "--temporal-address",
            &errand.temporal_address,
            "--out",
        ])
        .arg(&file)
        .env("ERRAND_LOG", "warn")
        .status()?;
    anyhow::ensure!(status.success(), "export-history {id}: {status}");
    let json: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    let mut text = json.to_string();
    decoded_strings(&json, &mut text);
    Ok(text)
}

fn decoded_strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            if let Some(bytes) = base64_decode(s) {
                out.push('\n');
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        Value::Array(items) => items.iter().for_each(|v| decoded_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| decoded_strings(v, out)),
        _ => {}
    }
}

/// Standard base64 with padding; None for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return None;
    }
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

#[test]
fn base64_reads_payloads() {
    assert_eq!(base64_decode("anNvbi9wbGFpbg==").unwrap(), b"json/plain");
    assert_eq!(base64_decode("bm9uZQ"), None);
}
