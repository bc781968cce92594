//! The cost ledger: one entry per priced model call, refused call or sandbox run of a task, and
//! every figure read from it (a task's entries and totals, spend in a window, costs grouped by
//! playbook, day or trigger, and the costs of a playbook's finished tasks).
//!
//! Totals are always computed from the entries, so they cannot disagree with them. Entries are
//! only appended: a retried activity that ran its sandbox again did spend again.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use workflows::budget::Spent;
use workflows::TaskSpec;
use workflows::cost::{BudgetRefusal, MicroDollars, Usage};

use crate::columns::{final_statuses, now, round_from_db, round_to_db};
use crate::entities::{ledger_entries, task};
use crate::{Store, StoreError};

/// What an entry prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A model call through the gateway (or one it refused).
    Model,
    /// Time in the sandbox: an agent run or a check run.
    Sandbox,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Model => "model",
            EntryKind::Sandbox => "sandbox",
        }
    }

    fn parse(text: &str) -> Option<EntryKind> {
        [EntryKind::Model, EntryKind::Sandbox]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// Sandbox time of a `sandbox` entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxTime {
    pub wall_ms: u64,
    /// None when the sandbox did not measure CPU time.
    pub cpu_ms: Option<u64>,
}

/// One ledger entry as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub task_id: String,
    pub round: u32,
    /// `agent`, `checks`, `red_green`, ...
    pub step: String,
    pub kind: EntryKind,
    pub model: Option<String>,
    pub usage: Usage,
    pub sandbox: Option<SandboxTime>,
    pub cost: MicroDollars,
    /// Set on a model call the gateway refused (its usage and cost are zero).
    pub refused: Option<BudgetRefusal>,
    /// The task's playbook (None: ad hoc) and trigger, copied for grouping.
    pub playbook: Option<String>,
    pub trigger: Option<String>,
}

/// An entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub id: i64,
    pub entry: LedgerEntry,
    pub created_at: DateTime<Utc>,
}

/// Sums over entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostTotals {
    pub micro_dollars: MicroDollars,
    pub usage: Usage,
    pub sandbox_wall_ms: u64,
    pub sandbox_cpu_ms: u64,
    pub model_calls: u64,
    pub refusals: u64,
    pub entries: u64,
}

impl CostTotals {
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a LedgerEntry>) -> CostTotals {
        let mut totals = CostTotals::default();
        for entry in entries {
            totals.add(entry);
        }
        totals
    }

    pub fn add(&mut self, entry: &LedgerEntry) {
        self.micro_dollars += entry.cost;
        self.usage = self.usage + entry.usage;
        if let Some(sandbox) = entry.sandbox {
            self.sandbox_wall_ms += sandbox.wall_ms;
            self.sandbox_cpu_ms += sandbox.cpu_ms.unwrap_or(0);
        }
        if entry.kind == EntryKind::Model && entry.refused.is_none() {
            self.model_calls += 1;
        }
        if entry.refused.is_some() {
            self.refusals += 1;
        }
        self.entries += 1;
    }

    pub fn tokens(&self) -> u64 {
        self.usage.total_tokens()
    }

    pub fn spent(&self) -> Spent {
        Spent {
            micro_dollars: self.micro_dollars,
            tokens: self.tokens(),
        }
    }
}

/// Whose spend: everything, or one playbook's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendScope<'a> {
    Global,
    Playbook(&'a str),
}

/// How `GET /v1/cost` groups entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostGroup {
    /// By the task's playbook; ad-hoc tasks under `ad-hoc`.
    Playbook,
    /// By the UTC day the cost was incurred (`YYYY-MM-DD`).
    Day,
    /// By what triggered the task (`api`, ...); `unknown` when not recorded.
    Trigger,
}

/// Sums of the entries of one (playbook, model, kind, refused budget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSum {
    pub playbook: Option<String>,
    pub model: Option<String>,
    /// None for a kind this version does not know.
    pub kind: Option<EntryKind>,
    pub refused_budget: Option<String>,
    pub micro_dollars: MicroDollars,
    pub usage: Usage,
    pub entries: u64,
}

