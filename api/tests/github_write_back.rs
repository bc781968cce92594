//! The GitHub write-back: a task started by a real `issues` webhook payload (tests/fixtures/
//! github, from shared/fixtures/github-webhooks) gets one acknowledgement, one PR and one final
//! report on GitHub, however often the reporter runs, restarts, or sees a call fail.
//!
//! GitHub is a fake on loopback that speaks the REST shapes of GitHub's documentation for the
//! endpoints used (issue comments, pulls by head, creating and updating a PR), checks the
//! token, refuses bodies over 65536 characters and a second open PR of the same head (422, as
//! GitHub does), and can fail a call once: refused (nothing done, 502), or done with its answer
//! lost (done, then 502: a crash between GitHub's write and the store's record).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::github::GithubSettings;
use api::github::reporter::{PassOutcome, Reporter};
use api::github::signature::sign;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use store::{GithubWriteKind, Store};
use temporalio_client::callback_based::{CallbackBasedGrpcService, GrpcSuccessResponse};
use workflows::TaskStatus;
use workflows::contracts::{FinishRequest, ReviewRequest};

const SECRET: &str = "it's a secret to everybody";
const SECRET_ENV: &str = "ERRAND_TEST_WRITE_BACK_SECRET";
const TOKEN: &str = "ghs_test_installation_token";
const TOKEN_ENV: &str = "ERRAND_TEST_WRITE_BACK_TOKEN";
const REPO: &str = "Codertocat/Hello-World";
const PUBLIC_URL: &str = "https://errand.example.com";
const BOT: &str = "errand[bot]";

// ---------------------------------------------------------------------------------------------
// The fake GitHub.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// 502 without doing anything.
    Refuse,
    /// Does it, then answers 502: the caller never learns the id.
    LoseAnswer,
}

#[derive(Debug, Clone)]
struct Comment {
    id: u64,
    issue: u64,
    body: String,
    login: String,
}

#[derive(Debug, Clone)]
struct Pull {
    number: u64,
    title: String,
    head: String,
    base: String,
    body: String,
    state: String,
}

#[derive(Default)]
struct GitHub {
    comments: Vec<Comment>,
    pulls: Vec<Pull>,
    next_comment: u64,
    /// Faults by call (`POST comments`, `GET pulls`, ...), each used once, in order.
    faults: Vec<(&'static str, Fault)>,
    /// Every call, as `METHOD path`.
    calls: Vec<String>,
}

type Fake = Arc<Mutex<GitHub>>;

fn user(login: &str) -> Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({"login": login, "id": 1, "node_id": "MDQ6VXNlcjE=", "type": kind, "site_admin": false,
           "url": format!("https://api.github.com/users/{login}")})
}

fn comment_json(c: &Comment) -> Value {
    json!({
        "id": c.id,
        "node_id": "IC_kwDOABCD",
        "url": format!("https://api.github.com/repos/{REPO}/issues/comments/{}", c.id),
        "html_url": format!("https://github.com/{REPO}/issues/{}#issuecomment-{}", c.issue, c.id),
        "issue_url": format!("https://api.github.com/repos/{REPO}/issues/{}", c.issue),
        "body": c.body,
        "user": user(&c.login),
        "created_at": "2026-11-21T10:00:00Z",
        "updated_at": "2026-11-21T10:00:00Z",
        "author_association": "NONE",
        "performed_via_github_app": null,
    })
}

