//! A task's events against real databases: every scenario runs on SQLite and on PostgreSQL.

#[macro_use]
mod databases;

use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, Database};
use store::{CheckOutcome, EventKind, Store, StoreError, TaskEvent, TaskEventData};
use workflows::contracts::{CheckResult, FinishRequest, ReviewRecord, ReviewRequest};
use workflows::task::PlaybookRef;
use workflows::{AgentSpec, ReviewDecision, ReviewVerdict, TaskSpec, TaskStatus};

on_both_backends!(
    status_changes_append_one_event_each,
    checks_and_reviews_append_events_unless_repeated,
    events_are_read_after_an_id_per_task,
    events_of_unknown_tasks_and_kinds,
    facts_for_metrics_and_statistics,
);

fn spec(id: &str, playbook: Option<&str>) -> TaskSpec {
    TaskSpec {
        id: id.to_string(),
        repo: "/srv/git/widgets.git".to_string(),
        base: "main".to_string(),
        instructions: "Fix the test.".to_string(),
        checks: vec!["sh test.sh".to_string()],
        agent: AgentSpec::Command {
            command: vec!["agent".to_string()],
        },
        max_rounds: 3,
        time_budget_secs: 600,
        requester: "alice".to_string(),
        playbook: playbook.map(|name| PlaybookRef {
            name: name.to_string(),
            content_hash: "ab12".to_string(),
        }),
        review_timeout_secs: 3600,
        policy: Default::default(),
    }
}

fn check(exit_code: i32) -> CheckResult {
    CheckResult {
        command: "sh test.sh".to_string(),
        exit_code: Some(exit_code),
        timed_out: false,
        duration_ms: 40,
        output_tail: "the output stays with the round".to_string(),
    }
}

fn review_request(task_id: &str, round: u32, commit: &str) -> ReviewRequest {
    ReviewRequest {
        task_id: task_id.to_string(),
        branch: format!("errand/{task_id}"),
        commit: commit.to_string(),
        round,
        report: "# report".to_string(),
    }
}

fn approval(task_id: &str, round: u32) -> ReviewRecord {
    ReviewRecord {
        task_id: task_id.to_string(),
        round,
        decision: ReviewDecision {
            decision: ReviewVerdict::Approve,
            reviewer: "bob".to_string(),
            comment: None,
        },
    }
}

fn finish(task_id: &str, status: TaskStatus) -> FinishRequest {
    FinishRequest {
        task_id: task_id.to_string(),
        status,
        round: 1,
        reason: Some("done".to_string()),
        report: "# report".to_string(),
        workspace: None,
    }
}

fn output(round: u32, line: &str) -> TaskEventData {
    TaskEventData::AgentOutput {
        round,
        line: line.to_string(),
        elapsed_ms: 2000,
        output_bytes: 10,
    }
}

async fn connect(url: &str) -> Store {
    Store::connect(url)
        .await
        .unwrap_or_else(|err| panic!("connect to {url}: {err:?}"))
}

async fn all_events(store: &Store, task_id: &str) -> Vec<TaskEvent> {
    store.events_since(task_id, 0, 1000).await.unwrap()
}

/// The statuses of the task's `status` events, in order.
async fn statuses(store: &Store, task_id: &str) -> Vec<(TaskStatus, u32, Option<String>)> {
    all_events(store, task_id)
        .await
        .into_iter()
        .filter_map(|event| match event.data {
            TaskEventData::Status {
                status,
                round,
                reason,
            } => Some((status, round, reason)),
            _ => None,
        })
        .collect()
}

async fn status_changes_append_one_event_each(url: &str) {
    let store = connect(url).await;
    assert!(store.admit(&spec("t1", None)).await.unwrap());
    assert!(!store.admit(&spec("t1", None)).await.unwrap());
    store
        .set_status("t1", TaskStatus::Provisioning, 0, None)
        .await
        .unwrap();
    // A retried activity repeats the same change: no second event.
    store
        .set_status("t1", TaskStatus::Provisioning, 0, None)
        .await
        .unwrap();
    store
        .set_status("t1", TaskStatus::RunningAgent, 1, None)
        .await
        .unwrap();
    // The same status with a reason is a change (a null reason must not hide it).
    store
        .set_status("t1", TaskStatus::RunningAgent, 1, Some("resumed"))
        .await
        .unwrap();
    store
        .set_status("t1", TaskStatus::RunningAgent, 1, Some("resumed"))
        .await
        .unwrap();
    store
        .finish(&finish("t1", TaskStatus::Merged))
        .await
        .unwrap();
    // Nothing moves a final task, and it gets one final event.
    store
        .finish(&finish("t1", TaskStatus::Cancelled))
        .await
        .unwrap();
    store
        .set_status("t1", TaskStatus::Verifying, 1, None)
        .await
        .unwrap();

    assert_eq!(
        statuses(&store, "t1").await,
        vec![
            (TaskStatus::Admitted, 0, None),
            (TaskStatus::Provisioning, 0, None),
            (TaskStatus::RunningAgent, 1, None),
            (TaskStatus::RunningAgent, 1, Some("resumed".to_string())),
            (TaskStatus::Merged, 1, Some("done".to_string())),
        ]
    );
    let events = all_events(&store, "t1").await;
    assert!(
        events
            .windows(2)
            .all(|w| w[0].id < w[1].id && w[0].at <= w[1].at)
    );
    assert!(events.iter().all(|e| e.task_id == "t1"));

    let err = store
        .set_status("nope", TaskStatus::Provisioning, 0, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownTask { .. }), "{err:?}");
}

