//! Cost and budgets through the router over real HTTP, with a real store (a SQLite file), real
//! git and a fake Temporal that accepts every call: budgets round-trip, admission refuses a
//! task whose period budget is spent and one asking for more than its playbook allows, and the
//! ledger reads back per task, grouped, as an estimate and as metrics.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use store::{EntryKind, LedgerEntry, Store};
use temporalio_client::Client;
use temporalio_client::callback_based::{CallbackBasedGrpcService, GrpcSuccessResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use workflows::TaskStatus;
use workflows::contracts::FinishRequest;
use workflows::cost::{BudgetRefusal, MicroDollars, Usage};

const PLAYBOOK: &str = "\
name: fix-test
description: fix a failing test
outcome: the test passes
procedure: Fix the test.
agent:
  kind: command
  command: [scripted-agent]
verification:
  checks: [sh test.sh]
budget:
  max_rounds: 2
  time_per_round_secs: 300
  dollars: 5
  tokens: 100000
";

/// A Temporal frontend that answers every call with an empty success.
async fn fake_temporal() -> Client {
    let service = CallbackBasedGrpcService {
        callback: Arc::new(|_request| {
            Box::pin(async {
                Ok(GrpcSuccessResponse {
                    headers: Default::default(),
                    proto: Vec::new(),
                })
            })
        }),
    };
    support::fake_temporal(service).await
}

struct TestApi {
    addr: std::net::SocketAddr,
    store: Store,
    repo: String,
    _dir: tempfile::TempDir,
}

impl TestApi {
    async fn start() -> TestApi {
        let dir = tempfile::tempdir().unwrap();
        let repo = support::bare_repo(dir.path());
        let playbooks = dir.path().join("playbooks");
        std::fs::create_dir(&playbooks).unwrap();
        std::fs::write(playbooks.join("fix-test.yaml"), PLAYBOOK).unwrap();
        let url = format!("sqlite://{}", dir.path().join("errand.db").display());
        let store = Store::connect(&url).await.expect("a store");
        let state = api::ApiState {
            client: fake_temporal().await,
            store: store.clone(),
            playbooks_dir: playbooks,
            temporal_ui_url: None,
            namespace: "errand-test".to_string(),
        };
        let addr = support::serve(api::router(state)).await;
        TestApi {
            addr,
            store,
            repo,
            _dir: dir,
        }
    }

    /// One HTTP/1.1 request on its own connection: (status, JSON body).
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).expect("a utf-8 answer");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let json = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
        (status, json)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    async fn run(&self, extra: Value) -> (u16, Value) {
        let mut body = json!({"repo": self.repo, "requester": "alice"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.send("POST", "/v1/playbooks/fix-test/runs", Some(body))
            .await
    }

    async fn ad_hoc(&self) -> (u16, Value) {
        let body = json!({
            "repo": self.repo,
            "instructions": "Make the test pass.",
            "checks": ["sh test.sh"],
            "agent": {"kind": "command", "command": ["scripted-agent"]},
        });
        self.send("POST", "/v1/tasks", Some(body)).await
    }

    async fn tasks(&self) -> usize {
        let (status, list) = self.get("/v1/tasks").await;
        assert_eq!(status, 200);
        list.as_array().unwrap().len()
    }

    async fn spend(&self, task_id: &str, playbook: Option<&str>, micros: i64, at: Option<&str>) {
        let entry = call(task_id, playbook, micros);
        match at {
            Some(at) => self
                .store
                .record_ledger_entry_at(&entry, time(at))
                .await
                .unwrap(),
            None => self.store.record_ledger_entry(&entry).await.unwrap(),
        };
    }
}

fn call(task_id: &str, playbook: Option<&str>, micros: i64) -> LedgerEntry {
    LedgerEntry {
        task_id: task_id.to_string(),
        round: 1,
        step: "agent".to_string(),
        kind: EntryKind::Model,
        model: Some("m1".to_string()),
        usage: Usage {
            input_tokens: 100,
            output_tokens: 10,
            ..Usage::default()
        },
        sandbox: None,
        cost: MicroDollars(micros),
        refused: None,
        playbook: playbook.map(str::to_string),
        trigger: Some("api".to_string()),
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn error(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().expect("an error code"),
        body["error"]["field"].as_str(),
    )
}

#[tokio::test]
async fn budgets_round_trip_and_bad_ones_name_the_field() {
    let api = TestApi::start().await;
    assert_eq!(api.get("/v1/budgets").await, (200, json!({"budgets": []})));
    let budgets = json!({"budgets": [
        {"scope": "playbook", "playbook": "fix-test", "period": "sprint:2026-11-02:14", "dollars": 12.5},
        {"scope": "global", "period": "month", "dollars": 100, "tokens": 5000000},
    ]});
    let (status, put) = api.send("PUT", "/v1/budgets", Some(budgets)).await;
    assert_eq!(status, 200, "{put}");
    let (status, got) = api.get("/v1/budgets").await;
    assert_eq!(status, 200);
    assert_eq!(got, put, "PUT answers what GET reads");
    let listed = got["budgets"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (
            &listed[0]["scope"],
            &listed[0]["period"],
            &listed[0]["micro_dollars"],
            &listed[0]["tokens"]
        ),
        (
            &json!("global"),
            &json!("month"),
            &json!(100_000_000),
            &json!(5_000_000)
        )
    );
    assert_eq!(listed[1]["playbook"], "fix-test");
    assert_eq!(listed[1]["period"], "sprint:2026-11-02:14");
    assert_eq!(listed[1]["dollars"], "$12.500000");
    assert_eq!(listed[1]["spent_micro_dollars"], 0);
    assert_eq!(listed[1]["exhausted"], false);

    let bad = json!({"budgets": [
        {"scope": "global", "period": "month", "dollars": 1},
        {"scope": "global", "period": "fortnight", "dollars": 1},
    ]});
    let (status, body) = api.send("PUT", "/v1/budgets", Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error(&body), ("invalid_field", Some("budgets[1].period")));
    let (status, body) = api
        .send(
            "PUT",
            "/v1/budgets",
            Some(json!({"budgets": [{"scope": "global", "period": "day", "euros": 3}]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        api.get("/v1/budgets").await.1,
        got,
        "a refused PUT changes nothing"
    );

    let (status, _) = api
        .send("PUT", "/v1/budgets", Some(json!({"budgets": []})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.get("/v1/budgets").await.1, json!({"budgets": []}));
}

#[tokio::test]
async fn admission_refuses_a_task_whose_period_budget_is_spent() {
    let api = TestApi::start().await;
    let budgets = json!({"budgets": [
        {"scope": "playbook", "playbook": "fix-test", "period": "day", "dollars": 0.00001},
    ]});
    assert_eq!(api.send("PUT", "/v1/budgets", Some(budgets)).await.0, 200);
    let (status, first) = api.run(json!({})).await;
    assert_eq!(status, 201, "nothing spent yet: {first}");
    let id = first["id"].as_str().unwrap().to_string();
    api.spend(&id, Some("fix-test"), 10, None).await;

    let (status, body) = api.run(json!({})).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(error(&body).0, "budget_exhausted");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("playbook_period"), "{message}");
    assert!(
        message.contains(
            "playbook fix-test's day budget is spent: $0.000010 spent of a $0.000010 budget"
        ),
        "{message}"
    );
    assert_eq!(api.tasks().await, 1, "a refused task is not recorded");
    let (budgets_status, budgets) = api.get("/v1/budgets").await;
    assert_eq!(budgets_status, 200);
    assert_eq!(budgets["budgets"][0]["exhausted"], true);

    // Another scope's budget is not this task's: an ad-hoc task is admitted...
    assert_eq!(api.ad_hoc().await.0, 201);
    // ...until the global budget is spent too.
    let global = json!({"budgets": [{"scope": "global", "period": "month", "tokens": 110}]});
    assert_eq!(api.send("PUT", "/v1/budgets", Some(global)).await.0, 200);
    let (status, body) = api.ad_hoc().await;
    assert_eq!(status, 402, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("the global month budget is spent: 110 tokens used of a 110-token budget"),
        "{body}"
    );
    assert_eq!(api.tasks().await, 2);
    // Spend of another window does not count: yesterday's costs leave today's budget whole.
    let day = json!({"budgets": [{"scope": "global", "period": "day", "dollars": 1}]});
    assert_eq!(api.send("PUT", "/v1/budgets", Some(day)).await.0, 200);
    api.spend(
        &id,
        Some("fix-test"),
        5_000_000,
        Some("2020-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(api.ad_hoc().await.0, 201);
}

#[tokio::test]
async fn a_request_may_lower_the_task_budget_never_raise_it() {
    let api = TestApi::start().await;
    let (status, body) = api
        .run(json!({"max_dollars": 2.5, "max_tokens": 1000}))
        .await;
    assert_eq!(status, 201, "{body}");
    let spec = api
        .store
        .task_spec(body["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(spec.policy.max_dollars.map(|d| d.0), Some(2.5));
    assert_eq!(spec.policy.max_tokens.map(|t| t.get()), Some(1000));

    let (status, body) = api.run(json!({})).await;
    assert_eq!(status, 201);
    let spec = api
        .store
        .task_spec(body["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        spec.policy.max_dollars.map(|d| d.0),
        Some(5.0),
        "the playbook's cap is the default"
    );

    for (extra, field) in [
        (json!({"max_dollars": 5.01}), "max_dollars"),
        (json!({"max_tokens": 100001}), "max_tokens"),
        (json!({"max_dollars": 0}), "max_dollars"),
        (json!({"max_tokens": 0}), "max_tokens"),
    ] {
        let (status, body) = api.run(extra.clone()).await;
        assert_eq!(status, 422, "{extra}: {body}");
        assert_eq!(error(&body), ("invalid_field", Some(field)), "{extra}");
    }
    let (_, body) = api.run(json!({"max_dollars": 6})).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may only lower the playbook's budget.dollars (5), not raise it to 6"),
        "{body}"
    );
    assert_eq!(api.tasks().await, 2);
}

#[tokio::test]
async fn cost_reads_per_task_grouped_estimated_and_as_metrics() {
    let api = TestApi::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = api.run(json!({})).await;
        assert_eq!(status, 201);
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let (status, body) = api.ad_hoc().await;
    assert_eq!(status, 201);
    let ad_hoc = body["id"].as_str().unwrap().to_string();

    api.spend(
        &ids[0],
        Some("fix-test"),
        1_000,
        Some("2026-11-20T10:00:00Z"),
    )
    .await;
    api.spend(&ids[0], Some("fix-test"), 500, Some("2026-11-21T10:00:00Z"))
        .await;
    let refused = LedgerEntry {
        usage: Usage::default(),
        refused: Some(BudgetRefusal {
            budget: "task_dollars".into(),
            message: "spent".into(),
        }),
        ..call(&ids[0], Some("fix-test"), 0)
    };
    api.store
        .record_ledger_entry_at(&refused, time("2026-11-21T11:00:00Z"))
        .await
        .unwrap();
    api.spend(
        &ids[1],
        Some("fix-test"),
        3_000,
        Some("2026-11-21T12:00:00Z"),
    )
    .await;
    api.spend(&ad_hoc, None, 7, Some("2026-11-21T13:00:00Z"))
        .await;

    let (status, cost) = api.get(&format!("/v1/tasks/{}/cost", ids[0])).await;
    assert_eq!(status, 200, "{cost}");
    assert_eq!(cost["entries"].as_array().unwrap().len(), 3);
    assert_eq!(cost["totals"]["micro_dollars"], 1_500);
    assert_eq!(cost["totals"]["dollars"], "$0.001500");
    assert_eq!(cost["totals"]["tokens"], 220);
    assert_eq!(
        (&cost["totals"]["model_calls"], &cost["totals"]["refusals"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(cost["entries"][2]["refused"]["budget"], "task_dollars");
    assert_eq!(api.get("/v1/tasks/t-nope/cost").await.0, 404);

    let range = "from=2026-11-20T00:00:00Z&to=2026-11-22T00:00:00Z";
    let (status, by_day) = api.get(&format!("/v1/cost?group_by=day&{range}")).await;
    assert_eq!(status, 200, "{by_day}");
    let groups: Vec<(String, i64)> = by_day["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_string(),
                g["totals"]["micro_dollars"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![("2026-11-20".into(), 1_000), ("2026-11-21".into(), 3_507)]
    );
    assert_eq!(by_day["total"]["micro_dollars"], 4_507);
    let (_, by_playbook) = api
        .get(&format!("/v1/cost?group_by=playbook&{range}"))
        .await;
    assert_eq!(by_playbook["groups"][0]["key"], "ad-hoc");
    assert_eq!(by_playbook["groups"][1]["key"], "fix-test");
    assert_eq!(by_playbook["groups"][1]["totals"]["micro_dollars"], 4_500);
    let (_, by_trigger) = api.get(&format!("/v1/cost?group_by=trigger&{range}")).await;
    assert_eq!(by_trigger["groups"][0]["key"], "api");
    let (_, one_day) = api
        .get("/v1/cost?group_by=playbook&from=2026-11-21T00:00:00Z&to=2026-11-21T12:00:00Z")
        .await;
    assert_eq!(
        one_day["total"]["micro_dollars"], 500,
        "[from, to) is half-open"
    );

    for (query, field) in [
        ("group_by=week", "group_by"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-22T00:00:00Z&to=2026-11-21T00:00:00Z", "from"),
    ] {
        let (status, body) = api.get(&format!("/v1/cost?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(error(&body).1, Some(field), "{query}");
    }
    assert_eq!(api.get("/v1/cost?colour=red").await.0, 400);

    // The estimate: no finished task yet, then two.
    let (status, estimate) = api.get("/v1/playbooks/fix-test/estimate").await;
    assert_eq!(status, 200);
    assert_eq!(estimate["tasks"], 0);
    assert!(estimate.get("median_micro_dollars").is_none(), "{estimate}");
    assert!(
        estimate["summary"]
            .as_str()
            .unwrap()
            .starts_with("no estimate"),
        "{estimate}"
    );
    for id in &ids[..2] {
        api.store
            .finish(&FinishRequest {
                task_id: id.clone(),
                status: TaskStatus::Incomplete,
                round: 1,
                reason: None,
                report: "# report".into(),
                workspace: None,
            })
            .await
            .unwrap();
    }
    let (_, estimate) = api.get("/v1/playbooks/fix-test/estimate").await;
    assert_eq!(estimate["tasks"], 2, "{estimate}");
    assert_eq!(estimate["median_micro_dollars"], 2_250);
    assert_eq!(estimate["p90_micro_dollars"], 3_000);
    assert_eq!(api.get("/v1/playbooks/nope/estimate").await.0, 404);
    assert_eq!(api.get("/v1/playbooks/No_Pe/estimate").await.0, 400);

    let (status, metrics) = api.get("/metrics").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_string();
    for line in [
        r#"errand_cost_dollars_total{model="m1",playbook="fix-test"} 0.0045"#,
        r#"errand_model_tokens_total{kind="output",model="m1",playbook="fix-test"} 30"#,
        r#"errand_budget_refusals_total{playbook="fix-test",reason="task_dollars"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}
