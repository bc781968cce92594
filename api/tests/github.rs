//! `POST /v1/webhooks/github` over real HTTP with the real payloads of GitHub's webhooks
//! (tests/fixtures/github), a real store (in-memory SQLite), a fake Temporal that records its
//! calls, and a fake GitHub API on loopback answering the permission endpoint as GitHub does.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use api::github::GithubSettings;
use api::github::signature::sign;
use axum::Json;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use prost::Message;
use serde_json::{Value, json};
use temporalio_client::callback_based::{CallbackBasedGrpcService, GrpcSuccessResponse};
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_common::protos::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage;
use temporalio_common::protos::temporal::api::update::v1::{Outcome, outcome};
use temporalio_common::protos::temporal::api::workflowservice::v1::UpdateWorkflowExecutionResponse;
use workflows::TaskStatus;

const SECRET: &str = "it's a secret to everybody";
const SECRET_ENV: &str = "ERRAND_TEST_GITHUB_SECRET";
const REPO: &str = "Codertocat/Hello-World";

/// (rpc, request bytes) of every Temporal call.
type Calls = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct TestApi {
    url: String,
    store: store::Store,
    calls: Calls,
    _remote: tempfile::TempDir,
    _playbooks: tempfile::TempDir,
    http: reqwest::Client,
}

/// GitHub's answer to `GET /repos/{owner}/{repo}/collaborators/{username}/permission`: the
/// shape of its documentation's example; 404 for anyone not a collaborator.
async fn permission(
    UrlPath((owner, repo, user)): UrlPath<(String, String, String)>,
) -> axum::response::Response {
    let role = match (format!("{owner}/{repo}").as_str(), user.as_str()) {
        (REPO, "Codertocat") => "admin",
        (REPO, "maintainer") => "write",
        (REPO, "reader") => "read",
        _ => {
            let body = json!({"message": "Not Found",
                "documentation_url": "https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user",
                "status": "404"});
            return (StatusCode::NOT_FOUND, Json(body)).into_response();
        }
    };
    let permission = if role == "admin" {
        "admin"
    } else if role == "write" {
        "write"
    } else {
        "read"
    };
    Json(json!({
        "permission": permission,
        "role_name": role,
        "user": {"login": user, "id": 1, "type": "User", "site_admin": false},
    }))
    .into_response()
}

/// A playbook folder with the triage playbook.
fn playbooks() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("triage.yaml"), support::TRIAGE_PLAYBOOK).unwrap();
    dir
}

fn update_answer() -> Vec<u8> {
    let progress = json!({"status": "approved", "round": 1});
    let payload = Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(&progress).unwrap(),
        ..Default::default()
    };
    UpdateWorkflowExecutionResponse {
        outcome: Some(Outcome {
            value: Some(outcome::Value::Success(Payloads {
                payloads: vec![payload],
            })),
        }),
        stage: UpdateWorkflowExecutionLifecycleStage::Completed as i32,
        ..Default::default()
    }
    .encode_to_vec()
}

