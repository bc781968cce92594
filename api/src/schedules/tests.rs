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
