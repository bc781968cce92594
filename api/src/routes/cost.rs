//! Cost, from the ledger: a task's entries and totals, costs grouped by playbook, day or
//! trigger over a time range, a playbook's estimate from its past tasks, and the cost metrics
//! of `GET /metrics`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use prometheus::{CounterVec, Encoder, IntCounterVec, Opts, Registry, TextEncoder};
use serde::{Deserialize, Serialize};
use store::{CostGroup, CostTotals, LedgerRow, LedgerSum};
use utoipa::{IntoParams, ToSchema};
use workflows::budget::median_and_p90;
use workflows::cost::MicroDollars;

use crate::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::playbook_files;
use crate::task_metrics::AD_HOC;

/// Sums over ledger entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CostTotalsView {
    /// Exact, in millionths of a dollar.
    pub micro_dollars: i64,
    /// The same amount as text, every digit kept (`$0.015207`).
    pub dollars: String,
    /// Model tokens of every kind.
    pub tokens: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub sandbox_wall_ms: u64,
    /// CPU time where the sandbox measured it (0 otherwise).
    pub sandbox_cpu_ms: u64,
    /// Model calls forwarded (refused ones not counted).
    pub model_calls: u64,
    /// Model calls refused because a budget was spent (or by the loop guard).
    pub refusals: u64,
    pub entries: u64,
}

impl From<CostTotals> for CostTotalsView {
    fn from(t: CostTotals) -> Self {
        CostTotalsView {
            micro_dollars: t.micro_dollars.0,
            dollars: t.micro_dollars.to_string(),
            tokens: t.tokens(),
            input_tokens: t.usage.input_tokens,
            output_tokens: t.usage.output_tokens,
            cache_read_tokens: t.usage.cache_read_tokens,
            cache_write_tokens: t.usage.cache_write_tokens,
            sandbox_wall_ms: t.sandbox_wall_ms,
            sandbox_cpu_ms: t.sandbox_cpu_ms,
            model_calls: t.model_calls,
            refusals: t.refusals,
            entries: t.entries,
        }
    }
}

/// A model call the gateway refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefusalView {
    /// `task_dollars`, `task_tokens`, `playbook_period`, `global_period`, `loop_guard`, ...
    pub budget: String,
    pub message: String,
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntryView {
    pub id: i64,
    pub round: u32,
    /// `agent` or `checks`.
    pub step: String,
    /// `model` (a call through the gateway) or `sandbox` (time in the sandbox).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_wall_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_cpu_ms: Option<u64>,
    pub micro_dollars: i64,
    pub dollars: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusalView>,
    pub at: DateTime<Utc>,
}

impl From<LedgerRow> for LedgerEntryView {
    fn from(row: LedgerRow) -> Self {
        let e = row.entry;
        LedgerEntryView {
            id: row.id,
            round: e.round,
            step: e.step,
            kind: e.kind.as_str().to_string(),
            model: e.model,
            input_tokens: e.usage.input_tokens,
            output_tokens: e.usage.output_tokens,
            cache_read_tokens: e.usage.cache_read_tokens,
            cache_write_tokens: e.usage.cache_write_tokens,
            sandbox_wall_ms: e.sandbox.map(|s| s.wall_ms),
            sandbox_cpu_ms: e.sandbox.and_then(|s| s.cpu_ms),
            micro_dollars: e.cost.0,
            dollars: e.cost.to_string(),
            refused: e.refused.map(|r| RefusalView {
                budget: r.budget,
                message: r.message,
            }),
            at: row.created_at,
        }
    }
}

/// A task's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskCost {
    pub task_id: String,
    /// Computed from `entries`, so always consistent with them.
    pub totals: CostTotalsView,
    /// Oldest first.
    pub entries: Vec<LedgerEntryView>,
}

