//! `POST /v1/webhooks/github`: GitHub's deliveries. The raw body is read within a size limit,
//! its signature verified, its delivery id de-duplicated, and only then is it parsed and acted
//! on (`github::webhook`); anything refused before that has no side effect.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};

use crate::SharedState;
use crate::error::{ApiError, ErrorBody};
use crate::github::client::Client;
use crate::github::webhook::{self, Delivery, WebhookAnswer};
use crate::github::{GithubSettings, signature};

/// GitHub caps deliveries at 25 MB; the events Errand reads are a few tens of kilobytes.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
const MAX_DELIVERY_ID_LEN: usize = 100;

/// Receive a GitHub webhook delivery.
///
/// Signed with `X-Hub-Signature-256` (HMAC-SHA256 of the body under the secret named by
/// `[github] webhook_secret_env`); a delivery id already acted on is answered `duplicate`.
/// Acts on `ping`, `issues` (routed labels, approval label), `issue_comment` (`/errand
/// approve`, follow-ups on a task's PR), `pull_request` (maps a task branch's PR) and
/// `pull_request_review` (approve, request changes).
#[utoipa::path(
    post,
    path = "/v1/webhooks/github",
    tag = super::TRIGGERS,
    params(
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<hex HMAC of the body>"),
        ("X-GitHub-Event" = String, Header, description = "The event name"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's unique id"),
    ),
    request_body(content = String, content_type = "application/json", description = "GitHub's event payload"),
    responses(
        (status = 200, description = "What Errand did with the delivery", body = WebhookAnswer),
        (status = 400, description = "Missing event or delivery header, or a payload that is not the event's JSON", body = ErrorBody),
        (status = 401, description = "Unsigned, or the signature does not match", body = ErrorBody),
        (status = 404, description = "GitHub webhooks are not configured", body = ErrorBody),
        (status = 413, description = "Payload larger than 1 MiB", body = ErrorBody),
        (status = 422, description = "The routed playbook or repository cannot run", body = ErrorBody),
        (status = 502, description = "GitHub's API did not answer a permission check", body = ErrorBody),
        (status = 503, description = "Temporal did not take the task or decision, or the secret is not set", body = ErrorBody),
    ),
)]
pub async fn github_webhook(
    State(state): State<SharedState>,
    settings: Option<Extension<Arc<GithubSettings>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let Some(Extension(settings)) = settings else {
        return Err(ApiError::not_found(
            "GitHub webhooks are not configured ([github])",
        ));
    };
    let secret = std::env::var(&settings.webhook_secret_env)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            tracing::error!(variable = %settings.webhook_secret_env, "the GitHub webhook secret is not set");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "github_not_configured",
                "the webhook secret is not set on the server",
            )
        })?;
    let body = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the payload is larger than {MAX_PAYLOAD_BYTES} bytes"),
            )
        })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    signature::verify(secret.as_bytes(), &body, header("x-hub-signature-256"))
        .map_err(|err| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", err.to_string()))?;
    let event = header("x-github-event")
        .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .ok_or_else(|| {
            ApiError::bad_parameter(
                "X-GitHub-Event",
                "X-GitHub-Event is missing or not an event name",
            )
        })?;
    let delivery_id = header("x-github-delivery")
        .filter(|d| {
            !d.is_empty()
                && d.len() <= MAX_DELIVERY_ID_LEN
                && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .ok_or_else(|| {
            ApiError::bad_parameter(
                "X-GitHub-Delivery",
                "X-GitHub-Delivery is missing or not a delivery id",
            )
        })?;
    if state.store.delivery_seen(delivery_id).await? {
        return Ok(Json(WebhookAnswer::new(
            "duplicate",
            None,
            format!("delivery {delivery_id} was acted on already"),
        )));
    }
    let token = settings.token();
    let delivery = Delivery {
        state: &state,
        settings: &settings,
        github: Client::new(&settings.api_url, token),
        id: delivery_id,
    };
    // Recorded only once acted on: a delivery that failed (5xx) may be redelivered. Acting
    // twice on concurrent duplicates is harmless: task ids, decisions and follow-ups are
    // idempotent by construction.
    let answer = webhook::handle(&delivery, event, &body).await?;
    state
        .store
        .record_delivery(delivery_id, event, &answer.status)
        .await?;
    tracing::info!(delivery = delivery_id, event, status = %answer.status, "GitHub delivery");
    Ok(Json(answer))
}
