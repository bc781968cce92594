//! Crash groups against real databases: every scenario runs on SQLite and on PostgreSQL.

#[macro_use]
mod databases;

use store::{CrashGroupFilter, Store, TakenCrash};
use workflows::contracts::FinishRequest;
use workflows::crash::{CrashInput, CrashReport, fingerprint};
use workflows::crash_contracts::{
    ClaimOutcome, CrashGroup, CrashGroupStatus, CrashGroupUpdate, InvestigationClaim, Occurrence,
    RecordedOccurrence,
};
use workflows::crash_investigation::{CrashInvestigationInput, CrashLimits, InvestigationTarget};
use workflows::{AgentSpec, TaskSpec, TaskStatus};

on_both_backends!(
    groups_are_upserted_and_occurrences_kept_once_and_bounded,
    groups_are_listed_filtered_paged_and_read_by_fingerprint,
    the_linked_task_is_reported,
    slots_hold_the_rate_limit_and_claims_repeat,
    the_outbox_takes_leases_batches_and_deletes_delivered_crashes,
);

fn group(id: &str, service: &str, count: u64, last_seen_ms: i64) -> CrashGroup {
    CrashGroup {
        id: id.to_string(),
        service: service.to_string(),
        fingerprint: format!("fp-{id}"),
        title: "ValueError in handler".to_string(),
        language: "python".to_string(),
        crash_type: "ValueError".to_string(),
        first_seen_ms: 1_700_000_000_000,
        last_seen_ms,
        count,
        releases: vec!["1.0".to_string(), "1.1".to_string()],
        environments: vec!["prod".to_string()],
        status: CrashGroupStatus::New,
        task_id: None,
        investigations: 0,
        reason: None,
    }
}

fn occurrences(from: u64, to: u64) -> Vec<RecordedOccurrence> {
    (from..=to)
        .map(|seq| RecordedOccurrence {
            seq,
            received_at_ms: 1_700_000_000_000 + seq as i64,
            release: Some("1.0".to_string()),
            environment: Some("prod".to_string()),
            host: Some(format!("box-{seq}")),
            message: format!("bad value {seq}"),
            task_id: None,
        })
        .collect()
}

async fn groups_are_upserted_and_occurrences_kept_once_and_bounded(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let update = CrashGroupUpdate {
        group: group("g1", "billing", 3, 1_700_000_000_003),
        occurrences: occurrences(1, 3),
        keep_occurrences: 4,
    };
    store.record_crash_group(&update).await.unwrap();
    // A retried write changes nothing.
    store.record_crash_group(&update).await.unwrap();
    let read = store.crash_group("g1").await.unwrap().unwrap();
    assert_eq!(read.group, update.group);
    assert_eq!(read.task_status, None);
    assert_eq!(store.crash_occurrences("g1", 100).await.unwrap().len(), 3);

    let mut later = group("g1", "billing", 6, 1_700_000_000_006);
    later.status = CrashGroupStatus::RateLimited;
    later.reason = Some("three this hour".to_string());
    store
        .record_crash_group(&CrashGroupUpdate {
            group: later.clone(),
            occurrences: occurrences(4, 6),
            keep_occurrences: 4,
        })
        .await
        .unwrap();
    let read = store.crash_group("g1").await.unwrap().unwrap();
    assert_eq!(read.group, later);
    let kept = store.crash_occurrences("g1", 100).await.unwrap();
    assert_eq!(
        kept.iter().map(|o| o.seq).collect::<Vec<_>>(),
        [6, 5, 4, 3],
        "the last four, newest first"
    );
    assert_eq!(kept[0].host.as_deref(), Some("box-6"));
    assert!(store.crash_group("nope").await.unwrap().is_none());
}

async fn groups_are_listed_filtered_paged_and_read_by_fingerprint(url: &str) {
    let store = Store::connect(url).await.unwrap();
    for (i, (id, service)) in [("a", "billing"), ("b", "billing"), ("c", "search")]
        .into_iter()
        .enumerate()
    {
        let mut g = group(id, service, 1, 1_700_000_000_000 + i as i64 * 1000);
        if id == "b" {
            g.status = CrashGroupStatus::Investigating;
        }
        store
            .record_crash_group(&CrashGroupUpdate {
                group: g,
                occurrences: occurrences(1, 1),
                keep_occurrences: 10,
            })
            .await
            .unwrap();
    }
    let list = |filter: CrashGroupFilter| {
        let store = store.clone();
        async move {
            store
                .crash_groups(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.group.id)
                .collect::<Vec<_>>()
        }
    };
    let page = |limit, offset| CrashGroupFilter {
        limit,
        offset,
        ..Default::default()
    };
    assert_eq!(
        list(page(10, 0)).await,
        ["c", "b", "a"],
        "most recently seen first"
    );
    assert_eq!(list(page(2, 0)).await, ["c", "b"]);
    assert_eq!(list(page(2, 2)).await, ["a"]);
    let billing = CrashGroupFilter {
        service: Some("billing".to_string()),
        ..page(10, 0)
    };
    assert_eq!(list(billing.clone()).await, ["b", "a"]);
    let investigating = CrashGroupFilter {
        status: Some(CrashGroupStatus::Investigating),
        ..billing
    };
    assert_eq!(list(investigating).await, ["b"]);
    let by_fingerprint = store.crash_group("fp-c").await.unwrap().unwrap();
    assert_eq!(by_fingerprint.group.id, "c");
}

