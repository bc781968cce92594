//! GitHub state against real databases: every scenario runs on SQLite and on PostgreSQL. The
//! webhook's deliveries, PR mappings and follow-ups, and the write-back's task origins, claims
//! and recorded writes.

#[macro_use]
mod databases;

use std::time::Duration;

use store::{Followup, GithubWrite, GithubWriteKind, Store, StoreError, TaskOrigin};
use workflows::{AgentSpec, TaskSpec};

on_both_backends!(
    deliveries_are_recorded_once,
    pull_requests_map_to_their_first_task,
    followups_are_recorded_once_per_delivery_in_order,
    origins_are_recorded_once_and_listed_until_done,
    origins_need_an_admitted_task,
    claims_hold_one_reporter_at_a_time,
    writes_are_recorded_once_per_kind,
);

fn spec(id: &str) -> TaskSpec {
    TaskSpec {
        id: id.to_string(),
        repo: "/srv/git/hello.git".to_string(),
        base: "main".to_string(),
        instructions: "Fix the typo.".to_string(),
        checks: vec!["true".to_string()],
        agent: AgentSpec::Command {
            command: vec!["agent".to_string()],
        },
        max_rounds: 2,
        time_budget_secs: 600,
        requester: "Codertocat".to_string(),
        playbook: None,
        review_timeout_secs: 3600,
        policy: Default::default(),
    }
}

fn origin(task_id: &str, issue: u64) -> TaskOrigin {
    TaskOrigin {
        task_id: task_id.to_string(),
        repo: "Codertocat/Hello-World".to_string(),
        issue_number: issue,
        issue_title: "Spelling error in the README file".to_string(),
        playbook: "triage".to_string(),
    }
}

async fn deliveries_are_recorded_once(url: &str) {
    let store = Store::connect(url).await.unwrap();
    assert!(!store.delivery_seen("d-1").await.unwrap());
    assert!(
        store
            .record_delivery("d-1", "issues", "started")
            .await
            .unwrap()
    );
    assert!(store.delivery_seen("d-1").await.unwrap());
    // A concurrent duplicate loses, and changes nothing.
    assert!(
        !store
            .record_delivery("d-1", "issues", "ignored")
            .await
            .unwrap()
    );
    assert!(!store.delivery_seen("d-2").await.unwrap());
}

async fn pull_requests_map_to_their_first_task(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let repo = "Codertocat/Hello-World";
    assert_eq!(store.pull_request_task(repo, 2).await.unwrap(), None);
    store.map_pull_request(repo, 2, "t-1").await.unwrap();
    store.map_pull_request(repo, 2, "t-1").await.unwrap();
    store.map_pull_request(repo, 2, "t-other").await.unwrap();
    assert_eq!(
        store.pull_request_task(repo, 2).await.unwrap().as_deref(),
        Some("t-1")
    );
    // The same number in another repository is another PR.
    store.map_pull_request("acme/app", 2, "t-2").await.unwrap();
    assert_eq!(
        store
            .pull_request_task("acme/app", 2)
            .await
            .unwrap()
            .as_deref(),
        Some("t-2")
    );
    assert_eq!(store.pull_request_task(repo, 3).await.unwrap(), None);
}

