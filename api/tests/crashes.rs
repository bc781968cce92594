//! `POST /v1/crashes` over real HTTP with a real store (in-memory SQLite) and a fake Temporal
//! that records every call: bad payloads get a 4xx naming the problem and reach neither
//! Temporal nor the store; a good one is one signal-with-start of its group's workflow.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message;
use temporalio_client::tonic;
use temporalio_common::protos::temporal::api::workflowservice::v1::SignalWithStartWorkflowExecutionRequest;

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
    /// Each signal-with-start that succeeded: (request id, occurrences in its signal, the
    /// workflow input's target).
    signals: Arc<Mutex<Vec<(String, usize, Value)>>>,
    /// While set, the fake Temporal refuses signal-with-start.
    refuse: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

async fn start() -> TestApi {
    start_on(
        store::Store::connect("sqlite::memory:").await.unwrap(),
        false,
    )
    .await
}

/// An API on `store` (as after a restart, when it holds undelivered crashes).
async fn start_on(store: store::Store, refuse: bool) -> TestApi {
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let signals: Arc<Mutex<Vec<(String, usize, Value)>>> = Arc::default();
    let refuse = Arc::new(AtomicBool::new(refuse));
    let (seen, signalled, refusing) = (calls.clone(), signals.clone(), refuse.clone());
    let service = CallbackBasedGrpcService {
        callback: Arc::new(move |request| {
            let (seen, signalled, refusing) = (seen.clone(), signalled.clone(), refusing.clone());
            Box::pin(async move {
                if request.rpc != "GetSystemInfo" {
                    seen.lock().unwrap().push(request.rpc.clone());
                }
                if request.rpc == "SignalWithStartWorkflowExecution" {
                    if refusing.load(Ordering::SeqCst) {
                        return Err(tonic::Status::invalid_argument("refused by the test"));
                    }
                    let signal =
                        SignalWithStartWorkflowExecutionRequest::decode(request.proto).unwrap();
                    let data = &signal.signal_input.unwrap().payloads[0].data;
                    let occurrences: Vec<Value> = serde_json::from_slice(data).unwrap();
                    let input: Value =
                        serde_json::from_slice(&signal.input.unwrap().payloads[0].data).unwrap();
                    signalled.lock().unwrap().push((
                        signal.request_id,
                        occurrences.len(),
                        input["target"].clone(),
                    ));
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
    let state = api::ApiState {
        client,
        store: store.clone(),
        playbooks_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks"),
        temporal_ui_url: None,
        namespace: "errand-test".to_string(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = api::CrashSettings {
        agent: None,
        services: vec![api::CrashService {
            service: "payments".to_string(),
            repo: "/srv/git/payments.git".to_string(),
            base: Some("release".to_string()),
            agent: Some("/bin/payments-agent".to_string()),
            playbook: None,
        }],
    };
    let app = api::with_crash_settings(api::router(state), settings);
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestApi {
        addr,
        store,
        calls,
        signals,
        refuse,
        server,
    }
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

    /// Waits until the sender has delivered every stored crash and nothing is left.
    async fn delivered(&self, occurrences: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let sent: usize = self.signals.lock().unwrap().iter().map(|(_, n, _)| n).sum();
            let left = self.store.crash_outbox_len().await.unwrap();
            if sent == occurrences && left == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sent} of {occurrences} occurrences delivered, {left} left in the outbox"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn nothing_recorded(&self, what: &str) {
        // The sender would have had its chance.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            self.calls.lock().unwrap().is_empty(),
            "{what}: Temporal was called"
        );
        assert_eq!(
            self.store.crash_outbox_len().await.unwrap(),
            0,
            "{what}: a crash was stored"
        );
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
    let over_limit =
        json!({"message": "E: x", "stacktrace": "x".repeat((1 << 20) + 1)}).to_string();
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        (
            "malformed json",
            "{\"message\": ".into(),
            400,
            "malformed_json",
            None,
        ),
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
        (
            "an empty record",
            "{}".into(),
            422,
            "invalid_field",
            Some("stacktrace"),
        ),
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
        (
            "crash text over the limit",
            over_limit,
            413,
            "payload_too_large",
            None,
        ),
        (
            "a body over the limit",
            huge,
            413,
            "payload_too_large",
            Some("body"),
        ),
    ];
    for (what, body, status, code, field) in cases {
        let (got, answer) = api.post(TARGET, body.as_bytes()).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{what}: {answer}");
        }
        assert!(
            !answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{what}: {answer}"
        );
        api.nothing_recorded(what).await;
    }

    let good = python_crash().to_string();
    for (what, path, field) in [
        ("no repo", "/v1/crashes?agent=/bin/agent", "repo"),
        ("no agent", "/v1/crashes?repo=/srv/git/app.git", "agent"),
        (
            "an unknown parameter",
            "/v1/crashes?repo=r&agent=a&priority=1",
            "priority",
        ),
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
    let (status, answer) = api
        .post(TARGET, python_crash().to_string().as_bytes())
        .await;
    assert_eq!(status, 202, "{answer}");
    let group = answer["group_id"].as_str().unwrap();
    assert!(group.starts_with("crash-billing-"), "{answer}");
    assert_eq!(answer["service"], "billing");
    assert_eq!(
        answer["fingerprint"].as_str().unwrap().len(),
        64,
        "{answer}"
    );
    assert!(
        answer["title"]
            .as_str()
            .unwrap()
            .contains("ZeroDivisionError"),
        "{answer}"
    );
    // Answered once stored; delivered in the background.
    api.delivered(1).await;
    assert_eq!(
        *api.calls.lock().unwrap(),
        ["SignalWithStartWorkflowExecution"],
        "one call, nothing else"
    );
    assert_eq!(answer["new"], true, "{answer}");

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
    assert_eq!(second["new"], false, "{second}");
    api.delivered(2).await;
}

/// Crashes that arrive together are stored together and reach their group's workflow in
/// batches: fewer signals than crashes, every crash in exactly one of them.
#[tokio::test]
async fn a_burst_of_one_crash_is_coalesced_into_batches() {
    let api = Arc::new(start().await);
    let mut posts = Vec::new();
    for i in 0..60 {
        let api = api.clone();
        posts.push(tokio::spawn(async move {
            let mut crash = python_crash();
            crash["release"] = json!(format!("1.4.{i}"));
            api.post(TARGET, crash.to_string().as_bytes()).await
        }));
    }
    let mut new = 0;
    for post in posts {
        let (status, answer) = post.await.unwrap();
        assert_eq!(status, 202, "{answer}");
        new += usize::from(answer["new"] == true);
    }
    assert_eq!(new, 1, "exactly one request started the group");
    api.delivered(60).await;
    let signals = api.signals.lock().unwrap().clone();
    assert!(signals.len() < 60, "not coalesced: {signals:?}");
    assert!(signals.iter().all(|(_, n, _)| *n <= 100), "{signals:?}");
}

/// A crash whose delivery fails stays stored and is sent again, with the same request id
/// (Temporal de-duplicates a repeated one); a new process sends what an earlier one left.
#[tokio::test]
async fn undelivered_crashes_are_sent_again_and_after_a_restart() {
    let store = store::Store::connect("sqlite::memory:").await.unwrap();
    let first = start_on(store.clone(), true).await;
    let (status, answer) = first
        .post(TARGET, python_crash().to_string().as_bytes())
        .await;
    assert_eq!(status, 202, "taken while Temporal refuses: {answer}");
    // Tried, refused, kept.
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.calls.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "never retried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.crash_outbox_len().await.unwrap(), 1);
    // The process goes away; the next one delivers the crash.
    first.server.abort();
    drop(first);
    let second = start_on(store.clone(), false).await;
    second.delivered(1).await;
    let signals = second.signals.lock().unwrap().clone();
    assert_eq!(signals.len(), 1, "{signals:?}");

    // A refused delivery keeps its batch: the retry carries the same request id.
    second.refuse.store(true, Ordering::SeqCst);
    let (status, _) = second
        .post(TARGET, python_crash().to_string().as_bytes())
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.calls.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.refuse.store(false, Ordering::SeqCst);
    second.delivered(2).await;
    let signals = second.signals.lock().unwrap().clone();
    assert_ne!(signals[0].0, signals[1].0, "{signals:?}");
}

/// Without `?repo=`, the service's `[crashes]` entry says where to investigate; an unmapped
/// service is refused naming it.
#[tokio::test]
async fn the_crashes_configuration_maps_services_without_parameters() {
    let api = start().await;
    let mut crash = python_crash();
    crash["service"] = json!("payments");
    let (status, answer) = api.post("/v1/crashes", crash.to_string().as_bytes()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["service"], "payments");
    let (status, answer) = api
        .post("/v1/crashes", python_crash().to_string().as_bytes())
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "unmapped_service", "{answer}");
    assert_eq!(answer["error"]["field"], "repo", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"billing\""),
        "{answer}"
    );
    // The query parameters still work, and win over the entry.
    let (status, answer) = api
        .post(TARGET, python_crash().to_string().as_bytes())
        .await;
    assert_eq!(status, 202, "{answer}");
    api.delivered(2).await;
    let targets: Vec<Value> = api
        .signals
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.2.clone())
        .collect();
    let payments = targets
        .iter()
        .find(|t| t["repo"] == "/srv/git/payments.git");
    let payments = payments.unwrap_or_else(|| panic!("{targets:?}"));
    assert_eq!(payments["base"], "release", "{payments}");
    assert_eq!(
        payments["agent"]["command"][0], "/bin/payments-agent",
        "{payments}"
    );
    assert_eq!(payments["playbook_name"], "investigate-crash", "{payments}");
    assert!(
        targets.iter().any(|t| t["repo"] == "/srv/git/app.git"),
        "{targets:?}"
    );
}