/// Read a task's cost: every ledger entry and their totals.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}/cost",
    tag = super::COST,
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task's ledger", body = TaskCost),
        (status = 404, description = "No such task", body = ErrorBody),
    ),
)]
pub async fn get_task_cost(
    State(state): State<SharedState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TaskCost>, ApiError> {
    if state.store.task_status(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("task {id} not found")));
    }
    let rows = state.store.task_ledger(&id).await?;
    let totals = CostTotals::of(rows.iter().map(|r| &r.entry));
    Ok(Json(TaskCost {
        task_id: id,
        totals: totals.into(),
        entries: rows.into_iter().map(LedgerEntryView::from).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CostQuery {
    /// `playbook` (ad-hoc tasks under `ad-hoc`), `day` (UTC) or `trigger`.
    #[param(value_type = Option<String>, example = "day")]
    pub group_by: Option<String>,
    /// Costs incurred at or after this time (RFC 3339); default: since the first entry.
    pub from: Option<String>,
    /// Costs incurred before this time (RFC 3339); default: now.
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CostGroupView {
    /// The playbook, the day (`YYYY-MM-DD`) or the trigger.
    pub key: String,
    pub totals: CostTotalsView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CostReport {
    pub group_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    /// In key order.
    pub groups: Vec<CostGroupView>,
    /// Over every group.
    pub total: CostTotalsView,
}

/// Costs grouped by playbook, day or trigger.
///
/// Of the ledger entries incurred in `[from, to)`: their totals per group and overall.
#[utoipa::path(
    get,
    path = "/v1/cost",
    tag = super::COST,
    params(CostQuery),
    responses(
        (status = 200, description = "The costs", body = CostReport),
        (status = 400, description = "An unknown group_by, a time that is not RFC 3339, `from` not before `to`, or an unknown parameter; `field` names it", body = ErrorBody),
    ),
)]
pub async fn get_cost(
    State(state): State<SharedState>,
    ApiQuery(query): ApiQuery<CostQuery>,
) -> Result<Json<CostReport>, ApiError> {
    let group_by = query.group_by.as_deref().unwrap_or("playbook");
    let group = parse_group(group_by)?;
    let from = query.from.as_deref().map(|t| time("from", t)).transpose()?;
    let to = match query.to.as_deref() {
        Some(t) => time("to", t)?,
        None => Utc::now(),
    };
    if from.is_some_and(|from| from >= to) {
        return Err(ApiError::bad_parameter("from", "from must be before to"));
    }
    let groups = state
        .store
        .cost_grouped(group, from.unwrap_or(DateTime::UNIX_EPOCH), to)
        .await?;
    let mut total = CostTotals::default();
    for (_, totals) in &groups {
        total.micro_dollars += totals.micro_dollars;
        total.usage = total.usage + totals.usage;
        total.sandbox_wall_ms += totals.sandbox_wall_ms;
        total.sandbox_cpu_ms += totals.sandbox_cpu_ms;
        total.model_calls += totals.model_calls;
        total.refusals += totals.refusals;
        total.entries += totals.entries;
    }
    Ok(Json(CostReport {
        group_by: group_by.to_string(),
        from,
        to,
        groups: groups
            .into_iter()
            .map(|(key, totals)| CostGroupView {
                key,
                totals: totals.into(),
            })
            .collect(),
        total: total.into(),
    }))
}

fn parse_group(text: &str) -> Result<CostGroup, ApiError> {
    match text {
        "playbook" => Ok(CostGroup::Playbook),
        "day" => Ok(CostGroup::Day),
        "trigger" => Ok(CostGroup::Trigger),
        other => Err(ApiError::bad_parameter(
            "group_by",
            format!("unknown group_by {other:?}: expected playbook, day or trigger"),
        )),
    }
}

fn time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| {
            ApiError::bad_parameter(
                field,
                format!("{field} must be an RFC 3339 time like 2026-11-21T00:00:00Z: {err}"),
            )
        })
}

/// What a playbook's run is likely to cost, from its finished tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CostEstimate {
    pub playbook: String,
    /// Finished tasks of the playbook with ledger entries: the sample.
    pub tasks: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_micro_dollars: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_micro_dollars: Option<i64>,
    /// `$0.120000`, or absent without history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<String>,
    /// The estimate in words, or why there is none.
    pub summary: String,
}

