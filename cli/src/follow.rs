//! A task's events as lines, following the API's server-sent events, with a progress line
//! (step, round, elapsed) on a terminal: `errand logs [-f] ID`, and `errand run --watch`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api_client::ApiClient;
use crate::sse::SseReader;

/// The API's last message on a task's stream once the task has ended.
const END_EVENT: &str = "end";
/// Reconnections after the stream broke before the task ended.
const RECONNECTS: u32 = 5;
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn logs(api: &ApiClient, id: &str, follow: bool) -> anyhow::Result<()> {
    stream(api, id, follow, |_| false).await
}

/// Prints the task's events until it ends, or (when following) until its status meets `stop`.
pub async fn stream(
    api: &ApiClient,
    id: &str,
    follow: bool,
    stop: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let task = api.get(&format!("/v1/tasks/{id}")).await?;
    let mut progress = Progress {
        started: task["created_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        step: task["status"].as_str().unwrap_or("?").to_string(),
        round: task["round"].as_u64().unwrap_or(0),
        ended: false,
        shown: false,
        enabled: std::io::stdout().is_terminal(),
    };
    let mut last_id: Option<String> = None;
    let mut reconnects = 0;
    loop {
        let path = format!("/v1/tasks/{id}/events?follow={follow}");
        let resume: Vec<(&str, String)> = last_id
            .iter()
            .map(|id| ("Last-Event-ID", id.clone()))
            .collect();
        let mut response = api.get_streaming(&path, &resume).await?;
        let mut reader = SseReader::default();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                chunk = response.chunk() => {
                    let Some(chunk) = chunk.context("the event stream broke")? else {
                        break;
                    };
                    for event in reader.push(&chunk) {
                        if event.event == END_EVENT {
                            progress.clear();
                            return Ok(());
                        }
                        last_id = event.id.clone().or(last_id);
                        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                        progress.clear();
                        if let Some(line) = describe(&event.event, &data) {
                            println!("{line}");
                        }
                        if event.event == "status" {
                            let status = &data["data"];
                            progress.step = status["status"].as_str().unwrap_or("?").to_string();
                            progress.round = status["round"].as_u64().unwrap_or(progress.round);
                            progress.ended = status["final"] == true;
                            if stop(&progress.step) {
                                progress.clear();
                                return Ok(());
                            }
                        }
                        progress.show();
                    }
                }
                _ = tick.tick() => progress.show(),
            }
        }
        progress.clear();
        if !follow {
            return Ok(());
        }
        // A followed stream closes with `end` once the task has ended: this one broke.
        reconnects += 1;
        anyhow::ensure!(
            reconnects <= RECONNECTS,
            "the event stream of task {id} kept breaking"
        );
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}

/// One line per event; None for kinds this version does not know.
fn describe(kind: &str, event: &Value) -> Option<String> {
    let at = event["at"]
        .as_str()
        .and_then(|t| t.get(11..19))
        .unwrap_or("--:--:--");
    let data = &event["data"];
    let round = data["round"].as_u64().unwrap_or(0);
    let text = |key: &str| data[key].as_str().unwrap_or("");
    let line = match kind {
        "status" => {
            let reason = data["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            format!("{} (round {round}){reason}", text("status"))
        }
        "agent_output" => format!("  agent | {}", text("line")),
        "checks" => {
            let checks = data["checks"].as_array().cloned().unwrap_or_default();
            let failing: Vec<&str> = checks
                .iter()
                .filter(|c| c["passed"] != true)
                .filter_map(|c| c["command"].as_str())
                .collect();
            let verdict = format!(
                "checks of round {round}: {}/{} passed",
                checks.len() - failing.len(),
                checks.len()
            );
            if failing.is_empty() {
                verdict
            } else {
                format!("{verdict}; failing: {}", failing.join(", "))
            }
        }
        "review_requested" => format!(
            "review requested: {} at {} (round {round})",
            text("branch"),
            text("commit").get(..10).unwrap_or(text("commit"))
        ),
        "review" => {
            let comment = data["comment"]
                .as_str()
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            format!(
                "review: {} by {}{comment}",
                text("decision"),
                text("reviewer")
            )
        }
        _ => return None,
    };
    Some(format!("{at}  {line}"))
}

/// The line at the bottom of a terminal: where the task is and for how long it has run.
struct Progress {
    started: Option<DateTime<Utc>>,
    step: String,
    round: u64,
    /// The task reached a final status: nothing to show progress of.
    ended: bool,
    shown: bool,
    enabled: bool,
}

impl Progress {
    fn show(&mut self) {
        if !self.enabled || self.ended {
            return;
        }
        let elapsed = self
            .started
            .map(|s| (Utc::now() - s).num_seconds().max(0))
            .unwrap_or(0);
        print!(
            "\r\x1b[2K> {} | round {} | {}",
            self.step,
            self.round,
            crate::timeline::duration(u64::try_from(elapsed).unwrap_or(0) * 1000)
        );
        let _ = std::io::stdout().flush();
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_kind_reads_as_one_line() {
        let at = "2026-11-21T14:39:20.1Z";
        let cases = [
            (
                "status",
                json!({"status": "incomplete", "round": 2, "reason": "round_limit: x"}),
                "14:39:20  incomplete (round 2): round_limit: x",
            ),
            (
                "agent_output",
                json!({"round": 1, "line": "compiling"}),
                "14:39:20    agent | compiling",
            ),
            (
                "checks",
                json!({"round": 1, "checks": [{"command": "sh test.sh", "passed": false}, {"command": "true", "passed": true}]}),
                "14:39:20  checks of round 1: 1/2 passed; failing: sh test.sh",
            ),
            (
                "review",
                json!({"round": 1, "decision": "approve", "reviewer": "bob", "comment": null}),
                "14:39:20  review: approve by bob",
            ),
        ];
        for (kind, data, want) in cases {
            let event = json!({"id": 1, "at": at, "kind": kind, "data": data});
            assert_eq!(describe(kind, &event).as_deref(), Some(want), "{kind}");
        }
        assert_eq!(describe("cost", &json!({})), None);
    }
}
