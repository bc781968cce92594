//! The task report: the reviewable artifact, as markdown. Pure rendering of what the workflow
//! saw; used as the body of the review request and stored with the final state.

use std::fmt::Write;

use crate::contracts::{AgentExit, AgentRun, CheckResult};
use crate::task::{TaskSpec, TaskStatus};

/// One round as the workflow saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoundSummary {
    pub round: u32,
    pub agent: AgentRun,
    pub checks: Vec<CheckResult>,
}

pub struct Report<'a> {
    pub spec: &'a TaskSpec,
    pub status: TaskStatus,
    pub reason: Option<&'a str>,
    pub rounds: &'a [RoundSummary],
    pub commit: Option<&'a str>,
    pub changed_files: Option<u32>,
}

impl Report<'_> {
    pub fn render(&self) -> String {
        let spec = self.spec;
        let mut out = String::new();
        let _ = writeln!(out, "# Errand task `{}`: {}", spec.id, self.status);
        let _ = writeln!(out);
        if let Some(reason) = self.reason {
            let _ = writeln!(out, "**Reason:** {reason}");
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "- repository: `{}` (base `{}`)", spec.repo, spec.base);
        let _ = writeln!(out, "- branch: `{}`", spec.branch());
        if let Some(commit) = self.commit {
            let _ = writeln!(out, "- head: `{commit}`");
        }
        if let Some(n) = self.changed_files {
            let _ = writeln!(out, "- files changed: {n}");
        }
        let _ = writeln!(out, "- requested by: {}", spec.requester);
        if let Some(pb) = &spec.playbook {
            let _ = writeln!(
                out,
                "- playbook: `{}` (sha256 `{}`)",
                pb.name, &pb.content_hash
            );
        }
        let _ = writeln!(
            out,
            "- rounds: {} of at most {}",
            self.rounds.len(),
            spec.max_rounds
        );
        for r in self.rounds {
            let _ = writeln!(out, "\n## Round {}\n", r.round);
            let agent = match r.agent.exit {
                AgentExit::Exited { code: Some(c) } => format!("exited {c}"),
                AgentExit::Exited { code: None } => "killed by a signal".to_string(),
                AgentExit::TimedOut => "stopped at its time budget".to_string(),
            };
            let _ = writeln!(
                out,
                "Agent {agent} after {:.1}s.\n",
                r.agent.duration_ms as f64 / 1000.0
            );
            if r.checks.is_empty() {
                let _ = writeln!(out, "Checks did not run.");
            }
            for c in &r.checks {
                let verdict = if c.passed() { "pass" } else { "FAIL" };
                let _ = writeln!(
                    out,
                    "- {verdict} `{}` ({:.1}s)",
                    c.command,
                    c.duration_ms as f64 / 1000.0
                );
                if !c.passed() && !c.output_tail.trim().is_empty() {
                    let _ = writeln!(out, "\n  ```\n{}\n  ```", indent(c.output_tail.trim_end()));
                }
            }
        }
        if self.status.is_final() && self.status != TaskStatus::Merged {
            let _ = writeln!(out, "\n## What is left\n");
            let _ = writeln!(
                out,
                "The work in progress is on branch `{}`. {}",
                spec.branch(),
                match self.status {
                    TaskStatus::Closed => "The reviewer rejected it.",
                    TaskStatus::Cancelled => "The task was cancelled before it finished.",
                    TaskStatus::Failed => "An infrastructure step failed after its retries.",
                    _ => "The task stopped before its checks passed and a reviewer approved it.",
                }
            );
        }
        out
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::AgentSpec;

    #[test]
    fn incomplete_report_says_why_and_what_failed() {
        let spec = TaskSpec {
            id: "t1".into(),
            repo: "/r".into(),
            base: "main".into(),
            instructions: "fix".into(),
            checks: vec!["sh test.sh".into()],
            agent: AgentSpec::Command {
                command: vec!["true".into()],
            },
            max_rounds: 1,
            time_budget_secs: 10,
            requester: "alice".into(),
            playbook: None,
            review_timeout_secs: 60,
        };
        let rounds = [RoundSummary {
            round: 1,
            agent: AgentRun {
                exit: AgentExit::Exited { code: Some(0) },
                duration_ms: 1500,
                output_tail: String::new(),
                log_path: "/x".into(),
            },
            checks: vec![CheckResult {
                command: "sh test.sh".into(),
                exit_code: Some(1),
                timed_out: false,
                duration_ms: 10,
                output_tail: "expected 4, got 5\n".into(),
            }],
        }];
        let text = Report {
            spec: &spec,
            status: TaskStatus::Incomplete,
            reason: Some("round_limit"),
            rounds: &rounds,
            commit: None,
            changed_files: None,
        }
        .render();
        assert!(text.contains("`t1`: incomplete"), "{text}");
        assert!(text.contains("**Reason:** round_limit"), "{text}");
        assert!(text.contains("- FAIL `sh test.sh`"), "{text}");
        assert!(text.contains("  expected 4, got 5"), "{text}");
        assert!(text.contains("## What is left"), "{text}");
    }
}
