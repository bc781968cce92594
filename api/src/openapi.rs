//! The OpenAPI document and the routes it describes, assembled in one place so that the
//! served API and the committed `api/openapi.json` cannot drift apart.

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::SharedState;
use crate::routes::{COST, budgets, cost};
use crate::routes::{CRASHES, crashes};
use crate::routes::{PLAYBOOKS, SERVICE, TASKS, health, playbooks, reviews, tasks};
use crate::routes::{SCHEDULES, schedules};
use crate::routes::{TRIGGERS, github};
use crate::routes::{events, history, metrics, report, stats};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Errand API",
        description = "Errand runs coding agents on bounded tasks as durable Temporal workflows. \
            Trigger tasks (ad hoc or from playbooks), follow them, review their work and cancel them. \
            Every error answers `{\"error\": {\"code\", \"message\", \"field\"?}}`.",
    ),
    tags(
        (name = TASKS, description = "Tasks: trigger, read, list, review, cancel"),
        (name = PLAYBOOKS, description = "Playbooks: versioned task recipes, and running them"),
        (name = SERVICE, description = "The service itself"),
        (name = COST, description = "Cost: the ledger of each task, costs over time, period budgets"),
        (name = CRASHES, description = "Crash reports: ingest, de-duplicate into groups, investigate"),
        (name = TRIGGERS, description = "Triggers from other systems: GitHub webhooks"),
        (name = SCHEDULES, description = "Cron schedules: playbooks run on a timetable, paused after repeated failures"),
    ),
)]
struct ApiDoc;

/// Every documented route, without state.
pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tasks::create_task, tasks::list_tasks))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::cancel_task))
        .routes(routes!(reviews::review_task))
        .routes(routes!(playbooks::list_playbooks))
        .routes(routes!(playbooks::get_playbook))
        .routes(routes!(playbooks::run_playbook))
        .routes(routes!(history::get_history))
        .routes(routes!(events::task_events))
        .routes(routes!(report::get_report))
        .routes(routes!(stats::get_stats))
        .routes(routes!(cost::get_task_cost))
        .routes(routes!(cost::get_cost))
        .routes(routes!(cost::get_estimate))
        .routes(routes!(budgets::get_budgets, budgets::put_budgets))
        .routes(routes!(metrics::metrics))
        .routes(routes!(crashes::ingest_crash, crashes::list_crashes))
        .routes(routes!(crashes::get_crash))
        .routes(routes!(
            schedules::list_schedules,
            schedules::create_schedule
        ))
        .routes(routes!(schedules::get_schedule, schedules::delete_schedule))
        .routes(routes!(schedules::pause_schedule))
        .routes(routes!(schedules::resume_schedule))
        .routes(routes!(schedules::trigger_schedule))
        .routes(routes!(schedules::check_cron))
        .routes(routes!(github::github_webhook))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::openapi_json))
}

/// The OpenAPI document of the API (committed as `api/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}
