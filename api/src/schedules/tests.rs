//! The pure parts of schedules: ids, the failure streak and the auto-pause note.

use super::*;

fn run(fired_at: &str, status: Option<TaskStatus>, reason: Option<&str>) -> ScheduleRun {
    ScheduleRun {
        fired_at: Some(fired_at.to_string()),
        workflow_id: format!("sched-x-{fired_at}"),
        task_id: fire_task_id("x", &format!("sched-x-{fired_at}"), "r1"),
        status,
        reason: reason.map(str::to_string),
    }
}

#[test]
fn the_streak_counts_ended_failures_since_the_last_resume() {
    use TaskStatus::*;
    let runs = [
        run("2026-01-01T04:00:00Z", Some(RunningAgent), None),
        run("2026-01-01T03:00:00Z", Some(Failed), Some("boom")),
        run("2026-01-01T02:00:00Z", None, None),
        run(
            "2026-01-01T01:00:00Z",
            Some(Incomplete),
            Some("round limit"),
        ),
        run("2026-01-01T00:00:00Z", Some(Merged), None),
    ];
    assert_eq!(failure_streak(&runs, None), 2);
    let since = DateTime::parse_from_rfc3339("2026-01-01T02:30:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(failure_streak(&runs, Some(since)), 1);
    assert_eq!(failure_streak(&runs[4..], None), 0);
    let note = auto_pause_note(2, &runs);
    assert!(note.starts_with("auto-paused after 2 consecutive failed or incomplete runs (s-x-20260101t030000z-r1, s-x-20260101t010000z-r1)"), "{note}");
    assert!(note.ends_with("last: boom"), "{note}");
}

#[test]
fn schedule_ids_are_checked() {
    assert!(check_id("nightly-deps").is_ok());
    for bad in ["", "Nightly", "a/b", "-x", &"a".repeat(49)] {
        assert!(check_id(bad).is_err(), "{bad}");
    }
}

fn input(schedule_id: &str, playbook: Option<&str>, requester: &str) -> ScheduledTaskInput {
    let spec = serde_json::json!({
        "id": format!("s-{schedule_id}"),
        "repo": "/srv/git/app.git",
        "base": "main",
        "instructions": "do it",
        "checks": [],
        "agent": {"kind": "command", "command": ["/bin/true"]},
        "max_rounds": 1,
        "time_budget_secs": 60,
        "requester": requester,
        "playbook": playbook.map(|name| serde_json::json!({"name": name, "content_hash": "00"})),
    });
    ScheduledTaskInput {
        schedule_id: schedule_id.to_string(),
        cron: "0 3 * * *".to_string(),
        timezone: "UTC".to_string(),
        spec: serde_json::from_value(spec).unwrap(),
        pause_after_failures: None,
        count_failures_after: None,
    }
}

#[test]
fn playbook_schedule_ids_are_recognised() {
    assert!(is_playbook_schedule_id("calc-fix-0", "calc-fix"));
    assert!(is_playbook_schedule_id("calc-fix-12", "calc-fix"));
    for (id, playbook) in [
        ("calc-fix", "calc-fix"),
        ("calc-fix-", "calc-fix"),
        ("calc-fix-x", "calc-fix"),
        ("calc-fix-0", "calc"),
        ("nightly-0", "calc-fix"),
    ] {
        assert!(!is_playbook_schedule_id(id, playbook), "{id} of {playbook}");
    }
}

#[test]
fn only_dropped_playbook_schedules_are_stale() {
    let set = |ids: &[&str]| {
        ids.iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<String>>()
    };
    let none = set(&[]);
    let dropped = input("calc-fix-1", Some("calc-fix"), "schedule calc-fix-1");
    // The playbook now declares only its schedule 0, or was deleted: schedule 1 goes.
    assert!(is_stale_playbook_schedule(
        "calc-fix-1",
        &dropped,
        &set(&["calc-fix-0"]),
        &none
    ));
    assert!(is_stale_playbook_schedule(
        "calc-fix-1",
        &dropped,
        &none,
        &none
    ));
    // Still declared, or its playbook is broken for now: kept.
    assert!(!is_stale_playbook_schedule(
        "calc-fix-1",
        &dropped,
        &set(&["calc-fix-1"]),
        &none
    ));
    assert!(!is_stale_playbook_schedule(
        "calc-fix-1",
        &dropped,
        &none,
        &set(&["calc-fix"])
    ));
    // Ad-hoc schedules are never the sync's to delete.
    let ad_hoc = input("nightly", Some("calc-fix"), "schedule nightly");
    assert!(!is_stale_playbook_schedule(
        "nightly", &ad_hoc, &none, &none
    ));
    let someone = input("calc-fix-1", Some("calc-fix"), "alice");
    assert!(!is_stale_playbook_schedule(
        "calc-fix-1",
        &someone,
        &none,
        &none
    ));
    let no_playbook = input("calc-fix-1", None, "schedule calc-fix-1");
    assert!(!is_stale_playbook_schedule(
        "calc-fix-1",
        &no_playbook,
        &none,
        &none
    ));
}