async fn the_linked_task_is_reported(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let spec = TaskSpec {
        id: "g1-1".to_string(),
        repo: "/srv/git/app.git".to_string(),
        base: "main".to_string(),
        instructions: "Investigate.".to_string(),
        checks: vec!["sh test.sh".to_string()],
        agent: AgentSpec::Command {
            command: vec!["agent".to_string()],
        },
        max_rounds: 3,
        time_budget_secs: 600,
        requester: "errand-crash-intake".to_string(),
        playbook: None,
        review_timeout_secs: 3600,
        policy: Default::default(),
    };
    let mut g = group("g1", "billing", 1, 1_700_000_000_001);
    g.status = CrashGroupStatus::Investigating;
    g.task_id = Some(spec.id.clone());
    g.investigations = 1;
    let update = CrashGroupUpdate {
        group: g,
        occurrences: Vec::new(),
        keep_occurrences: 10,
    };
    assert_eq!(
        store.record_crash_group(&update).await.unwrap(),
        None,
        "not admitted yet"
    );
    store.admit(&spec).await.unwrap();
    let linked = store.record_crash_group(&update).await.unwrap().unwrap();
    assert_eq!(linked.status, TaskStatus::Admitted);
    store
        .finish(&FinishRequest {
            task_id: spec.id.clone(),
            status: TaskStatus::Approved,
            round: 1,
            reason: None,
            report: "report".to_string(),
            workspace: None,
        })
        .await
        .unwrap();
    let linked = store.record_crash_group(&update).await.unwrap().unwrap();
    assert_eq!(linked.status, TaskStatus::Approved);
    assert!(linked.updated_at_ms > 1_700_000_000_000);
    let read = store.crash_group("g1").await.unwrap().unwrap();
    assert_eq!(read.task_status, Some(TaskStatus::Approved));
}

async fn slots_hold_the_rate_limit_and_claims_repeat(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let claim = |group: &str, investigation: u32| InvestigationClaim {
        service: "billing".to_string(),
        group_id: group.to_string(),
        investigation,
        max_per_window: 2,
        window_secs: 3600,
    };
    // Concurrent claims of five groups: exactly two are granted.
    let claims = (0..5).map(|i| {
        let store = store.clone();
        let claim = claim(&format!("g{i}"), 1);
        async move { store.claim_investigation_slot(&claim).await.unwrap() }
    });
    let outcomes = futures_join_all(claims).await;
    let granted = outcomes
        .iter()
        .filter(|o| **o == ClaimOutcome::Granted)
        .count();
    assert_eq!(granted, 2, "{outcomes:?}");
    for outcome in &outcomes {
        if let ClaimOutcome::Limited { retry_after_secs } = outcome {
            assert!((1..=3600).contains(retry_after_secs), "{outcome:?}");
        }
    }
    // A granted claim repeated (a retried activity) is still granted, and takes no slot.
    let winner = (0..5)
        .find(|i| outcomes[*i] == ClaimOutcome::Granted)
        .unwrap();
    assert_eq!(
        store
            .claim_investigation_slot(&claim(&format!("g{winner}"), 1))
            .await
            .unwrap(),
        ClaimOutcome::Granted
    );
    // Another service has its own allowance.
    let other = InvestigationClaim {
        service: "search".to_string(),
        ..claim("s1", 1)
    };
    assert_eq!(
        store.claim_investigation_slot(&other).await.unwrap(),
        ClaimOutcome::Granted
    );
}

/// Runs the futures concurrently on this runtime.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

fn intake_input(group_id: &str, repo: &str) -> CrashInvestigationInput {
    let report = CrashReport::from_input(
        &CrashInput::from_value(serde_json::json!({
            "message": "ValueError: bad",
            "stacktrace": "Traceback (most recent call last):\n  File \"/app/h.py\", line 3, in handle\n    x()\nValueError: bad\n",
        }))
        .unwrap(),
    )
    .unwrap();
    CrashInvestigationInput {
        group_id: group_id.to_string(),
        service: "billing".to_string(),
        fingerprint: fingerprint(&report),
        target: InvestigationTarget {
            repo: repo.to_string(),
            base: "main".to_string(),
            agent: AgentSpec::Command {
                command: vec!["/bin/agent".to_string()],
            },
            playbook_name: "investigate-crash".to_string(),
            playbook_content: "name: investigate-crash\n".to_string(),
            requester: "errand-crash-intake".to_string(),
        },
        limits: CrashLimits::default(),
        carried: None,
    }
}

