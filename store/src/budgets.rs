//! Period budgets (global, or per playbook), and the check both admission and the model gateway
//! make against them: is the spend of the current window at a limit?
//!
//! The whole set is replaced at once (`PUT /v1/budgets`), so a reader never sees half of an
//! update.

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use workflows::budget::{Budget, Exhausted, Period, Spent, Window};
use workflows::cost::MicroDollars;

use crate::columns::now;
use crate::entities::budgets;
use crate::ledger::SpendScope;
use crate::{Store, StoreError};

/// Whose spend a period budget limits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BudgetScope {
    Global,
    Playbook(String),
}

impl BudgetScope {
    fn spend_scope(&self) -> SpendScope<'_> {
        match self {
            BudgetScope::Global => SpendScope::Global,
            BudgetScope::Playbook(name) => SpendScope::Playbook(name),
        }
    }

    /// The name refusals give the budget: `global_period` or `playbook_period`.
    pub fn budget_name(&self) -> &'static str {
        match self {
            BudgetScope::Global => "global_period",
            BudgetScope::Playbook(_) => "playbook_period",
        }
    }
}

/// A limit on the spend of a scope in each window of a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodBudget {
    pub scope: BudgetScope,
    pub period: Period,
    pub budget: Budget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRow {
    pub budget: PeriodBudget,
    pub updated_at: DateTime<Utc>,
}

/// A period budget whose current window is spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodSpent {
    pub budget: PeriodBudget,
    pub window: Window,
    pub exhausted: Exhausted,
}

impl PeriodSpent {
    /// `playbook_period` or `global_period`.
    pub fn budget_name(&self) -> &'static str {
        self.budget.scope.budget_name()
    }

    /// For people (the agent, the API's answer): which budget, its window and what is spent.
    pub fn message(&self) -> String {
        let whose = match &self.budget.scope {
            BudgetScope::Global => "the global".to_string(),
            BudgetScope::Playbook(name) => format!("playbook {name}'s"),
        };
        let day = |secs: i64| {
            Utc.timestamp_opt(secs, 0)
                .single()
                .map_or_else(|| secs.to_string(), |t| t.date_naive().to_string())
        };
        format!(
            "{whose} {} budget is spent: {} (window {} to {})",
            self.budget.period,
            self.exhausted,
            day(self.window.from),
            day(self.window.to)
        )
    }
}

const GLOBAL: &str = "global";
const PLAYBOOK: &str = "playbook";

