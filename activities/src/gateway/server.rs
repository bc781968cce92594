//! The gateway's HTTP routes and what happens to one model call: the token names the run, the
//! price table must know the model, the loop guard and the cost guard must let it through;
//! then it goes upstream, and its usage, priced, goes to the ledger. Every refusal is answered
//! in the API's own error shape, so the agent prints it, and is recorded too.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use workflows::cost::{MicroDollars, PriceTable, Usage};

use crate::cost_guard::{CallContext, CallRecord, CostGuard, Refusal};

use super::metrics::GatewayMetrics;
use super::sse::EventReader;
use super::tokens::TokenRegistry;
use super::upstream::{FORWARDED_RESPONSE, Upstreams};
use super::{Flavor, anthropic, loop_guard, openai};

/// A non-streaming upstream answer larger than this is cut off (a chat completion is rarely a
/// megabyte).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

pub(super) struct Shared {
    pub tokens: TokenRegistry,
    pub guard: Arc<dyn CostGuard>,
    pub upstreams: Upstreams,
    pub prices: PriceTable,
    pub loop_guard_repeats: u32,
    pub max_body_bytes: usize,
    pub metrics: GatewayMetrics,
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .fallback(not_found)
        .with_state(shared)
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    shared.call(Flavor::OpenAi, headers, body).await
}

async fn messages(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    shared.call(Flavor::Anthropic, headers, body).await
}

async fn not_found() -> Response {
    let message = "the model gateway serves POST /v1/chat/completions and POST /v1/messages";
    reply(
        StatusCode::NOT_FOUND,
        openai::error_body("invalid_request_error", "not_found", message),
    )
}

/// An error answer: its status, its kind (the error `type`) and code, and the message.
struct Failure {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        Self {
            status,
            kind,
            code,
            message,
        }
    }

    fn into_response(self, flavor: Flavor) -> Response {
        let body = match flavor {
            Flavor::OpenAi => openai::error_body(self.kind, self.code, &self.message),
            Flavor::Anthropic => anthropic::error_body(self.kind, &self.message),
        };
        reply(self.status, body)
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// HTTP 402 naming the spent budget: the refusal's own fields at the top, and the API's error
/// object (so the agent's SDK shows the message).
fn refused(flavor: Flavor, refusal: &Refusal) -> Response {
    let mut body = match flavor {
        Flavor::OpenAi => openai::error_body("budget_exceeded", &refusal.budget, &refusal.message),
        Flavor::Anthropic => anthropic::error_body("billing_error", &refusal.message),
    };
    if let Some(object) = body.as_object_mut() {
        object.insert("budget".into(), Value::String(refusal.budget.clone()));
        object.insert("message".into(), Value::String(refusal.message.clone()));
    }
    reply(StatusCode::PAYMENT_REQUIRED, body)
}

/// The token the agent presents as its API key, however its SDK sends it.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let api_key = headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok());
    bearer.or(api_key).map(str::trim)
}

impl Shared {
    async fn call(self: Arc<Self>, flavor: Flavor, headers: HeaderMap, body: Body) -> Response {
        match self.try_call(flavor, headers, body).await {
            Ok(response) => response,
            Err(failure) => failure.into_response(flavor),
        }
    }

