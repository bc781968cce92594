//! The projection over the histories recorded by the end-to-end tests
//! (`workflows/tests/histories/`), so it is checked against what Temporal really writes.

use std::path::Path;

use temporalio_client::WorkflowHistory;
use temporalio_common::protos::temporal::api::workflow::v1::PendingActivityInfo;

use super::*;

async fn recorded(scenario: &str) -> Vec<HistoryEvent> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../workflows/tests/histories")
        .join(format!("{scenario}.json"));
    let json = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    WorkflowHistory::from_json(&json)
        .expect("a recorded history")
        .into_events()
        .await
        .expect("its events")
}

fn names(timeline: &Timeline) -> Vec<String> {
    timeline.steps.iter().map(|s| s.step.clone()).collect()
}

/// `want` appears in `steps`, in this order (other steps may come between).
fn in_order(steps: &[String], want: &[&str]) -> bool {
    let mut rest = steps.iter();
    want.iter().all(|w| rest.any(|s| s == w))
}

#[tokio::test]
async fn a_merged_task_reads_step_by_step() {
    let timeline = project(&recorded("merged-after-approval").await, &[]);
    assert_eq!(timeline.workflow.status, WorkflowRunStatus::Completed);
    assert!(timeline.workflow.duration_ms.is_some());
    let steps = names(&timeline);
    assert!(
        in_order(
            &steps,
            &[
                "admit",
                "provision",
                "run_agent",
                "verify",
                "push",
                "open_review",
                "timer",
                "review",
                "record_review",
                "merge",
                "finish"
            ]
        ),
        "{steps:?}"
    );
    for (n, step) in timeline.steps.iter().enumerate() {
        assert_eq!(step.seq as usize, n + 1);
        assert!(
            step.ended_at.is_some() && step.duration_ms.is_some(),
            "{step:?}"
        );
        assert!(step.started_at <= step.ended_at, "{step:?}");
    }
    let step = |name: &str| timeline.steps.iter().find(|s| s.step == name).unwrap();
    let agent = step("run_agent");
    assert_eq!(
        (agent.kind, agent.outcome, agent.round, agent.attempts),
        (StepKind::Activity, StepOutcome::Completed, 1, 1)
    );
    assert!(
        agent
            .summary
            .as_deref()
            .unwrap()
            .starts_with("agent exited 0"),
        "{agent:?}"
    );
    assert_eq!(
        step("verify").summary.as_deref(),
        Some("1/1 check(s) passed")
    );
    assert_eq!(step("timer").outcome, StepOutcome::Cancelled);
    assert!(
        step("timer")
            .summary
            .as_deref()
            .unwrap()
            .starts_with("review deadline")
    );
    let review = step("review");
    assert_eq!(
        (review.kind, review.outcome, review.round),
        (StepKind::Update, StepOutcome::Accepted, 1)
    );
    assert_eq!(review.summary.as_deref(), Some("approve by bob"));
    assert_eq!(
        step("finish")
            .summary
            .as_deref()
            .map(|s| s.starts_with("merged")),
        Some(true)
    );
    let statuses: Vec<&str> = timeline
        .steps
        .iter()
        .filter(|s| s.step == "record_status")
        .filter_map(|s| s.summary.as_deref())
        .collect();
    assert_eq!(
        statuses,
        [
            "provisioning",
            "running_agent",
            "verifying",
            "pushing",
            "awaiting_review"
        ]
    );
}

#[tokio::test]
async fn rounds_come_from_the_inputs() {
    let timeline = project(&recorded("changes-requested-then-merged").await, &[]);
    let rounds: Vec<(String, u32)> = timeline
        .steps
        .iter()
        .filter(|s| ["run_agent", "review", "merge"].contains(&s.step.as_str()))
        .map(|s| (s.step.clone(), s.round))
        .collect();
    let want = [
        ("run_agent", 1),
        ("review", 1),
        ("run_agent", 2),
        ("review", 2),
        ("merge", 2),
    ]
    .map(|(s, r)| (s.to_string(), r));
    assert_eq!(rounds, want);
    let first_review = timeline.steps.iter().find(|s| s.step == "review").unwrap();
    assert_eq!(
        first_review.summary.as_deref(),
        Some("request_changes by bob: please explain the fix")
    );
}