fn pull_json(p: &Pull) -> Value {
    let owner = REPO.split('/').next().unwrap();
    json!({
        "url": format!("https://api.github.com/repos/{REPO}/pulls/{}", p.number),
        "id": 1000 + p.number,
        "node_id": "PR_kwDOABCD",
        "html_url": format!("https://github.com/{REPO}/pull/{}", p.number),
        "number": p.number,
        "state": p.state,
        "locked": false,
        "title": p.title,
        "user": user(BOT),
        "body": p.body,
        "created_at": "2026-11-21T10:00:00Z",
        "updated_at": "2026-11-21T10:00:00Z",
        "closed_at": null,
        "merged_at": null,
        "draft": false,
        "head": {"label": format!("{owner}:{}", p.head), "ref": p.head,
                 "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "user": user(owner)},
        "base": {"label": format!("{owner}:{}", p.base), "ref": p.base,
                 "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e", "user": user(owner)},
    })
}

fn github_error(status: StatusCode, message: &str, errors: Value) -> Response {
    let mut body = json!({"message": message,
        "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string()});
    if !errors.is_null() {
        body["errors"] = errors;
    }
    (status, axum::Json(body)).into_response()
}

fn too_long(body: &str) -> Option<Response> {
    (body.chars().count() > 65536).then(|| {
        github_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation Failed",
            json!([{"resource": "IssueComment", "code": "custom", "field": "body",
                    "message": "body is too long (maximum is 65536 characters)"}]),
        )
    })
}

fn page<T: Clone>(items: &[T], query: &HashMap<String, String>) -> Vec<T> {
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30);
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    items
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect()
}

async fn github(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let call: &'static str = match (method.as_str(), parts.as_slice()) {
        ("GET", ["repos", _, _, "collaborators", _, "permission"]) => "GET permission",
        ("GET", ["repos", _, _, "issues", _, "comments"]) => "GET comments",
        ("POST", ["repos", _, _, "issues", _, "comments"]) => "POST comments",
        ("GET", ["repos", _, _, "pulls"]) => "GET pulls",
        ("POST", ["repos", _, _, "pulls"]) => "POST pulls",
        ("PATCH", ["repos", _, _, "pulls", _]) => "PATCH pull",
        _ => return github_error(StatusCode::NOT_FOUND, "Not Found", Value::Null),
    };
    let mut gh = fake.lock().unwrap();
    gh.calls.push(format!("{method} {path}"));
    if call != "GET permission"
        && headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {TOKEN}"))
    {
        return github_error(
            StatusCode::UNAUTHORIZED,
            "Requires authentication",
            Value::Null,
        );
    }
    if parts[1..3].join("/") != REPO {
        return github_error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
    }
    let fault = gh
        .faults
        .iter()
        .position(|(c, _)| *c == call)
        .map(|i| gh.faults.remove(i).1);
    if fault == Some(Fault::Refuse) {
        return github_error(StatusCode::BAD_GATEWAY, "Server Error", Value::Null);
    }
    let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = match call {
        "GET permission" => {
            let role = if parts[4] == "Codertocat" {
                "admin"
            } else {
                "read"
            };
            (
                StatusCode::OK,
                axum::Json(json!({"permission": role, "role_name": role, "user": user(parts[4])})),
            )
                .into_response()
        }
        "GET comments" => {
            let issue: u64 = parts[4].parse().unwrap();
            let on_issue: Vec<Comment> = gh
                .comments
                .iter()
                .filter(|c| c.issue == issue)
                .cloned()
                .collect();
            let listed: Vec<Value> = page(&on_issue, &query).iter().map(comment_json).collect();
            axum::Json(Value::Array(listed)).into_response()
        }
        "POST comments" => {
            let Some(text) = sent["body"].as_str() else {
                return github_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid request.\n\n\"body\" wasn't supplied.",
                    Value::Null,
                );
            };
            if let Some(refused) = too_long(text) {
                return refused;
            }
            gh.next_comment += 1;
            let comment = Comment {
                id: 1_000_000_000 + gh.next_comment,
                issue: parts[4].parse().unwrap(),
                body: text.to_string(),
                login: BOT.to_string(),
            };
            gh.comments.push(comment.clone());
            (StatusCode::CREATED, axum::Json(comment_json(&comment))).into_response()
        }
        "GET pulls" => {
            let state = query.get("state").map_or("open", String::as_str);
            let owner = REPO.split('/').next().unwrap();
            let listed: Vec<Pull> = gh
                .pulls
                .iter()
                .filter(|p| state == "all" || p.state == state)
                .filter(|p| {
                    query
                        .get("head")
                        .is_none_or(|h| *h == format!("{owner}:{}", p.head))
                })
                .cloned()
                .collect();
            let listed: Vec<Value> = page(&listed, &query).iter().map(pull_json).collect();
            axum::Json(Value::Array(listed)).into_response()
        }
        "POST pulls" => {
            let (Some(title), Some(head), Some(base)) = (
                sent["title"].as_str(),
                sent["head"].as_str(),
                sent["base"].as_str(),
            ) else {
                return github_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid request.",
                    Value::Null,
                );
            };
            let text = sent["body"].as_str().unwrap_or_default();
            if let Some(refused) = too_long(text) {
                return refused;
            }
            if gh
                .pulls
                .iter()
                .any(|p| p.head == head && p.base == base && p.state == "open")
            {
                let owner = REPO.split('/').next().unwrap();
                return github_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Validation Failed",
                    json!([{"resource": "PullRequest", "code": "custom",
                            "message": format!("A pull request already exists for {owner}:{head}.")}]),
                );
            }
            let pull = Pull {
                number: 2 + gh.pulls.len() as u64,
                title: title.to_string(),
                head: head.to_string(),
                base: base.to_string(),
                body: text.to_string(),
                state: "open".to_string(),
            };
            gh.pulls.push(pull.clone());
            (StatusCode::CREATED, axum::Json(pull_json(&pull))).into_response()
        }
        "PATCH pull" => {
            let number: u64 = parts[4].parse().unwrap();
            let text = sent["body"].as_str().map(str::to_string);
            if let Some(refused) = text.as_deref().and_then(too_long) {
                return refused;
            }
            let Some(pull) = gh.pulls.iter_mut().find(|p| p.number == number) else {
                return github_error(StatusCode::NOT_FOUND, "Not Found", Value::Null);
            };
            if let Some(text) = text {
                pull.body = text;
            }
            let pull = pull.clone();
            axum::Json(pull_json(&pull)).into_response()
        }
        _ => unreachable!(),
    };
    if fault == Some(Fault::LoseAnswer) {
        return github_error(StatusCode::BAD_GATEWAY, "Server Error", Value::Null);
    }
    answer
}

