//! A round's verification: the checks, and (under enforcement) the diff summary judged by the
//! policy, the red->green proof, and a record of it all next to the checks.

use std::time::Duration;

use super::options::{long_running, long_running_with, options, short};
use super::{Run, Stop};
use crate::contracts::{
    BAD_INPUT, CheckResult, ChecksRequest, DiffRequest, DiffSummary, RedGreenProof,
    RedGreenRequest, TaskActivities, VerificationRecord,
};
use crate::policy::paths::PathSet;
use crate::policy::{self, Finding, red_green};

/// What a round's verification found.
pub(super) struct Verdict {
    pub checks: Vec<CheckResult>,
    pub findings: Vec<Finding>,
    /// The diff against the base, without its lines (None when not enforced).
    pub diff: Option<DiffSummary>,
    pub proof: Option<RedGreenProof>,
}

impl Verdict {
    pub fn checks_green(&self) -> bool {
        self.checks.iter().all(CheckResult::passed)
    }

    /// The checks are the judge, whatever the agent's exit code said; the policy's findings
    /// are failed checks too.
    pub fn passed(&self) -> bool {
        self.checks_green() && self.findings.is_empty()
    }
}

impl Run<'_> {
    /// Runs on the workspace's worker (see `affinity`): the checks see the round's work.
    pub(super) async fn verify_round(&mut self, round: u32) -> Result<Verdict, Stop> {
        let spec = self.spec.clone();
        let checks = self
            .on_host(
                || TaskActivities::verify,
                |workspace| ChecksRequest {
                    workspace: workspace.clone(),
                    round,
                    checks: spec.checks.clone(),
                    time_budget_secs: spec.time_budget_secs,
                },
                {
                    let budget = spec
                        .time_budget_secs
                        .saturating_mul(spec.checks.len().max(1) as u64);
                    if self.enforced {
                        long_running_with(budget, &spec.policy.retry)
                    } else {
                        long_running(budget)
                    }
                },
            )
            .await?;
        if !self.enforced {
            return Ok(Verdict {
                checks,
                findings: Vec::new(),
                diff: None,
                proof: None,
            });
        }

        let policy = &spec.policy;
        let diff = self
            .on_host(
                || TaskActivities::summarize_diff,
                |workspace| DiffRequest {
                    workspace: workspace.clone(),
                    round,
                    test_paths: policy.test_paths.iter().map(|g| g.to_string()).collect(),
                },
                options(Duration::from_secs(300), None, 10, &[BAD_INPUT]),
            )
            .await?;
        let mut findings = policy::evaluate(policy, &diff);
        let mut proof = None;
        let green = checks.iter().all(CheckResult::passed);
        // Proving costs two more runs of each test: only for a round that passes otherwise.
        if green
            && findings.is_empty()
            && let Some(spec_red_green) = &policy.red_green
        {
            let plan = red_green::plan(spec_red_green, &PathSet::new(&policy.test_paths), &diff);
            if plan.tests.is_empty() {
                findings.push(red_green::nothing_to_prove(spec_red_green));
            } else {
                let runs = 2 * plan.tests.len() as u64;
                let proven = self
                    .on_host(
                        || TaskActivities::prove_red_green,
                        |workspace| RedGreenRequest {
                            workspace: workspace.clone(),
                            round,
                            tests: plan.tests.clone(),
                            test_files: plan.test_files.clone(),
                            time_budget_secs: spec.time_budget_secs,
                        },
                        long_running_with(
                            spec.time_budget_secs.saturating_mul(runs),
                            &policy.retry,
                        ),
                    )
                    .await?;
                findings.extend(red_green::evaluate(&proven));
                proof = Some(proven);
            }
        }
        if !findings.is_empty() || proof.is_some() {
            let record = VerificationRecord {
                task_id: spec.id.clone(),
                round,
                checks: recorded_checks(&checks, &findings, proof.as_ref()),
            };
            self.ctx
                .execute_activity(TaskActivities::record_verification, record, short())
                .await?;
        }
        Ok(Verdict {
            checks,
            findings,
            diff: Some(diff.without_lines()),
            proof,
        })
    }
}

/// The checks, then each finding and each red->green test as a named check.
fn recorded_checks(
    checks: &[CheckResult],
    findings: &[Finding],
    proof: Option<&RedGreenProof>,
) -> Vec<CheckResult> {
    let mut all = checks.to_vec();
    all.extend(findings.iter().map(Finding::as_check));
    if let Some(proof) = proof {
        let lines = red_green::describe(proof);
        for (run, line) in proof.runs.iter().zip(lines) {
            let proven = !run.on_base.passed() && run.on_result.passed();
            all.push(CheckResult {
                command: format!("red-green: {}", run.command),
                exit_code: Some(if proven { 0 } else { 1 }),
                timed_out: false,
                duration_ms: run.on_base.duration_ms + run.on_result.duration_ms,
                output_tail: line,
            });
        }
    }
    all
}
