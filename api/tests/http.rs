//! The router over real HTTP, with a real store (in-memory SQLite), real git and a fake
//! Temporal: a callback that stands in for the gRPC service, records every call and answers
//! empty successes or chosen errors. What needs a real workflow (a review the gate takes) is
//! left to the end-to-end tests.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use temporalio_client::Client;
use temporalio_client::callback_based::{CallbackBasedGrpcService, GrpcSuccessResponse};
use temporalio_client::tonic::{Code, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use workflows::TaskStatus;

/// An rpc name and its request proto.
type Call = (String, Vec<u8>);

/// Stands in for the Temporal frontend: records calls, answers as told.
#[derive(Clone, Default)]
struct FakeTemporal {
    calls: Arc<Mutex<Vec<Call>>>,
    failures: Arc<Mutex<HashMap<String, (Code, String)>>>,
}

impl FakeTemporal {
    async fn client(&self) -> Client {
        let fake = self.clone();
        let service = CallbackBasedGrpcService {
            callback: Arc::new(move |request| {
                let fake = fake.clone();
                Box::pin(async move {
                    if request.rpc != "GetSystemInfo" {
                        fake.calls
                            .lock()
                            .unwrap()
                            .push((request.rpc.clone(), request.proto.to_vec()));
                    }
                    if let Some((code, message)) = fake.failures.lock().unwrap().get(&request.rpc) {
                        return Err(Status::new(*code, message.clone()));
                    }
                    Ok(GrpcSuccessResponse {
                        headers: Default::default(),
                        proto: Vec::new(),
                    })
                })
            }),
        };
        support::fake_temporal(service).await
    }

    fn fail(&self, rpc: &str, code: Code, message: &str) {
        self.failures
            .lock()
            .unwrap()
            .insert(rpc.to_string(), (code, message.to_string()));
    }

    fn heal(&self) {
        self.failures.lock().unwrap().clear();
    }

    /// The calls of one rpc, as the raw request protos.
    fn calls(&self, rpc: &str) -> Vec<Vec<u8>> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(r, _)| r == rpc)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// An API served on a free port, with its store, fake Temporal and a repository to work on.
struct TestApi {
    addr: std::net::SocketAddr,
    store: store::Store,
    temporal: FakeTemporal,
    repo: String,
    _dir: tempfile::TempDir,
}

impl TestApi {
    async fn start() -> TestApi {
        let dir = tempfile::tempdir().unwrap();
        let repo = support::bare_repo(dir.path());
        let playbooks = dir.path().join("playbooks");
        std::fs::create_dir(&playbooks).unwrap();
        std::fs::write(playbooks.join("fix-test.yaml"), support::FIX_TEST_PLAYBOOK).unwrap();
        std::fs::write(playbooks.join("broken.yaml"), "name: [").unwrap();
        std::fs::write(playbooks.join("README.md"), "not a playbook").unwrap();
        std::fs::write(playbooks.join("Bad_Name.yaml"), support::FIX_TEST_PLAYBOOK).unwrap();

        let temporal = FakeTemporal::default();
        let store = store::Store::connect("sqlite::memory:")
            .await
            .expect("an in-memory store");
        let state = api::ApiState {
            client: temporal.client().await,
            store: store.clone(),
            playbooks_dir: playbooks,
            temporal_ui_url: Some("http://ui.example:8233/".to_string()),
            namespace: "errand-test".to_string(),
        };
        let addr = support::serve(api::router(state)).await;
        TestApi {
            addr,
            store,
            temporal,
            repo,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
        .await
    }

    async fn post_with_key(&self, path: &str, key: &str, body: Value) -> Answer {
        let headers = [
            ("content-type", "application/json"),
            ("idempotency-key", key),
        ];
        self.send("POST", path, &headers, Some(body.to_string()))
            .await
    }

    /// One HTTP/1.1 request on its own connection.
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Answer {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let body = body.unwrap_or_default();
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).expect("a utf-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        assert_ne!(
            headers.get("transfer-encoding").map(String::as_str),
            Some("chunked"),
            "{method} {path}"
        );
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or(Value::String(body.to_string()))
        };
        Answer {
            status,
            headers,
            json,
        }
    }

    fn task_body(&self) -> Value {
        json!({
            "repo": self.repo,
            "instructions": "Make the test pass.",
            "checks": ["sh test.sh"],
            "agent": {"kind": "command", "command": ["scripted-agent"]},
            "requester": "alice",
        })
    }

    /// A task admitted through the API (the fake starts nothing).
    async fn admitted_task(&self, key: &str) -> String {
        let answer = self.post_with_key("/v1/tasks", key, self.task_body()).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.json["id"].as_str().unwrap().to_string()
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    json: Value,
}

impl Answer {
    /// Asserts the error shape and returns (status, code, field).
    fn error(&self) -> (u16, &str, Option<&str>) {
        let error = &self.json["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message in {}",
            self.json
        );
        (
            self.status,
            error["code"].as_str().expect("an error code"),
            error["field"].as_str(),
        )
    }
}

#[tokio::test]
async fn the_service_describes_itself_and_answers_unknown_routes_in_shape() {
    let api = TestApi::start().await;
    let health = api.get("/healthz").await;
    assert_eq!(
        (health.status, health.json.clone()),
        (200, json!({"status": "ok"}))
    );

    let doc = api.get("/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json, serde_json::to_value(api::openapi()).unwrap());

    assert_eq!(
        api.get("/v2/nothing").await.error(),
        (404, "not_found", None)
    );
    assert_eq!(
        api.send("DELETE", "/v1/tasks", &[], None).await.error(),
        (405, "method_not_allowed", None)
    );
}

#[tokio::test]
async fn a_task_is_admitted_started_once_per_key_and_readable_at_once() {
    let api = TestApi::start().await;
    let created = api
        .post_with_key("/v1/tasks", "order-17", api.task_body())
        .await;
    let id = api::task_id::from_idempotency_key("order-17");
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json, json!({"id": id, "status": "admitted"}));
    assert_eq!(
        created.headers.get("location"),
        Some(&format!("/v1/tasks/{id}"))
    );

    let starts = api.temporal.calls("StartWorkflowExecution");
    assert_eq!(starts.len(), 1);
    for expected in [
        id.as_str(),
        "AgentTask",
        workflows::TASK_QUEUE,
        "Make the test pass.",
    ] {
        assert!(
            contains(&starts[0], expected),
            "the start request lacks {expected:?}"
        );
    }

    let task = api.get(&format!("/v1/tasks/{id}")).await;
    assert_eq!(task.status, 200, "{}", task.json);
    let t = &task.json;
    assert_eq!(
        (t["id"].as_str(), t["status"].as_str(), t["round"].as_u64()),
        (Some(id.as_str()), Some("admitted"), Some(0))
    );
    assert_eq!(
        (t["base"].as_str(), t["requester"].as_str()),
        (Some("main"), Some("alice"))
    );
    assert_eq!(t["branch"], format!("errand/{id}"));
    assert_eq!(
        (
            t["rounds"].clone(),
            t["decisions"].clone(),
            t["review"].clone()
        ),
        (json!([]), json!([]), Value::Null)
    );
    assert_eq!(
        t["temporal_ui"],
        format!("http://ui.example:8233/namespaces/errand-test/workflows/{id}")
    );

    // The same key names the same task: 200, and the (idempotent) start is only repeated.
    let again = api
        .post_with_key("/v1/tasks", "order-17", api.task_body())
        .await;
    assert_eq!(
        (again.status, again.json.clone()),
        (200, json!({"id": id, "status": "admitted"}))
    );
    let other = api
        .post_with_key("/v1/tasks", "order-18", api.task_body())
        .await;
    assert_eq!(other.status, 201);
    assert_ne!(other.json["id"], json!(id));
    let fresh = api.post("/v1/tasks", api.task_body()).await;
    assert_eq!(fresh.status, 201);
    assert!(fresh.json["id"].as_str().unwrap().starts_with("t-"));

    let list = api.get("/v1/tasks").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json.as_array().unwrap().len(), 3);
    let limited = api.get("/v1/tasks?status=admitted&limit=2").await;
    assert_eq!(limited.json.as_array().unwrap().len(), 2);
    assert_eq!(limited.json[0]["status"], "admitted");
    assert_eq!(api.get("/v1/tasks?status=merged").await.json, json!([]));
}

