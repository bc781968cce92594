//! `GET /healthz` and `GET /openapi.json`: the service describing itself.

use std::sync::Arc;

use axum::{Extension, Json};

use crate::dto::Health;

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
