//! The store against real databases: every scenario runs on SQLite and on PostgreSQL.

#[macro_use]
mod databases;

use sea_orm::{ConnectionTrait, Database};
use store::{ReviewDecisionRow, RoundRow, Store, StoreError};
use workflows::contracts::{
    AgentExit, AgentRun, CheckResult, FinishRequest, ReviewRecord, ReviewRequest,
};
use workflows::task::PlaybookRef;
use workflows::{AgentSpec, ReviewDecision, ReviewVerdict, TaskSpec, TaskStatus};

on_both_backends!(
    connect_twice_keeps_the_data,
    admit_twice_keeps_the_first,
    status_updates_stop_at_a_final_status,
    agent_runs_and_checks_are_idempotent,
    one_review_request_across_rounds,
    review_decisions_are_idempotent,
    finish_stores_the_report,
    list_filters_newest_first,
    unknown_values_in_the_database_are_errors,
    concurrent_writers_all_land,
);

#[tokio::test]
async fn in_memory_sqlite_keeps_its_one_database() {
    let store = connect("sqlite::memory:").await;
    assert!(store.admit(&spec("t1")).await.unwrap());
    let clone = store.clone();
    clone
        .set_status("t1", TaskStatus::Provisioning, 0, None)
        .await
        .unwrap();
    assert_eq!(
        store.task("t1").await.unwrap().unwrap().task.status,
        TaskStatus::Provisioning
    );
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    let err = Store::connect("mysql://root:hunter2@localhost/errand")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported database url mysql://root:***@localhost/errand: expected sqlite: or postgres://"
    );
}

fn spec(id: &str) -> TaskSpec {
    TaskSpec {
        id: id.to_string(),
        repo: "https://example.com/acme/widgets.git".to_string(),
        base: "main".to_string(),
        instructions: "Fix the *flaky* test.".to_string(),
        checks: vec!["cargo test".to_string()],
        agent: AgentSpec::Command {
            command: vec!["agent".to_string(), "--go".to_string()],
        },
        max_rounds: 3,
        time_budget_secs: 600,
        requester: "alice".to_string(),
        playbook: Some(PlaybookRef {
            name: "fix-flaky".to_string(),
            content_hash: "ab12".to_string(),
        }),
        review_timeout_secs: 3600,
        policy: Default::default(),
    }
}

fn agent_run(exit: AgentExit, tail: &str) -> AgentRun {
    AgentRun {
        exit,
        duration_ms: 1234,
        output_tail: tail.to_string(),
        log_path: "/var/errand/logs/agent.log".to_string(),
        network: Vec::new(),
        budget_refusal: None,
        cost: None,
        reported: None,
        checkpoints: 0,
    }
}

fn check(command: &str, exit_code: Option<i32>) -> CheckResult {
    CheckResult {
        command: command.to_string(),
        exit_code,
        timed_out: exit_code.is_none(),
        duration_ms: 77,
        output_tail: format!("output of {command}"),
    }
}

fn review(
    task_id: &str,
    round: u32,
    verdict: ReviewVerdict,
    comment: Option<&str>,
) -> ReviewRecord {
    ReviewRecord {
        task_id: task_id.to_string(),
        round,
        decision: ReviewDecision {
            decision: verdict,
            reviewer: "bob".to_string(),
            comment: comment.map(str::to_string),
        },
    }
}

fn finish_request(task_id: &str, status: TaskStatus, report: &str) -> FinishRequest {
    FinishRequest {
        task_id: task_id.to_string(),
        status,
        round: 2,
        reason: None,
        report: report.to_string(),
        workspace: None,
    }
}

async fn connect(url: &str) -> Store {
    Store::connect(url)
        .await
        .unwrap_or_else(|err| panic!("connect to {url}: {err:?}"))
}

async fn connect_twice_keeps_the_data(url: &str) {
    let first = connect(url).await;
    assert!(first.admit(&spec("t1")).await.unwrap());

    let second = connect(url).await;
    let third = connect(url).await;
    assert_eq!(second.tasks(None, 10).await.unwrap().len(), 1);
    assert!(third.task("t1").await.unwrap().is_some());
}

