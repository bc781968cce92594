//! `errand history ID`: the task's timeline (`GET /v1/tasks/{id}/history`) as a table, with
//! colours on a terminal, or the API's JSON.

use std::io::IsTerminal;

use serde_json::Value;

use crate::api_client::ApiClient;

pub async fn history(api: &ApiClient, id: &str, as_json: bool) -> anyhow::Result<()> {
    let history = api.get(&format!("/v1/tasks/{id}/history")).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&history)?);
    } else {
        let colours = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", render(&history, colours));
    }
    Ok(())
}

/// The whole table, one line per step, with retry causes and failures under their step.
pub fn render(history: &Value, colours: bool) -> String {
    let paint = Paint(colours);
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    // A JSON number's Display ignores widths: pad the integer.
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    let mut out = String::new();
    let workflow = &history["workflow"];
    out.push_str(&format!(
        "task {}  {} (round {})  workflow {}{}\n",
        text(&history["task_id"]),
        paint.outcome(&text(&history["status"])),
        number(&history["round"]),
        text(&workflow["status"]),
        workflow["duration_ms"]
            .as_u64()
            .map(|ms| format!(" in {}", duration(ms)))
            .unwrap_or_default(),
    ));
    if let Some(reason) = history["reason"].as_str() {
        out.push_str(&format!("reason: {reason}\n"));
    }
    out.push_str(&paint.dim(&format!(
        "{:>3}  {:<14} {:>5}  {:<10} {:<8} {:>8} {:>5}  {}\n",
        "#", "STEP", "ROUND", "OUTCOME", "UTC", "TOOK", "TRIES", "SUMMARY"
    )));
    for step in history["steps"].as_array().into_iter().flatten() {
        let outcome = text(&step["outcome"]);
        let attempts = step["attempts"].as_u64().unwrap_or(1);
        let started = step["started_at"]
            .as_str()
            .and_then(|t| t.get(11..19))
            .unwrap_or("");
        let took = step["duration_ms"]
            .as_u64()
            .map(duration)
            .unwrap_or_default();
        let tries = format!("{attempts:>5}");
        let line = format!(
            "{:>3}  {:<14} {:>5}  {} {:<8} {:>8} {}  {}\n",
            number(&step["seq"]),
            text(&step["step"]),
            number(&step["round"]),
            paint.outcome(&format!("{outcome:<10}")),
            started,
            took,
            if attempts > 1 {
                paint.yellow(&tries)
            } else {
                tries
            },
            text(&step["summary"]),
        );
        // Status bookkeeping is quieter than the steps that do the work.
        if step["step"] == "record_status" {
            out.push_str(&paint.dim(&line));
        } else {
            out.push_str(&line);
        }
        if let Some(cause) = step["retry_cause"].as_str() {
            out.push_str(&paint.yellow(&format!("{:>21}retried after: {cause}\n", "")));
        }
        if let Some(failure) = step["failure"].as_str() {
            out.push_str(&paint.red(&format!("{:>21}{outcome}: {failure}\n", "")));
        }
    }
    let decisions = history["policy_decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !decisions.is_empty() {
        out.push_str("\npolicy decisions\n");
        for d in &decisions {
            out.push_str(&format!(
                "  round {:<3} {:<15} {:<16} {}\n",
                number(&d["round"]),
                text(&d["rule"]),
                text(&d["decision"]),
                text(&d["detail"]),
            ));
        }
    }
    if let Some(ui) = history["temporal_ui"].as_str() {
        out.push_str(&format!("\nraw history: {ui}\n"));
    }
    out
}

/// `850ms`, `4.2s`, `3m05s`, `2h07m`.
pub fn duration(millis: u64) -> String {
    let secs = millis / 1000;
    match millis {
        0..1000 => format!("{millis}ms"),
        1000..60_000 => format!("{:.1}s", millis as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// ANSI colours, or plain text when off.
struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn outcome(&self, outcome: &str) -> String {
        match outcome.trim() {
            "completed" | "fired" | "accepted" | "merged" => self.wrap("32", outcome),
            "failed" | "timed_out" | "rejected" => self.wrap("31", outcome),
            "cancelled" | "closed" | "incomplete" => self.wrap("33", outcome),
            "running" | "scheduled" => self.wrap("36", outcome),
            _ => outcome.to_string(),
        }
    }

    fn yellow(&self, text: &str) -> String {
        self.wrap("33", text)
    }

    fn red(&self, text: &str) -> String {
        self.wrap("31", text)
    }

    fn dim(&self, text: &str) -> String {
        self.wrap("2", text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn history() -> Value {
        json!({
            "task_id": "t-1", "status": "merged", "round": 1, "reason": "approved by bob",
            "workflow": {"status": "completed", "duration_ms": 65000},
            "steps": [
                {"seq": 1, "step": "admit", "round": 0, "outcome": "completed",
                 "started_at": "2026-11-21T14:39:20.17Z", "duration_ms": 37, "attempts": 1,
                 "summary": "requested by alice"},
                {"seq": 2, "step": "run_agent", "round": 1, "outcome": "completed",
                 "started_at": "2026-11-21T14:39:21Z", "duration_ms": 4200, "attempts": 2,
                 "retry_cause": "activity Heartbeat timeout", "summary": "agent exited 0 after 1.1s"}
            ],
            "policy_decisions": [{"rule": "merge", "round": 1, "decision": "merged", "detail": "approved by bob"}],
            "temporal_ui": "http://ui/namespaces/default/workflows/t-1"
        })
    }

    #[test]
    fn a_plain_table_without_colours() {
        let text = render(&history(), false);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(
            text.starts_with("task t-1  merged (round 1)  workflow completed in 1m05s\n"),
            "{text}"
        );
        assert!(text.contains("  1  admit              0  completed  14:39:20     37ms     1  requested by alice\n"), "{text}");
        assert!(
            text.contains("retried after: activity Heartbeat timeout"),
            "{text}"
        );
        assert!(
            text.contains("  round 1   merge           merged           approved by bob"),
            "{text}"
        );
        assert!(text.contains("raw history: http://ui/"), "{text}");
    }

    #[test]
    fn colours_only_when_asked() {
        assert!(render(&history(), true).contains("\x1b[32mcompleted"));
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(4200), "4.2s");
        assert_eq!(duration(185_000), "3m05s");
        assert_eq!(duration(7_620_000), "2h07m");
    }
}