type LedgerSumColumns = (
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
);

/// The group key of ad-hoc tasks.
pub const AD_HOC: &str = "ad-hoc";

impl Store {
    /// Appends an entry, incurred now. The task must have been admitted.
    pub async fn record_ledger_entry(&self, entry: &LedgerEntry) -> Result<i64, StoreError> {
        self.record_ledger_entry_at(entry, now()).await
    }

    /// Appends an entry incurred at `at` (the writer's clock; tests pass fixed times).
    pub async fn record_ledger_entry_at(
        &self,
        entry: &LedgerEntry,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let task_id = entry.task_id.as_str();
        let big = |field: &'static str, value: u64| {
            i64::try_from(value).map_err(|_| StoreError::OutOfRange {
                task_id: task_id.to_string(),
                field,
                value: value.to_string(),
            })
        };
        let usage = entry.usage;
        let row = ledger_entries::ActiveModel {
            id: NotSet,
            task_id: Set(task_id.to_string()),
            round: Set(round_to_db(task_id, entry.round)?),
            step: Set(entry.step.clone()),
            kind: Set(entry.kind.as_str().to_string()),
            model: Set(entry.model.clone()),
            input_tokens: Set(big("input_tokens", usage.input_tokens)?),
            output_tokens: Set(big("output_tokens", usage.output_tokens)?),
            cache_read_tokens: Set(big("cache_read_tokens", usage.cache_read_tokens)?),
            cache_write_tokens: Set(big("cache_write_tokens", usage.cache_write_tokens)?),
            sandbox_wall_ms: Set(entry
                .sandbox
                .map(|s| big("sandbox_wall_ms", s.wall_ms))
                .transpose()?),
            sandbox_cpu_ms: Set(entry
                .sandbox
                .and_then(|s| s.cpu_ms)
                .map(|ms| big("sandbox_cpu_ms", ms))
                .transpose()?),
            micro_dollars: Set(entry.cost.0),
            refused_budget: Set(entry.refused.as_ref().map(|r| r.budget.clone())),
            refused_message: Set(entry.refused.as_ref().map(|r| r.message.clone())),
            playbook: Set(entry.playbook.clone()),
            trigger: Set(entry.trigger.clone()),
            created_at: Set(at),
        };
        let inserted = ledger_entries::Entity::insert(row)
            .exec(&self.db)
            .await
            .map_err(StoreError::write_of(task_id, || {
                format!(
                    "record a {} ledger entry of task {task_id} round {}",
                    entry.kind.as_str(),
                    entry.round
                )
            }))?;
        Ok(inserted.last_insert_id)
    }

    /// The spec the task was admitted with (its budget, playbook), None if never admitted.
    pub async fn task_spec(&self, task_id: &str) -> Result<Option<TaskSpec>, StoreError> {
        let spec: Option<String> = task::Entity::find_by_id(task_id)
            .select_only()
            .column(task::Column::Spec)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(StoreError::query(|| format!("read the spec of task {task_id}")))?;
        spec.map(|json| {
            serde_json::from_str(&json).map_err(|err| StoreError::Corrupt {
                task_id: task_id.to_string(),
                field: "spec",
                value: err.to_string(),
            })
        })
        .transpose()
    }

    /// The task's entries, oldest first (empty for a task without any, or no such task).
    pub async fn task_ledger(&self, task_id: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let models = ledger_entries::Entity::find()
            .filter(ledger_entries::Column::TaskId.eq(task_id))
            .order_by_asc(ledger_entries::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the ledger of task {task_id}")
            }))?;
        models.into_iter().map(row_from_model).collect()
    }

    /// The totals of the task's entries, of one round or of all of them.
    pub async fn task_cost(
        &self,
        task_id: &str,
        round: Option<u32>,
    ) -> Result<CostTotals, StoreError> {
        let rows = self.task_ledger(task_id).await?;
        Ok(CostTotals::of(
            rows.iter()
                .map(|r| &r.entry)
                .filter(|e| round.is_none_or(|round| e.round == round)),
        ))
    }

    /// Money and tokens spent in `[from, to)`, globally or by one playbook's tasks. Summed by
    /// the database: this runs before every model call.
    pub async fn spent_within(
        &self,
        scope: SpendScope<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Spent, StoreError> {
        // CAST: PostgreSQL sums bigints as numeric; both backends read BIGINT back as i64.
        let mut query = ledger_entries::Entity::find()
            .select_only()
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(micro_dollars), 0) AS BIGINT)"),
                "micro_dollars",
            )
            .column_as(
                Expr::cust(
                    "CAST(COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens \
                     + cache_write_tokens), 0) AS BIGINT)",
                ),
                "tokens",
            )
            .filter(ledger_entries::Column::CreatedAt.gte(from))
            .filter(ledger_entries::Column::CreatedAt.lt(to));
        if let SpendScope::Playbook(name) = scope {
            query = query.filter(ledger_entries::Column::Playbook.eq(name));
        }
        let action = || match scope {
            SpendScope::Global => format!("sum the spend from {from} to {to}"),
            SpendScope::Playbook(name) => {
                format!("sum the spend of playbook {name} from {from} to {to}")
            }
        };
        let sums: Option<(i64, i64)> = query
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        let (micro_dollars, tokens) = sums.unwrap_or((0, 0));
        Ok(Spent {
            micro_dollars: MicroDollars(micro_dollars),
            tokens: u64::try_from(tokens).unwrap_or(0),
        })
    }

    /// Totals of the entries incurred in `[from, to)`, by group key, in key order.
    pub async fn cost_grouped(
        &self,
        group: CostGroup,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, CostTotals)>, StoreError> {
        let models = ledger_entries::Entity::find()
            .filter(ledger_entries::Column::CreatedAt.gte(from))
            .filter(ledger_entries::Column::CreatedAt.lt(to))
            .order_by_asc(ledger_entries::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the ledger from {from} to {to}")
            }))?;
        // Grouped here rather than in SQL: a UTC day of a timestamp is dialect-specific.
        let mut groups: BTreeMap<String, CostTotals> = BTreeMap::new();
        for model in models {
            let row = row_from_model(model)?;
            let key = match group {
                CostGroup::Playbook => row.entry.playbook.clone().unwrap_or(AD_HOC.to_string()),
                CostGroup::Day => row.created_at.date_naive().to_string(),
                CostGroup::Trigger => row
                    .entry
                    .trigger
                    .clone()
                    .unwrap_or_else(|| "unknown".to_string()),
            };
            groups.entry(key).or_default().add(&row.entry);
        }
        Ok(groups.into_iter().collect())
    }

    /// Sums of every entry by (playbook, model, kind, refused budget), for metrics: summed by
    /// the database, so a scrape does not read the whole ledger.
    pub async fn ledger_sums(&self) -> Result<Vec<LedgerSum>, StoreError> {
        let sum = |column: &str| Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"));
        let rows: Vec<LedgerSumColumns> = ledger_entries::Entity::find()
            .select_only()
            .column(ledger_entries::Column::Playbook)
            .column(ledger_entries::Column::Model)
            .column(ledger_entries::Column::Kind)
            .column(ledger_entries::Column::RefusedBudget)
            .column_as(sum("micro_dollars"), "micro_dollars")
            .column_as(sum("input_tokens"), "input_tokens")
            .column_as(sum("output_tokens"), "output_tokens")
            .column_as(sum("cache_read_tokens"), "cache_read_tokens")
            .column_as(sum("cache_write_tokens"), "cache_write_tokens")
            .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "entries")
            .group_by(ledger_entries::Column::Playbook)
            .group_by(ledger_entries::Column::Model)
            .group_by(ledger_entries::Column::Kind)
            .group_by(ledger_entries::Column::RefusedBudget)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| "sum the ledger for metrics".to_string()))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(rows
            .into_iter()
            .map(
                |(playbook, model, kind, refused_budget, micros, input, output, read, write, n)| {
                    LedgerSum {
                        playbook,
                        model,
                        kind: EntryKind::parse(&kind),
                        refused_budget,
                        micro_dollars: MicroDollars(micros),
                        usage: Usage {
                            input_tokens: count(input),
                            output_tokens: count(output),
                            cache_read_tokens: count(read),
                            cache_write_tokens: count(write),
                        },
                        entries: count(n),
                    }
                },
            )
            .collect())
    }

    /// The cost of each finished task of the playbook that has ledger entries (tasks from
    /// before the ledger have none and would read as free), oldest task first.
    pub async fn finished_task_costs(&self, playbook: &str) -> Result<Vec<MicroDollars>, StoreError> {
        let action = || format!("read the costs of finished tasks of playbook {playbook}");
        let ids: Vec<String> = task::Entity::find()
            .select_only()
            .column(task::Column::Id)
            .filter(task::Column::PlaybookName.eq(playbook))
            .filter(task::Column::Status.is_in(final_statuses()))
            .order_by_asc(task::Column::CreatedAt)
            .order_by_asc(task::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        let mut costs: HashMap<String, MicroDollars> = HashMap::with_capacity(ids.len());
        // Bounded batches keep each statement under SQLite's limit of bound parameters.
        for batch in ids.chunks(500) {
            let sums: Vec<(String, i64)> = ledger_entries::Entity::find()
                .select_only()
                .column(ledger_entries::Column::TaskId)
                .column_as(
                    Expr::cust("CAST(SUM(micro_dollars) AS BIGINT)"),
                    "micro_dollars",
                )
                .filter(ledger_entries::Column::TaskId.is_in(batch.iter().cloned()))
                .group_by(ledger_entries::Column::TaskId)
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(StoreError::query(action))?;
            costs.extend(sums.into_iter().map(|(id, m)| (id, MicroDollars(m))));
        }
        Ok(ids.iter().filter_map(|id| costs.get(id).copied()).collect())
    }
}

