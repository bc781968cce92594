//! `/v1/budgets`: the period budgets (global, or per playbook) with what their current window
//! has spent; replacing them; and the admission check against them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use store::{BudgetRow, BudgetScope, PeriodBudget, Store};
use utoipa::ToSchema;
use workflows::TaskSpec;
use workflows::budget::{Budget, Period};
use workflows::cost::MicroDollars;

use crate::SharedState;
use crate::admission::{check_playbook_name, period_budget_spent};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;

/// One period budget as sent: whose spend it limits, how often it starts afresh, and the
/// limit (dollars, tokens, or both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    /// `global` (every task) or `playbook` (the tasks of one playbook).
    #[schema(example = "playbook")]
    pub scope: String,
    /// The playbook, for scope `playbook`.
    #[serde(default)]
    pub playbook: Option<String>,
    /// `day`, `week` (Monday to Sunday, UTC), `month`, or `sprint:<start date>:<days>`
    /// (back-to-back sprints from the start date), e.g. `sprint:2026-11-02:14`.
    #[schema(example = "month")]
    pub period: String,
    /// Most dollars per window (above 0; exact to the micro-dollar).
    #[serde(default)]
    pub dollars: Option<f64>,
    /// Most model tokens per window (at least 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub tokens: Option<u64>,
}

/// The whole set of period budgets: `PUT` replaces every budget with these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetsInput {
    pub budgets: Vec<BudgetInput>,
}

/// A period budget with its current window and what that window has spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BudgetView {
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    pub period: String,
    /// The dollar limit in micro-dollars (exact), and as text (`$5.000000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_dollars: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dollars: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// The window of the period that contains now, `[window_start, window_end)`.
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub spent_micro_dollars: i64,
    pub spent_tokens: u64,
    /// Whether a limit is reached: new tasks in scope are refused, and model calls too.
    pub exhausted: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BudgetsView {
    pub budgets: Vec<BudgetView>,
}

/// Read the period budgets.
///
/// Each with the window of its period that contains now and what the ledger has spent in it.
#[utoipa::path(
    get,
    path = "/v1/budgets",
    tag = super::COST,
    responses((status = 200, description = "Every period budget", body = BudgetsView)),
)]
pub async fn get_budgets(State(state): State<SharedState>) -> Result<Json<BudgetsView>, ApiError> {
    Ok(Json(budgets_view(&state.store, Utc::now()).await?))
}

/// Replace the period budgets.
///
/// The body is the whole set: budgets left out are removed (an empty list removes all). The
/// change applies to the next admission and the next model call.
#[utoipa::path(
    put,
    path = "/v1/budgets",
    tag = super::COST,
    request_body = BudgetsInput,
    responses(
        (status = 200, description = "The budgets now in force", body = BudgetsView),
        (status = 400, description = "A budget is invalid (unknown scope or period, no limit, a duplicate); `field` names it, e.g. `budgets[1].period`", body = ErrorBody),
        (status = 422, description = "The body does not have the budgets' shape", body = ErrorBody),
    ),
)]
pub async fn put_budgets(
    State(state): State<SharedState>,
    ApiJson(input): ApiJson<BudgetsInput>,
) -> Result<Json<BudgetsView>, ApiError> {
    let budgets = validate(&input)?;
    state.store.replace_budgets(&budgets).await?;
    tracing::info!(budgets = budgets.len(), "period budgets replaced");
    Ok(Json(budgets_view(&state.store, Utc::now()).await?))
}