// ---------------------------------------------------------------------------------------------
// The API with a fake Temporal, a real store and the fake GitHub.

struct TestApi {
    url: String,
    store: Store,
    settings: Arc<GithubSettings>,
    github: Fake,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

async fn start() -> TestApi {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // SAFETY: set before any thread of this test reads the environment; every test sets the
    // same values.
    unsafe {
        std::env::set_var(SECRET_ENV, SECRET);
        std::env::set_var(TOKEN_ENV, TOKEN);
    }
    let service = CallbackBasedGrpcService {
        callback: Arc::new(move |_request| {
            Box::pin(async move {
                Ok(GrpcSuccessResponse {
                    headers: Default::default(),
                    proto: Vec::new(),
                })
            })
        }),
    };
    let client = support::fake_temporal(service).await;

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("errand.db").display());
    let store = Store::connect(&db).await.unwrap();

    // The repository's remote, with `main`.
    let remote = support::bare_repo(dir.path());
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir(&playbooks).unwrap();
    std::fs::write(playbooks.join("triage.yaml"), support::TRIAGE_PLAYBOOK).unwrap();

    let fake: Fake = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let github_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(github)
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut settings = GithubSettings::new(SECRET_ENV);
    settings.api_url = github_url;
    settings.token_env = Some(TOKEN_ENV.to_string());
    settings.public_url = Some(format!("{PUBLIC_URL}/"));
    settings.routes = BTreeMap::from([("bug".to_string(), "triage".to_string())]);
    settings.repos = BTreeMap::from([(REPO.to_string(), remote)]);
    let settings = Arc::new(settings);