#[tokio::test]
async fn a_retried_agent_shows_its_attempts_and_why() {
    let timeline = project(&recorded("worker-killed-mid-agent").await, &[]);
    let agent = timeline
        .steps
        .iter()
        .find(|s| s.step == "run_agent")
        .unwrap();
    assert_eq!(agent.attempts, 2);
    assert_eq!(
        agent.retry_cause.as_deref(),
        Some("activity Heartbeat timeout")
    );
    assert_eq!(agent.outcome, StepOutcome::Completed);
    // The recording stops at the gate: the workflow still runs and its timer is pending.
    assert_eq!(timeline.workflow.status, WorkflowRunStatus::Running);
    assert_eq!(timeline.workflow.ended_at, None);
    let timer = timeline.steps.last().unwrap();
    assert_eq!(
        (timer.step.as_str(), timer.outcome, timer.ended_at),
        ("timer", StepOutcome::Running, None)
    );
}

#[tokio::test]
async fn a_cancelled_task_shows_the_request_and_the_cancelled_agent() {
    let timeline = project(&recorded("cancelled").await, &[]);
    assert_eq!(timeline.workflow.status, WorkflowRunStatus::Cancelled);
    let steps = names(&timeline);
    assert!(
        in_order(&steps, &["run_agent", "cancel", "push", "finish"]),
        "{steps:?}"
    );
    let agent = timeline
        .steps
        .iter()
        .find(|s| s.step == "run_agent")
        .unwrap();
    assert_eq!(agent.outcome, StepOutcome::Cancelled);
    let cancel = timeline.steps.iter().find(|s| s.step == "cancel").unwrap();
    assert_eq!(
        (cancel.kind, cancel.outcome),
        (StepKind::CancelRequest, StepOutcome::Accepted)
    );
}

#[tokio::test]
async fn pending_activities_say_whether_a_worker_has_them() {
    let mut events = recorded("worker-killed-mid-agent").await;
    // Cut the history right after run_agent was scheduled: the agent has not ended yet.
    let scheduled = events
        .iter()
        .position(|e| {
            matches!(&e.attributes, Some(Attributes::ActivityTaskScheduledEventAttributes(a))
                if a.activity_type.as_ref().is_some_and(|t| t.name == "run_agent"))
        })
        .unwrap();
    events.truncate(scheduled + 1);
    let Some(Attributes::ActivityTaskScheduledEventAttributes(a)) = &events[scheduled].attributes
    else {
        unreachable!()
    };
    let waiting = project(&events, &[]);
    assert_eq!(
        waiting.steps.last().unwrap().outcome,
        StepOutcome::Scheduled
    );

    let pending = PendingActivityInfo {
        activity_id: a.activity_id.clone(),
        state: PendingActivityState::Started as i32,
        attempt: 3,
        last_failure: Some(Failure {
            message: "activity Heartbeat timeout".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let running = project(&events, &[pending]);
    let agent = running.steps.last().unwrap();
    assert_eq!((agent.outcome, agent.attempts), (StepOutcome::Running, 3));
    assert_eq!(
        agent.retry_cause.as_deref(),
        Some("activity Heartbeat timeout")
    );
    assert_eq!((agent.ended_at, agent.duration_ms), (None, None));
}

#[test]
fn failures_read_outermost_first() {
    let failure = Failure {
        message: "activity failed".into(),
        cause: Some(Box::new(Failure {
            message: "git push: rejected".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    assert_eq!(
        failure_chain(&failure),
        "activity failed: git push: rejected"
    );
}

#[test]
fn timer_durations_read_in_large_units() {
    let cases = [
        (0, "0s"),
        (45, "45s"),
        (1800, "30m"),
        (604_800, "7d"),
        (93_600, "1d2h"),
        (90_061, "1d1h"),
    ];
    for (secs, want) in cases {
        assert_eq!(seconds(secs), want, "{secs}");
    }
}
