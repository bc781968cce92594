//! Money and model usage: exact amounts (integer micro-dollars), token usage of a model call,
//! and the price table that turns one into the other. Pure: the gateway and the ledger price
//! with it; budgets compare against it.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An exact amount of US dollars, in millionths (a float would drift when summed).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MicroDollars(pub i64);

impl MicroDollars {
    pub const ZERO: MicroDollars = MicroDollars(0);

    /// The nearest amount to a decimal number of dollars (playbooks and settings write dollars).
    pub fn from_dollars(dollars: f64) -> MicroDollars {
        MicroDollars((dollars * 1_000_000.0).round() as i64)
    }

    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }
}

impl Add for MicroDollars {
    type Output = MicroDollars;
    fn add(self, rhs: MicroDollars) -> MicroDollars {
        MicroDollars(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for MicroDollars {
    fn add_assign(&mut self, rhs: MicroDollars) {
        *self = *self + rhs;
    }
}

impl fmt::Display for MicroDollars {
    /// `$1.234567`: every digit kept, so that printed amounts add up.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}${}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }
}

/// The tokens one model call used, as its response reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        // Counts an agent reported are untrusted: saturate rather than overflow.
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_write_tokens)
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, rhs: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens.saturating_add(rhs.input_tokens),
            output_tokens: self.output_tokens.saturating_add(rhs.output_tokens),
            cache_read_tokens: self.cache_read_tokens.saturating_add(rhs.cache_read_tokens),
            cache_write_tokens: self
                .cache_write_tokens
                .saturating_add(rhs.cache_write_tokens),
        }
    }
}

/// What a model costs, in micro-dollars per million tokens of each kind (so that a price of
/// $3 per million input tokens is `3_000_000`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelPrice {
    pub input: i64,
    pub output: i64,
    #[serde(default)]
    pub cache_read: i64,
    #[serde(default)]
    pub cache_write: i64,
}

impl ModelPrice {
    /// The exact cost of a call, rounded up to the next micro-dollar once, at the end.
    pub fn cost(&self, usage: &Usage) -> MicroDollars {
        let sum: i128 = [
            (usage.input_tokens, self.input),
            (usage.output_tokens, self.output),
            (usage.cache_read_tokens, self.cache_read),
            (usage.cache_write_tokens, self.cache_write),
        ]
        .iter()
        .map(|&(tokens, price)| tokens as i128 * price as i128)
        .sum();
        let micros = (sum + 999_999).div_euclid(1_000_000);
        MicroDollars(micros.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }
}

/// Prices by model name; a model missing from the table is priced by `default` when set
/// (a call to an unpriced model is refused otherwise: unknown cost is unbounded cost).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTable {
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrice>,
    #[serde(default)]
    pub default: Option<ModelPrice>,
}

impl PriceTable {
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        self.models.get(model).or(self.default.as_ref())
    }
}

/// A model call the gateway refused because a budget is spent, as the agent run reports it to
/// the workflow (which then ends the task `incomplete` with reason `cost_budget: ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRefusal {
    /// Which budget: `task_dollars`, `task_tokens`, `playbook_period`, `global_period`, ...
    pub budget: String,
    /// For people: the budget and its limit.
    pub message: String,
}

impl BudgetRefusal {
    /// A spent budget (the task's, a playbook's or the global period budget), rather than
    /// another reason to refuse a call (the loop guard, an unpriced model).
    pub fn is_cost_budget(&self) -> bool {
        is_cost_budget(&self.budget)
    }
}

/// Whether a refusal's budget name is a spent budget: `task_*` or `*_period`.
pub fn is_cost_budget(budget: &str) -> bool {
    budget.starts_with("task_") || budget.ends_with("_period")
}

/// What a round cost, from the ledger when the agent run ended: the round's entries so far
/// (model calls and the agent's sandbox time), and the task's total across rounds so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCost {
    pub micro_dollars: MicroDollars,
    pub tokens: u64,
    #[serde(default)]
    pub task_micro_dollars: MicroDollars,
    #[serde(default)]
    pub task_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_priced_exactly_and_rounded_up_once() {
        // $3 / $15 per million input / output tokens, cache reads at a tenth.
        let price = ModelPrice {
            input: 3_000_000,
            output: 15_000_000,
            cache_read: 300_000,
            cache_write: 3_750_000,
        };
        let usage = Usage {
            input_tokens: 1_234,
            output_tokens: 567,
            cache_read_tokens: 10_000,
            cache_write_tokens: 0,
        };
        // 1234*3 + 567*15 + 10000*0.3 = 3702 + 8505 + 3000 = 15207 micro-dollars.
        assert_eq!(price.cost(&usage), MicroDollars(15_207));
        let one_token = Usage {
            input_tokens: 1,
            ..Usage::default()
        };
        // $0.000003 exactly; a third of a micro-dollar rounds up to one.
        assert_eq!(price.cost(&one_token), MicroDollars(3));
        let cheap = ModelPrice {
            input: 1,
            ..ModelPrice::default()
        };
        assert_eq!(cheap.cost(&one_token), MicroDollars(1));
        assert_eq!(cheap.cost(&Usage::default()), MicroDollars(0));
    }

    #[test]
    fn amounts_add_and_print_without_drift() {
        let tenth = MicroDollars::from_dollars(0.1);
        let mut sum = MicroDollars::ZERO;
        for _ in 0..10 {
            sum += tenth;
        }
        assert_eq!(sum, MicroDollars::from_dollars(1.0));
        assert_eq!(sum.to_string(), "$1.000000");
        assert_eq!(MicroDollars(15_207).to_string(), "$0.015207");
        assert_eq!(MicroDollars(-5).to_string(), "-$0.000005");
    }

    #[test]
    fn unknown_models_fall_back_to_the_default_price_or_none() {
        let mut table = PriceTable::default();
        table.models.insert(
            "m".into(),
            ModelPrice {
                input: 1,
                output: 2,
                ..ModelPrice::default()
            },
        );
        assert_eq!(table.price("m").unwrap().output, 2);
        assert!(table.price("other").is_none());
        table.default = Some(ModelPrice::default());
        assert!(table.price("other").is_some());
    }
}