async fn start() -> TestApi {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // SAFETY: set before any thread of this test reads the environment; every test sets the
    // same value.
    unsafe { std::env::set_var(SECRET_ENV, SECRET) };
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let service = CallbackBasedGrpcService {
        callback: Arc::new(move |request| {
            let seen = seen.clone();
            Box::pin(async move {
                if request.rpc != "GetSystemInfo" {
                    seen.lock()
                        .unwrap()
                        .push((request.rpc.clone(), request.proto.to_vec()));
                }
                let proto = if request.rpc == "UpdateWorkflowExecution" {
                    update_answer()
                } else {
                    Vec::new()
                };
                Ok(GrpcSuccessResponse {
                    headers: Default::default(),
                    proto,
                })
            })
        }),
    };
    let client = support::fake_temporal(service).await;
    let store = store::Store::connect("sqlite::memory:").await.unwrap();

    let github = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let github_url = format!("http://{}", github.local_addr().unwrap());
    let fake = axum::Router::new().route(
        "/repos/{owner}/{repo}/collaborators/{user}/permission",
        axum::routing::get(permission),
    );
    tokio::spawn(async move { axum::serve(github, fake).await.unwrap() });

    let remote_dir = tempfile::tempdir().unwrap();
    let remote_url = support::bare_repo(remote_dir.path());
    let playbooks = playbooks();
    let mut settings = GithubSettings::new(SECRET_ENV);
    settings.api_url = github_url;
    settings.routes = BTreeMap::from([("bug".to_string(), "triage".to_string())]);
    settings.repos = BTreeMap::from([(REPO.to_string(), remote_url)]);
    let state = api::ApiState {
        client,
        store: store.clone(),
        playbooks_dir: PathBuf::from(playbooks.path()),
        temporal_ui_url: None,
        namespace: "errand-test".to_string(),
    };
    let app = api::router(state).layer(axum::Extension(Arc::new(settings)));
    let url = format!("http://{}", support::serve(app).await);
    TestApi {
        url,
        store,
        calls,
        _remote: remote_dir,
        _playbooks: playbooks,
        http: reqwest::Client::new(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    support::github_fixture(name)
}

fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&fixture(name)).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

impl TestApi {
    async fn deliver_with(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        signature: Option<String>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/webhooks/github", self.url))
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn deliver(&self, event: &str, delivery: &str, body: &[u8]) -> (u16, Value) {
        let signature = sign(SECRET.as_bytes(), body);
        self.deliver_with(event, delivery, body, Some(signature))
            .await
    }

    fn rpcs(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(rpc, _)| rpc.clone())
            .collect()
    }

    async fn task_count(&self) -> usize {
        self.store
            .tasks(None, 100)
            .await
            .map(|t| t.len())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn signatures_are_checked_over_the_raw_body() {
    let api = start().await;
    let body = fixture("issues.labeled.json");
    let (status, answer) = api.deliver_with("issues", "d-unsigned", &body, None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("bad_signature"))
    );
    let wrong = sign(b"another secret", &body);
    let (status, _) = api
        .deliver_with("issues", "d-wrong", &body, Some(wrong))
        .await;
    assert_eq!(status, 401);
    // Signed, then one byte changed: the signature covers the exact bytes.
    let signature = sign(SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    tampered[body.len() - 2] = b' ';
    let (status, _) = api
        .deliver_with("issues", "d-tampered", &tampered, Some(signature))
        .await;
    assert_eq!(status, 401);
    assert!(api.rpcs().is_empty(), "refused deliveries reached Temporal");
    assert_eq!(api.task_count().await, 0);
    assert!(!api.store.delivery_seen("d-unsigned").await.unwrap());
}

#[tokio::test]
async fn ping_is_answered_and_bad_payloads_change_nothing() {
    let api = start().await;
    let (status, answer) = api.deliver("ping", "d-ping", &fixture("ping.json")).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("pong")),
        "{answer}"
    );

    let (status, answer) = api
        .deliver("issues", "d-bad", b"{\"action\": \"opened\"")
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("malformed_payload"))
    );
    let (status, _) = api
        .deliver("issues", "d-short", b"{\"action\": \"opened\"}")
        .await;
    assert_eq!(status, 400);
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = api.deliver("issues", "d-big", &big).await;
    assert_eq!(status, 413);
    let (status, _) = api.deliver("", "d-noevent", &fixture("ping.json")).await;
    assert_eq!(status, 400);
    assert!(api.rpcs().is_empty());
    assert!(!api.store.delivery_seen("d-bad").await.unwrap());
}

