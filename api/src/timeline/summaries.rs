//! One line per step for people, read from the step's JSON input and result.
//!
//! Payloads are read as loose JSON, never as the contract types: a history recorded by another
//! version still reads, and a field that is missing just leaves the line shorter. Output tails
//! are never quoted here.

use serde_json::Value;

/// What the step was asked to do, from its input.
pub fn scheduled(activity: &str, input: &Value) -> Option<String> {
    let text = |key: &str| input[key].as_str();
    match activity {
        "admit" => text("requester").map(|who| format!("requested by {who}")),
        "record_status" => text("status").map(|status| match text("reason") {
            Some(reason) => format!("{status}: {reason}"),
            None => status.to_string(),
        }),
        "provision" => Some(format!(
            "{} at {}",
            text("repo").unwrap_or("?"),
            text("base").unwrap_or("?")
        )),
        "run_agent" => input["round"].as_u64().map(|round| {
            if input["feedback"].is_string() {
                format!("round {round}, with feedback")
            } else {
                format!("round {round}")
            }
        }),
        "verify" => input["checks"]
            .as_array()
            .map(|checks| format!("{} check(s)", checks.len())),
        "push" => text("message").map(str::to_string),
        "open_review" => text("commit").map(|commit| format!("review of {}", short(commit))),
        "record_review" => decision(&input["decision"]),
        "merge" => Some(format!(
            "{} into {} for {}",
            short(text("commit").unwrap_or("?")),
            text("base").unwrap_or("?"),
            text("merged_by").unwrap_or("?")
        )),
        "finish" => text("status").map(|status| match text("reason") {
            Some(reason) => format!("{status}: {reason}"),
            None => status.to_string(),
        }),
        _ => None,
    }
}

/// What came of it, from its result; None keeps the scheduled line.
pub fn completed(activity: &str, input: &Value, result: &Value) -> Option<String> {
    match activity {
        "provision" => result["base_commit"].as_str().map(|commit| {
            format!(
                "checked out {} at {}",
                input["base"].as_str().unwrap_or("?"),
                short(commit)
            )
        }),
        "run_agent" => agent_run(result),
        "verify" => checks(result),
        "push" => {
            let commit = result["commit"].as_str()?;
            let files = result["changed_files"].as_u64().unwrap_or(0);
            Some(format!(
                "pushed {} to {} ({files} file(s) changed)",
                short(commit),
                result["branch"].as_str().unwrap_or("?")
            ))
        }
        "merge" => result["base_commit"].as_str().map(|commit| {
            format!(
                "merged into {}, now at {}",
                input["base"].as_str().unwrap_or("?"),
                short(commit)
            )
        }),
        _ => None,
    }
}

/// A delivered update, by name.
pub fn update(name: &str, args: &Value) -> Option<String> {
    match name {
        "review" => decision(args),
        _ => None,
    }
}

/// `approve by bob`, `request_changes by bob: handle negatives`.
fn decision(decision: &Value) -> Option<String> {
    let verdict = decision["decision"].as_str()?;
    let reviewer = decision["reviewer"].as_str().unwrap_or("?");
    Some(
        match decision["comment"].as_str().filter(|c| !c.is_empty()) {
            Some(comment) => format!("{verdict} by {reviewer}: {}", first_line(comment)),
            None => format!("{verdict} by {reviewer}"),
        },
    )
}

fn agent_run(run: &Value) -> Option<String> {
    let seconds = run["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let exit = &run["exit"];
    let how = if exit.as_str() == Some("timed_out") || exit.get("timed_out").is_some() {
        "stopped at its time budget".to_string()
    } else {
        match exit["exited"]["code"].as_i64() {
            Some(code) => format!("exited {code}"),
            None if exit.get("exited").is_some() => "killed by a signal".to_string(),
            None => return None,
        }
    };
    Some(format!("agent {how} after {seconds:.1}s"))
}

fn checks(results: &Value) -> Option<String> {
    let results = results.as_array()?;
    let passed = |c: &&Value| c["exit_code"].as_i64() == Some(0) && c["timed_out"] != true;
    let failing: Vec<&str> = results
        .iter()
        .filter(|c| !passed(c))
        .filter_map(|c| c["command"].as_str())
        .collect();
    let verdict = format!(
        "{}/{} check(s) passed",
        results.len() - failing.len(),
        results.len()
    );
    Some(if failing.is_empty() {
        verdict
    } else {
        format!("{verdict}; failing: {}", failing.join(", "))
    })
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn agent_runs_read_every_exit() {
        let cases = [
            (
                json!({"exit": {"exited": {"code": 0}}, "duration_ms": 1500}),
                "agent exited 0 after 1.5s",
            ),
            (
                json!({"exit": {"exited": {"code": null}}, "duration_ms": 0}),
                "agent killed by a signal after 0.0s",
            ),
            (
                json!({"exit": "timed_out", "duration_ms": 60000}),
                "agent stopped at its time budget after 60.0s",
            ),
        ];
        for (result, want) in cases {
            assert_eq!(
                completed("run_agent", &Value::Null, &result).as_deref(),
                Some(want)
            );
        }
    }

    #[test]
    fn checks_name_the_failing_commands() {
        let result = json!([
            {"command": "sh test.sh", "exit_code": 1, "timed_out": false},
            {"command": "cargo fmt --check", "exit_code": 0, "timed_out": false},
            {"command": "slow", "exit_code": null, "timed_out": true},
        ]);
        assert_eq!(
            completed("verify", &Value::Null, &result).as_deref(),
            Some("1/3 check(s) passed; failing: sh test.sh, slow")
        );
    }

    #[test]
    fn reviews_say_who_decided_what() {
        let args = json!({"decision": "request_changes", "reviewer": "bob", "comment": "handle negatives\nand zero"});
        assert_eq!(
            update("review", &args).as_deref(),
            Some("request_changes by bob: handle negatives")
        );
        let input = json!({"task_id": "t", "round": 1, "decision": {"decision": "approve", "reviewer": "bob", "comment": null}});
        assert_eq!(
            scheduled("record_review", &input).as_deref(),
            Some("approve by bob")
        );
    }

    #[test]
    fn unknown_steps_and_shapes_have_no_line() {
        assert_eq!(scheduled("launch_rocket", &json!({})), None);
        assert_eq!(
            completed("run_agent", &Value::Null, &json!({"exit": 3})),
            None
        );
        assert_eq!(update("pause", &json!({})), None);
    }
}
