//! `POST /v1/crashes` over real HTTP with a real store (in-memory SQLite) and a fake Temporal
//! that records every call: bad payloads get a 4xx naming the problem and reach neither
//! Temporal nor the store; a good one is one signal-with-start of its group's workflow.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use temporalio_client::callback_based::{CallbackBasedGrpcService, GrpcSuccessResponse};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct TestApi {
    addr: std::net::SocketAddr,
    store: store::Store,
    /// The rpc names Temporal was called with.
    calls: Arc<Mutex<Vec<String>>>,
}

async fn start() -> TestApi {
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = calls.clone();
    let service = CallbackBasedGrpcService {
        callback: Arc::new(move |request| {
            let seen = seen.clone();
            Box::pin(async move {
                if request.rpc != "GetSystemInfo" {
                    seen.lock().unwrap().push(request.rpc.clone());
                }
                Ok(GrpcSuccessResponse {
                    headers: Default::default(),
                    proto: Vec::new(),
                })
            })
        }),
    };
    let options = ConnectionOptions::new(Url::parse("http://temporal.invalid:7233").unwrap())
        .service_override(service)
        .dns_load_balancing(None)
        .build();
    let connection = Connection::connect(options).await.unwrap();
    let client = Client::new(connection, ClientOptions::new("errand-test").build()).unwrap();
    let store = store::Store::connect("sqlite::memory:").await.unwrap();
    let state = api::ApiState {
        client,
        store: store.clone(),
        playbooks_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks"),
        temporal_ui_url: None,
        namespace: "errand-test".to_string(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, api::router(state)).await.unwrap() });
    TestApi { addr, store, calls }
}

const TARGET: &str = "/v1/crashes?repo=/srv/git/app.git&agent=/bin/agent";

impl TestApi {
    /// One request on its own connection: (status, JSON body).
    async fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (and close) before it has read a refused body.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    async fn nothing_recorded(&self, what: &str) {
        assert!(self.calls.lock().unwrap().is_empty(), "{what}: Temporal was called");
        let groups = self
            .store
            .crash_groups(&store::CrashGroupFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(groups.is_empty(), "{what}: a group was recorded");
    }
}

fn python_crash() -> Value {
    json!({
        "service": "billing",
        "release": "1.4.2",
        "message": "ZeroDivisionError: division by zero",
        "stacktrace": "Traceback (most recent call last):\n  File \"/srv/app/billing/views.py\", line 12, in handler\n    return total / count\nZeroDivisionError: division by zero\n",
    })
}

#[tokio::test]
async fn bad_payloads_are_refused_naming_the_problem_and_record_nothing() {
    let api = start().await;
    let huge = json!({"message": "E: x", "stacktrace": "x".repeat(3 << 20)}).to_string();
    let over_limit = json!({"message": "E: x", "stacktrace": "x".repeat((1 << 20) + 1)}).to_string();
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        ("malformed json", "{\"message\": ".into(), 400, "malformed_json", None),
        ("not an object", "[1, 2]".into(), 422, "invalid_crash", None),
        (
            "a typo in a record",
            json!({"message": "E: x", "stack_trace": "..."}).to_string(),
            422,
            "invalid_crash",
            Some("stack_trace"),
        ),
        (
            "a wrong type",
            json!({"message": "E: x", "release": 5}).to_string(),
            422,
            "invalid_crash",
            None,
        ),
        ("an empty record", "{}".into(), 422, "invalid_field", Some("stacktrace")),
        (
            "a sentry event without exception or message",
            json!({"event_id": "abc", "platform": "python"}).to_string(),
            422,
            "invalid_field",
            Some("stacktrace"),
        ),
        (
            "a bad service",
            json!({"service": "a\u{7}b", "message": "E: x"}).to_string(),
            422,
            "invalid_field",
            Some("service"),
        ),
        ("crash text over the limit", over_limit, 413, "payload_too_large", None),
        ("a body over the limit", huge, 413, "payload_too_large", Some("body")),
    ];
    for (what, body, status, code, field) in cases {
        let (got, answer) = api.post(TARGET, body.as_bytes()).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{what}: {answer}");
        }
        assert!(
            !answer["error"]["message"].as_str().unwrap_or_default().is_empty(),
            "{what}: {answer}"
        );
        api.nothing_recorded(what).await;
    }

    let good = python_crash().to_string();
    for (what, path, field) in [
        ("no repo", "/v1/crashes?agent=/bin/agent", "repo"),
        ("no agent", "/v1/crashes?repo=/srv/git/app.git", "agent"),
        ("an unknown parameter", "/v1/crashes?repo=r&agent=a&priority=1", "priority"),
    ] {
        let (status, answer) = api.post(path, good.as_bytes()).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{what}: {answer}");
        api.nothing_recorded(what).await;
    }
}

#[tokio::test]
async fn a_good_crash_is_one_signal_with_start_of_its_group() {
    let api = start().await;
    let (status, answer) = api.post(TARGET, python_crash().to_string().as_bytes()).await;
    assert_eq!(status, 202, "{answer}");
    let group = answer["group_id"].as_str().unwrap();
    assert!(group.starts_with("crash-billing-"), "{answer}");
    assert_eq!(answer["service"], "billing");
    assert_eq!(answer["fingerprint"].as_str().unwrap().len(), 64, "{answer}");
    assert!(answer["title"].as_str().unwrap().contains("ZeroDivisionError"), "{answer}");
    assert_eq!(
        *api.calls.lock().unwrap(),
        ["SignalWithStartWorkflowExecution"],
        "one call, nothing else"
    );

    // The same crash from another machine, line and release: the same group.
    let mut again = python_crash();
    again["release"] = json!("1.5.0");
    again["stacktrace"] = json!(
        "Traceback (most recent call last):\n  File \"/home/ci/build/billing/views.py\", line 14, in handler\n    return total / count\nZeroDivisionError: division by zero\n"
    );
    let (status, second) = api.post(TARGET, again.to_string().as_bytes()).await;
    assert_eq!(status, 202, "{second}");
    assert_eq!(second["group_id"], answer["group_id"]);
    assert_eq!(second["fingerprint"], answer["fingerprint"]);
}
