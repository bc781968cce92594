//! The rules that decided a task's course, read from the store: each round's postcondition
//! findings and red->green proofs, each review decision at the gate, and for a task that
//! ended, the rule that ended it (a stop rule, the merge, a cancel, a failure). Findings and
//! proofs are read from the checks the workflow records for them (`policy: kind (path)`,
//! `red-green: command`); endings from the recorded reason, whose `rule: detail` form the
//! workflow writes for every stop rule.

use store::TaskRecord;
use workflows::TaskStatus;
use workflows::contracts::CheckResult;

use crate::dto::PolicyDecision;

/// In round order; within a round, verification before the gate before the ending.
pub fn from_record(record: &TaskRecord) -> Vec<PolicyDecision> {
    let mut decisions: Vec<PolicyDecision> = record
        .rounds
        .iter()
        .flat_map(|r| r.checks.iter().filter_map(|c| from_check(r.round, c)))
        .collect();
    decisions.extend(record.decisions.iter().map(|d| PolicyDecision {
        rule: "review_gate".to_string(),
        round: d.round,
        decision: d.decision.as_str().to_string(),
        detail: Some(match &d.comment {
            Some(comment) => format!("by {}: {comment}", d.reviewer),
            None => format!("by {}", d.reviewer),
        }),
        at: Some(d.created_at),
    }));
    let task = &record.task;
    let ending = |rule: &str, decision: &str| PolicyDecision {
        rule: rule.to_string(),
        round: task.round,
        decision: decision.to_string(),
        detail: task.reason.clone(),
        at: Some(task.updated_at),
    };
    match task.status {
        TaskStatus::Merged => decisions.push(ending("merge", "merged")),
        // Approved under a merge policy that leaves the merge to a person.
        TaskStatus::Approved => decisions.push(ending("merge_policy", "not_merged")),
        TaskStatus::Cancelled => decisions.push(ending("cancel", "cancelled")),
        TaskStatus::Failed => decisions.push(ending("failure", "failed")),
        TaskStatus::Incomplete => {
            let rule = task
                .reason
                .as_deref()
                .and_then(stop_rule)
                .unwrap_or("stop_rule");
            decisions.push(ending(rule, "stop"));
        }
        // A rejection is the gate's decision, listed above.
        _ => {}
    }
    // Stable: the order above holds within a round.
    decisions.sort_by_key(|d| d.round);
    decisions
}

/// A postcondition finding or a red->green proof recorded as one of a round's checks.
fn from_check(round: u32, check: &CheckResult) -> Option<PolicyDecision> {
    let (rule, decision, subject) = if let Some(finding) = check.command.strip_prefix("policy: ") {
        ("postcondition", "finding", finding)
    } else if let Some(command) = check.command.strip_prefix("red-green: ") {
        let proven = if check.passed() {
            "proven"
        } else {
            "not_proven"
        };
        ("red_green", proven, command)
    } else {
        return None;
    };
    let detail = match check.output_tail.trim() {
        "" => subject.to_string(),
        message => format!("{subject}: {message}"),
    };
    Some(PolicyDecision {
        rule: rule.to_string(),
        round,
        decision: decision.to_string(),
        detail: Some(detail),
        at: None,
    })
}

/// `round_limit` of `round_limit: checks still failing after 3 round(s)`.
fn stop_rule(reason: &str) -> Option<&str> {
    let (rule, _) = reason.split_once(':')?;
    let is_identifier = !rule.is_empty()
        && rule
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    is_identifier.then_some(rule)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use store::{ReviewDecisionRow, TaskRow};
    use workflows::ReviewVerdict;

    use super::*;

    fn record(status: TaskStatus, reason: Option<&str>) -> TaskRecord {
        let now = Utc::now();
        TaskRecord {
            task: TaskRow {
                id: "t1".into(),
                status,
                round: 2,
                repo: "/r".into(),
                base: "main".into(),
                branch: "errand/t1".into(),
                requester: "alice".into(),
                instructions: "fix".into(),
                playbook: None,
                reason: reason.map(str::to_string),
                report: None,
                created_at: now,
                updated_at: now,
            },
            rounds: Vec::new(),
            review: None,
            decisions: vec![ReviewDecisionRow {
                round: 1,
                decision: ReviewVerdict::RequestChanges,
                reviewer: "bob".into(),
                comment: Some("more tests".into()),
                created_at: now,
            }],
        }
    }

    fn rules(decisions: &[PolicyDecision]) -> Vec<(&str, u32, &str)> {
        decisions
            .iter()
            .map(|d| (d.rule.as_str(), d.round, d.decision.as_str()))
            .collect()
    }

    #[test]
    fn gate_decisions_then_the_rule_that_ended_the_task() {
        let incomplete = from_record(&record(
            TaskStatus::Incomplete,
            Some("round_limit: changes requested after the last of 2 round(s)"),
        ));
        assert_eq!(
            rules(&incomplete),
            [
                ("review_gate", 1, "request_changes"),
                ("round_limit", 2, "stop")
            ]
        );
        assert_eq!(incomplete[0].detail.as_deref(), Some("by bob: more tests"));

        let merged = from_record(&record(TaskStatus::Merged, Some("approved by carol")));
        assert_eq!(rules(&merged)[1], ("merge", 2, "merged"));
        let running = from_record(&record(TaskStatus::RunningAgent, None));
        assert_eq!(running.len(), 1);
        let odd = from_record(&record(TaskStatus::Incomplete, Some("Stopped: who knows")));
        assert_eq!(rules(&odd)[1], ("stop_rule", 2, "stop"));
    }

    #[test]
    fn findings_and_proofs_of_each_round_come_before_its_gate() {
        let check = |command: &str, exit_code: i32, tail: &str| CheckResult {
            command: command.into(),
            exit_code: Some(exit_code),
            timed_out: false,
            duration_ms: 0,
            output_tail: tail.into(),
        };
        let mut task = record(TaskStatus::Merged, Some("approved by carol"));
        task.rounds = vec![
            store::RoundRow {
                round: 1,
                agent: None,
                checks: vec![
                    check("make test", 0, "ok"),
                    check(
                        "policy: test_deleted (tests/a.py)",
                        1,
                        "a test file was deleted",
                    ),
                ],
            },
            store::RoundRow {
                round: 2,
                agent: None,
                checks: vec![check("red-green: pytest tests/a.py", 0, "")],
            },
        ];
        let decisions = from_record(&task);
        assert_eq!(
            rules(&decisions),
            [
                ("postcondition", 1, "finding"),
                ("review_gate", 1, "request_changes"),
                ("red_green", 2, "proven"),
                ("merge", 2, "merged"),
            ]
        );
        assert_eq!(
            decisions[0].detail.as_deref(),
            Some("test_deleted (tests/a.py): a test file was deleted")
        );
        assert_eq!(decisions[2].detail.as_deref(), Some("pytest tests/a.py"));
    }
}