async fn admit_twice_keeps_the_first(url: &str) {
    let store = connect(url).await;
    let original = spec("t1");
    assert!(store.admit(&original).await.unwrap());

    let mut changed = original.clone();
    changed.instructions = "Something else entirely.".to_string();
    assert!(!store.admit(&changed).await.unwrap());

    let record = store.task("t1").await.unwrap().expect("task t1");
    let task = &record.task;
    assert_eq!(task.id, "t1");
    assert_eq!(task.status, TaskStatus::Admitted);
    assert_eq!(task.round, 0);
    assert_eq!(task.repo, original.repo);
    assert_eq!(task.base, "main");
    assert_eq!(task.branch, "errand/t1");
    assert_eq!(task.requester, "alice");
    assert_eq!(task.instructions, original.instructions);
    assert_eq!(task.playbook, original.playbook);
    assert_eq!(
        (task.reason.as_deref(), task.report.as_deref()),
        (None, None)
    );
    assert_eq!(task.created_at, task.updated_at);
    assert!(record.rounds.is_empty() && record.review.is_none() && record.decisions.is_empty());

    let listed = store.tasks(None, 10).await.unwrap();
    assert_eq!(
        listed,
        vec![record.task.clone()],
        "listed rows read back equal, timestamps too"
    );
    assert!(store.task("nope").await.unwrap().is_none());

    let mut without_playbook = spec("t2");
    without_playbook.playbook = None;
    assert!(store.admit(&without_playbook).await.unwrap());
    assert_eq!(store.task("t2").await.unwrap().unwrap().task.playbook, None);
}

async fn status_updates_stop_at_a_final_status(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1")).await.unwrap();

    store
        .set_status("t1", TaskStatus::RunningAgent, 1, None)
        .await
        .unwrap();
    let task = store.task("t1").await.unwrap().unwrap().task;
    assert_eq!(
        (task.status, task.round, task.reason.as_deref()),
        (TaskStatus::RunningAgent, 1, None)
    );
    assert!(task.updated_at >= task.created_at);

    store
        .set_status("t1", TaskStatus::Verifying, 2, Some("checks failed"))
        .await
        .unwrap();
    let task = store.task("t1").await.unwrap().unwrap().task;
    assert_eq!(
        (task.status, task.round, task.reason.as_deref()),
        (TaskStatus::Verifying, 2, Some("checks failed"))
    );

    store
        .set_status("t1", TaskStatus::Failed, 2, Some("sandbox lost"))
        .await
        .unwrap();
    let failed = store.task("t1").await.unwrap().unwrap().task;
    assert_eq!(failed.status, TaskStatus::Failed);

    // A late or replayed update leaves the final task exactly as it was.
    store
        .set_status("t1", TaskStatus::RunningAgent, 3, None)
        .await
        .unwrap();
    store
        .set_status("t1", TaskStatus::Merged, 3, None)
        .await
        .unwrap();
    assert_eq!(store.task("t1").await.unwrap().unwrap().task, failed);

    let err = store
        .set_status("ghost", TaskStatus::Verifying, 1, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownTask { ref task_id } if task_id == "ghost"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "task ghost does not exist");
}

