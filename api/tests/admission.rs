//! Admission rules as tables: each bad request must come back with the right status and name
//! the field at fault; good ones become the expected `TaskSpec`.

mod support;

use std::collections::BTreeMap;

use api::ApiError;
use api::admission::{
    DEFAULT_BASE, DEFAULT_MAX_ROUNDS, DEFAULT_REQUESTER, DEFAULT_TIME_BUDGET_SECS, base,
    check_branch_name, check_playbook_name, list_limit, parse_status, playbook_task_spec, repo,
    review_error, task_spec,
};
use api::dto::{PlaybookRunRequest, TaskRequest};
use api::task_id;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use workflows::playbook::{InputValue, Playbook};
use workflows::task::{DEFAULT_REVIEW_TIMEOUT_SECS, PlaybookRef};
use workflows::{AgentSpec, ReviewDecision, ReviewVerdict, TaskSpec, TaskStatus};

/// The status and field of an error, for compact expectations.
fn fault(err: ApiError) -> (u16, Option<String>) {
    (err.status.as_u16(), err.field)
}

fn request(body: serde_json::Value) -> TaskRequest {
    serde_json::from_value(body).expect("the test body is a TaskRequest")
}

fn minimal() -> serde_json::Value {
    serde_json::json!({
        "repo": "/srv/git/app.git",
        "instructions": "Make the test pass.",
        "checks": ["sh test.sh"],
        "agent": {"kind": "command", "command": ["agent", "--fast"]},
    })
}

fn with(field: &str, value: serde_json::Value) -> TaskRequest {
    let mut body = minimal();
    body[field] = value;
    request(body)
}