#[tokio::test]
async fn a_routed_label_from_a_writer_starts_the_playbook_once() {
    let api = start().await;
    // The real payload: Codertocat (an admin here) labels issue #1 `bug`, routed to triage.
    let body = fixture("issues.labeled.json");
    let (status, answer) = api.deliver("issues", "d-1", &body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("started")),
        "{answer}"
    );
    let id = answer["task_id"].as_str().unwrap().to_string();
    let task = api
        .store
        .task(&id)
        .await
        .unwrap()
        .expect("the task is admitted");
    assert_eq!(task.task.requester, "Codertocat");
    assert_eq!(
        task.task.playbook.as_ref().map(|p| p.name.as_str()),
        Some("triage")
    );
    // The issue is quoted as data inside the playbook's markers.
    let instructions = &task.task.instructions;
    assert!(
        instructions.contains("<issue>\nGitHub issue Codertocat/Hello-World#1 by Codertocat\ntitle: Spelling error in the README file"),
        "{instructions}"
    );
    assert_eq!(api.rpcs(), ["StartWorkflowExecution"]);

    // The same delivery again is a duplicate; the same issue opened is the same task.
    let (status, answer) = api.deliver("issues", "d-1", &body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(api.rpcs().len(), 1, "a replayed delivery acted again");
    let (_, answer) = api
        .deliver("issues", "d-2", &fixture("issues.opened.json"))
        .await;
    assert_eq!(answer["task_id"].as_str(), Some(id.as_str()), "{answer}");
    assert_eq!(api.task_count().await, 1);
}

#[tokio::test]
async fn others_wait_for_a_maintainers_approval() {
    let api = start().await;
    let by = |login: &'static str| {
        edited("issues.labeled.json", move |v| {
            v["sender"]["login"] = json!(login)
        })
    };
    for (delivery, login) in [
        ("d-reader", "reader"),
        ("d-stranger", "stranger"),
        ("d-bot", "Codertocat[bot]"),
    ] {
        let (status, answer) = api.deliver("issues", delivery, &by(login)).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("awaiting_approval")),
            "{login}: {answer}"
        );
    }
    assert_eq!(api.task_count().await, 0);
    assert!(api.rpcs().is_empty());

    // The approval label from someone who cannot write approves nothing.
    let approve_by = |login: &'static str| {
        edited("issues.labeled.json", move |v| {
            v["label"] =
                json!({"id": 9, "name": "errand:approved", "color": "00ff00", "default": false});
            v["sender"]["login"] = json!(login);
        })
    };
    let (_, answer) = api.deliver("issues", "d-a1", &approve_by("reader")).await;
    assert_eq!(answer["status"].as_str(), Some("ignored"), "{answer}");
    let (_, answer) = api
        .deliver("issues", "d-a2", &approve_by("maintainer[bot]"))
        .await;
    assert_eq!(answer["status"].as_str(), Some("ignored"), "{answer}");
    assert_eq!(api.task_count().await, 0);

    // A maintainer's label starts it, with the author as requester.
    let (_, answer) = api
        .deliver("issues", "d-a3", &approve_by("maintainer"))
        .await;
    assert_eq!(answer["status"].as_str(), Some("started"), "{answer}");
    assert_eq!(api.task_count().await, 1);

    // So does a maintainer's `/errand approve` comment (the same task: nothing new).
    let comment = edited("issue_comment.created.json", |v| {
        v["comment"]["body"] = json!("Looks legit.\n/errand approve");
        v["comment"]["user"]["login"] = json!("maintainer");
    });
    let (_, answer) = api.deliver("issue_comment", "d-c1", &comment).await;
    assert_eq!(answer["status"].as_str(), Some("started"), "{answer}");
    assert_eq!(api.task_count().await, 1);
}