/// The budgets as the store has them, with the spend of their windows at `now`.
pub(crate) async fn budgets_view(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<BudgetsView, ApiError> {
    let rows = store.budgets().await?;
    let mut budgets = Vec::with_capacity(rows.len());
    for BudgetRow { budget, updated_at } in rows {
        let (window, spent) = store.spent_in_window(&budget, now).await?;
        let time = |secs: i64| Utc.timestamp_opt(secs, 0).single().unwrap_or(now);
        let (scope, playbook) = match &budget.scope {
            BudgetScope::Global => ("global", None),
            BudgetScope::Playbook(name) => ("playbook", Some(name.clone())),
        };
        budgets.push(BudgetView {
            scope: scope.to_string(),
            playbook,
            period: budget.period.to_string(),
            micro_dollars: budget.budget.dollars.map(|d| d.0),
            dollars: budget.budget.dollars.map(|d| d.to_string()),
            tokens: budget.budget.tokens,
            window_start: time(window.from),
            window_end: time(window.to),
            spent_micro_dollars: spent.micro_dollars.0,
            spent_tokens: spent.tokens,
            exhausted: budget.budget.exhausted(spent).is_some(),
            updated_at,
        });
    }
    Ok(BudgetsView { budgets })
}

/// 400 naming the field of the budget at fault.
fn bad(field: String, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", message).with_field(field)
}

/// The budgets of a `PUT`, each checked; the first problem is a 400 naming its field.
pub fn validate(input: &BudgetsInput) -> Result<Vec<PeriodBudget>, ApiError> {
    let mut budgets: Vec<PeriodBudget> = Vec::with_capacity(input.budgets.len());
    for (i, b) in input.budgets.iter().enumerate() {
        let field = |name: &str| format!("budgets[{i}].{name}");
        let scope = match (b.scope.as_str(), &b.playbook) {
            ("global", None) => BudgetScope::Global,
            ("global", Some(_)) => {
                return Err(bad(
                    field("playbook"),
                    format!("{} must be left out for a global budget", field("playbook")),
                ));
            }
            ("playbook", Some(name)) => {
                check_playbook_name(name).map_err(|err| bad(field("playbook"), err.message))?;
                BudgetScope::Playbook(name.clone())
            }
            ("playbook", None) => {
                return Err(bad(
                    field("playbook"),
                    format!("{} is required for scope playbook", field("playbook")),
                ));
            }
            (other, _) => {
                return Err(bad(
                    field("scope"),
                    format!("unknown scope {other:?}: expected global or playbook"),
                ));
            }
        };
        let period: Period = b
            .period
            .parse()
            .map_err(|err: workflows::budget::BudgetError| bad(field("period"), err.to_string()))?;
        let dollars = match b.dollars {
            Some(d) if !(d.is_finite() && d > 0.0) => {
                return Err(bad(
                    field("dollars"),
                    format!("{} must be an amount above 0, not {d}", field("dollars")),
                ));
            }
            Some(d) if MicroDollars::from_dollars(d) == MicroDollars::ZERO => {
                return Err(bad(
                    field("dollars"),
                    format!("{} must be at least $0.000001", field("dollars")),
                ));
            }
            Some(d) if d > (i64::MAX / 1_000_000) as f64 => {
                return Err(bad(
                    field("dollars"),
                    format!("{} is too large: {d}", field("dollars")),
                ));
            }
            d => d.map(MicroDollars::from_dollars),
        };
        let tokens = match b.tokens {
            Some(t) if t == 0 || t > i64::MAX as u64 => {
                return Err(bad(
                    field("tokens"),
                    format!(
                        "{} must be from 1 to {}, not {t}",
                        field("tokens"),
                        i64::MAX
                    ),
                ));
            }
            t => t,
        };
        if dollars.is_none() && tokens.is_none() {
            return Err(bad(
                field("dollars"),
                format!("budgets[{i}] sets no limit: give dollars, tokens or both"),
            ));
        }
        if budgets
            .iter()
            .any(|known| known.scope == scope && known.period == period)
        {
            return Err(bad(
                field("period"),
                format!(
                    "budgets[{i}] repeats the {} budget of its scope; give each scope and period once",
                    b.period
                ),
            ));
        }
        budgets.push(PeriodBudget {
            scope,
            period,
            budget: Budget { dollars, tokens },
        });
    }
    Ok(budgets)
}

/// Admission's check against the period budgets: a task whose playbook's (or the global)
/// budget is spent in the current window is refused before anything is recorded.
pub(crate) async fn admit_within_period_budgets(
    store: &Store,
    spec: &TaskSpec,
) -> Result<(), ApiError> {
    let playbook = spec.playbook.as_ref().map(|p| p.name.as_str());
    match store.spent_period_budget(playbook, Utc::now()).await? {
        Some(spent) => Err(period_budget_spent(&spent)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(budgets: serde_json::Value) -> BudgetsInput {
        serde_json::from_value(serde_json::json!({ "budgets": budgets })).unwrap()
    }

    #[test]
    fn bad_budgets_name_their_field() {
        let cases = [
            (
                serde_json::json!([{"scope": "team", "period": "day", "dollars": 1}]),
                "budgets[0].scope",
            ),
            (
                serde_json::json!([{"scope": "global", "period": "yearly", "dollars": 1}]),
                "budgets[0].period",
            ),
            (
                serde_json::json!([{"scope": "global", "period": "sprint:2026-11-02:0", "dollars": 1}]),
                "budgets[0].period",
            ),
            (
                serde_json::json!([{"scope": "global", "period": "day"}]),
                "budgets[0].dollars",
            ),
            (
                serde_json::json!([{"scope": "global", "period": "day", "dollars": -1}]),
                "budgets[0].dollars",
            ),
            (
                serde_json::json!([{"scope": "global", "period": "day", "tokens": 0}]),
                "budgets[0].tokens",
            ),
            (
                serde_json::json!([{"scope": "global", "playbook": "x", "period": "day", "tokens": 1}]),
                "budgets[0].playbook",
            ),
            (
                serde_json::json!([{"scope": "playbook", "period": "day", "tokens": 1}]),
                "budgets[0].playbook",
            ),
            (
                serde_json::json!([{"scope": "playbook", "playbook": "../etc", "period": "day", "tokens": 1}]),
                "budgets[0].playbook",
            ),
            (
                serde_json::json!([
                    {"scope": "global", "period": "day", "tokens": 1},
                    {"scope": "global", "period": "day", "dollars": 2},
                ]),
                "budgets[1].period",
            ),
        ];
        for (budgets, field) in cases {
            let err = validate(&input(budgets.clone())).unwrap_err();
            assert_eq!(
                (err.status, err.field.as_deref()),
                (StatusCode::BAD_REQUEST, Some(field)),
                "{budgets}: {err}"
            );
        }
    }

    #[test]
    fn good_budgets_are_taken_exactly() {
        let budgets = validate(&input(serde_json::json!([
            {"scope": "global", "period": "month", "dollars": 0.1},
            {"scope": "playbook", "playbook": "fix-test", "period": "sprint:2026-11-02:14", "tokens": 5000},
            {"scope": "playbook", "playbook": "fix-test", "period": "day", "dollars": 2.5, "tokens": 10},
        ])))
        .unwrap();
        assert_eq!(budgets.len(), 3);
        assert_eq!(budgets[0].budget.dollars, Some(MicroDollars(100_000)));
        assert_eq!(
            budgets[1].scope,
            BudgetScope::Playbook("fix-test".to_string())
        );
        assert_eq!(budgets[1].budget.tokens, Some(5000));
        assert_eq!(budgets[2].period, Period::Day);
    }
}