#[test]
fn task_ids_from_idempotency_keys_are_stable_and_distinct() {
    // sha256("abc") = ba7816bf8f01cfea414140de...
    assert_eq!(
        task_id::from_idempotency_key("abc"),
        "t-ba7816bf8f01cfea4141"
    );
    assert_eq!(
        task_id::from_idempotency_key("deploy-42"),
        task_id::from_idempotency_key("deploy-42")
    );
    assert_ne!(
        task_id::from_idempotency_key("deploy-42"),
        task_id::from_idempotency_key("deploy-43")
    );

    let a = task_id::fresh();
    let b = task_id::fresh();
    assert_ne!(a, b);
    for id in [&a, &b] {
        let hex = id.strip_prefix("t-").expect("fresh ids start with t-");
        assert_eq!(hex.len(), 32, "{id}");
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
}

#[test]
fn idempotency_key_header_rules() {
    // The header's bytes, and the key it gives (None: refused).
    let cases: [(&[u8], Option<&str>); 6] = [
        (b"order-17", Some("order-17")),
        (b"a key with spaces", Some("a key with spaces")),
        (b"   ", None),
        (b"", None),
        (b"caf\xc3\xa9", None),
        (&[b'k'; 256], None),
    ];
    for (value, want) in cases {
        let mut headers = HeaderMap::new();
        headers.insert(
            task_id::IDEMPOTENCY_KEY,
            HeaderValue::from_bytes(value).unwrap(),
        );
        let got = task_id::idempotency_key(&headers);
        match want {
            Some(key) => assert_eq!(got.unwrap().as_deref(), Some(key)),
            None => assert_eq!(
                fault(got.unwrap_err()),
                (400, Some("Idempotency-Key".into())),
                "{value:?}"
            ),
        }
    }
    assert_eq!(task_id::idempotency_key(&HeaderMap::new()).unwrap(), None);

    let mut headers = HeaderMap::new();
    headers.insert(task_id::IDEMPOTENCY_KEY, HeaderValue::from_static("abc"));
    assert_eq!(
        task_id::for_request(&headers).unwrap(),
        "t-ba7816bf8f01cfea4141"
    );
}

#[test]
fn a_minimal_task_request_gets_the_defaults() {
    let spec = task_spec("t-1".into(), request(minimal())).unwrap();
    assert_eq!(
        spec,
        TaskSpec {
            id: "t-1".into(),
            repo: "/srv/git/app.git".into(),
            base: DEFAULT_BASE.into(),
            instructions: "Make the test pass.".into(),
            checks: vec!["sh test.sh".into()],
            agent: AgentSpec::Command {
                command: vec!["agent".into(), "--fast".into()]
            },
            max_rounds: DEFAULT_MAX_ROUNDS,
            time_budget_secs: DEFAULT_TIME_BUDGET_SECS,
            requester: DEFAULT_REQUESTER.into(),
            playbook: None,
            review_timeout_secs: DEFAULT_REVIEW_TIMEOUT_SECS,
            policy: Default::default(),
        }
    );
    assert_eq!(
        (spec.base.as_str(), spec.max_rounds, spec.time_budget_secs),
        ("main", 3, 600)
    );
    assert_eq!(spec.requester, "anonymous");
    let mut body = minimal();
    body["agent"] = serde_json::json!({"kind": "codex", "model": "gpt-5-codex"});
    let spec = task_spec("t-1".into(), request(body)).unwrap();
    assert_eq!(
        spec.agent,
        AgentSpec::Codex {
            model: Some("gpt-5-codex".into()),
            program: None
        }
    );
}

#[test]
fn a_full_task_request_is_taken_as_given() {
    let mut body = minimal();
    body["base"] = "release/1.2".into();
    body["max_rounds"] = 5.into();
    body["time_budget_secs"] = 30.into();
    body["requester"] = " alice ".into();
    body["review_timeout_secs"] = 3600.into();
    let spec = task_spec("t-2".into(), request(body)).unwrap();
    assert_eq!(spec.base, "release/1.2");
    assert_eq!(
        (
            spec.max_rounds,
            spec.time_budget_secs,
            spec.review_timeout_secs
        ),
        (5, 30, 3600)
    );
    assert_eq!(spec.requester, "alice");
}

#[test]
fn bad_task_requests_name_the_field() {
    use serde_json::json;
    let cases = [
        (with("repo", json!("")), "repo"),
        (with("repo", json!("   ")), "repo"),
        (with("repo", json!("--upload-pack=touch /tmp/x")), "repo"),
        (with("repo", json!("/srv/a\nb")), "repo"),
        (with("base", json!("")), "base"),
        (with("base", json!("feature..x")), "base"),
        (with("base", json!("refs/*")), "base"),
        (with("base", json!("-main")), "base"),
        (with("instructions", json!(" \n ")), "instructions"),
        (with("checks", json!([])), "checks"),
        (with("checks", json!(["sh test.sh", " "])), "checks[1]"),
        (
            with("agent", json!({"kind": "command", "command": []})),
            "agent.command",
        ),
        (
            with("agent", json!({"kind": "command", "command": [""]})),
            "agent.command[0]",
        ),
        (
            with(
                "agent",
                json!({"kind": "builtin", "model": "m", "max_turns": 0}),
            ),
            "agent.max_turns",
        ),
        (
            with(
                "agent",
                json!({"kind": "claude_code", "program": "/root/claude"}),
            ),
            "agent.program",
        ),
        (with("max_rounds", json!(0)), "max_rounds"),
        (with("max_rounds", json!(101)), "max_rounds"),
        (with("time_budget_secs", json!(0)), "time_budget_secs"),
        (with("time_budget_secs", json!(86401)), "time_budget_secs"),
        (with("requester", json!("  ")), "requester"),
        (with("review_timeout_secs", json!(0)), "review_timeout_secs"),
    ];
    for (request, field) in cases {
        let shown = format!("{request:?}");
        let err = task_spec("t".into(), request).expect_err(&shown);
        assert_eq!(fault(err), (422, Some(field.to_string())), "{shown}");
    }
}

#[test]
fn unknown_and_mistyped_fields_do_not_deserialize() {
    let mut unknown = minimal();
    unknown["priority"] = 1.into();
    let err = serde_json::from_value::<TaskRequest>(unknown)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `priority`"), "{err}");

    let mut shell = minimal();
    shell["agent"] = serde_json::json!({"kind": "shell", "command": ["x"]});
    assert!(serde_json::from_value::<TaskRequest>(shell).is_err());

    let mut missing = minimal();
    missing.as_object_mut().unwrap().remove("checks");
    let err = serde_json::from_value::<TaskRequest>(missing)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing field `checks`"), "{err}");
}

#[test]
fn branch_names_follow_git() {
    let valid = [
        "main",
        "release/1.2",
        "feature/x-y_z",
        "v1.0",
        "a@b",
        "UPPER",
    ];
    for name in valid {
        assert_eq!(check_branch_name(name), Ok(()), "{name}");
    }
    let invalid = [
        "",
        "@",
        "-x",
        "/x",
        "x/",
        "a//b",
        "x.",
        "a..b",
        "a@{1}",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[b",
        "a\\b",
        "a\tb",
        ".hidden",
        "x/.y",
        "x.lock",
        "x/y.lock/z",
    ];
    for name in invalid {
        assert!(
            check_branch_name(name).is_err(),
            "{name:?} should be rejected"
        );
    }
    assert_eq!(base(None).unwrap(), "main");
    assert_eq!(base(Some(" dev ")).unwrap(), "dev");
    assert_eq!(
        fault(base(Some("a b")).unwrap_err()),
        (422, Some("base".into()))
    );
}

#[test]
fn repos_are_trimmed_and_never_options() {
    assert_eq!(
        repo(" https://example.com/a.git ").unwrap(),
        "https://example.com/a.git"
    );
    assert_eq!(repo("/tmp/my repo").unwrap(), "/tmp/my repo");
    for bad in ["", "-c", "--upload-pack=x", "a\u{0}b", &"x".repeat(2049)] {
        assert_eq!(
            fault(repo(bad).unwrap_err()),
            (422, Some("repo".into())),
            "{bad:?}"
        );
    }
}

#[test]
fn playbook_names_are_lowercase_words() {
    for good in ["fix-failing-test", "a", "bump2", "x-1-y"] {
        assert!(check_playbook_name(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "Fix",
        "../etc/passwd",
        "a/b",
        "a.yaml",
        "a_b",
        "a b",
        "ü",
        &"a".repeat(65),
    ] {
        assert_eq!(
            fault(check_playbook_name(bad).unwrap_err()),
            (400, Some("name".into())),
            "{bad:?}"
        );
    }
}

#[test]
fn status_filters_and_limits() {
    for status in TaskStatus::ALL {
        assert_eq!(parse_status(status.as_str()).unwrap(), status);
    }
    let err = parse_status("done").unwrap_err();
    assert_eq!(
        (err.status, err.field.as_deref()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
    assert!(
        err.message.contains("\"done\"") && err.message.contains("awaiting_review"),
        "{}",
        err.message
    );
    assert_eq!(
        fault(parse_status("Merged").unwrap_err()),
        (400, Some("status".into()))
    );

    assert_eq!(list_limit(None).unwrap(), 50);
    assert_eq!(list_limit(Some("1")).unwrap(), 1);
    assert_eq!(list_limit(Some("500")).unwrap(), 500);
    for bad in ["0", "501", "-1", "ten", "", "1.5"] {
        assert_eq!(
            fault(list_limit(Some(bad)).unwrap_err()),
            (400, Some("limit".into())),
            "{bad:?}"
        );
    }
}

#[test]
fn review_rejections_map_to_their_status() {
    let decision = |verdict, reviewer: &str, comment: Option<&str>| ReviewDecision {
        decision: verdict,
        reviewer: reviewer.into(),
        comment: comment.map(Into::into),
    };
    use ReviewVerdict::*;
    let cases = [
        (
            decision(Approve, "bob", None),
            TaskStatus::RunningAgent,
            (409, None),
        ),
        (
            decision(Approve, "bob", None),
            TaskStatus::Merged,
            (409, None),
        ),
        (
            decision(Approve, "alice", None),
            TaskStatus::AwaitingReview,
            (403, Some("reviewer")),
        ),
        (
            decision(Reject, " ", None),
            TaskStatus::AwaitingReview,
            (422, Some("reviewer")),
        ),
        (
            decision(RequestChanges, "bob", None),
            TaskStatus::AwaitingReview,
            (422, Some("comment")),
        ),
    ];
    for (d, status, (code, field)) in cases {
        let err = review_error(d.check(status, "alice").unwrap_err());
        assert_eq!(
            fault(err),
            (code, field.map(String::from)),
            "{d:?} at {status}"
        );
    }
    let err = review_error(
        decision(Approve, "bob", None)
            .check(TaskStatus::Verifying, "alice")
            .unwrap_err(),
    );
    assert_eq!(err.message, "task is not awaiting review: it is verifying");
}

fn run_request(body: serde_json::Value) -> PlaybookRunRequest {
    serde_json::from_value(body).expect("the test body is a PlaybookRunRequest")
}

fn resolve(content: &str, inputs: &[(&str, &str)]) -> workflows::playbook::Resolved {
    let inputs: BTreeMap<String, InputValue> = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), InputValue::from(*v)))
        .collect();
    Playbook::parse("fix-test.yaml", content)
        .unwrap()
        .resolve(content, &inputs)
        .unwrap()
}

#[test]
fn a_playbook_run_takes_the_playbook_and_its_pin() {
    let request =
        run_request(serde_json::json!({"repo": "/srv/app.git", "inputs": {"test": "test_add"}}));
    let spec = playbook_task_spec(
        "t-3".into(),
        request,
        resolve(support::FIX_TEST_PLAYBOOK, &[("test", "test_add")]),
    )
    .unwrap();
    assert_eq!(spec.instructions, "Fix test_add.");
    assert_eq!(spec.checks, ["sh test.sh"]);
    assert_eq!(
        spec.agent,
        AgentSpec::Command {
            command: vec!["scripted-agent".into()]
        }
    );
    assert_eq!((spec.max_rounds, spec.time_budget_secs), (4, 300));
    assert_eq!(
        (spec.base.as_str(), spec.requester.as_str()),
        ("main", "anonymous")
    );
    assert_eq!(
        spec.playbook,
        Some(PlaybookRef {
            name: "fix-test".into(),
            content_hash: workflows::playbook::content_hash(support::FIX_TEST_PLAYBOOK)
        })
    );
}

#[test]
fn a_playbook_run_may_only_lower_the_budget() {
    use serde_json::json;
    let base = json!({"repo": "/srv/app.git", "inputs": {"test": "t"}});
    let with_field = |field: &str, value: serde_json::Value| {
        let mut body = base.clone();
        body[field] = value;
        run_request(body)
    };
    let resolved = || resolve(support::FIX_TEST_PLAYBOOK, &[("test", "t")]);

    let lowered =
        playbook_task_spec("t".into(), with_field("max_rounds", json!(2)), resolved()).unwrap();
    assert_eq!(lowered.max_rounds, 2);
    let same =
        playbook_task_spec("t".into(), with_field("max_rounds", json!(4)), resolved()).unwrap();
    assert_eq!(same.max_rounds, 4);
    let faster = playbook_task_spec(
        "t".into(),
        with_field("time_budget_secs", json!(60)),
        resolved(),
    )
    .unwrap();
    assert_eq!(faster.time_budget_secs, 60);

    let cases = [
        (with_field("max_rounds", json!(5)), "max_rounds"),
        (with_field("max_rounds", json!(0)), "max_rounds"),
        (
            with_field("time_budget_secs", json!(301)),
            "time_budget_secs",
        ),
        (with_field("time_budget_secs", json!(0)), "time_budget_secs"),
        (with_field("repo", json!("")), "repo"),
        (with_field("base", json!("a..b")), "base"),
        (with_field("requester", json!("")), "requester"),
        (
            with_field("agent", json!({"kind": "command", "command": []})),
            "agent.command",
        ),
    ];
    for (request, field) in cases {
        let shown = format!("{request:?}");
        let err = playbook_task_spec("t".into(), request, resolved()).expect_err(&shown);
        assert_eq!(fault(err), (422, Some(field.to_string())), "{shown}");
    }
    let err =
        playbook_task_spec("t".into(), with_field("max_rounds", json!(5)), resolved()).unwrap_err();
    assert!(err.message.contains("may only lower"), "{}", err.message);
}

#[test]
fn a_playbook_run_needs_an_agent_from_somewhere() {
    let without_agent = support::FIX_TEST_PLAYBOOK
        .replace("agent:\n  kind: command\n  command: [scripted-agent]\n", "");
    let body = serde_json::json!({"repo": "/srv/app.git", "inputs": {"test": "t"}});
    let err = playbook_task_spec(
        "t".into(),
        run_request(body.clone()),
        resolve(&without_agent, &[("test", "t")]),
    )
    .unwrap_err();
    assert_eq!(fault(err), (422, Some("agent".into())));

    let mut with_agent = body;
    with_agent["agent"] = serde_json::json!({"kind": "command", "command": ["codex", "exec"]});
    let spec = playbook_task_spec(
        "t".into(),
        run_request(with_agent.clone()),
        resolve(&without_agent, &[("test", "t")]),
    )
    .unwrap();
    assert_eq!(
        spec.agent,
        AgentSpec::Command {
            command: vec!["codex".into(), "exec".into()]
        }
    );
    // The request's agent also overrides the playbook's.
    let spec = playbook_task_spec(
        "t".into(),
        run_request(with_agent),
        resolve(support::FIX_TEST_PLAYBOOK, &[("test", "t")]),
    )
    .unwrap();
    assert_eq!(
        spec.agent,
        AgentSpec::Command {
            command: vec!["codex".into(), "exec".into()]
        }
    );
}

#[test]
fn playbook_errors_are_422_naming_the_input() {
    use api::admission::playbook_error;
    let playbook = Playbook::parse("fix-test.yaml", support::FIX_TEST_PLAYBOOK).unwrap();
    let missing = playbook
        .resolve(support::FIX_TEST_PLAYBOOK, &BTreeMap::new())
        .unwrap_err();
    assert_eq!(
        fault(playbook_error(missing)),
        (422, Some("inputs.test".into()))
    );
    let unknown = playbook
        .resolve(
            support::FIX_TEST_PLAYBOOK,
            &[
                ("test".to_string(), InputValue::from("t")),
                ("tset".to_string(), InputValue::from("t")),
            ]
            .into(),
        )
        .unwrap_err();
    assert_eq!(
        fault(playbook_error(unknown)),
        (422, Some("inputs.tset".into()))
    );
    let broken = Playbook::parse("fix-test.yaml", "name: [").unwrap_err();
    let err = playbook_error(broken);
    assert_eq!((err.status.as_u16(), err.code), (422, "invalid_playbook"));
    assert!(err.message.starts_with("fix-test.yaml"), "{}", err.message);
}

#[test]
fn a_playbook_run_carries_the_policy_and_may_only_lower_its_review_timeout() {
    use serde_json::json;
    let content = support::FIX_TEST_PLAYBOOK.replace("name: fix-test", "name: fix-test\nboundary:\n  max_changed_files: 3\nreview:\n  merge: never\n  timeout_secs: 3600");
    let resolved = || resolve(&content, &[("test", "t")]);
    let run = |timeout: Option<u64>| {
        let mut body = json!({"repo": "/srv/app.git", "inputs": {"test": "t"}});
        if let Some(t) = timeout {
            body["review_timeout_secs"] = t.into();
        }
        playbook_task_spec("t".into(), run_request(body), resolved())
    };
    let spec = run(None).unwrap();
    assert_eq!(spec.review_timeout_secs, 3600);
    assert_eq!(
        spec.policy.boundary.max_changed_files.map(|m| m.get()),
        Some(3)
    );
    assert_eq!(spec.policy.merge, workflows::playbook::MergePolicy::Never);
    assert_eq!(run(Some(60)).unwrap().review_timeout_secs, 60);
    assert_eq!(
        fault(run(Some(7200)).unwrap_err()),
        (422, Some("review_timeout_secs".into()))
    );
    // An ad-hoc task gets the default protections.
    let adhoc = task_spec("t".into(), request(minimal())).unwrap();
    assert_eq!(adhoc.policy, workflows::policy::Policy::default());
}

#[test]
fn typed_inputs_are_checked_at_admission() {
    use api::admission::playbook_error;
    let content = support::FIX_TEST_PLAYBOOK.replace(
        "    description: the failing test",
        "    description: the failing test\n  runs:\n    type: integer\n    default: 3",
    );
    let playbook = Playbook::parse("fix-test.yaml", &content).unwrap();
    let inputs = BTreeMap::from([
        ("test".to_string(), InputValue::from("t")),
        ("runs".to_string(), InputValue::from("many")),
    ]);
    let err = playbook.resolve(&content, &inputs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inputs.runs: expected an integer, got \"many\""
    );
    assert_eq!(
        fault(playbook_error(err)),
        (422, Some("inputs.runs".into()))
    );
}