async fn agent_runs_and_checks_are_idempotent(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1")).await.unwrap();

    let first_try = agent_run(AgentExit::Exited { code: Some(1) }, "first try");
    store.record_agent_run("t1", 1, &first_try).await.unwrap();
    store
        .record_checks("t1", 1, &[check("lint", Some(0)), check("test", Some(1))])
        .await
        .unwrap();
    let timed_out = agent_run(AgentExit::TimedOut, "too slow");
    store.record_agent_run("t1", 2, &timed_out).await.unwrap();
    store
        .record_checks("t1", 2, &[check("test", None)])
        .await
        .unwrap();

    // Retries of round 1: the run is overwritten, the checks replaced, nothing duplicated.
    let retried = agent_run(AgentExit::Exited { code: None }, "retried");
    store.record_agent_run("t1", 1, &retried).await.unwrap();
    store.record_agent_run("t1", 1, &retried).await.unwrap();
    let round_one_checks = vec![
        check("fmt", Some(0)),
        check("lint", Some(0)),
        check("test", Some(2)),
    ];
    store
        .record_checks("t1", 1, &round_one_checks)
        .await
        .unwrap();
    store
        .record_checks("t1", 1, &round_one_checks)
        .await
        .unwrap();
    // No run and no checks: no round. Checks without a run: a round without an agent.
    store.record_checks("t1", 3, &[]).await.unwrap();
    store
        .record_checks("t1", 4, &[check("test", Some(0))])
        .await
        .unwrap();

    let record = store.task("t1").await.unwrap().unwrap();
    assert_eq!(
        record.rounds,
        vec![
            RoundRow {
                round: 1,
                agent: Some(retried),
                checks: round_one_checks
            },
            RoundRow {
                round: 2,
                agent: Some(timed_out),
                checks: vec![check("test", None)]
            },
            RoundRow {
                round: 4,
                agent: None,
                checks: vec![check("test", Some(0))]
            },
        ]
    );

    let err = store
        .record_agent_run("ghost", 1, &first_try)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
    let err = store
        .record_checks("ghost", 1, &[check("test", Some(0))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
}

async fn one_review_request_across_rounds(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1")).await.unwrap();
    assert_eq!(store.review_request_count("t1").await.unwrap(), 0);

    let mut request = ReviewRequest {
        task_id: "t1".to_string(),
        branch: "errand/t1".to_string(),
        commit: "c0ffee1".to_string(),
        round: 1,
        report: "## Round 1".to_string(),
    };
    store.open_review(&request).await.unwrap();
    store.open_review(&request).await.unwrap();
    assert_eq!(store.review_request_count("t1").await.unwrap(), 1);
    let opened = store
        .task("t1")
        .await
        .unwrap()
        .unwrap()
        .review
        .expect("review request");

    request.commit = "c0ffee2".to_string();
    request.round = 2;
    request.report = "## Round 2".to_string();
    store.open_review(&request).await.unwrap();
    assert_eq!(store.review_request_count("t1").await.unwrap(), 1);
    let updated = store
        .task("t1")
        .await
        .unwrap()
        .unwrap()
        .review
        .expect("review request");
    assert_eq!(
        (
            updated.branch.as_str(),
            updated.commit.as_str(),
            updated.round,
            updated.body.as_str()
        ),
        ("errand/t1", "c0ffee2", 2, "## Round 2")
    );
    assert_eq!(updated.created_at, opened.created_at);
    assert!(updated.updated_at >= opened.updated_at);

    let err = store
        .open_review(&ReviewRequest {
            task_id: "ghost".to_string(),
            ..request
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
    assert_eq!(store.review_request_count("ghost").await.unwrap(), 0);
}

async fn review_decisions_are_idempotent(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1")).await.unwrap();

    let changes = review("t1", 1, ReviewVerdict::RequestChanges, Some("rename it"));
    store.record_review(&changes).await.unwrap();
    store.record_review(&changes).await.unwrap();
    // A different decision for a round already decided does not replace the first.
    store
        .record_review(&review("t1", 1, ReviewVerdict::Approve, None))
        .await
        .unwrap();
    store
        .record_review(&review("t1", 2, ReviewVerdict::Approve, None))
        .await
        .unwrap();

    let decisions = store.task("t1").await.unwrap().unwrap().decisions;
    let summary: Vec<_> = decisions
        .iter()
        .map(|d: &ReviewDecisionRow| {
            (
                d.round,
                d.decision,
                d.reviewer.as_str(),
                d.comment.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, ReviewVerdict::RequestChanges, "bob", Some("rename it")),
            (2, ReviewVerdict::Approve, "bob", None),
        ]
    );

    let err = store
        .record_review(&review("ghost", 1, ReviewVerdict::Reject, None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
}

async fn finish_stores_the_report(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1")).await.unwrap();
    store
        .set_status("t1", TaskStatus::AwaitingReview, 2, None)
        .await
        .unwrap();

    store
        .finish(&finish_request("t1", TaskStatus::Merged, "# Merged"))
        .await
        .unwrap();
    let merged = store.task("t1").await.unwrap().unwrap().task;
    assert_eq!(
        (merged.status, merged.round, merged.report.as_deref()),
        (TaskStatus::Merged, 2, Some("# Merged"))
    );

    // A retried or late finish changes nothing.
    store
        .finish(&finish_request("t1", TaskStatus::Failed, "# Other"))
        .await
        .unwrap();
    assert_eq!(store.task("t1").await.unwrap().unwrap().task, merged);

    // Final without a report (cancelled through set_status): finish keeps the status but
    // stores the report.
    store.admit(&spec("t2")).await.unwrap();
    store
        .set_status("t2", TaskStatus::Cancelled, 1, Some("cancelled by alice"))
        .await
        .unwrap();
    let mut late = finish_request("t2", TaskStatus::Incomplete, "# Cancelled");
    late.reason = Some("round limit".to_string());
    store.finish(&late).await.unwrap();
    let cancelled = store.task("t2").await.unwrap().unwrap().task;
    assert_eq!(
        (
            cancelled.status,
            cancelled.round,
            cancelled.reason.as_deref(),
            cancelled.report.as_deref()
        ),
        (
            TaskStatus::Cancelled,
            1,
            Some("cancelled by alice"),
            Some("# Cancelled")
        )
    );

    let err = store
        .finish(&finish_request("t2", TaskStatus::Verifying, ""))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFinal { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot finish task t2 with status verifying: not a final status"
    );
    let err = store
        .finish(&finish_request("ghost", TaskStatus::Merged, ""))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
}

async fn list_filters_newest_first(url: &str) {
    let store = connect(url).await;
    for id in ["t1", "t2", "t3", "t4"] {
        store.admit(&spec(id)).await.unwrap();
    }
    store
        .set_status("t2", TaskStatus::RunningAgent, 1, None)
        .await
        .unwrap();
    store
        .finish(&finish_request("t4", TaskStatus::Merged, "done"))
        .await
        .unwrap();

    let ids = |rows: Vec<store::TaskRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.tasks(None, 10).await.unwrap()),
        ["t4", "t3", "t2", "t1"]
    );
    assert_eq!(ids(store.tasks(None, 2).await.unwrap()), ["t4", "t3"]);
    assert_eq!(
        ids(store.tasks(Some(TaskStatus::Admitted), 10).await.unwrap()),
        ["t3", "t1"]
    );
    assert_eq!(
        ids(store.tasks(Some(TaskStatus::Admitted), 1).await.unwrap()),
        ["t3"]
    );
    assert_eq!(
        ids(store
            .tasks(Some(TaskStatus::RunningAgent), 10)
            .await
            .unwrap()),
        ["t2"]
    );
    assert_eq!(
        ids(store.tasks(Some(TaskStatus::Merged), 10).await.unwrap()),
        ["t4"]
    );
    assert!(
        store
            .tasks(Some(TaskStatus::Failed), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.tasks(None, 0).await.unwrap().is_empty());
}

async fn unknown_values_in_the_database_are_errors(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1")).await.unwrap();
    store
        .record_review(&review("t1", 1, ReviewVerdict::Approve, None))
        .await
        .unwrap();

    let raw = Database::connect(url).await.unwrap();
    raw.execute_unprepared("UPDATE review_decisions SET decision = 'shrug'")
        .await
        .unwrap();
    let err = store.task("t1").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"task t1: unknown review decision "shrug" in the database"#
    );

    raw.execute_unprepared("UPDATE tasks SET status = 'exploded' WHERE id = 't1'")
        .await
        .unwrap();
    let err = store.task("t1").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { task_id, field: "status", value } if task_id == "t1" && value == "exploded"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        r#"task t1: unknown status "exploded" in the database"#
    );
    assert!(matches!(
        store.tasks(None, 10).await.unwrap_err(),
        StoreError::Corrupt { .. }
    ));
    raw.close().await.unwrap();
}

async fn concurrent_writers_all_land(url: &str) {
    let store = connect(url).await;
    let writers: Vec<_> = (0..16)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("t{n:02}");
                store.admit(&spec(&id)).await?;
                store
                    .set_status(&id, TaskStatus::RunningAgent, 1, None)
                    .await?;
                store
                    .record_agent_run(
                        &id,
                        1,
                        &agent_run(AgentExit::Exited { code: Some(0) }, "ok"),
                    )
                    .await?;
                store
                    .record_checks(&id, 1, &[check("test", Some(0))])
                    .await?;
                store
                    .finish(&finish_request(&id, TaskStatus::Merged, "done"))
                    .await
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer task").expect("writes succeed");
    }
    let merged = store.tasks(Some(TaskStatus::Merged), 100).await.unwrap();
    assert_eq!(merged.len(), 16);
}