    let state = api::ApiState {
        client,
        store: store.clone(),
        playbooks_dir: playbooks,
        temporal_ui_url: None,
        namespace: "errand-test".to_string(),
    };
    let app = api::router(state).layer(axum::Extension(settings.clone()));
    let url = format!("http://{}", support::serve(app).await);
    TestApi {
        url,
        store,
        settings,
        github: fake,
        _dir: dir,
        http: reqwest::Client::new(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    support::github_fixture(name)
}

impl TestApi {
    /// The real `issues.labeled` payload (Codertocat, an admin, labels issue #1 `bug`):
    /// answers the task it started.
    async fn issue_starts_a_task(&self, delivery: &str) -> String {
        let body = fixture("issues.labeled.json");
        let answer: Value = self
            .http
            .post(format!("{}/v1/webhooks/github", self.url))
            .header("content-type", "application/json")
            .header("x-github-event", "issues")
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "started", "{answer}");
        answer["task_id"].as_str().unwrap().to_string()
    }

    fn reporter(&self) -> Reporter {
        Reporter::new(
            self.store.clone(),
            self.settings.clone(),
            Some(TOKEN.to_string()),
        )
    }

    fn comments(&self) -> Vec<Comment> {
        let gh = self.github.lock().unwrap();
        gh.comments
            .iter()
            .filter(|c| c.login == BOT)
            .cloned()
            .collect()
    }

    fn pulls(&self) -> Vec<Pull> {
        self.github.lock().unwrap().pulls.clone()
    }

    fn fail(&self, call: &'static str, fault: Fault) {
        self.github.lock().unwrap().faults.push((call, fault));
    }

    fn calls(&self, prefix: &str) -> usize {
        let gh = self.github.lock().unwrap();
        gh.calls.iter().filter(|c| c.starts_with(prefix)).count()
    }

    async fn awaits_review(&self, id: &str, report: &str) {
        self.store
            .set_status(id, TaskStatus::AwaitingReview, 1, None)
            .await
            .unwrap();
        self.store
            .open_review(&ReviewRequest {
                task_id: id.to_string(),
                branch: format!("errand/{id}"),
                commit: "6dcb09b5b57875f334f61aebed695e2e4193db5e".to_string(),
                round: 1,
                report: report.to_string(),
            })
            .await
            .unwrap();
    }

    async fn ends(&self, id: &str, status: TaskStatus, report: &str) {
        self.store
            .finish(&FinishRequest {
                task_id: id.to_string(),
                status,
                round: 1,
                reason: None,
                report: report.to_string(),
                workspace: None,
            })
            .await
            .unwrap();
    }

    async fn kinds(&self, id: &str) -> Vec<GithubWriteKind> {
        self.store
            .github_writes(id)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.kind)
            .collect()
    }
}

fn wrote(outcome: &PassOutcome) -> Vec<GithubWriteKind> {
    outcome.recorded.iter().map(|(_, kind, _)| *kind).collect()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_issue_task_gets_one_acknowledgement_one_pr_and_one_final_report() {
    let api = start().await;
    let id = api.issue_starts_a_task("d-1").await;
    let origin = api.store.task_origin(&id).await.unwrap().unwrap();
    assert_eq!((origin.repo.as_str(), origin.issue_number), (REPO, 1));

    // Started: the acknowledgement, with the task's link; a second pass writes nothing.
    let mut reporter = api.reporter();
    let outcome = reporter.pass().await.unwrap();
    assert_eq!(wrote(&outcome), [GithubWriteKind::Acknowledgement]);
    assert!(outcome.failed.is_empty(), "{outcome:?}");
    let comments = api.comments();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].issue, 1);
    let link = format!("{PUBLIC_URL}/v1/tasks/{id}");
    assert!(
        comments[0].body.contains(&link),
        "no link: {}",
        comments[0].body
    );
    assert!(
        comments[0]
            .body
            .ends_with(&format!("<!-- errand:{id}:acknowledgement -->")),
        "{}",
        comments[0].body
    );
    assert_eq!(reporter.pass().await.unwrap(), PassOutcome::default());

    // A redelivered issue names the same task: nothing new.
    assert_eq!(api.issue_starts_a_task("d-2").await, id);
    assert!(reporter.pass().await.unwrap().recorded.is_empty());

    // Awaiting review: the PR of the task branch into the task's base, titled after the
    // issue, with the review's report; mapped to the task.
    api.awaits_review(&id, "## Round 1\nFixed the spelling.")
        .await;
    let outcome = reporter.pass().await.unwrap();
    assert_eq!(wrote(&outcome), [GithubWriteKind::PullRequest]);
    let pulls = api.pulls();
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!(
        (pr.head.as_str(), pr.base.as_str(), pr.title.as_str()),
        (
            format!("errand/{id}").as_str(),
            "main",
            "Spelling error in the README file"
        )
    );
    assert!(
        pr.body.contains("## Round 1\nFixed the spelling."),
        "{}",
        pr.body
    );
    assert!(pr.body.contains("#1"), "{}", pr.body);
    assert_eq!(
        api.store
            .pull_request_task(REPO, pr.number)
            .await
            .unwrap()
            .as_deref(),
        Some(id.as_str())
    );

    // A restarted reporter (a new process) writes nothing again.
    let mut restarted = api.reporter();
    assert_eq!(restarted.pass().await.unwrap(), PassOutcome::default());

    // Someone quotes the final report's marker: not the bot's comment, so it counts for nothing.
    api.github.lock().unwrap().comments.push(Comment {
        id: 77,
        issue: 1,
        body: format!("fake <!-- errand:{id}:final_report -->"),
        login: "Codertocat".to_string(),
    });

    // Ended: the PR's body is the final report, and the report is commented on the issue.
    api.ends(&id, TaskStatus::Merged, "# Report\nmerged after review")
        .await;
    let outcome = restarted.pass().await.unwrap();
    assert_eq!(
        wrote(&outcome),
        [
            GithubWriteKind::PullRequestBody,
            GithubWriteKind::FinalReport
        ]
    );
    assert_eq!(outcome.done, [id.as_str()]);
    let pulls = api.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(
        pulls[0].body.contains("# Report\nmerged after review"),
        "{}",
        pulls[0].body
    );
    let comments = api.comments();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(
        comments[1].body.contains("ended **merged**")
            && comments[1].body.contains("# Report\nmerged after review")
            && comments[1].body.contains(&link),
        "{}",
        comments[1].body
    );

    // Done: no reporter looks at the task again.
    let calls = api.calls("");
    assert_eq!(reporter.pass().await.unwrap(), PassOutcome::default());
    assert_eq!(api.reporter().pass().await.unwrap(), PassOutcome::default());
    assert_eq!(api.calls(""), calls, "a done task was looked at again");
    assert!(
        api.store
            .pending_task_origins(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        api.kinds(&id).await,
        [
            GithubWriteKind::Acknowledgement,
            GithubWriteKind::PullRequest,
            GithubWriteKind::PullRequestBody,
            GithubWriteKind::FinalReport
        ]
    );
}