fn row_from_model(model: ledger_entries::Model) -> Result<LedgerRow, StoreError> {
    let task_id = model.task_id.as_str();
    let corrupt = |field: &'static str, value: String| StoreError::Corrupt {
        task_id: task_id.to_string(),
        field,
        value,
    };
    let count = |field: &'static str, value: i64| {
        u64::try_from(value).map_err(|_| corrupt(field, value.to_string()))
    };
    let kind = EntryKind::parse(&model.kind)
        .ok_or_else(|| corrupt("ledger entry kind", model.kind.clone()))?;
    let sandbox = match model.sandbox_wall_ms {
        Some(wall) => Some(SandboxTime {
            wall_ms: count("sandbox_wall_ms", wall)?,
            cpu_ms: model
                .sandbox_cpu_ms
                .map(|cpu| count("sandbox_cpu_ms", cpu))
                .transpose()?,
        }),
        None => None,
    };
    let entry = LedgerEntry {
        round: round_from_db(task_id, model.round)?,
        step: model.step,
        kind,
        model: model.model,
        usage: Usage {
            input_tokens: count("input_tokens", model.input_tokens)?,
            output_tokens: count("output_tokens", model.output_tokens)?,
            cache_read_tokens: count("cache_read_tokens", model.cache_read_tokens)?,
            cache_write_tokens: count("cache_write_tokens", model.cache_write_tokens)?,
        },
        sandbox,
        cost: MicroDollars(model.micro_dollars),
        refused: model.refused_budget.map(|budget| BudgetRefusal {
            budget,
            message: model.refused_message.unwrap_or_default(),
        }),
        playbook: model.playbook,
        trigger: model.trigger,
        task_id: model.task_id.clone(),
    };
    Ok(LedgerRow {
        id: model.id,
        entry,
        created_at: model.created_at,
    })
}
