//! The model gateway between a fake upstream that speaks the real OpenAI and Anthropic wire
//! formats (JSON and server-sent events) and a client holding only a task token, with an
//! in-memory cost guard: keys, usage, prices, refusals, the loop guard, limits, streaming; and
//! one agent inside the real sandbox reaching the gateway through its bridge.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use activities::cost_guard::{CallContext, CallRecord, CostGuard, GuardFuture, Refusal};
use activities::gateway::{Gateway, GatewayConfig, GatewayHandle, TokenLease, Upstream};
use activities::sandbox::{Exit, Limits, Sandbox, SandboxSpec};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use workflows::cost::{MicroDollars, ModelPrice, PriceTable, Usage};

const TEST_BOUND: Duration = Duration::from_secs(60);
const OPENAI_KEY: &str = "sk-upstream-openai-secret";
const ANTHROPIC_KEY: &str = "sk-ant-upstream-secret";

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

// --- the in-memory cost guard ----------------------------------------------------------------

#[derive(Default)]
struct MemoryGuard {
    /// Refuse every call with this, when set.
    refuse: Mutex<Option<Refusal>>,
    records: watch::Sender<Vec<(CallContext, CallRecord)>>,
}

impl CostGuard for MemoryGuard {
    fn admit<'a>(&'a self, _call: &'a CallContext) -> GuardFuture<'a, Result<(), Refusal>> {
        let refusal = self.refuse.lock().unwrap().clone();
        Box::pin(async move { refusal.map_or(Ok(()), Err) })
    }

    fn record<'a>(&'a self, call: &'a CallContext, record: CallRecord) -> GuardFuture<'a, ()> {
        self.records
            .send_modify(|records| records.push((call.clone(), record)));
        Box::pin(async {})
    }
}

impl MemoryGuard {
    /// The records once there are `n` of them (a stream is recorded after its last byte).
    async fn records(&self, n: usize) -> Vec<(CallContext, CallRecord)> {
        let mut receiver = self.records.subscribe();
        receiver
            .wait_for(|records| records.len() >= n)
            .await
            .expect("the guard lives")
            .clone()
    }
}

// --- the fake upstream -------------------------------------------------------------------------

/// What the upstream received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone, Default)]
struct FakeUpstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// When set, a stream sends its first event, then waits for a permit before the rest.
    gate: Option<Arc<Semaphore>>,
}

const OPENAI_ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-test-2025","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from upstream","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1200,"completion_tokens":300,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":200,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_1"}"#;

/// A chat completion stream as OpenAI sends it; `usage` fields and the usage chunk only when
/// the request asked for them (`stream_options.include_usage`).
fn openai_stream(include_usage: bool) -> Vec<String> {
    let usage_null = if include_usage {
        r#","usage":null"#
    } else {
        ""
    };
    let chunk = |choice: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-test-2025\",\"system_fingerprint\":\"fp_1\",\"choices\":[{choice}]{usage_null}}}\n\n"
        )
    };
    let mut events = vec![
        chunk(
            r#"{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}"#,
        ),
        chunk(r#"{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}"#),
        chunk(r#"{"index":0,"delta":{"content":" there"},"logprobs":null,"finish_reason":null}"#),
        chunk(r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}"#),
    ];
    if include_usage {
        events.push("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-test-2025\",\"system_fingerprint\":\"fp_1\",\"choices\":[],\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":300,\"total_tokens\":1500,\"prompt_tokens_details\":{\"cached_tokens\":200,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n".into());
    }
    events.push("data: [DONE]\n\n".into());
    events
}

const ANTHROPIC_ANSWER: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-test-2025","content":[{"type":"text","text":"Hello from upstream"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":50,"service_tier":"standard"}}"#;

