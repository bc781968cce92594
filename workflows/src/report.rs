//! The task report: the reviewable artifact, as markdown. Pure rendering of what the workflow
//! saw; used as the body of the review request and stored with the final state.

use std::fmt::Write;

use crate::contracts::{
    AgentExit, AgentReport, AgentRun, ChangeStatus, CheckResult, DiffSummary, NetworkDecision,
    RedGreenProof,
};
use crate::cost::MicroDollars;
use crate::policy::Finding;
use crate::policy::merge::MergeDecision;
use crate::policy::red_green;
use crate::task::{TaskSpec, TaskStatus};

/// A report lists at most this many changed files per round.
const MAX_LISTED_FILES: usize = 30;
/// A round shows at most this many lines of the agent's own summary, and this many bytes.
const MAX_SUMMARY_LINES: usize = 12;
const MAX_SUMMARY_BYTES: usize = 1500;
/// The models an agent named, and the length of anything it names, as the report shows them.
const MAX_REPORTED_MODELS: usize = 5;
const MAX_REPORTED_NAME_CHARS: usize = 80;

/// One round as the workflow saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoundSummary {
    pub round: u32,
    pub agent: AgentRun,
    pub checks: Vec<CheckResult>,
    /// The rules of the policy this round broke.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// What the round changed against the base (without lines).
    #[serde(default)]
    pub diff: Option<DiffSummary>,
    #[serde(default)]
    pub red_green: Option<RedGreenProof>,
}

pub struct Report<'a> {
    pub spec: &'a TaskSpec,
    pub status: TaskStatus,
    pub reason: Option<&'a str>,
    pub rounds: &'a [RoundSummary],
    pub commit: Option<&'a str>,
    pub changed_files: Option<u32>,
    /// The merge policy's decision at the gate, if the task got there under enforcement.
    pub merge: Option<&'a MergeDecision>,
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
        if let Some(merge) = self.merge {
            let _ = writeln!(out, "- merge decision: {}", merge.rule());
        }
        let _ = writeln!(
            out,
            "- rounds: {} of at most {}",
            self.rounds.len(),
            spec.max_rounds
        );
        for r in self.rounds {
            render_round(&mut out, r);
        }
        render_cost(&mut out, spec, self.rounds);
        if self.status.is_final() && self.status != TaskStatus::Merged {
            let _ = writeln!(out, "\n## What is left\n");
            let _ = writeln!(
                out,
                "The work in progress is on branch `{}`. {}",
                spec.branch(),
                match self.status {
                    TaskStatus::Approved =>
                        "A reviewer approved it; the merge policy leaves merging it to a person.",
                    TaskStatus::Closed => "The reviewer rejected it.",
                    TaskStatus::Cancelled => "The task was cancelled before it finished.",
                    TaskStatus::Failed => "An infrastructure step failed after its retries.",
                    _ => "The task stopped before its checks passed and a reviewer approved it.",
                }
            );
            if let Some(last) = self.rounds.last()
                && !last.findings.is_empty()
                && self.status == TaskStatus::Incomplete
            {
                let _ = writeln!(out, "\nThe last round still broke these rules:\n");
                for f in &last.findings {
                    let _ = writeln!(out, "- **{}**: {}", f.kind, first_line(&f.message));
                }
            }
        }
        out
    }
}

fn render_round(out: &mut String, r: &RoundSummary) {
    let _ = writeln!(out, "\n## Round {}\n", r.round);
    let agent = match r.agent.exit {
        AgentExit::Exited { code: Some(c) } => format!("exited {c}"),
        AgentExit::Exited { code: None } => "killed by a signal".to_string(),
        AgentExit::TimedOut => "stopped at its time budget".to_string(),
    };
    let checkpoints = match r.agent.checkpoints {
        0 => String::new(),
        1 => " (1 checkpoint pushed)".to_string(),
        n => format!(" ({n} checkpoints pushed)"),
    };
    let _ = writeln!(
        out,
        "Agent {agent} after {:.1}s{checkpoints}.\n",
        r.agent.duration_ms as f64 / 1000.0
    );
    if let Some(reported) = &r.agent.reported {
        render_reported_summary(out, reported);
    }
    if let Some(diff) = &r.diff {
        render_diff(out, diff);
    }
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
    if !r.findings.is_empty() {
        let _ = writeln!(out, "\nPolicy findings (each a failed check):\n");
        for f in &r.findings {
            let _ = writeln!(out, "- **{}**: {}", f.kind, first_line(&f.message));
        }
    }
    render_network(out, &r.agent.network);
    if let Some(cost) = &r.agent.cost {
        let _ = writeln!(
            out,
            "\nCost of the round: {} ({} model tokens).",
            cost.micro_dollars, cost.tokens
        );
    }
    if let Some(reported) = &r.agent.reported {
        render_reported_usage(out, reported);
    }
    if let Some(refusal) = &r.agent.budget_refusal {
        let _ = writeln!(
            out,
            "\nA model call was refused (`{}`): {}",
            refusal.budget,
            first_line(&refusal.message)
        );
    }
    if let Some(proof) = &r.red_green {
        let _ = writeln!(
            out,
            "\nRed->green proof (tests on the base commit, then on the result):\n"
        );
        for line in red_green::describe(proof) {
            let _ = writeln!(out, "- {line}");
        }
    }
}

