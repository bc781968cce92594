//! The worker's side of the cost ledger: [`StoreCostGuard`], the gateway's [`CostGuard`] on the
//! store (before a call: the task's budget and the period budgets; after: the entry), and the
//! sandbox-time entries of agent and check runs, priced at a configurable rate.
//!
//! Sandbox entries carry wall time only: the sandbox's outcome does not measure CPU time yet
//! (the run's cgroup could; `SandboxTime::cpu_ms` is there for it).

use std::time::Duration;

use store::{EntryKind, LedgerEntry, SandboxTime, Store};
use workflows::TaskSpec;
use workflows::budget::{Budget, Exhausted};
use workflows::cost::{BudgetRefusal, MicroDollars, RunCost, Usage, is_cost_budget};

use crate::cost_guard::{CallContext, CallRecord, CostGuard, GuardFuture, Refusal};

/// What triggered a task, as the ledger groups it: the REST API is the only trigger so far
/// (schedules, GitHub and crash reports will name themselves when they arrive).
pub const TRIGGER_API: &str = "api";
/// The step of a model call and of the agent's sandbox time, and of the checks' sandbox time.
pub const STEP_AGENT: &str = "agent";
pub const STEP_CHECKS: &str = "checks";

/// The price of sandbox time, in micro-dollars per second of wall time (0: free).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxRate(pub i64);

impl SandboxRate {
    /// The cost of `wall` time, priced per millisecond and rounded up once.
    pub fn cost(self, wall: Duration) -> MicroDollars {
        let micros = (wall.as_millis() as i128 * i128::from(self.0) + 999).div_euclid(1000);
        MicroDollars(micros.clamp(0, i64::MAX as i128) as i64)
    }
}

/// The task's own budget, from the spec it was admitted with (the playbook's, or lower).
pub fn task_budget(spec: &TaskSpec) -> Budget {
    Budget {
        dollars: spec
            .policy
            .max_dollars
            .map(|d| MicroDollars::from_dollars(d.0)),
        tokens: spec.policy.max_tokens.map(|t| t.get()),
    }
}


/// The gateway's guard on the store.
#[derive(Debug, Clone)]
pub struct StoreCostGuard {
    store: Store,
}

impl StoreCostGuard {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Ok, or the first spent budget: the task's dollars, its tokens, then the period budgets
    /// (global ones first). A store that cannot answer refuses: unknown spend is unbounded.
    pub async fn check(&self, call: &CallContext) -> Result<(), Refusal> {
        let unavailable = |err: store::StoreError| {
            tracing::warn!(task_id = %call.task_id, error = %err, "cannot check the budgets");
            Refusal {
                budget: "ledger_unavailable".into(),
                message: "the cost ledger cannot be read, so no budget can be checked; retry \
                          later"
                    .into(),
            }
        };
        let spec = self
            .store
            .task_spec(&call.task_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| Refusal {
                budget: "unknown_task".into(),
                message: format!("task {} is not known to the ledger", call.task_id),
            })?;
        let spent = self
            .store
            .task_cost(&call.task_id, None)
            .await
            .map_err(unavailable)?
            .spent();
        if let Some(exhausted) = task_budget(&spec).exhausted(spent) {
            let budget = match exhausted {
                Exhausted::Dollars { .. } => "task_dollars",
                Exhausted::Tokens { .. } => "task_tokens",
            };
            return Err(Refusal {
                budget: budget.into(),
                message: format!("the task's budget is spent: {exhausted}"),
            });
        }
        let playbook = call
            .playbook
            .as_deref()
            .or(spec.playbook.as_ref().map(|p| p.name.as_str()));
        match self
            .store
            .spent_period_budget_now(playbook)
            .await
            .map_err(unavailable)?
        {
            Some(spent) => Err(Refusal {
                budget: spent.budget_name().into(),
                message: spent.message(),
            }),
            None => Ok(()),
        }
    }

    /// Writes a model call (or its refusal) to the ledger.
    pub async fn write(&self, call: &CallContext, record: CallRecord) -> Result<(), store::StoreError> {
        let entry = LedgerEntry {
            task_id: call.task_id.clone(),
            round: call.round,
            step: STEP_AGENT.into(),
            kind: EntryKind::Model,
            model: Some(record.model),
            usage: record.usage,
            sandbox: None,
            cost: record.cost,
            refused: record.refused.map(|r| BudgetRefusal {
                budget: r.budget,
                message: r.message,
            }),
            playbook: call.playbook.clone(),
            trigger: Some(TRIGGER_API.into()),
        };
        self.store.record_ledger_entry(&entry).await.map(|_| ())
    }
}