fn seen(n: i64) -> Occurrence {
    Occurrence {
        received_at_ms: 1_700_000_000_000 + n,
        release: Some(format!("1.{n}")),
        environment: Some("prod".to_string()),
        host: Some(format!("box-{n}")),
        message: format!("ValueError: bad {n}"),
        excerpt: format!("Traceback {n}"),
        batch: None,
    }
}

async fn the_outbox_takes_leases_batches_and_deletes_delivered_crashes(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let (g1, g2) = (
        intake_input("g1", "/srv/a.git"),
        intake_input("g2", "/srv/a.git"),
    );
    let (o1, o2, o3, o4) = (seen(1), seen(2), seen(3), seen(4));
    let taken = |group_id, input, occurrence| TakenCrash {
        group_id,
        input,
        occurrence,
    };
    // One transaction: the first crash of each group starts it.
    let new = store
        .take_crashes(&[
            taken("g1", Some(&g1), &o1),
            taken("g1", Some(&g1), &o2),
            taken("g2", Some(&g2), &o3),
        ])
        .await
        .unwrap();
    assert_eq!(new, [true, false, true]);
    // Known groups: not new, with or without the input; a changed input is stored.
    let moved = intake_input("g1", "/srv/b.git");
    assert_eq!(
        store
            .take_crashes(&[taken("g1", Some(&moved), &o4)])
            .await
            .unwrap(),
        [false]
    );
    assert_eq!(store.take_crashes(&[]).await.unwrap(), Vec::<bool>::new());
    assert_eq!(store.crash_outbox_len().await.unwrap(), 4);
    let inputs = store
        .crash_intake_inputs(&["g1".to_string(), "g2".to_string(), "g3".to_string()])
        .await
        .unwrap();
    assert_eq!(inputs.len(), 2);
    let stored = inputs
        .iter()
        .find(|(g, _)| g == "g1")
        .map(|(_, i)| i.clone());
    assert_eq!(stored, Some(moved));

    // A sender leases what waits, oldest first; another finds nothing while the lease holds.
    let claimed = store
        .claim_crash_outbox("a", 1_000, 31_000, 10)
        .await
        .unwrap();
    let order: Vec<(&str, &Occurrence)> = claimed
        .iter()
        .map(|r| (r.group_id.as_str(), &r.occurrence))
        .collect();
    assert_eq!(order, [("g1", &o1), ("g1", &o2), ("g2", &o3), ("g1", &o4)]);
    assert!(claimed.iter().all(|r| r.batch_id.is_none()));
    assert!(
        store
            .claim_crash_outbox("b", 2_000, 32_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .claim_crash_outbox("b", 2_000, 32_000, 0)
            .await
            .unwrap(),
        []
    );

    // A batch is fixed once; after the lease expires (the sender died), it comes back whole.
    let g1_ids: Vec<i64> = claimed
        .iter()
        .filter(|r| r.group_id == "g1")
        .map(|r| r.id)
        .collect();
    store
        .assign_crash_batches(&[("batch-1".to_string(), g1_ids.clone())])
        .await
        .unwrap();
    store
        .assign_crash_batches(&[("batch-2".to_string(), g1_ids.clone())])
        .await
        .unwrap();
    let again = store
        .claim_crash_outbox("c", 40_000, 70_000, 2)
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "the limit holds");
    let rest = store
        .claim_crash_outbox("c2", 40_000, 70_000, 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    let batches: Vec<Option<&str>> = again
        .iter()
        .chain(&rest)
        .map(|r| r.batch_id.as_deref())
        .collect();
    assert_eq!(
        batches,
        [Some("batch-1"), Some("batch-1"), None, Some("batch-1")]
    );
    let everything: Vec<i64> = claimed.iter().map(|r| r.id).collect();

    // Released rows are free at once; delivered ones are gone.
    store.release_crash_outbox(&everything).await.unwrap();
    let free = store
        .claim_crash_outbox("d", 41_000, 71_000, 10)
        .await
        .unwrap();
    assert_eq!(free.len(), 4);
    store
        .crash_outbox_delivered(&everything[..2])
        .await
        .unwrap();
    assert_eq!(store.crash_outbox_len().await.unwrap(), 2);
    store.crash_outbox_delivered(&everything).await.unwrap();
    assert_eq!(store.crash_outbox_len().await.unwrap(), 0);
}
