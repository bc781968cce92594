//! `/v1/playbooks`: list the playbooks, read one, and run one as a task.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use workflows::playbook::{Playbook, content_hash};

use crate::SharedState;
use crate::admission::{check_playbook_name, playbook_error, playbook_task_spec};
use crate::dto::{PlaybookRunRequest, PlaybookSummary, PlaybookView, TaskState};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::{playbook_files, task_id, trigger};

/// List the playbooks.
#[utoipa::path(
    get,
    path = "/v1/playbooks",
    tag = super::PLAYBOOKS,
    responses((status = 200, description = "Every playbook, by name; one that does not parse carries its error", body = Vec<PlaybookSummary>)),
)]
pub async fn list_playbooks(
    State(state): State<SharedState>,
) -> Result<Json<Vec<PlaybookSummary>>, ApiError> {
    Ok(Json(playbook_files::list(&state.playbooks_dir).await?))
}

/// Read a playbook as the API would run it now, with the hash that pins its revision.
#[utoipa::path(
    get,
    path = "/v1/playbooks/{name}",
    tag = super::PLAYBOOKS,
    params(("name" = String, Path, description = "Playbook name: the file name without .yaml", pattern = "^[a-z0-9-]+$")),
    responses(
        (status = 200, description = "The playbook", body = PlaybookView),
        (status = 400, description = "Not a valid playbook name", body = ErrorBody),
        (status = 404, description = "No such playbook", body = ErrorBody),
        (status = 422, description = "The playbook file does not parse", body = ErrorBody),
    ),
)]
pub async fn get_playbook(
    State(state): State<SharedState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PlaybookView>, ApiError> {
    let content = playbook_files::read(&state.playbooks_dir, &name).await?;
    let playbook =
        Playbook::parse(&playbook_files::file_name(&name), &content).map_err(playbook_error)?;
    Ok(Json(PlaybookView::new(playbook, content_hash(&content))))
}

/// Run a playbook as a task.
///
/// The playbook is resolved against the inputs now and travels, pinned by its content hash,
/// inside the workflow's input. The request may name an agent and lower the playbook's budget,
/// never raise it. `Idempotency-Key` works as for `POST /v1/tasks`.
#[utoipa::path(
    post,
    path = "/v1/playbooks/{name}/runs",
    tag = super::PLAYBOOKS,
    params(
        ("name" = String, Path, description = "Playbook name", pattern = "^[a-z0-9-]+$"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "Makes the request idempotent: the same key always names the same task"),
    ),
    request_body = PlaybookRunRequest,
    responses(
        (status = 201, description = "The task was admitted and its workflow started", body = TaskState,
            headers(("Location" = String, description = "The task's URL"))),
        (status = 200, description = "The key names an existing task; nothing new was started", body = TaskState,
            headers(("Location" = String, description = "The task's URL"))),
        (status = 400, description = "Malformed JSON, bad playbook name or bad Idempotency-Key", body = ErrorBody),
        (status = 404, description = "No such playbook", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The playbook does not parse or resolve, a field is invalid, or the repository or branch is unreachable", body = ErrorBody),
        (status = 503, description = "Temporal did not take the workflow", body = ErrorBody),
    ),
)]
pub async fn run_playbook(
    State(state): State<SharedState>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PlaybookRunRequest>,
) -> Result<Response, ApiError> {
    check_playbook_name(&name)?;
    let id = task_id::for_request(&headers)?;
    let content = playbook_files::read(&state.playbooks_dir, &name).await?;
    let playbook =
        Playbook::parse(&playbook_files::file_name(&name), &content).map_err(playbook_error)?;
    let resolved = playbook
        .resolve(&content, &request.inputs)
        .map_err(playbook_error)?;
    let spec = playbook_task_spec(id, request, resolved)?;
    trigger::admit_and_start(&state, spec).await
}