    async fn try_call(
        self: &Arc<Self>,
        flavor: Flavor,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response, Failure> {
        let unauthorized = || {
            self.metrics.refusal("unauthorized");
            let kind = match flavor {
                Flavor::OpenAi => "invalid_request_error",
                Flavor::Anthropic => "authentication_error",
            };
            Failure::new(
                StatusCode::UNAUTHORIZED,
                kind,
                "invalid_api_key",
                "model gateway: unknown or revoked task token (use the API key Errand gave \
                 this run)"
                    .into(),
            )
        };
        let token = presented_token(&headers)
            .ok_or_else(unauthorized)?
            .to_owned();
        if !self.tokens.is_live(&token) {
            return Err(unauthorized());
        }
        let body = self.read_body(&headers, body).await?;
        let Some((call, repeats)) = self.tokens.begin_call(&token, &body) else {
            return Err(unauthorized());
        };
        let mut request: Value = serde_json::from_slice(&body).map_err(|err| {
            Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                format!("model gateway: the request body is not JSON: {err}"),
            )
        })?;
        let model = request
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "missing_model",
                    "model gateway: the request names no model".into(),
                )
            })?;
        let Some(upstream) = self.upstreams.get(flavor) else {
            return Err(Failure::new(
                StatusCode::NOT_FOUND,
                "not_found_error",
                "no_upstream",
                format!(
                    "model gateway: no upstream is configured for the {} API",
                    flavor.name()
                ),
            ));
        };
        let Some(price) = self.prices.price(&model).copied() else {
            self.metrics.call(&model, "unpriced");
            self.metrics.refusal("unpriced_model");
            tracing::warn!(task_id = %call.task_id, %model, "model call refused: the model has no price");
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "model_not_priced",
                format!(
                    "model gateway: model {model:?} is not in the price table, so its cost \
                     cannot be bounded; use a priced model"
                ),
            ));
        };
        let refusal = match loop_guard::check(self.loop_guard_repeats, repeats) {
            Some(refusal) => Some(refusal),
            None => self.guard.admit(&call).await.err(),
        };
        if let Some(refusal) = refusal {
            return Ok(self.refuse(flavor, &token, &call, &model, refusal).await);
        }

        let changed = match flavor {
            Flavor::OpenAi => openai::request_usage(&mut request),
            Flavor::Anthropic => false,
        };
        let body = if changed {
            serde_json::to_vec(&request).expect("a parsed JSON value serializes")
        } else {
            body.to_vec()
        };
        let mut response = match self.upstreams.send(flavor, upstream, body, &headers).await {
            Ok(response) => response,
            Err(err) => {
                self.metrics.call(&model, "upstream_error");
                tracing::warn!(task_id = %call.task_id, %model, error = %err, "model call failed upstream");
                return Err(Failure::new(
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    "upstream_unreachable",
                    format!(
                        "model gateway: the {} upstream did not answer",
                        flavor.name()
                    ),
                ));
            }
        };
        let status =
            StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut reply_headers = HeaderMap::new();
        for name in FORWARDED_RESPONSE {
            if let Some(value) = response.headers().get(*name) {
                reply_headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
        let is_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let meter = Meter {
            shared: Arc::clone(self),
            call,
            model,
            price,
            upstream_ok: status.is_success(),
        };

        if !is_stream {
            let mut bytes = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            let usage =
                serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|answer| match flavor {
                        Flavor::OpenAi => openai::usage(&answer),
                        Flavor::Anthropic => anthropic::usage(&answer),
                    });
            meter.record(usage).await;
            return Ok((status, reply_headers, bytes).into_response());
        }

        // A stream goes to the agent chunk by chunk as it arrives; its usage is read on the
        // way and recorded when it ends (or the agent hangs up).
        let (mut sender, receiver) =
            futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
        tokio::spawn(async move {
            let mut reader = EventReader::default();
            let mut openai_usage = openai::StreamUsage::default();
            let mut anthropic_usage = anthropic::StreamUsage::default();
            loop {
                let chunk = match response.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(err) => {
                        let _ = sender.send(Err(std::io::Error::other(err))).await;
                        break;
                    }
                };
                reader.feed(&chunk, |event| match flavor {
                    Flavor::OpenAi => openai_usage.observe(&event),
                    Flavor::Anthropic => anthropic_usage.observe(&event),
                });
                if sender.send(Ok(chunk)).await.is_err() {
                    // The agent hung up: dropping the response stops the upstream stream.
                    break;
                }
            }
            drop(sender);
            let usage = match flavor {
                Flavor::OpenAi => openai_usage.finish(),
                Flavor::Anthropic => anthropic_usage.finish(),
            };
            meter.record(usage).await;
        });
        Ok((status, reply_headers, Body::from_stream(receiver)).into_response())
    }

    async fn refuse(
        &self,
        flavor: Flavor,
        token: &str,
        call: &CallContext,
        model: &str,
        refusal: Refusal,
    ) -> Response {
        self.metrics.call(model, "refused");
        self.metrics.refusal(&refusal.budget);
        tracing::info!(task_id = %call.task_id, round = call.round, %model, budget = %refusal.budget, "model call refused");
        self.tokens.note_refusal(token, &refusal);
        let response = refused(flavor, &refusal);
        let record = CallRecord {
            model: model.to_owned(),
            usage: Usage::default(),
            cost: MicroDollars::ZERO,
            refused: Some(refusal),
        };
        self.guard.record(call, record).await;
        response
    }

    /// The request body, at most `max_body_bytes` of it.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Failure> {
        let limit = self.max_body_bytes;
        let too_large = || {
            self.metrics.refusal("too_large");
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                "request_too_large",
                format!("model gateway: the request body is larger than {limit} bytes"),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    "broken_body",
                    format!("model gateway: reading the request body: {err}"),
                )
            })?;
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(bytes))
    }
}

/// Prices a forwarded call's usage and records it.
struct Meter {
    shared: Arc<Shared>,
    call: CallContext,
    model: String,
    price: workflows::cost::ModelPrice,
    upstream_ok: bool,
}

impl Meter {
    async fn record(self, usage: Option<Usage>) {
        let outcome = if self.upstream_ok {
            "ok"
        } else {
            "upstream_status"
        };
        let metrics = &self.shared.metrics;
        metrics.call(&self.model, outcome);
        if usage.is_none() && self.upstream_ok {
            tracing::warn!(task_id = %self.call.task_id, model = %self.model, "a model call reported no usage");
        }
        let usage = usage.unwrap_or_default();
        metrics.usage(&self.model, &usage);
        let record = CallRecord {
            cost: self.price.cost(&usage),
            model: self.model,
            usage,
            refused: None,
        };
        self.shared.guard.record(&self.call, record).await;
    }
}
