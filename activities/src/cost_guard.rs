//! The contract between the model gateway and the cost ledger: the gateway asks before it
//! forwards a model call and reports every call (priced, or refused) after.
//!
//! The gateway (`gateway/`) knows HTTP, wire formats and prices; the ledger (`ledger.rs`)
//! knows budgets and the store. Tests give the gateway an in-memory guard.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use workflows::cost::{MicroDollars, Usage};

/// Whose call this is: resolved by the gateway from the per-task token the agent presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub task_id: String,
    pub round: u32,
    /// The playbook the task came from, for per-playbook period budgets.
    pub playbook: Option<String>,
}

/// Why a call was not forwarded. Answered to the agent as HTTP 402 with this as the JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Which budget is spent: `task_dollars`, `task_tokens`, `playbook_period`, `global_period`,
    /// or `loop_guard` (the same request repeated too many times in a row).
    pub budget: String,
    /// For the agent and the report, naming the budget and its limit.
    pub message: String,
}

/// One model call as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub model: String,
    pub usage: Usage,
    pub cost: MicroDollars,
    /// Set when the gateway refused the call (usage and cost are then zero).
    pub refused: Option<Refusal>,
}

pub type GuardFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub trait CostGuard: Send + Sync + 'static {
    /// Before forwarding: Ok, or the budget that is spent.
    fn admit<'a>(&'a self, call: &'a CallContext) -> GuardFuture<'a, Result<(), Refusal>>;
    /// After the call (or the refusal): write it to the ledger.
    fn record<'a>(&'a self, call: &'a CallContext, record: CallRecord) -> GuardFuture<'a, ()>;
}