#[tokio::test]
async fn failed_calls_and_lost_answers_never_write_twice() {
    let api = start().await;
    let id = api.issue_starts_a_task("d-1").await;
    // 150 comments by people first: the reporter's own is on the second page.
    {
        let mut gh = api.github.lock().unwrap();
        for n in 0..150 {
            gh.comments.push(Comment {
                id: n + 1,
                issue: 1,
                body: format!("+1 ({n})"),
                login: "Codertocat".to_string(),
            });
        }
    }

    // The comment is refused once: the pass fails for the task, the next one writes it.
    api.fail("POST comments", Fault::Refuse);
    let outcome = api.reporter().pass().await.unwrap();
    assert!(outcome.recorded.is_empty());
    assert_eq!(outcome.failed.len(), 1);
    assert!(
        outcome.failed[0].1.contains("502") && outcome.failed[0].1.contains("Server Error"),
        "{outcome:?}"
    );
    assert!(api.comments().is_empty());
    let outcome = api.reporter().pass().await.unwrap();
    assert_eq!(wrote(&outcome), [GithubWriteKind::Acknowledgement]);
    assert_eq!(api.comments().len(), 1);

    // The PR is created but its answer lost (a crash before the store's record): the next
    // pass, of a new reporter, finds it by its head and records it; no second PR.
    api.awaits_review(&id, "## Round 1").await;
    api.fail("POST pulls", Fault::LoseAnswer);
    let outcome = api.reporter().pass().await.unwrap();
    assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
    assert_eq!(api.pulls().len(), 1);
    assert!(!api.kinds(&id).await.contains(&GithubWriteKind::PullRequest));
    let outcome = api.reporter().pass().await.unwrap();
    assert_eq!(wrote(&outcome), [GithubWriteKind::PullRequest]);
    assert_eq!(api.pulls().len(), 1);
    assert_eq!(
        api.calls("POST /repos"),
        2 + 1,
        "one refused, one ack, one PR"
    );

    // The end: the PR's update fails once, then the final comment is written with its answer
    // lost; the reporter finds its marker (past the first page) and records it.
    api.ends(&id, TaskStatus::Closed, "# Report\nrejected")
        .await;
    api.fail("PATCH pull", Fault::Refuse);
    api.fail("POST comments", Fault::LoseAnswer);
    let mut reporter = api.reporter();
    let outcome = reporter.pass().await.unwrap();
    assert!(outcome.recorded.is_empty(), "{outcome:?}");
    let outcome = reporter.pass().await.unwrap();
    assert_eq!(wrote(&outcome), [GithubWriteKind::PullRequestBody]);
    assert_eq!(outcome.failed.len(), 1, "{outcome:?}");
    let outcome = reporter.pass().await.unwrap();
    assert_eq!(wrote(&outcome), [GithubWriteKind::FinalReport]);
    assert_eq!(outcome.done, [id.as_str()]);

    let comments = api.comments();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert!(
        comments[1]
            .body
            .contains(&format!("<!-- errand:{id}:final_report -->"))
    );
    assert_eq!(api.pulls().len(), 1);
    assert!(api.pulls()[0].body.contains("rejected"));
    for _ in 0..3 {
        assert_eq!(api.reporter().pass().await.unwrap(), PassOutcome::default());
    }
    assert_eq!(api.comments().len(), 2);
}