async fn followups_are_recorded_once_per_delivery_in_order(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let followup = |delivery: &str, body: &str| Followup {
        task_id: "t-1".to_string(),
        delivery_id: delivery.to_string(),
        author: "maintainer".to_string(),
        body: body.to_string(),
    };
    assert!(
        store
            .record_followup(&followup("d-1", "@errand add a test"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_followup(&followup("d-1", "@errand add a test"))
            .await
            .unwrap()
    );
    let long = "x".repeat(70_000);
    assert!(
        store
            .record_followup(&followup("d-2", &long))
            .await
            .unwrap()
    );
    let followups = store.followups("t-1").await.unwrap();
    assert_eq!(
        followups,
        vec![
            followup("d-1", "@errand add a test"),
            followup("d-2", &long)
        ]
    );
    assert!(store.followups("t-2").await.unwrap().is_empty());
}

async fn origins_are_recorded_once_and_listed_until_done(url: &str) {
    let store = Store::connect(url).await.unwrap();
    for id in ["t-1", "t-2"] {
        store.admit(&spec(id)).await.unwrap();
    }
    assert_eq!(store.task_origin("t-1").await.unwrap(), None);
    assert!(store.record_task_origin(&origin("t-1", 1)).await.unwrap());
    // A repeat (a redelivered issue names the same task) keeps the first.
    assert!(!store.record_task_origin(&origin("t-1", 9)).await.unwrap());
    assert!(store.record_task_origin(&origin("t-2", 2)).await.unwrap());
    assert_eq!(
        store.task_origin("t-1").await.unwrap(),
        Some(origin("t-1", 1))
    );
    assert_eq!(
        store.pending_task_origins(None, 10).await.unwrap(),
        vec![origin("t-1", 1), origin("t-2", 2)]
    );
    assert_eq!(store.pending_task_origins(None, 1).await.unwrap().len(), 1);
    assert_eq!(
        store.pending_task_origins(Some("t-1"), 10).await.unwrap(),
        vec![origin("t-2", 2)]
    );

    store.finish_task_origin("t-1").await.unwrap();
    store.finish_task_origin("t-1").await.unwrap();
    assert_eq!(
        store.pending_task_origins(None, 10).await.unwrap(),
        vec![origin("t-2", 2)]
    );
    // Done, it is still the task's origin (the webhook's repeat changes nothing).
    assert!(store.task_origin("t-1").await.unwrap().is_some());
    assert!(!store.record_task_origin(&origin("t-1", 1)).await.unwrap());
    assert_eq!(store.pending_task_origins(None, 10).await.unwrap().len(), 1);
}

async fn origins_need_an_admitted_task(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let err = store
        .record_task_origin(&origin("t-missing", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
    let err = store
        .record_github_write("t-missing", GithubWriteKind::Acknowledgement, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
}

async fn claims_hold_one_reporter_at_a_time(url: &str) {
    let store = Store::connect(url).await.unwrap();
    store.admit(&spec("t-1")).await.unwrap();
    // No origin: nothing to claim.
    assert!(
        !store
            .claim_task_origin("t-1", "a", Duration::from_secs(60))
            .await
            .unwrap()
    );
    store.record_task_origin(&origin("t-1", 1)).await.unwrap();
    let lease = Duration::from_secs(60);
    assert!(store.claim_task_origin("t-1", "a", lease).await.unwrap());
    assert!(!store.claim_task_origin("t-1", "b", lease).await.unwrap());
    // The holder renews its own claim.
    assert!(store.claim_task_origin("t-1", "a", lease).await.unwrap());
    // Another's release leaves the claim; the holder's frees it.
    store.release_task_origin("t-1", "b").await.unwrap();
    assert!(!store.claim_task_origin("t-1", "b", lease).await.unwrap());
    store.release_task_origin("t-1", "a").await.unwrap();
    assert!(store.claim_task_origin("t-1", "b", lease).await.unwrap());

    // A claim whose lease ran out (its holder died) is taken over.
    store.release_task_origin("t-1", "b").await.unwrap();
    assert!(
        store
            .claim_task_origin("t-1", "dead", Duration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(store.claim_task_origin("t-1", "c", lease).await.unwrap());

    // Done: nobody claims it again.
    store.finish_task_origin("t-1").await.unwrap();
    assert!(!store.claim_task_origin("t-1", "c", lease).await.unwrap());
    assert!(!store.claim_task_origin("t-1", "d", lease).await.unwrap());
}

async fn writes_are_recorded_once_per_kind(url: &str) {
    let store = Store::connect(url).await.unwrap();
    for id in ["t-1", "t-2"] {
        store.admit(&spec(id)).await.unwrap();
    }
    assert!(store.github_writes("t-1").await.unwrap().is_empty());
    let ack = GithubWriteKind::Acknowledgement;
    assert!(
        store
            .record_github_write("t-1", ack, 1_000_001)
            .await
            .unwrap()
    );
    // A repeat, even with another id, keeps the first.
    assert!(
        !store
            .record_github_write("t-1", ack, 1_000_001)
            .await
            .unwrap()
    );
    assert!(!store.record_github_write("t-1", ack, 7).await.unwrap());
    let big = i64::MAX as u64;
    assert!(
        store
            .record_github_write("t-1", GithubWriteKind::PullRequest, 2)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_github_write("t-1", GithubWriteKind::FinalReport, big)
            .await
            .unwrap()
    );
    assert!(store.record_github_write("t-2", ack, 5).await.unwrap());
    assert_eq!(
        store.github_writes("t-1").await.unwrap(),
        vec![
            GithubWrite {
                kind: ack,
                github_id: 1_000_001
            },
            GithubWrite {
                kind: GithubWriteKind::PullRequest,
                github_id: 2
            },
            GithubWrite {
                kind: GithubWriteKind::FinalReport,
                github_id: big
            },
        ]
    );
    let err = store
        .record_github_write("t-1", GithubWriteKind::PullRequestBody, u64::MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
    for kind in GithubWriteKind::ALL {
        assert_eq!(GithubWriteKind::parse(kind.as_str()), Some(kind));
    }
}