#[tokio::test]
async fn a_finished_task_is_answered_without_starting_anything() {
    let api = TestApi::start().await;
    let id = api.admitted_task("done-1").await;
    api.store
        .set_status(&id, TaskStatus::Cancelled, 0, Some("cancelled on request"))
        .await
        .unwrap();
    let again = api
        .post_with_key("/v1/tasks", "done-1", api.task_body())
        .await;
    assert_eq!(
        (again.status, again.json.clone()),
        (200, json!({"id": id, "status": "cancelled"}))
    );
    assert_eq!(api.temporal.calls("StartWorkflowExecution").len(), 1);
}

#[tokio::test]
async fn a_workflow_that_already_finished_still_answers_the_task() {
    let api = TestApi::start().await;
    api.temporal.fail(
        "StartWorkflowExecution",
        Code::AlreadyExists,
        "workflow execution already finished",
    );
    let answer = api
        .post_with_key("/v1/tasks", "closed", api.task_body())
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

#[tokio::test]
async fn bad_task_requests_are_refused_naming_the_field_and_admit_nothing() {
    let api = TestApi::start().await;
    let raw = |body: &str| {
        api.send(
            "POST",
            "/v1/tasks",
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
    };
    assert_eq!(
        raw("{\"repo\": ").await.error(),
        (400, "malformed_json", None)
    );
    assert_eq!(raw("[]").await.error().0, 422);

    let no_type = api
        .send("POST", "/v1/tasks", &[], Some(api.task_body().to_string()))
        .await;
    assert_eq!(no_type.error(), (415, "unsupported_media_type", None));

    let with = |field: &str, value: Value| {
        let mut body = api.task_body();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = api.task_body();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (
            with("priority", json!(1)),
            (422, "invalid_body", Some("priority")),
        ),
        (without("checks"), (422, "invalid_body", Some("checks"))),
        (
            with("agent", json!({"kind": "shell", "command": ["x"]})),
            (422, "invalid_body", Some("agent.kind")),
        ),
        (
            with(
                "agent",
                json!({"kind": "command", "command": ["x"], "env": {}}),
            ),
            (422, "invalid_body", Some("agent.env")),
        ),
        (
            with("max_rounds", json!(-1)),
            (422, "invalid_body", Some("max_rounds")),
        ),
        (
            with("checks", json!([])),
            (422, "invalid_field", Some("checks")),
        ),
        (
            with("base", json!("a..b")),
            (422, "invalid_field", Some("base")),
        ),
        (
            with("base", json!("develop")),
            (422, "branch_not_found", Some("base")),
        ),
        (
            with("repo", json!("/nonexistent/repo.git")),
            (422, "repo_unreachable", Some("repo")),
        ),
    ];
    for (body, want) in cases {
        let answer = api.post("/v1/tasks", body.clone()).await;
        assert_eq!(answer.error(), want, "{body}: {}", answer.json);
    }
    let bad_key = api
        .send(
            "POST",
            "/v1/tasks",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", " "),
            ],
            Some(api.task_body().to_string()),
        )
        .await;
    assert_eq!(
        bad_key.error(),
        (400, "invalid_parameter", Some("Idempotency-Key"))
    );

    assert_eq!(api.get("/v1/tasks").await.json, json!([]));
    assert!(api.temporal.calls("StartWorkflowExecution").is_empty());
}

#[tokio::test]
async fn temporal_down_is_a_503_and_a_retry_with_the_key_starts_the_task() {
    let api = TestApi::start().await;
    api.temporal
        .fail("StartWorkflowExecution", Code::PermissionDenied, "no entry");
    let answer = api
        .post_with_key("/v1/tasks", "retry-me", api.task_body())
        .await;
    assert_eq!(answer.error(), (503, "temporal_unavailable", None));

    api.temporal.heal();
    let retried = api
        .post_with_key("/v1/tasks", "retry-me", api.task_body())
        .await;
    let id = api::task_id::from_idempotency_key("retry-me");
    assert_eq!(
        (retried.status, retried.json.clone()),
        (200, json!({"id": id, "status": "admitted"}))
    );
    assert_eq!(api.temporal.calls("StartWorkflowExecution").len(), 2);
}

#[tokio::test]
async fn listing_parameters_are_checked() {
    let api = TestApi::start().await;
    assert_eq!(
        api.get("/v1/tasks?status=done").await.error(),
        (400, "invalid_parameter", Some("status"))
    );
    assert_eq!(
        api.get("/v1/tasks?limit=0").await.error(),
        (400, "invalid_parameter", Some("limit"))
    );
    assert_eq!(
        api.get("/v1/tasks?limit=501").await.error(),
        (400, "invalid_parameter", Some("limit"))
    );
    assert_eq!(api.get("/v1/tasks?stauts=merged").await.error().0, 400);
    assert_eq!(
        api.get("/v1/tasks/t-unknown").await.error(),
        (404, "not_found", None)
    );
}

#[tokio::test]
async fn reviews_are_checked_against_the_stored_task_first() {
    let api = TestApi::start().await;
    let decision =
        |verdict: &str, reviewer: &str| json!({"decision": verdict, "reviewer": reviewer});
    assert_eq!(
        api.post("/v1/tasks/t-unknown/review", decision("approve", "bob"))
            .await
            .error(),
        (404, "not_found", None)
    );

    let id = api.admitted_task("review-1").await;
    let path = format!("/v1/tasks/{id}/review");
    assert_eq!(
        api.post(&path, decision("approve", "bob")).await.error(),
        (409, "not_awaiting_review", None)
    );

    api.store
        .set_status(&id, TaskStatus::AwaitingReview, 1, None)
        .await
        .unwrap();
    let cases = [
        (
            decision("approve", "alice"),
            (403, "self_review", Some("reviewer")),
        ),
        (
            decision("reject", " "),
            (422, "invalid_field", Some("reviewer")),
        ),
        (
            decision("request_changes", "bob"),
            (422, "invalid_field", Some("comment")),
        ),
        (
            decision("merge", "bob"),
            (422, "invalid_body", Some("decision")),
        ),
        (
            json!({"decision": "approve", "reviewer": "bob", "by": "x"}),
            (422, "invalid_body", Some("by")),
        ),
    ];
    for (body, want) in cases {
        assert_eq!(api.post(&path, body.clone()).await.error(), want, "{body}");
    }
    assert!(api.temporal.calls("UpdateWorkflowExecution").is_empty());

    // The workflow has closed meanwhile: Temporal does not find it.
    api.temporal.fail(
        "UpdateWorkflowExecution",
        Code::NotFound,
        "workflow execution already completed",
    );
    let closed = api
        .post(
            &path,
            json!({"decision": "request_changes", "reviewer": "bob", "comment": "rename it"}),
        )
        .await;
    assert_eq!(closed.error(), (409, "not_awaiting_review", None));
    let updates = api.temporal.calls("UpdateWorkflowExecution");
    assert_eq!(updates.len(), 1);
    for expected in [id.as_str(), "review", "rename it"] {
        assert!(
            contains(&updates[0], expected),
            "the update request lacks {expected:?}"
        );
    }

    api.temporal.fail(
        "UpdateWorkflowExecution",
        Code::PermissionDenied,
        "no entry",
    );
    assert_eq!(
        api.post(&path, decision("approve", "bob")).await.error(),
        (503, "temporal_unavailable", None)
    );
}

#[tokio::test]
async fn cancel_reaches_running_tasks_only() {
    let api = TestApi::start().await;
    assert_eq!(
        api.post("/v1/tasks/t-unknown/cancel", json!({}))
            .await
            .error(),
        (404, "not_found", None)
    );

    let id = api.admitted_task("cancel-1").await;
    let cancelled = api
        .send("POST", &format!("/v1/tasks/{id}/cancel"), &[], None)
        .await;
    assert_eq!(
        (cancelled.status, cancelled.json.clone()),
        (202, json!({"id": id, "status": "admitted"}))
    );
    let requests = api.temporal.calls("RequestCancelWorkflowExecution");
    assert_eq!(requests.len(), 1);
    assert!(contains(&requests[0], &id) && contains(&requests[0], "cancelled through the API"));

    api.temporal.fail(
        "RequestCancelWorkflowExecution",
        Code::NotFound,
        "workflow not found",
    );
    assert_eq!(
        api.send("POST", &format!("/v1/tasks/{id}/cancel"), &[], None)
            .await
            .error(),
        (409, "conflict", None)
    );

    api.store
        .set_status(&id, TaskStatus::Cancelled, 0, Some("cancelled on request"))
        .await
        .unwrap();
    let again = api
        .send("POST", &format!("/v1/tasks/{id}/cancel"), &[], None)
        .await;
    assert_eq!(again.error(), (409, "conflict", None));
    assert_eq!(
        api.temporal.calls("RequestCancelWorkflowExecution").len(),
        2
    );
}

#[tokio::test]
async fn playbooks_are_listed_read_and_run() {
    let api = TestApi::start().await;
    let list = api.get("/v1/playbooks").await;
    assert_eq!(list.status, 200);
    let names: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "fix-test"]);
    assert!(
        list.json[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("broken.yaml"),
        "{}",
        list.json
    );
    assert_eq!(list.json[1]["description"], "fix a failing test");

    let playbook = api.get("/v1/playbooks/fix-test").await;
    assert_eq!(playbook.status, 200, "{}", playbook.json);
    assert_eq!(
        playbook.json["content_hash"],
        workflows::playbook::content_hash(support::FIX_TEST_PLAYBOOK)
    );
    assert_eq!(playbook.json["inputs_schema"]["required"], json!(["test"]));
    assert_eq!(
        playbook.json["inputs_schema"]["properties"]["test"],
        json!({"type": "string", "description": "the failing test"})
    );
    assert_eq!(
        playbook.json["playbook"]["budget"],
        json!({"max_rounds": 4, "time_per_round_secs": 300})
    );
    assert_eq!(playbook.json["playbook"]["review"]["merge"], "on_approval");
    assert_eq!(
        api.get("/v1/playbooks/missing").await.error(),
        (404, "not_found", Some("name"))
    );
    assert_eq!(
        api.get("/v1/playbooks/Bad_Name").await.error(),
        (400, "invalid_parameter", Some("name"))
    );
    assert_eq!(
        api.get("/v1/playbooks/broken").await.error(),
        (422, "invalid_playbook", None)
    );

    let run = |body: Value| api.post_with_key("/v1/playbooks/fix-test/runs", "run-1", body);
    let body = json!({"repo": api.repo, "inputs": {"test": "test_add"}, "requester": "carol", "max_rounds": 2});
    let refused = [
        (
            json!({"repo": api.repo}),
            (422, "invalid_field", Some("inputs.test")),
        ),
        (
            json!({"repo": api.repo, "inputs": {"test": [3]}}),
            (422, "invalid_body", Some("inputs.test")),
        ),
        (
            json!({"repo": api.repo, "inputs": {"test": "t"}, "max_rounds": 5}),
            (422, "invalid_field", Some("max_rounds")),
        ),
        (
            json!({"repo": api.repo, "inputs": {"test": "t"}, "checks": ["true"]}),
            (422, "invalid_body", Some("checks")),
        ),
    ];
    for (request, want) in refused {
        assert_eq!(run(request.clone()).await.error(), want, "{request}");
    }
    let missing = api.post("/v1/playbooks/nope/runs", body.clone()).await;
    assert_eq!(missing.error(), (404, "not_found", Some("name")));

    let started = run(body.clone()).await;
    let id = api::task_id::from_idempotency_key("run-1");
    assert_eq!(
        (started.status, started.json.clone()),
        (201, json!({"id": id, "status": "admitted"}))
    );
    let task = api.get(&format!("/v1/tasks/{id}")).await.json;
    assert_eq!(task["instructions"], "Fix test_add.");
    assert_eq!(task["requester"], "carol");
    assert_eq!(
        task["playbook"],
        json!({"name": "fix-test", "content_hash": workflows::playbook::content_hash(support::FIX_TEST_PLAYBOOK)})
    );
    assert_eq!(run(body).await.status, 200);
}

#[tokio::test]
async fn playbooks_dir_may_be_missing() {
    let api = TestApi::start().await;
    std::fs::remove_dir_all(Path::new(&api.repo).parent().unwrap().join("playbooks")).unwrap();
    let list = api.get("/v1/playbooks").await;
    assert_eq!((list.status, list.json), (200, json!([])));
}