async fn checks_and_reviews_append_events_unless_repeated(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1", None)).await.unwrap();
    store.record_checks("t1", 1, &[check(1)]).await.unwrap();
    store.record_checks("t1", 1, &[check(1)]).await.unwrap();
    // A retry that found other results says so.
    store.record_checks("t1", 1, &[check(0)]).await.unwrap();
    store
        .open_review(&review_request("t1", 1, "c1"))
        .await
        .unwrap();
    store
        .open_review(&review_request("t1", 1, "c1"))
        .await
        .unwrap();
    store.record_review(&approval("t1", 1)).await.unwrap();
    store.record_review(&approval("t1", 1)).await.unwrap();
    store
        .open_review(&review_request("t1", 2, "c2"))
        .await
        .unwrap();

    let kinds: Vec<EventKind> = all_events(&store, "t1")
        .await
        .iter()
        .map(|e| e.data.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Status,
            EventKind::Checks,
            EventKind::Checks,
            EventKind::ReviewRequested,
            EventKind::Review,
            EventKind::ReviewRequested,
        ]
    );
    let events = all_events(&store, "t1").await;
    assert_eq!(
        events[2].data,
        TaskEventData::Checks {
            round: 1,
            checks: vec![CheckOutcome {
                command: "sh test.sh".to_string(),
                exit_code: Some(0),
                timed_out: false,
                duration_ms: 40,
                passed: true,
            }],
        }
    );
    assert_eq!(
        events[4].data,
        TaskEventData::Review {
            round: 1,
            decision: ReviewVerdict::Approve,
            reviewer: "bob".to_string(),
            comment: None,
        }
    );
    assert_eq!(
        events[5].data,
        TaskEventData::ReviewRequested {
            round: 2,
            branch: "errand/t1".to_string(),
            commit: "c2".to_string(),
        }
    );
}

async fn events_are_read_after_an_id_per_task(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1", None)).await.unwrap();
    store.admit(&spec("t2", None)).await.unwrap();
    for n in 0..5 {
        store
            .append_event("t1", &output(1, &format!("line {n}")))
            .await
            .unwrap();
        store
            .append_event("t2", &output(1, "other task"))
            .await
            .unwrap();
    }
    let all = all_events(&store, "t1").await;
    assert_eq!(all.len(), 6, "admitted and five lines");

    // Resuming after an id gives exactly the later events, a page at a time.
    let after = all[2].id;
    let page = store.events_since("t1", after, 2).await.unwrap();
    assert_eq!(page, all[3..5].to_vec());
    let rest = store.events_since("t1", page[1].id, 100).await.unwrap();
    assert_eq!(rest, all[5..].to_vec());
    let last = all.last().unwrap().id;
    assert!(
        store
            .events_since("t1", last, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(all[5].data, output(1, "line 4"));
}

async fn events_of_unknown_tasks_and_kinds(url: &str) {
    let store = connect(url).await;
    let err = store
        .append_event("ghost", &output(1, "boo"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownTask { task_id } if task_id == "ghost"),
        "{err:?}"
    );
    assert!(store.events_since("ghost", 0, 10).await.unwrap().is_empty());

    store.admit(&spec("t1", None)).await.unwrap();
    let raw = Database::connect(url).await.unwrap();
    // A newer version's kind is skipped; a known kind that does not read back is an error.
    raw.execute_unprepared(
        "INSERT INTO task_events (task_id, kind, data, created_at) \
         VALUES ('t1', 'cost_update', '{\"usd\": 0.1}', '2026-01-01 00:00:00+00:00')",
    )
    .await
    .unwrap();
    assert_eq!(all_events(&store, "t1").await.len(), 1);
    raw.execute_unprepared("UPDATE task_events SET data = '{}' WHERE kind = 'status'")
        .await
        .unwrap();
    let err = store.events_since("t1", 0, 10).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { field: "event", .. }),
        "{err:?}"
    );
    raw.close().await.unwrap();
}

async fn facts_for_metrics_and_statistics(url: &str) {
    let store = connect(url).await;
    let before = Utc::now() - Duration::seconds(1);
    store
        .admit(&spec("t1", Some("fix-failing-test")))
        .await
        .unwrap();
    store.admit(&spec("t2", None)).await.unwrap();
    store
        .set_status("t1", TaskStatus::RunningAgent, 2, None)
        .await
        .unwrap();
    store.append_event("t1", &output(2, "first")).await.unwrap();
    store
        .append_event("t1", &output(2, "second"))
        .await
        .unwrap();
    store
        .finish(&finish("t1", TaskStatus::Merged))
        .await
        .unwrap();

    let facts = store.task_facts(None, None).await.unwrap();
    assert_eq!(facts.len(), 2);
    let t1 = facts.iter().find(|f| f.id == "t1").unwrap();
    assert_eq!(t1.status, TaskStatus::Merged);
    assert_eq!(t1.round, 1);
    assert_eq!(t1.playbook.as_deref(), Some("fix-failing-test"));
    assert!(t1.updated_at >= t1.created_at);
    let later = Utc::now() + Duration::seconds(1);
    assert_eq!(
        store.task_facts(Some(before), Some(later)).await.unwrap(),
        facts
    );
    assert!(
        store
            .task_facts(Some(later), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .task_facts(None, Some(before))
            .await
            .unwrap()
            .is_empty()
    );

    let statuses = store.events_of_kinds(&[EventKind::Status]).await.unwrap();
    assert_eq!(statuses.len(), 4, "two admitted, running, merged");
    let firsts = store.first_events(EventKind::AgentOutput).await.unwrap();
    assert_eq!(firsts.len(), 1);
    assert_eq!(firsts["t1"].data, output(2, "first"));
}
