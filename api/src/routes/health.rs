//! `GET /healthz`, `GET /readyz` and `GET /openapi.json`: the service describing itself.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use temporalio_client::tonic;
use temporalio_common::protos::temporal::api::workflowservice::v1::GetSystemInfoRequest;
use utoipa::ToSchema;

use crate::SharedState;
use crate::dto::Health;
use crate::error::{ApiError, ErrorBody};

/// A dependency that does not answer within this long counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What `GET /readyz` answers: whether the service can do its work now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: String,
    /// The Temporal frontend answered.
    pub temporal: bool,
    /// The app database answered.
    pub database: bool,
    /// Why not, for each dependency that did not answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.temporal && self.database
    }
}

/// Asks Temporal (`GetSystemInfo`) and the database (a read by primary key) whether they
/// answer; shared by the API's and the worker's `/readyz`.
pub async fn readiness(client: &temporalio_client::Client, store: &store::Store) -> Readiness {
    let mut problems = Vec::new();
    let mut service = client.connection().workflow_service();
    let temporal = match tokio::time::timeout(
        PROBE_TIMEOUT,
        service.get_system_info(tonic::Request::new(GetSystemInfoRequest::default())),
    )
    .await
    {
        Ok(Ok(_)) => true,
        Ok(Err(status)) => {
            problems.push(format!("temporal: {}", status.message()));
            false
        }
        Err(_) => {
            problems.push(format!("temporal: no answer within {PROBE_TIMEOUT:?}"));
            false
        }
    };
    let database = match tokio::time::timeout(PROBE_TIMEOUT, store.task("readyz-probe")).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            problems.push(format!("database: {err}"));
            false
        }
        Err(_) => {
            problems.push(format!("database: no answer within {PROBE_TIMEOUT:?}"));
            false
        }
    };
    let status = if temporal && database {
        "ready"
    } else {
        "not_ready"
    };
    Readiness {
        status: status.to_string(),
        temporal,
        database,
        problems,
    }
}

/// Readiness: Temporal and the app database both answer (503 `not_ready` otherwise, saying
/// which does not).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = super::SERVICE,
    responses(
        (status = 200, description = "Temporal and the database answer", body = Readiness),
        (status = 503, description = "Temporal or the database does not answer", body = ErrorBody),
    ),
)]
pub async fn readyz(State(state): State<SharedState>) -> Result<Json<Readiness>, ApiError> {
    let readiness = readiness(&state.client, &state.store).await;
    if readiness.is_ready() {
        Ok(Json(readiness))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            readiness.problems.join("; "),
        ))
    }
}

/// Liveness: answers while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = super::SERVICE,
    responses((status = 200, description = "The API is up", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_string(),
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = super::SERVICE,
    responses((status = 200, description = "The OpenAPI document of this API", content_type = "application/json")),
)]
pub async fn openapi_json(
    Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(doc.as_ref().clone())
}
