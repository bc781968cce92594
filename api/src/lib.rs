//! Errand's REST API: triggers tasks (ad hoc or from playbooks), reads them from the store,
//! and delivers review decisions and cancels to their workflows.
//!
//! It talks to Temporal and the store only, and never runs agent side effects (ARCHITECTURE.md,
//! invariant 3). [`router`] is the seam between a binary and tests; [`openapi`] the contract.

pub mod admission;
mod crash_intake;
pub mod dto;
pub mod error;
mod extract;
pub mod github;
mod openapi;
pub mod playbook_files;
mod policy_decisions;
pub mod repo_check;
mod routes;
pub mod schedules;
pub mod task_id;
mod task_metrics;
mod task_stats;
mod temporal;
mod timeline;
mod trigger;

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use crash_intake::{CrashService, CrashSettings};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use openapi::openapi;
/// Readiness of Temporal and the database, shared with the worker's own `/readyz`.
pub use routes::health::{Readiness, readiness};

/// What the handlers share.
pub struct ApiState {
    pub client: temporalio_client::Client,
    pub store: store::Store,
    /// Where `<name>.yaml` playbooks are read from, on every request (edits apply to new runs).
    pub playbooks_dir: PathBuf,
    /// The Temporal UI's base URL, for links to a task's workflow; None hides the links.
    pub temporal_ui_url: Option<String>,
    /// The Temporal namespace the client uses, for those links.
    pub namespace: String,
}

pub(crate) type SharedState = Arc<ApiState>;

/// The whole API: every route, `GET /openapi.json` and `GET /healthz`, with request tracing,
/// JSON answers for unknown routes and methods, and panics answered as 500.
pub fn router(state: ApiState) -> axum::Router {
    let state = Arc::new(state);
    // The crash intake's writer and outbox sender (which also sends what a previous process
    // left undelivered).
    crash_intake::start_intake(&state);
    let (router, doc) = openapi::routes().split_for_parts();
    router
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(Extension(Arc::new(doc)))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The `[crashes]` configuration: where crashes of each service are investigated when
/// `POST /v1/crashes` names no repository or agent.
pub fn with_crash_settings(router: axum::Router, settings: CrashSettings) -> axum::Router {
    router.layer(Extension(Arc::new(settings)))
}

/// The API as a server runs it: [`router`], with the schedule watcher started (it syncs the
/// playbooks' schedules first), and GitHub webhooks answered and the GitHub reporter started
/// (`github::reporter`: comments and PRs for tasks started from issues) when `[github]` is
/// configured.
pub fn router_with_triggers(
    state: ApiState,
    github: Option<github::GithubSettings>,
) -> axum::Router {
    schedules::watcher::spawn(
        state.client.clone(),
        state.store.clone(),
        state.playbooks_dir.clone(),
    );
    let store = state.store.clone();
    let router = router(state);
    match github {
        Some(settings) => {
            let settings = Arc::new(settings);
            github::reporter::spawn(store, settings.clone());
            router.layer(Extension(settings))
        }
        None => router,
    }
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = %what, "handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; see the server log",
    )
    .into_response()
}