fn anthropic_stream() -> Vec<String> {
    [
        ("message_start", r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-test-2025","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":1000,"cache_read_input_tokens":2000,"output_tokens":1,"service_tier":"standard"}}}"#),
        ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        ("ping", r#"{"type": "ping"}"#),
        ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#),
        ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#),
        ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
        ("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ]
    .iter()
    .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
    .collect()
}

impl FakeUpstream {
    async fn start(self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("upstream listener");
        let addr = listener.local_addr().expect("upstream addr");
        let app = Router::new()
            .route("/v1/chat/completions", post(Self::answer))
            .route("/v1/messages", post(Self::answer))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn answer(
        State(upstream): State<FakeUpstream>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let body: Value = serde_json::from_slice(&body).expect("the gateway forwards JSON");
        let path = uri.path().to_owned();
        upstream.seen.lock().unwrap().push(Seen {
            path: path.clone(),
            headers,
            body: body.clone(),
        });
        let openai = path == "/v1/chat/completions";
        if body["stream"] != true {
            let answer = if openai {
                OPENAI_ANSWER
            } else {
                ANTHROPIC_ANSWER
            };
            return ([("content-type", "application/json")], answer).into_response();
        }
        let events = if openai {
            openai_stream(body["stream_options"]["include_usage"] == true)
        } else {
            anthropic_stream()
        };
        let gate = upstream.gate.clone();
        let stream = futures::stream::unfold(0, move |i| {
            let (events, gate) = (events.clone(), gate.clone());
            async move {
                let event = events.get(i)?.clone();
                if i == 1
                    && let Some(gate) = gate
                {
                    gate.acquire().await.expect("gate open").forget();
                }
                Some((Ok::<_, Infallible>(Bytes::from(event)), i + 1))
            }
        });
        (
            [
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
            ],
            Body::from_stream(stream),
        )
            .into_response()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

// --- the gateway under test --------------------------------------------------------------------

struct Fixture {
    _dir: tempfile::TempDir,
    upstream: FakeUpstream,
    upstream_addr: SocketAddr,
    guard: Arc<MemoryGuard>,
    gateway: GatewayHandle,
    client: reqwest::Client,
}

fn prices() -> PriceTable {
    let mut prices = PriceTable::default();
    prices.models.insert(
        "gpt-test".into(),
        ModelPrice {
            input: 2_000_000,
            output: 8_000_000,
            cache_read: 500_000,
            cache_write: 0,
        },
    );
    prices.models.insert(
        "claude-test".into(),
        ModelPrice {
            input: 3_000_000,
            output: 15_000_000,
            cache_read: 300_000,
            cache_write: 3_750_000,
        },
    );
    prices
}

fn call(task: &str) -> CallContext {
    CallContext {
        task_id: task.into(),
        round: 2,
        playbook: Some("fix-crash".into()),
    }
}

impl Fixture {
    async fn new(change: impl FnOnce(&mut GatewayConfig)) -> Fixture {
        Self::with_upstream(FakeUpstream::default(), change).await
    }

    async fn with_upstream(
        upstream: FakeUpstream,
        change: impl FnOnce(&mut GatewayConfig),
    ) -> Fixture {
        // reqwest is built for TLS with a provider chosen by the binary; tests pick ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let addr = upstream.clone().start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = GatewayConfig::new(dir.path().join("gw/gateway.sock"), prices());
        config.tcp_listen = Some("127.0.0.1:0".parse().expect("addr"));
        config.openai = Some(Upstream {
            base_url: format!("http://{addr}/v1"),
            api_key: OPENAI_KEY.into(),
        });
        config.anthropic = Some(Upstream {
            base_url: format!("http://{addr}/"),
            api_key: ANTHROPIC_KEY.into(),
        });
        change(&mut config);
        let guard = Arc::new(MemoryGuard::default());
        let gateway = Gateway::start(config, guard.clone())
            .await
            .expect("gateway starts");
        Fixture {
            _dir: dir,
            upstream,
            upstream_addr: addr,
            guard,
            gateway,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gateway.tcp_addr().expect("tcp"))
    }

    fn lease(&self, task: &str) -> TokenLease {
        self.gateway.tokens().register(call(task)).expect("token")
    }

    /// An OpenAI-style call (`Authorization: Bearer`).
    async fn openai(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// An Anthropic-style call (`x-api-key`).
    async fn anthropic(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/messages"))
            .header("x-api-key", token)
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn message(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// The token appears nowhere in what the upstream received.
fn assert_token_stayed(seen: &Seen, token: &str) {
    for (name, value) in &seen.headers {
        let value = value.to_str().unwrap_or_default();
        assert!(
            !value.contains(token),
            "header {name} carries the task token"
        );
    }
    assert!(!seen.body.to_string().contains(token));
}

// --- tests ---------------------------------------------------------------------------------------

#[tokio::test]
async fn openai_call_goes_upstream_with_the_real_key_and_is_priced_exactly() {
    bounded(async {
        let fx = Fixture::new(|_| {}).await;
        let lease = fx.lease("t-openai");
        let response = fx.openai(lease.token(), &chat("gpt-test", false)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.expect("body"), OPENAI_ANSWER);

        let seen = fx.upstream.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/chat/completions");
        assert_eq!(
            seen[0].headers["authorization"],
            format!("Bearer {OPENAI_KEY}").as_str()
        );
        assert!(seen[0].headers.get("x-api-key").is_none());
        assert_token_stayed(&seen[0], lease.token());

        let records = fx.guard.records(1).await;
        let (whose, record) = &records[0];
        assert_eq!(whose, &call("t-openai"));
        assert_eq!(record.model, "gpt-test");
        assert_eq!(
            record.usage,
            Usage {
                input_tokens: 1000,
                output_tokens: 300,
                cache_read_tokens: 200,
                cache_write_tokens: 0
            }
        );
        // 1000 * $2/M + 300 * $8/M + 200 * $0.5/M = 2000 + 2400 + 100 micro-dollars.
        assert_eq!(record.cost, MicroDollars(4_500));
        assert_eq!(record.refused, None);
        let summary = lease.finish();
        assert_eq!((summary.calls, summary.refusal), (1, None));
    })
    .await;
}

#[tokio::test]
async fn anthropic_call_goes_upstream_with_x_api_key_and_version() {
    bounded(async {
        let fx = Fixture::new(|_| {}).await;
        let lease = fx.lease("t-anthropic");
        let response = fx
            .anthropic(lease.token(), &message("claude-test", false))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.expect("body"), ANTHROPIC_ANSWER);

        let seen = fx.upstream.seen();
        assert_eq!(seen[0].path, "/v1/messages");
        assert_eq!(seen[0].headers["x-api-key"], ANTHROPIC_KEY);
        assert_eq!(seen[0].headers["anthropic-version"], "2023-06-01");
        assert!(seen[0].headers.get("authorization").is_none());
        assert_token_stayed(&seen[0], lease.token());

        let records = fx.guard.records(1).await;
        let record = &records[0].1;
        assert_eq!(
            record.usage,
            Usage {
                input_tokens: 100,
                output_tokens: 50,
                ..Usage::default()
            }
        );
        // 100 * $3/M + 50 * $15/M = 300 + 750 micro-dollars.
        assert_eq!(record.cost, MicroDollars(1_050));
    })
    .await;
}

/// Reads a streamed response to its end, returning its chunks' bytes joined.
async fn read_rest(response: &mut reqwest::Response, mut bytes: Vec<u8>) -> Vec<u8> {
    while let Some(chunk) = response.chunk().await.expect("stream chunk") {
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// Reads a streamed response up to the end of its first event (the upstream sends nothing
/// more until the test lets it).
async fn read_first_event(response: &mut reqwest::Response) -> Vec<u8> {
    let mut bytes = Vec::new();
    while !bytes.windows(2).any(|window| window == b"\n\n") {
        let chunk = response
            .chunk()
            .await
            .expect("stream chunk")
            .expect("the stream goes on");
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

#[tokio::test]
async fn an_openai_stream_arrives_chunk_by_chunk_unchanged_and_its_usage_is_read() {
    bounded(async {
        let gate = Arc::new(Semaphore::new(0));
        let upstream = FakeUpstream {
            gate: Some(gate.clone()),
            ..FakeUpstream::default()
        };
        let fx = Fixture::with_upstream(upstream, |_| {}).await;
        let lease = fx.lease("t-stream");
        let mut response = fx.openai(lease.token(), &chat("gpt-test", true)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let events = openai_stream(true);
        // The upstream holds the rest back until the client has the first event: a gateway
        // that buffered the stream would never deliver it (and the test would time out).
        let first = read_first_event(&mut response).await;
        assert_eq!(String::from_utf8_lossy(&first), events[0]);
        gate.add_permits(1);
        let all = read_rest(&mut response, first).await;
        assert_eq!(String::from_utf8(all).expect("utf-8"), events.concat());

        let seen = fx.upstream.seen();
        assert_eq!(
            seen[0].body["stream_options"]["include_usage"], true,
            "the gateway asks a stream for its usage"
        );
        assert_eq!(seen[0].body["messages"][0]["content"], "hi");
        let records = fx.guard.records(1).await;
        assert_eq!(
            records[0].1.usage,
            Usage {
                input_tokens: 1000,
                output_tokens: 300,
                cache_read_tokens: 200,
                cache_write_tokens: 0
            }
        );
        assert_eq!(records[0].1.cost, MicroDollars(4_500));
    })
    .await;
}

#[tokio::test]
async fn an_anthropic_stream_arrives_unchanged_and_its_usage_is_read() {
    bounded(async {
        let gate = Arc::new(Semaphore::new(0));
        let upstream = FakeUpstream {
            gate: Some(gate.clone()),
            ..FakeUpstream::default()
        };
        let fx = Fixture::with_upstream(upstream, |_| {}).await;
        let lease = fx.lease("t-stream");
        let mut response = fx
            .anthropic(lease.token(), &message("claude-test", true))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let events = anthropic_stream();
        let first = read_first_event(&mut response).await;
        assert_eq!(String::from_utf8_lossy(&first), events[0]);
        gate.add_permits(1);
        let all = read_rest(&mut response, first).await;
        assert_eq!(String::from_utf8(all).expect("utf-8"), events.concat());

        let records = fx.guard.records(1).await;
        assert_eq!(
            records[0].1.usage,
            Usage {
                input_tokens: 25,
                output_tokens: 15,
                cache_read_tokens: 2000,
                cache_write_tokens: 1000
            }
        );
        // 25 * $3/M + 15 * $15/M + 2000 * $0.3/M + 1000 * $3.75/M = 75 + 225 + 600 + 3750.
        assert_eq!(records[0].1.cost, MicroDollars(4_650));
    })
    .await;
}

#[tokio::test]
async fn a_spent_budget_is_answered_402_naming_it_and_recorded() {
    bounded(async {
        let fx = Fixture::new(|_| {}).await;
        let refusal = Refusal {
            budget: "task_dollars".into(),
            message: "task budget of $2.000000 is spent".into(),
        };
        *fx.guard.refuse.lock().unwrap() = Some(refusal.clone());
        let lease = fx.lease("t-broke");

        let response = fx.openai(lease.token(), &chat("gpt-test", false)).await;
        assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["budget"], "task_dollars");
        assert_eq!(body["message"], refusal.message);
        assert_eq!(body["error"]["message"], refusal.message);
        assert_eq!(body["error"]["code"], "task_dollars");

        let response = fx
            .anthropic(lease.token(), &message("claude-test", true))
            .await;
        assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["type"], "error");
        assert_eq!(body["budget"], "task_dollars");
        assert_eq!(body["error"]["type"], "billing_error");

        assert!(fx.upstream.seen().is_empty(), "nothing went upstream");
        let records = fx.guard.records(2).await;
        for (whose, record) in &records {
            assert_eq!(whose.task_id, "t-broke");
            assert_eq!(record.refused.as_ref(), Some(&refusal));
            assert_eq!(
                (record.usage, record.cost),
                (Usage::default(), MicroDollars::ZERO)
            );
        }
        let summary = lease.finish();
        assert_eq!(summary.refusal, Some(refusal.clone()));
        assert_eq!(
            summary.budget_refusal().map(|r| r.budget),
            Some("task_dollars".into())
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_and_revoked_tokens_get_401() {
    bounded(async {
        let fx = Fixture::new(|_| {}).await;
        let lease = fx.lease("t-gone");
        let token = lease.token().to_owned();
        drop(lease);
        for token in [token.as_str(), "errand-gw-made-up", OPENAI_KEY] {
            let response = fx.openai(token, &chat("gpt-test", false)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
            let body: Value = response.json().await.expect("json");
            assert!(body["error"]["message"].as_str().unwrap().contains("token"));
            let response = fx.anthropic(token, &message("claude-test", false)).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let response = fx
            .client
            .post(fx.url("/v1/chat/completions"))
            .json(&chat("gpt-test", false))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "no key at all");
        assert!(fx.upstream.seen().is_empty());
        assert!(fx.guard.records.borrow().is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_loop_guard_refuses_the_nth_identical_request_in_a_row() {
    bounded(async {
        let fx = Fixture::new(|config| config.loop_guard_repeats = 3).await;
        let lease = fx.lease("t-loop");
        let same = chat("gpt-test", false);
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(fx.openai(lease.token(), &same).await.status().as_u16());
        }
        let other = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "else"}]});
        statuses.push(fx.openai(lease.token(), &other).await.status().as_u16());
        assert_eq!(statuses, [200, 200, 402, 402, 200]);
        assert_eq!(fx.upstream.seen().len(), 3);

        let records = fx.guard.records(5).await;
        let refused: Vec<Option<&str>> = records
            .iter()
            .map(|(_, record)| record.refused.as_ref().map(|r| r.budget.as_str()))
            .collect();
        let loops = refused.iter().filter(|r| **r == Some("loop_guard")).count();
        assert_eq!(loops, 2, "{refused:?}");
        assert_eq!(
            lease.finish().refusal.map(|r| r.budget),
            Some("loop_guard".into())
        );
    })
    .await;
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_an_unpriced_model_is_refused() {
    bounded(async {
        let fx = Fixture::new(|config| config.max_body_bytes = 4096).await;
        let lease = fx.lease("t-big");
        let big = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
        let response = fx.openai(lease.token(), &big).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body: Value = response.json().await.expect("json");
        assert!(body["error"]["message"].as_str().unwrap().contains("4096"));

        let response = fx.openai(lease.token(), &chat("gpt-unpriced", false)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "model_not_priced");
        assert!(body["error"]["message"].as_str().unwrap().contains("gpt-unpriced"));
        assert!(fx.upstream.seen().is_empty());

        let response = fx.openai(lease.token(), &chat("gpt-test", false)).await;
        assert_eq!(response.status(), StatusCode::OK, "a good call still goes through");
    })
    .await;
}

#[tokio::test]
async fn metrics_count_calls_refusals_and_tokens() {
    bounded(async {
        let fx = Fixture::new(|_| {}).await;
        let registry = prometheus::Registry::new();
        fx.gateway.metrics().register(&registry).expect("register");
        let lease = fx.lease("t-metrics");
        fx.openai(lease.token(), &chat("gpt-test", false)).await;
        fx.guard.records(1).await;
        fx.openai("errand-gw-nope", &chat("gpt-test", false)).await;
        let metrics = fx.gateway.metrics();
        assert_eq!(
            metrics.calls.with_label_values(&["gpt-test", "ok"]).get(),
            1
        );
        assert_eq!(
            metrics.refusals.with_label_values(&["unauthorized"]).get(),
            1
        );
        assert_eq!(
            metrics
                .tokens
                .with_label_values(&["gpt-test", "output"])
                .get(),
            300
        );
        assert_eq!(registry.gather().len(), 3);
    })
    .await;
}

// --- through the real sandbox --------------------------------------------------------------------

/// An agent inside bwrap reaches the gateway at 127.0.0.1:GATEWAY_PORT with the environment a
/// run gets, and gets the upstream's answer; the host's loopback (where the upstream listens)
/// stays unreachable.
#[tokio::test]
async fn an_agent_in_the_sandbox_reaches_the_gateway_and_nothing_else() {
    bounded(async {
        let fx = Fixture::new(|_| {}).await;
        let upstream_port = fx.upstream_addr.port();
        let sandbox = Sandbox::detect().await.expect("bwrap must work on the test host");
        let access = fx
            .gateway
            .open_run(call("t-sandbox"))
            .expect("token");
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = dir.path().join("workspace");
        std::fs::create_dir(&workspace).expect("workspace");
        let script = r#"
import json, os, socket, sys, urllib.request
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    data=json.dumps({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}).encode(),
    headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"},
)
answer = json.load(urllib.request.urlopen(request, timeout=20))
print("ANSWER", answer["choices"][0]["message"]["content"])
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    print("UPSTREAM REACHABLE")
except OSError:
    print("UPSTREAM UNREACHABLE")
"#;
        let spec = SandboxSpec {
            workspace,
            inputs_dir: None,
            argv: vec![
                "python3".into(),
                "-c".into(),
                script.into(),
                upstream_port.to_string(),
            ],
            env: access.env(),
            timeout: Duration::from_secs(40),
            log_path: dir.path().join("agent.log"),
            limits: Limits {
                // SAFETY: a plain syscall.
                workspace_write_bytes: if unsafe { libc::geteuid() } == 0 {
                    Limits::default().workspace_write_bytes
                } else {
                    None
                },
                ..Limits::default()
            },
            network: None,
            model_gateway: Some(access.socket().to_owned()),
        };
        let outcome = sandbox
            .spawn(&spec)
            .expect("spawn")
            .wait(std::future::pending())
            .await
            .expect("wait");
        assert_eq!(outcome.exit, Exit::Code(0), "{}", outcome.output_tail);
        assert!(
            outcome.output_tail.contains("ANSWER Hello from upstream"),
            "{}",
            outcome.output_tail
        );
        assert!(
            outcome.output_tail.contains("UPSTREAM UNREACHABLE"),
            "{}",
            outcome.output_tail
        );
        let records = fx.guard.records(1).await;
        assert_eq!(records[0].0.task_id, "t-sandbox");
        assert_eq!(records[0].1.cost, MicroDollars(4_500));
        assert_token_stayed(&fx.upstream.seen()[0], &access.env()[3].1);
        assert_eq!(access.finish().calls, 1);
    })
    .await;
}