/// The agent's own closing summary, its first lines in a fence (untrusted text: it must not
/// render as markdown, mention anyone or close the fence).
fn render_reported_summary(out: &mut String, reported: &AgentReport) {
    let Some(summary) = reported.summary.as_deref().map(str::trim) else {
        return;
    };
    if summary.is_empty() {
        return;
    }
    let (shown, cut) = first_lines(summary, MAX_SUMMARY_LINES, MAX_SUMMARY_BYTES);
    let _ = writeln!(
        out,
        "Summary reported by the agent{}:\n",
        if cut { " (first lines)" } else { "" }
    );
    let _ = writeln!(out, "{}\n", fenced(&shown));
}

/// The agent's own account of usage and cost, labelled as such: the ledger's figures are the
/// ones that count, and these are never added to them.
fn render_reported_usage(out: &mut String, reported: &AgentReport) {
    let mut facts = Vec::new();
    let usage = reported.usage;
    // Untrusted numbers: added without overflow.
    let total = usage
        .input_tokens
        .saturating_add(usage.output_tokens)
        .saturating_add(usage.cache_read_tokens)
        .saturating_add(usage.cache_write_tokens);
    if total > 0 || reported.calls > 0 {
        let mut parts = vec![
            format!("{} in", usage.input_tokens),
            format!("{} out", usage.output_tokens),
        ];
        if usage.cache_read_tokens > 0 {
            parts.push(format!("{} cache read", usage.cache_read_tokens));
        }
        if usage.cache_write_tokens > 0 {
            parts.push(format!("{} cache write", usage.cache_write_tokens));
        }
        facts.push(format!(
            "{total} tokens ({}) over {} call(s)",
            parts.join(", "),
            reported.calls
        ));
    }
    if let Some(cost) = reported.cost {
        facts.push(cost.to_string());
    }
    if !reported.models.is_empty() {
        let mut models: Vec<String> = reported
            .models
            .iter()
            .take(MAX_REPORTED_MODELS)
            .map(|m| inline_code(m))
            .collect();
        let more = reported.models.len().saturating_sub(MAX_REPORTED_MODELS);
        if more > 0 {
            models.push(format!("{more} more"));
        }
        facts.push(format!("model(s) {}", models.join(", ")));
    }
    if let Some(stopped) = &reported.stopped {
        facts.push(format!("stopped: {}", inline_code(stopped)));
    }
    if facts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nReported by the agent (its own account, not the ledger's): {}.",
        facts.join("; ")
    );
}

/// The task's cost as the ledger had it after the last agent run, against its budget. Check
/// runs after that run are in the ledger (`GET /v1/tasks/{id}/cost`), not here.
fn render_cost(out: &mut String, spec: &TaskSpec, rounds: &[RoundSummary]) {
    let Some(cost) = rounds.iter().rev().find_map(|r| r.agent.cost) else {
        return;
    };
    let _ = writeln!(out, "\n## Cost\n");
    let _ = writeln!(
        out,
        "- spent: {} and {} model tokens over {} round(s)",
        cost.task_micro_dollars,
        cost.task_tokens,
        rounds.len()
    );
    let mut limits = Vec::new();
    if let Some(dollars) = spec.policy.max_dollars {
        limits.push(MicroDollars::from_dollars(dollars.0).to_string());
    }
    if let Some(tokens) = spec.policy.max_tokens {
        limits.push(format!("{} model tokens", tokens.get()));
    }
    if !limits.is_empty() {
        let _ = writeln!(out, "- budget: {}", limits.join(", "));
    }
    for r in rounds {
        if let Some(cost) = &r.agent.cost {
            let _ = writeln!(
                out,
                "- round {}: {} ({} tokens)",
                r.round, cost.micro_dollars, cost.tokens
            );
        }
    }
}