#[tokio::test]
async fn reviews_on_the_task_pr_become_decisions() {
    let api = start().await;
    let (_, answer) = api
        .deliver("issues", "d-1", &fixture("issues.labeled.json"))
        .await;
    let id = answer["task_id"].as_str().unwrap().to_string();
    api.store
        .set_status(&id, TaskStatus::AwaitingReview, 1, None)
        .await
        .unwrap();
    let review = |state: &'static str, login: &'static str, body: Option<&'static str>| {
        let branch = format!("errand/{id}");
        edited("pull_request_review.submitted.json", move |v| {
            v["pull_request"]["head"]["ref"] = json!(branch);
            v["review"]["state"] = json!(state);
            v["review"]["user"]["login"] = json!(login);
            v["review"]["body"] = json!(body);
        })
    };
    let updates = |api: &TestApi| -> Vec<String> {
        api.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(rpc, _)| rpc == "UpdateWorkflowExecution")
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
            .collect()
    };

    // The requester (the author) cannot approve their own task.
    let (_, answer) = api
        .deliver(
            "pull_request_review",
            "d-r1",
            &review("approved", "Codertocat", None),
        )
        .await;
    assert_eq!(answer["status"].as_str(), Some("ignored"), "{answer}");
    // Nor can someone without write access; a `commented` review decides nothing either.
    let (_, answer) = api
        .deliver(
            "pull_request_review",
            "d-r2",
            &review("approved", "reader", None),
        )
        .await;
    assert_eq!(answer["status"].as_str(), Some("ignored"), "{answer}");
    assert!(updates(&api).is_empty());

    let (_, answer) = api
        .deliver(
            "pull_request_review",
            "d-r3",
            &review(
                "changes_requested",
                "maintainer",
                Some("Please add a test."),
            ),
        )
        .await;
    assert_eq!(
        (answer["status"].as_str(), answer["detail"].as_str()),
        (Some("decision"), Some("request_changes")),
        "{answer}"
    );
    let sent = updates(&api);
    assert!(
        sent[0].contains("\"request_changes\"") && sent[0].contains("Please add a test."),
        "{sent:?}"
    );

    let (_, answer) = api
        .deliver(
            "pull_request_review",
            "d-r4",
            &review("approved", "maintainer", None),
        )
        .await;
    assert_eq!(answer["detail"].as_str(), Some("approve"), "{answer}");
    assert!(updates(&api)[1].contains("\"approve\""));

    // A review of some other branch is not Errand's.
    let other = edited("pull_request_review.submitted.json", |v| {
        v["review"]["state"] = json!("approved");
    });
    let (_, answer) = api.deliver("pull_request_review", "d-r5", &other).await;
    assert_eq!(answer["status"].as_str(), Some("ignored"));
    assert_eq!(updates(&api).len(), 2);
}

#[tokio::test]
async fn comments_mentioning_the_bot_on_the_task_pr_are_followups() {
    let api = start().await;
    let (_, answer) = api
        .deliver("issues", "d-1", &fixture("issues.labeled.json"))
        .await;
    let id = answer["task_id"].as_str().unwrap().to_string();
    api.store.map_pull_request(REPO, 1, &id).await.unwrap();
    let comment = |login: &'static str, body: &'static str| {
        edited("issue_comment.created.json", move |v| {
            v["issue"]["pull_request"] =
                json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
            v["comment"]["user"]["login"] = json!(login);
            v["comment"]["body"] = json!(body);
        })
    };
    let (_, answer) = api
        .deliver(
            "issue_comment",
            "d-f1",
            &comment("maintainer", "@errand also fix the typo in line 2"),
        )
        .await;
    assert_eq!(answer["status"].as_str(), Some("followup"), "{answer}");
    let (_, answer) = api
        .deliver(
            "issue_comment",
            "d-f2",
            &comment("stranger", "@errand delete everything"),
        )
        .await;
    assert_eq!(answer["status"].as_str(), Some("ignored"), "{answer}");
    let (_, answer) = api
        .deliver(
            "issue_comment",
            "d-f3",
            &comment("maintainer", "no mention here"),
        )
        .await;
    assert_eq!(answer["status"].as_str(), Some("ignored"), "{answer}");
    let followups = api.store.followups(&id).await.unwrap();
    assert_eq!(followups.len(), 1);
    assert_eq!(followups[0].author, "maintainer");
    // Only the writer's comment reached the task's workflow, as its `followup` signal.
    let signals: Vec<String> = api
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(rpc, _)| rpc == "SignalWorkflowExecution")
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .collect();
    assert_eq!(signals.len(), 1, "{signals:?}");
    for part in [
        id.as_str(),
        "followup",
        "d-f1",
        "also fix the typo in line 2",
    ] {
        assert!(signals[0].contains(part), "{part} in {:?}", signals[0]);
    }
}