#[tokio::test]
async fn a_pr_opened_meanwhile_is_adopted_and_two_reporters_write_once() {
    let api = start().await;
    let id = api.issue_starts_a_task("d-1").await;
    api.awaits_review(&id, "## Round 1").await;
    // A person opened the PR of the task branch already.
    api.github.lock().unwrap().pulls.push(Pull {
        number: 9,
        title: "by hand".to_string(),
        head: format!("errand/{id}"),
        base: "main".to_string(),
        body: String::new(),
        state: "open".to_string(),
    });
    // Two replicas' reporters at once: the claim lets one write, the other skips the task.
    let (mut a, mut b) = (api.reporter(), api.reporter());
    let (one, two) = tokio::join!(a.pass(), b.pass());
    let mut kinds = wrote(&one.unwrap());
    kinds.extend(wrote(&two.unwrap()));
    kinds.sort();
    assert_eq!(
        kinds,
        [
            GithubWriteKind::Acknowledgement,
            GithubWriteKind::PullRequest
        ]
    );
    assert_eq!(api.comments().len(), 1);
    assert_eq!(api.pulls().len(), 1);
    assert_eq!(
        api.store
            .pull_request_task(REPO, 9)
            .await
            .unwrap()
            .as_deref(),
        Some(id.as_str())
    );
    assert_eq!(api.calls("POST /repos/Codertocat/Hello-World/pulls"), 0);
}

#[tokio::test]
async fn a_task_that_ends_before_review_gets_no_pr_and_long_reports_fit() {
    let api = start().await;
    let id = api.issue_starts_a_task("d-1").await;
    // Ends (failed) before the reporter ever saw it, with a report over GitHub's limit.
    let long = format!("# Report\n{}", "é".repeat(70_000));
    api.ends(&id, TaskStatus::Failed, &long).await;
    let outcome = api.reporter().pass().await.unwrap();
    assert_eq!(
        wrote(&outcome),
        [
            GithubWriteKind::Acknowledgement,
            GithubWriteKind::FinalReport
        ]
    );
    assert_eq!(outcome.done, [id.as_str()]);
    assert!(api.pulls().is_empty());
    assert_eq!(api.calls("GET /repos/Codertocat/Hello-World/pulls"), 0);
    let comments = api.comments();
    assert_eq!(comments.len(), 2);
    let body = &comments[1].body;
    assert!(body.chars().count() <= 65536, "{}", body.chars().count());
    assert!(body.contains("ended **failed**") && body.contains("truncated"));
    assert!(body.ends_with(&format!("<!-- errand:{id}:final_report -->")));
}

#[tokio::test]
async fn the_spawned_reporter_acknowledges_in_the_background() {
    let api = start().await;
    // No token: no reporter.
    let mut tokenless = (*api.settings).clone();
    tokenless.token_env = None;
    assert!(api::github::reporter::spawn(api.store.clone(), Arc::new(tokenless)).is_none());
    let mut off = (*api.settings).clone();
    off.write_back = false;
    assert!(api::github::reporter::spawn(api.store.clone(), Arc::new(off)).is_none());

    let id = api.issue_starts_a_task("d-1").await;
    let handle = api::github::reporter::spawn(api.store.clone(), api.settings.clone())
        .expect("a token: a reporter");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while api.comments().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no acknowledgement");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.abort();
    assert_eq!(api.kinds(&id).await, [GithubWriteKind::Acknowledgement]);
    assert_eq!(api.comments().len(), 1);
}