impl Store {
    /// Every period budget: global ones first, then by playbook, then by period.
    pub async fn budgets(&self) -> Result<Vec<BudgetRow>, StoreError> {
        let models = budgets::Entity::find()
            .order_by_asc(budgets::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| "read the budgets".to_string()))?;
        let mut rows = models
            .into_iter()
            .map(budget_from_model)
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_by(|a, b| {
            (&a.budget.scope, a.budget.period.to_string())
                .cmp(&(&b.budget.scope, b.budget.period.to_string()))
        });
        Ok(rows)
    }

    /// Replaces every period budget with these, in one transaction.
    pub async fn replace_budgets(&self, budgets: &[PeriodBudget]) -> Result<(), StoreError> {
        let action = || format!("replace the budgets with {} budget(s)", budgets.len());
        let at = now();
        let mut rows = Vec::with_capacity(budgets.len());
        for b in budgets {
            let (scope, playbook) = match &b.scope {
                BudgetScope::Global => (GLOBAL, None),
                BudgetScope::Playbook(name) => (PLAYBOOK, Some(name.clone())),
            };
            let tokens = b
                .budget
                .tokens
                .map(|t| {
                    i64::try_from(t).map_err(|_| StoreError::OutOfRange {
                        task_id: format!("budget of {scope}"),
                        field: "tokens",
                        value: t.to_string(),
                    })
                })
                .transpose()?;
            rows.push(budgets::ActiveModel {
                id: NotSet,
                scope: Set(scope.to_string()),
                playbook: Set(playbook),
                period: Set(b.period.to_string()),
                micro_dollars: Set(b.budget.dollars.map(|d| d.0)),
                tokens: Set(tokens),
                updated_at: Set(at),
            });
        }
        let txn = self.db.begin().await.map_err(StoreError::query(action))?;
        budgets::Entity::delete_many()
            .exec(&txn)
            .await
            .map_err(StoreError::query(action))?;
        if !rows.is_empty() {
            budgets::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
                .map_err(StoreError::query(action))?;
        }
        txn.commit().await.map_err(StoreError::query(action))
    }

    /// The global period budgets and those of the playbook (None: an ad-hoc task).
    pub async fn budgets_for(&self, playbook: Option<&str>) -> Result<Vec<PeriodBudget>, StoreError> {
        let mut scopes = Condition::any().add(budgets::Column::Scope.eq(GLOBAL));
        if let Some(name) = playbook {
            scopes = scopes.add(
                Condition::all()
                    .add(budgets::Column::Scope.eq(PLAYBOOK))
                    .add(budgets::Column::Playbook.eq(name)),
            );
        }
        let models = budgets::Entity::find()
            .filter(scopes)
            .order_by_asc(budgets::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the budgets of playbook {}", playbook.unwrap_or("(ad hoc)"))
            }))?;
        models
            .into_iter()
            .map(|m| budget_from_model(m).map(|row| row.budget))
            .collect()
    }

    /// The spend of the budget's scope in the window of its period that contains `at`.
    pub async fn spent_in_window(
        &self,
        budget: &PeriodBudget,
        at: DateTime<Utc>,
    ) -> Result<(Window, Spent), StoreError> {
        let window = budget.period.window(at.timestamp());
        let time = |secs: i64| Utc.timestamp_opt(secs, 0).single().unwrap_or(at);
        let spent = self
            .spent_within(budget.scope.spend_scope(), time(window.from), time(window.to))
            .await?;
        Ok((window, spent))
    }

    /// [`Store::spent_period_budget`] now, by the store's clock.
    pub async fn spent_period_budget_now(
        &self,
        playbook: Option<&str>,
    ) -> Result<Option<PeriodSpent>, StoreError> {
        self.spent_period_budget(playbook, now()).await
    }

    /// The first period budget (global ones first) of the playbook's tasks whose window at
    /// `at` is spent; None when every one has something left.
    pub async fn spent_period_budget(
        &self,
        playbook: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<PeriodSpent>, StoreError> {
        let mut budgets = self.budgets_for(playbook).await?;
        budgets.sort_by(|a, b| a.scope.cmp(&b.scope));
        for budget in budgets {
            let (window, spent) = self.spent_in_window(&budget, at).await?;
            if let Some(exhausted) = budget.budget.exhausted(spent) {
                return Ok(Some(PeriodSpent {
                    budget,
                    window,
                    exhausted,
                }));
            }
        }
        Ok(None)
    }
}

fn budget_from_model(model: budgets::Model) -> Result<BudgetRow, StoreError> {
    let corrupt = |field: &'static str, value: String| StoreError::CorruptBudget {
        id: model.id,
        field,
        value,
    };
    let scope = match (model.scope.as_str(), &model.playbook) {
        (GLOBAL, _) => BudgetScope::Global,
        (PLAYBOOK, Some(name)) => BudgetScope::Playbook(name.clone()),
        (other, _) => return Err(corrupt("scope", other.to_string())),
    };
    let period: Period = model
        .period
        .parse()
        .map_err(|_| corrupt("period", model.period.clone()))?;
    let tokens = model
        .tokens
        .map(|t| u64::try_from(t).map_err(|_| corrupt("tokens", t.to_string())))
        .transpose()?;
    Ok(BudgetRow {
        budget: PeriodBudget {
            scope,
            period,
            budget: Budget {
                dollars: model.micro_dollars.map(MicroDollars),
                tokens,
            },
        },
        updated_at: model.updated_at,
    })
}
