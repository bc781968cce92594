//! The merge decision at the gate, from the playbook's `review.merge` and the last round's facts.
//! The decision carries the rule that made it, in words, for history and the report. Whatever
//! the decision, the requester's own approval never counts (the gate's validator refuses it).

use serde::{Deserialize, Serialize};

use super::finding::Finding;
use super::paths::PathSet;
use crate::contracts::DiffSummary;
use crate::playbook::{AutoWhen, MergePolicy};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum MergeDecision {
    /// Merge now, without waiting for a reviewer.
    Auto { rule: String },
    /// Wait for a reviewer other than the requester to approve, then merge.
    OnApproval { rule: String },
    /// Wait for a review; an approval ends the task without merging (a person merges).
    Never { rule: String },
}

impl MergeDecision {
    pub fn rule(&self) -> &str {
        match self {
            Self::Auto { rule } | Self::OnApproval { rule } | Self::Never { rule } => rule,
        }
    }
}

/// What the decision looks at: the last round's verification.
pub struct MergeFacts<'a> {
    pub checks_green: bool,
    pub findings: &'a [Finding],
    /// The diff of the last round; None when it was not summarized.
    pub diff: Option<&'a DiffSummary>,
}

pub fn decide(policy: &MergePolicy, facts: &MergeFacts) -> MergeDecision {
    match policy {
        MergePolicy::Never => MergeDecision::Never {
            rule: "review.merge: never (a person merges the branch outside Errand)".into(),
        },
        MergePolicy::OnApproval => MergeDecision::OnApproval {
            rule: "review.merge: on_approval (merged once a reviewer other than the requester approves)"
                .into(),
        },
        MergePolicy::AutoWhen(conditions) => match unmet(conditions, facts) {
            None => MergeDecision::Auto {
                rule: format!("review.merge: auto_when held ({})", met(conditions, facts)),
            },
            Some(why) => MergeDecision::OnApproval {
                rule: format!("review.merge: auto_when did not hold ({why}); waiting for an approval"),
            },
        },
    }
}

/// The first condition that does not hold, in words.
fn unmet(conditions: &AutoWhen, facts: &MergeFacts) -> Option<String> {
    if !facts.checks_green {
        return Some("the checks are not green".into());
    }
    if !facts.findings.is_empty() {
        return Some(format!("{} policy finding(s)", facts.findings.len()));
    }
    let Some(diff) = facts.diff else {
        return Some("the diff was not summarized".into());
    };
    if diff.changed_files() == 0 {
        return Some("nothing changed".into());
    }
    if diff.files_omitted > 0 {
        return Some("the diff is too large to inspect".into());
    }
    if !conditions.paths.is_empty() {
        let allowed = PathSet::new(&conditions.paths);
        if let Some(path) = diff.touched_paths().find(|p| !allowed.is_match(p)) {
            return Some(format!("{path} does not match {}", allowed.describe()));
        }
    }
    if let Some(max) = conditions.max_changed_lines
        && diff.changed_lines() > u64::from(max.get())
    {
        return Some(format!(
            "{} changed lines > {}",
            diff.changed_lines(),
            max.get()
        ));
    }
    if let Some(max) = conditions.max_changed_files
        && diff.changed_files() > u64::from(max.get())
    {
        return Some(format!(
            "{} changed files > {}",
            diff.changed_files(),
            max.get()
        ));
    }
    None
}

/// The conditions that held, in words.
fn met(conditions: &AutoWhen, facts: &MergeFacts) -> String {
    let mut held = vec!["checks green, no policy finding".to_string()];
    let diff = facts.diff.cloned().unwrap_or_default();
    if !conditions.paths.is_empty() {
        held.push(format!(
            "every changed path matches {}",
            PathSet::new(&conditions.paths).describe()
        ));
    }
    if let Some(max) = conditions.max_changed_lines {
        held.push(format!(
            "{} changed lines <= {}",
            diff.changed_lines(),
            max.get()
        ));
    }
    if let Some(max) = conditions.max_changed_files {
        held.push(format!(
            "{} changed files <= {}",
            diff.changed_files(),
            max.get()
        ));
    }
    held.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{ChangeStatus, FileChange};
    use crate::playbook::{Positive, scalars::globs};
    use crate::policy::FindingKind;

    fn diff(paths: &[(&str, u32)]) -> DiffSummary {
        DiffSummary {
            files: paths
                .iter()
                .map(|(p, n)| FileChange {
                    path: p.to_string(),
                    old_path: None,
                    status: ChangeStatus::Modified,
                    lines_added: *n,
                    lines_removed: 0,
                    binary: false,
                    lines: None,
                })
                .collect(),
            lines_added: paths.iter().map(|(_, n)| u64::from(*n)).sum(),
            ..DiffSummary::default()
        }
    }

    #[test]
    fn merge_decisions_on_a_table_of_facts() {
        let docs = MergePolicy::AutoWhen(AutoWhen {
            paths: globs(&["docs/**", "**/*.md"]),
            max_changed_lines: Some(Positive(50)),
            max_changed_files: None,
        });
        let finding = [Finding::new(FindingKind::TestSkipped, None, "x")];
        let docs_diff = diff(&[("docs/usage.md", 10), ("README.md", 2)]);
        let code_diff = diff(&[("docs/usage.md", 10), ("src/main.rs", 1)]);
        let big_diff = diff(&[("docs/usage.md", 80)]);
        let empty = diff(&[]);
        let facts = |green, findings: &'static [Finding], d| MergeFacts {
            checks_green: green,
            findings,
            diff: Some(d),
        };
        let leaked: &'static [Finding] = Box::leak(Box::new(finding));
        let cases: Vec<(&MergePolicy, MergeFacts, &str)> = vec![
            (
                &MergePolicy::Never,
                facts(true, &[], &docs_diff),
                "never: review.merge: never (a person merges the branch outside Errand)",
            ),
            (
                &MergePolicy::OnApproval,
                facts(true, &[], &docs_diff),
                "on_approval: review.merge: on_approval (merged once a reviewer other than the requester approves)",
            ),
            (
                &docs,
                facts(true, &[], &docs_diff),
                "auto: review.merge: auto_when held (checks green, no policy finding; every changed path matches docs/**, **/*.md; 12 changed lines <= 50)",
            ),
            (
                &docs,
                facts(true, &[], &code_diff),
                "on_approval: review.merge: auto_when did not hold (src/main.rs does not match docs/**, **/*.md); waiting for an approval",
            ),
            (
                &docs,
                facts(true, &[], &big_diff),
                "on_approval: review.merge: auto_when did not hold (80 changed lines > 50); waiting for an approval",
            ),
            (
                &docs,
                facts(false, &[], &docs_diff),
                "on_approval: review.merge: auto_when did not hold (the checks are not green); waiting for an approval",
            ),
            (
                &docs,
                facts(true, leaked, &docs_diff),
                "on_approval: review.merge: auto_when did not hold (1 policy finding(s)); waiting for an approval",
            ),
            (
                &docs,
                facts(true, &[], &empty),
                "on_approval: review.merge: auto_when did not hold (nothing changed); waiting for an approval",
            ),
        ];
        for (policy, facts, want) in cases {
            let decision = decide(policy, &facts);
            let kind = serde_json::to_value(&decision).unwrap()["decision"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(format!("{kind}: {}", decision.rule()), want);
        }
    }
}
