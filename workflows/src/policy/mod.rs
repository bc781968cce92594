//! Pure policy over a round's facts: the boundary, postconditions and test-tamper rules over the
//! diff summary, the red->green proof, and the merge decision at the gate. Each rule that fails
//! is a [`Finding`]: a failed check with a precise message, fed back to the next round.
//!
//! The [`Policy`] travels inside the [`TaskSpec`](crate::TaskSpec), resolved from the playbook
//! (or the defaults, for ad-hoc tasks); payloads are forever, so it only grows additively.

pub mod boundary;
pub mod finding;
pub mod markers;
pub mod merge;
pub mod paths;
pub mod postconditions;
pub mod red_green;
pub mod tamper;

use serde::{Deserialize, Serialize};

pub use finding::{Finding, FindingKind};

use crate::contracts::DiffSummary;
use crate::playbook::verification::default_test_paths;
use crate::playbook::{
    Boundary, Dollars, ForbiddenAction, Glob, MergePolicy, Positive, Postcondition, RedGreen, Retry,
};

/// What the harness enforces on a task, beyond its checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    pub boundary: Boundary,
    pub forbidden_actions: Vec<ForbiddenAction>,
    pub postconditions: Vec<Postcondition>,
    /// Which paths hold tests.
    pub test_paths: Vec<Glob>,
    /// Prove the fix: the tests fail on the base commit and pass on the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub red_green: Option<RedGreen>,
    /// Setup commands (carried for provisioning).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<String>,
    pub merge: MergePolicy,
    pub retry: Retry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_dollars: Option<Dollars>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<Positive<u64>>,
    /// Most tasks of the playbook running at once (its `budget.max_running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<Positive<u32>>,
}

impl Default for Policy {
    /// The protections of an ad-hoc task: no CI configuration or dependency changes and no
    /// test tampering, merged on approval.
    fn default() -> Self {
        Policy {
            boundary: Boundary::default(),
            forbidden_actions: ForbiddenAction::all(),
            postconditions: Vec::new(),
            test_paths: default_test_paths(),
            red_green: None,
            setup: Vec::new(),
            merge: MergePolicy::OnApproval,
            retry: Retry::default(),
            max_dollars: None,
            max_tokens: None,
            max_running: None,
        }
    }
}

/// Every boundary, tamper and postcondition finding of a round's diff, in that order.
pub fn evaluate(policy: &Policy, diff: &DiffSummary) -> Vec<Finding> {
    let tests = paths::PathSet::new(&policy.test_paths);
    let mut findings = boundary::evaluate(&policy.boundary, diff);
    findings.extend(tamper::evaluate(&policy.forbidden_actions, &tests, diff));
    findings.extend(postconditions::evaluate(
        &policy.postconditions,
        &tests,
        diff,
    ));
    findings
}
