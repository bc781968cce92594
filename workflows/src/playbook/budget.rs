//! A playbook's budget (rounds, time, money) and its retry policy for infrastructure failures.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalars::{Dollars, Positive};

/// The most rounds and the longest round a playbook may ask for (admission's bounds).
pub const MAX_ROUNDS: u32 = 100;
pub const MAX_TIME_PER_ROUND_SECS: u64 = 24 * 3600;
/// More attempts than this only hide a broken host.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Rounds (agent run plus verification) before the task ends incomplete.
    pub max_rounds: Positive<u32>,
    /// Wall-clock budget of one agent run, in seconds.
    pub time_per_round_secs: Positive<u64>,
    /// Most money the task may spend on models (carried; enforced by the cost ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dollars: Option<Dollars>,
    /// Most model tokens the task may use (carried; enforced by the cost ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Positive<u64>>,
    /// Most tasks of this playbook running at once (provisioning to review); the others wait
    /// in order of arrival. No limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<Positive<u32>>,
}

impl Budget {
    /// Problems serde cannot see, as (field under `budget`, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.max_rounds.get() > MAX_ROUNDS {
            problems.push((
                "max_rounds".into(),
                format!(
                    "expected at most {MAX_ROUNDS} rounds, got {}",
                    self.max_rounds.get()
                ),
            ));
        }
        if self.time_per_round_secs.get() > MAX_TIME_PER_ROUND_SECS {
            problems.push((
                "time_per_round_secs".into(),
                format!(
                    "expected at most {MAX_TIME_PER_ROUND_SECS} seconds (a day), got {}",
                    self.time_per_round_secs.get()
                ),
            ));
        }
        problems
    }
}

/// How the agent run and the checks are retried after an infrastructure failure (a lost
/// worker, a sandbox that could not start); failing checks are rounds, not retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Attempts of each agent run and verification, the first included (default 3).
    pub max_attempts: Positive<u32>,
    /// Seconds before the first retry; each later one waits twice as long, up to 30 s.
    pub initial_interval_secs: Positive<u64>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: Positive(3),
            initial_interval_secs: Positive(1),
        }
    }
}

impl Retry {
    pub fn problems(&self) -> Vec<(String, String)> {
        if self.max_attempts.get() > MAX_RETRY_ATTEMPTS {
            return vec![(
                "max_attempts".into(),
                format!(
                    "expected at most {MAX_RETRY_ATTEMPTS} attempts, got {}",
                    self.max_attempts.get()
                ),
            )];
        }
        Vec::new()
    }
}