/// Egress decisions, one line per destination and verdict (an agent may retry a lot).
fn render_network(out: &mut String, decisions: &[NetworkDecision]) {
    if decisions.is_empty() {
        return;
    }
    let mut counts: Vec<(&str, &str, usize)> = Vec::new();
    for d in decisions {
        match counts
            .iter_mut()
            .find(|(t, v, _)| *t == d.target && *v == d.verdict)
        {
            Some(entry) => entry.2 += 1,
            None => counts.push((&d.target, &d.verdict, 1)),
        }
    }
    let refused = decisions.iter().filter(|d| !d.allowed()).count();
    let _ = writeln!(
        out,
        "\nNetwork: {} request(s) through the egress proxy, {refused} refused:\n",
        decisions.len()
    );
    for (target, verdict, n) in counts {
        let times = if n > 1 {
            format!(" ({n}x)")
        } else {
            String::new()
        };
        let _ = writeln!(out, "- {verdict} `{target}`{times}");
    }
}

fn render_diff(out: &mut String, diff: &DiffSummary) {
    let _ = writeln!(
        out,
        "Diff against the base: {} file(s), +{} -{}\n",
        diff.changed_files(),
        diff.lines_added,
        diff.lines_removed
    );
    for f in diff.files.iter().take(MAX_LISTED_FILES) {
        let status = match f.status {
            ChangeStatus::Added => "added",
            ChangeStatus::Modified => "modified",
            ChangeStatus::Deleted => "deleted",
            ChangeStatus::Renamed => "renamed",
            ChangeStatus::Copied => "copied",
            ChangeStatus::TypeChanged => "type changed",
        };
        let from = f
            .old_path
            .as_ref()
            .map(|old| format!("`{old}` -> "))
            .unwrap_or_default();
        let size = if f.binary {
            "binary".to_string()
        } else {
            format!("+{} -{}", f.lines_added, f.lines_removed)
        };
        let _ = writeln!(out, "- {status} {from}`{}` ({size})", f.path);
    }
    let unlisted = diff.changed_files().saturating_sub(MAX_LISTED_FILES as u64);
    if unlisted > 0 {
        let _ = writeln!(out, "- and {unlisted} more");
    }
    let _ = writeln!(out);
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The first `max_lines` lines of `text` within `max_bytes` (cut at a character boundary), and
/// whether anything was left out.
fn first_lines(text: &str, max_lines: usize, max_bytes: usize) -> (String, bool) {
    let mut shown = String::new();
    for (n, line) in text.lines().enumerate() {
        if n == max_lines {
            return (shown, true);
        }
        let room = max_bytes.saturating_sub(shown.len() + usize::from(n > 0));
        if line.len() > room {
            let mut end = room;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            if n > 0 {
                shown.push('\n');
            }
            shown.push_str(&line[..end]);
            return (shown, true);
        }
        if n > 0 {
            shown.push('\n');
        }
        shown.push_str(line);
    }
    (shown, false)
}

/// `text` in a fenced code block whose fence is longer than any run of backticks in it.
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}\n{text}\n{fence}")
}