/// Estimate a playbook's cost.
///
/// The median and 90th percentile (nearest rank) of the total cost of the playbook's finished
/// tasks, and how many there were. Without history there is no estimate, and the answer says
/// so (200, `tasks: 0`).
#[utoipa::path(
    get,
    path = "/v1/playbooks/{name}/estimate",
    tag = super::PLAYBOOKS,
    params(("name" = String, Path, description = "Playbook name", pattern = "^[a-z0-9-]+$")),
    responses(
        (status = 200, description = "The estimate", body = CostEstimate),
        (status = 400, description = "Not a valid playbook name", body = ErrorBody),
        (status = 404, description = "No such playbook", body = ErrorBody),
    ),
)]
pub async fn get_estimate(
    State(state): State<SharedState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CostEstimate>, ApiError> {
    // Only to answer 404 for a playbook that does not exist (its history may outlive it).
    playbook_files::read(&state.playbooks_dir, &name).await?;
    let costs = state.store.finished_task_costs(&name).await?;
    Ok(Json(estimate(name, &costs)))
}

pub fn estimate(playbook: String, costs: &[MicroDollars]) -> CostEstimate {
    let tasks = costs.len() as u64;
    match median_and_p90(costs) {
        Some((median, p90)) => CostEstimate {
            summary: format!(
                "median {median}, p90 {p90} over {tasks} finished task(s) of playbook {playbook}"
            ),
            playbook,
            tasks,
            median_micro_dollars: Some(median.0),
            p90_micro_dollars: Some(p90.0),
            median: Some(median.to_string()),
            p90: Some(p90.to_string()),
        },
        None => CostEstimate {
            summary: format!(
                "no estimate: playbook {playbook} has no finished task with recorded costs yet"
            ),
            playbook,
            tasks,
            median_micro_dollars: None,
            p90_micro_dollars: None,
            median: None,
            p90: None,
        },
    }
}

/// The cost metrics, from ledger sums read at scrape time (like the task metrics: every API
/// replica answers the same, and a restart loses nothing; counters grow as the ledger does).
///
/// `errand_cost_dollars_total{playbook,model}` (sandbox time under `model="sandbox"`),
/// `errand_model_tokens_total{playbook,model,kind}` and
/// `errand_budget_refusals_total{playbook,reason}`.
pub fn render_metrics(sums: &[LedgerSum]) -> Result<String, prometheus::Error> {
    let registry = Registry::new();
    let dollars = CounterVec::new(
        Opts::new(
            "errand_cost_dollars_total",
            "Dollars spent, by playbook and model (sandbox time under model=\"sandbox\")",
        ),
        &["playbook", "model"],
    )?;
    let tokens = IntCounterVec::new(
        Opts::new(
            "errand_model_tokens_total",
            "Model tokens used, by playbook, model and kind (input, output, cache_read, cache_write)",
        ),
        &["playbook", "model", "kind"],
    )?;
    let refusals = IntCounterVec::new(
        Opts::new(
            "errand_budget_refusals_total",
            "Model calls the gateway refused, by playbook and reason (the budget, or loop_guard)",
        ),
        &["playbook", "reason"],
    )?;
    registry.register(Box::new(dollars.clone()))?;
    registry.register(Box::new(tokens.clone()))?;
    registry.register(Box::new(refusals.clone()))?;
    for sum in sums {
        let playbook = sum.playbook.as_deref().unwrap_or(AD_HOC);
        let model = match (sum.kind, sum.model.as_deref()) {
            (Some(store::EntryKind::Sandbox), _) => "sandbox",
            (_, Some(model)) => model,
            (_, None) => "unknown",
        };
        dollars
            .with_label_values(&[playbook, model])
            .inc_by(sum.micro_dollars.as_dollars().max(0.0));
        for (kind, n) in [
            ("input", sum.usage.input_tokens),
            ("output", sum.usage.output_tokens),
            ("cache_read", sum.usage.cache_read_tokens),
            ("cache_write", sum.usage.cache_write_tokens),
        ] {
            if n > 0 {
                tokens.with_label_values(&[playbook, model, kind]).inc_by(n);
            }
        }
        if let Some(reason) = &sum.refused_budget {
            refusals
                .with_label_values(&[playbook, reason.as_str()])
                .inc_by(sum.entries);
        }
    }
    let mut buffer = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buffer)?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use workflows::cost::Usage;

    #[test]
    fn estimates_say_when_there_is_no_history() {
        let none = estimate("fix".into(), &[]);
        assert_eq!((none.tasks, none.median_micro_dollars), (0, None));
        assert!(none.summary.starts_with("no estimate"), "{}", none.summary);
        let some = estimate(
            "fix".into(),
            &[MicroDollars(300), MicroDollars(100), MicroDollars(200)],
        );
        assert_eq!(
            (
                some.tasks,
                some.median_micro_dollars,
                some.p90_micro_dollars
            ),
            (3, Some(200), Some(300))
        );
        assert_eq!(some.median.as_deref(), Some("$0.000200"));
    }

    #[test]
    fn groups_and_times_are_checked() {
        assert_eq!(parse_group("day").unwrap(), CostGroup::Day);
        let err = parse_group("week").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("group_by"));
        assert_eq!(time("to", "nope").unwrap_err().field.as_deref(), Some("to"));
    }

    #[test]
    fn metrics_label_dollars_tokens_and_refusals() {
        let sums = [
            LedgerSum {
                playbook: Some("fix".into()),
                model: Some("m1".into()),
                kind: Some(store::EntryKind::Model),
                refused_budget: None,
                micro_dollars: MicroDollars(1_500_000),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    ..Usage::default()
                },
                entries: 2,
            },
            LedgerSum {
                playbook: None,
                model: Some("m1".into()),
                kind: Some(store::EntryKind::Model),
                refused_budget: Some("task_dollars".into()),
                micro_dollars: MicroDollars::ZERO,
                usage: Usage::default(),
                entries: 3,
            },
            LedgerSum {
                playbook: Some("fix".into()),
                model: None,
                kind: Some(store::EntryKind::Sandbox),
                refused_budget: None,
                micro_dollars: MicroDollars(250_000),
                usage: Usage::default(),
                entries: 1,
            },
        ];
        let text = render_metrics(&sums).unwrap();
        for line in [
            r#"errand_cost_dollars_total{model="m1",playbook="fix"} 1.5"#,
            r#"errand_cost_dollars_total{model="sandbox",playbook="fix"} 0.25"#,
            r#"errand_model_tokens_total{kind="input",model="m1",playbook="fix"} 10"#,
            r#"errand_budget_refusals_total{playbook="ad-hoc",reason="task_dollars"} 3"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