impl CostGuard for StoreCostGuard {
    fn admit<'a>(&'a self, call: &'a CallContext) -> GuardFuture<'a, Result<(), Refusal>> {
        Box::pin(self.check(call))
    }

    fn record<'a>(&'a self, call: &'a CallContext, record: CallRecord) -> GuardFuture<'a, ()> {
        Box::pin(async move {
            // The call has happened: a lost entry is logged, never turned into a failed call.
            if let Err(err) = self.write(call, record).await {
                tracing::error!(task_id = %call.task_id, error = %err, "cannot record a model call in the ledger");
            }
        })
    }
}

/// Sandbox time of one run, written as a `sandbox` entry of the task's round. A ledger that
/// cannot be written is logged and skipped: failing the activity would run the agent (or the
/// checks) again and spend twice.
pub async fn record_sandbox_time(
    store: &Store,
    rate: SandboxRate,
    task_id: &str,
    round: u32,
    step: &str,
    wall: Duration,
) {
    let playbook = match store.task_spec(task_id).await {
        Ok(spec) => spec.and_then(|s| s.playbook).map(|p| p.name),
        Err(err) => {
            tracing::warn!(task_id, error = %err, "cannot read the task's playbook for its ledger entry");
            None
        }
    };
    let entry = LedgerEntry {
        task_id: task_id.into(),
        round,
        step: step.into(),
        kind: EntryKind::Sandbox,
        model: None,
        usage: Usage::default(),
        sandbox: Some(SandboxTime {
            wall_ms: wall.as_millis() as u64,
            cpu_ms: None,
        }),
        cost: rate.cost(wall),
        refused: None,
        playbook,
        trigger: Some(TRIGGER_API.into()),
    };
    if let Err(err) = store.record_ledger_entry(&entry).await {
        tracing::error!(task_id, round, step, error = %err, "cannot record sandbox time in the ledger");
    }
}

/// What an agent run reports of the ledger once it has ended (its sandbox time written first):
/// the first budget refusal of the round, and what the round and the task cost so far.
pub async fn settle_agent_run(
    store: &Store,
    rate: SandboxRate,
    task_id: &str,
    round: u32,
    wall: Duration,
) -> (Option<BudgetRefusal>, Option<RunCost>) {
    record_sandbox_time(store, rate, task_id, round, STEP_AGENT, wall).await;
    let rows = match store.task_ledger(task_id).await {
        Ok(rows) => rows,
        Err(err) => {
            tracing::warn!(task_id, error = %err, "cannot read the ledger after the agent run");
            return (None, None);
        }
    };
    let in_round = || rows.iter().map(|r| &r.entry).filter(|e| e.round == round);
    let refusal = in_round()
        .filter_map(|e| e.refused.clone())
        .find(|r| is_cost_budget(&r.budget));
    let round_totals = store::CostTotals::of(in_round());
    let task_totals = store::CostTotals::of(rows.iter().map(|r| &r.entry));
    let cost = RunCost {
        micro_dollars: round_totals.micro_dollars,
        tokens: round_totals.tokens(),
        task_micro_dollars: task_totals.micro_dollars,
        task_tokens: task_totals.tokens(),
    };
    (refusal, Some(cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_time_is_priced_per_millisecond_and_rounded_up_once() {
        let rate = SandboxRate(14); // about $0.05 an hour
        assert_eq!(rate.cost(Duration::from_secs(3600)), MicroDollars(50_400));
        assert_eq!(rate.cost(Duration::from_millis(1500)), MicroDollars(21));
        assert_eq!(rate.cost(Duration::from_millis(1)), MicroDollars(1));
        assert_eq!(rate.cost(Duration::ZERO), MicroDollars(0));
        assert_eq!(SandboxRate(0).cost(Duration::from_secs(99)), MicroDollars(0));
    }

    #[test]
    fn only_spent_budgets_end_a_task() {
        for budget in ["task_dollars", "task_tokens", "playbook_period", "global_period"] {
            assert!(is_cost_budget(budget), "{budget}");
        }
        for other in ["loop_guard", "ledger_unavailable", "unknown_task", "unpriced_model"] {
            assert!(!is_cost_budget(other), "{other}");
        }
    }
}