/// A short untrusted name (a model, a stop reason) as inline code: its first line, bounded,
/// with backticks replaced so that it cannot leave the span.
fn inline_code(text: &str) -> String {
    let name: String = first_line(text.trim())
        .chars()
        .take(MAX_REPORTED_NAME_CHARS)
        .map(|c| if c == '`' { '\'' } else { c })
        .collect();
    format!("`{name}`")
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
    use crate::contracts::{FileChange, RedGreenRun};
    use crate::cost::{BudgetRefusal, RunCost, Usage};
    use crate::policy::FindingKind;
    use crate::task::AgentSpec;

    fn spec() -> TaskSpec {
        TaskSpec {
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
            policy: Default::default(),
        }
    }

    fn check(code: i32, out: &str) -> CheckResult {
        CheckResult {
            command: "sh test.sh".into(),
            exit_code: Some(code),
            timed_out: false,
            duration_ms: 10,
            output_tail: out.into(),
        }
    }

    fn round(checks: Vec<CheckResult>) -> RoundSummary {
        RoundSummary {
            round: 1,
            agent: AgentRun {
                exit: AgentExit::Exited { code: Some(0) },
                duration_ms: 1500,
                output_tail: String::new(),
                log_path: "/x".into(),
                network: Vec::new(),
                budget_refusal: None,
                cost: None,
                reported: None,
                checkpoints: 0,
            },
            checks,
            findings: Vec::new(),
            diff: None,
            red_green: None,
        }
    }

    fn report(
        status: TaskStatus,
        rounds: &[RoundSummary],
        merge: Option<&MergeDecision>,
    ) -> String {
        let spec = spec();
        Report {
            spec: &spec,
            status,
            reason: Some("round_limit"),
            rounds,
            commit: None,
            changed_files: None,
            merge,
        }
        .render()
    }

    #[test]
    fn incomplete_report_says_why_and_what_failed() {
        let text = report(
            TaskStatus::Incomplete,
            &[round(vec![check(1, "expected 4, got 5\n")])],
            None,
        );
        assert!(text.contains("`t1`: incomplete"), "{text}");
        assert!(text.contains("**Reason:** round_limit"), "{text}");
        assert!(text.contains("- FAIL `sh test.sh`"), "{text}");
        assert!(text.contains("  expected 4, got 5"), "{text}");
        assert!(text.contains("## What is left"), "{text}");
    }

    #[test]
    fn checkpoints_of_a_run_are_counted() {
        let text = report(TaskStatus::Incomplete, &[round(vec![])], None);
        assert!(text.contains("Agent exited 0 after 1.5s.\n"), "{text}");
        let mut checkpointed = round(vec![]);
        checkpointed.agent.checkpoints = 3;
        let text = report(TaskStatus::Incomplete, &[checkpointed], None);
        assert!(
            text.contains("Agent exited 0 after 1.5s (3 checkpoints pushed).\n"),
            "{text}"
        );
    }

    #[test]
    fn the_cost_of_each_round_and_the_task_is_reported() {
        let mut first = round(vec![check(1, "boom")]);
        first.agent.cost = Some(RunCost {
            micro_dollars: MicroDollars(1_500_000),
            tokens: 1200,
            task_micro_dollars: MicroDollars(1_500_000),
            task_tokens: 1200,
        });
        let mut second = round(vec![check(0, "")]);
        second.round = 2;
        second.agent.cost = Some(RunCost {
            micro_dollars: MicroDollars(500_001),
            tokens: 300,
            task_micro_dollars: MicroDollars(2_000_001),
            task_tokens: 1500,
        });
        second.agent.budget_refusal = Some(BudgetRefusal {
            budget: "task_dollars".into(),
            message: "the task's budget is spent: $2.000001 spent of a $2.000000 budget".into(),
        });
        let text = report(TaskStatus::Incomplete, &[first, second], None);
        assert!(
            text.contains("Cost of the round: $0.500001 (300 model tokens)."),
            "{text}"
        );
        assert!(
            text.contains("A model call was refused (`task_dollars`): the task's budget is spent"),
            "{text}"
        );
        assert!(text.contains("## Cost\n"), "{text}");
        assert!(
            text.contains("- spent: $2.000001 and 1500 model tokens over 2 round(s)"),
            "{text}"
        );
        assert!(
            text.contains("- round 1: $1.500000 (1200 tokens)"),
            "{text}"
        );
        let free = report(TaskStatus::Incomplete, &[round(vec![check(0, "")])], None);
        assert!(
            !free.contains("## Cost"),
            "no ledger figures, no section: {free}"
        );
    }

    #[test]
    fn the_agents_own_account_is_shown_labelled_and_bounded() {
        let mut r = round(vec![check(0, "")]);
        r.agent.cost = Some(RunCost {
            micro_dollars: MicroDollars(250_000),
            tokens: 900,
            task_micro_dollars: MicroDollars(250_000),
            task_tokens: 900,
        });
        let summary: String = (1..=40).map(|n| format!("line {n}\n")).collect();
        r.agent.reported = Some(AgentReport {
            usage: Usage {
                input_tokens: 1000,
                output_tokens: 200,
                cache_read_tokens: 50,
                cache_write_tokens: 0,
            },
            cost: Some(MicroDollars(123_456)),
            models: vec!["claude-sonnet-4`x".into()],
            calls: 3,
            summary: Some(format!("Fixed it: ```evil```\n@everyone\n{summary}")),
            stopped: Some("error_max_turns".into()),
        });
        let text = report(TaskStatus::AwaitingReview, &[r], None);
        assert!(
            text.contains(
                "Reported by the agent (its own account, not the ledger's): \
                 1250 tokens (1000 in, 200 out, 50 cache read) over 3 call(s); $0.123456; \
                 model(s) `claude-sonnet-4'x`; stopped: `error_max_turns`."
            ),
            "{text}"
        );
        // The ledger's figures stay as they were, not added to the agent's.
        assert!(
            text.contains("Cost of the round: $0.250000 (900 model tokens)."),
            "{text}"
        );
        assert!(
            text.contains("- spent: $0.250000 and 900 model tokens over 1 round(s)"),
            "{text}"
        );
        // The summary: its first lines, fenced longer than any backticks inside.
        assert!(
            text.contains(
                "Summary reported by the agent (first lines):\n\n\
                 ````\nFixed it: ```evil```\n@everyone\nline 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("\nline 10\n````\n"), "{text}");
        assert!(!text.contains("line 11"), "{text}");

        // A short summary is shown whole; nothing reported, nothing said.
        let mut short = round(vec![check(0, "")]);
        short.agent.reported = Some(AgentReport {
            summary: Some("All green.\n".into()),
            ..AgentReport::default()
        });
        let text = report(TaskStatus::AwaitingReview, &[short], None);
        assert!(
            text.contains("Summary reported by the agent:\n\n```\nAll green.\n```\n"),
            "{text}"
        );
        assert!(!text.contains("Reported by the agent"), "{text}");
        let quiet = report(
            TaskStatus::AwaitingReview,
            &[round(vec![check(0, "")])],
            None,
        );
        assert!(!quiet.contains("reported by the agent"), "{quiet}");
    }

    #[test]
    fn agent_summaries_are_cut_at_a_character_boundary() {
        let (shown, cut) = first_lines("ééé\nx", 5, 5);
        assert_eq!((shown.as_str(), cut), ("éé", true));
        let (shown, cut) = first_lines("a\nb", 5, 3);
        assert_eq!((shown.as_str(), cut), ("a\nb", false));
        assert_eq!(fenced("no ticks"), "```\nno ticks\n```");
    }

    #[test]
    fn egress_decisions_are_reported_per_destination() {
        let mut r = round(vec![check(0, "")]);
        let decision = |target: &str, verdict: &str| NetworkDecision {
            target: target.into(),
            verdict: verdict.into(),
        };
        r.agent.network = vec![
            decision("pypi.org:443", "allowed"),
            decision("evil.example:443", "not_allowlisted"),
            decision("pypi.org:443", "allowed"),
            decision("169.254.169.254:80", "ip_literal"),
        ];
        let text = report(TaskStatus::AwaitingReview, &[r], None);
        assert!(
            text.contains("Network: 4 request(s) through the egress proxy, 2 refused"),
            "{text}"
        );
        assert!(text.contains("- allowed `pypi.org:443` (2x)"), "{text}");
        assert!(
            text.contains("- not_allowlisted `evil.example:443`\n"),
            "{text}"
        );
        assert!(text.contains("- ip_literal `169.254.169.254:80`"), "{text}");
        let quiet = report(
            TaskStatus::AwaitingReview,
            &[round(vec![check(0, "")])],
            None,
        );
        assert!(!quiet.contains("Network:"), "{quiet}");
    }

    #[test]
    fn findings_diff_proof_and_merge_decision_are_reported() {
        let mut r = round(vec![check(0, "")]);
        r.findings = vec![Finding::new(
            FindingKind::TestSkipped,
            Some("test.sh"),
            "test.sh: adds a skip marker `exit 0`\nmore",
        )];
        r.diff = Some(DiffSummary {
            base_commit: "b".into(),
            files: vec![FileChange {
                path: "tests/b.sh".into(),
                old_path: Some("tests/a.sh".into()),
                status: ChangeStatus::Renamed,
                lines_added: 2,
                lines_removed: 1,
                binary: false,
                lines: None,
            }],
            files_omitted: 0,
            lines_added: 2,
            lines_removed: 1,
        });
        r.red_green = Some(RedGreenProof {
            base_commit: "0123456789abcdef".into(),
            runs: vec![RedGreenRun {
                command: "sh test.sh".into(),
                test_file: None,
                on_base: check(1, ""),
                on_result: check(0, ""),
            }],
        });
        let merge = MergeDecision::Never {
            rule: "review.merge: never".into(),
        };
        let text = report(TaskStatus::Incomplete, &[r], Some(&merge));
        assert!(
            text.contains("- merge decision: review.merge: never"),
            "{text}"
        );
        assert!(
            text.contains("Diff against the base: 1 file(s), +2 -1"),
            "{text}"
        );
        assert!(
            text.contains("- renamed `tests/a.sh` -> `tests/b.sh` (+2 -1)"),
            "{text}"
        );
        assert!(
            text.contains("- **test_skipped**: test.sh: adds a skip marker `exit 0`\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "- proven `sh test.sh`: fails (exit 1) on base 0123456789ab, passes on the result"
            ),
            "{text}"
        );
        assert!(
            text.contains("The last round still broke these rules"),
            "{text}"
        );
    }
}
