//! The Prometheus metrics of `GET /metrics`, computed from the store at scrape time.
//!
//! Every scrape builds a fresh registry from the tasks and their events, so any API replica
//! answers the same numbers and nothing is lost on restart. The counters only grow because the
//! store only grows. Pure: the route reads the store and hands the rows over.

use std::collections::HashMap;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use store::{SandboxKills, TaskEvent, TaskEventData, TaskFacts};
use workflows::TaskStatus;

/// The `playbook` label of ad-hoc tasks.
pub const AD_HOC: &str = "ad-hoc";

/// Seconds, from a quick store write to a day-long review.
const DURATION_BUCKETS: [f64; 14] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0,
];
const REVIEW_WAIT_BUCKETS: [f64; 10] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 43200.0, 86400.0, 259200.0, 604800.0,
];
const ROUND_BUCKETS: [f64; 8] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0];

/// The text exposition of the metrics. `events` are the `status` and `review` events of every
/// task, oldest first.
pub fn render(tasks: &[TaskFacts], events: &[TaskEvent]) -> Result<String, prometheus::Error> {
    let registry = Registry::new();
    let started = IntCounterVec::new(
        Opts::new("errand_tasks_started_total", "Tasks admitted, by playbook"),
        &["playbook"],
    )?;
    let finished = IntCounterVec::new(
        Opts::new(
            "errand_tasks_finished_total",
            "Tasks that reached a final status, by playbook and outcome",
        ),
        &["playbook", "outcome"],
    )?;
    let in_progress = IntGaugeVec::new(
        Opts::new("errand_tasks_in_progress", "Tasks not yet final, by status"),
        &["status"],
    )?;
    let rounds = HistogramVec::new(
        HistogramOpts::new(
            "errand_task_rounds",
            "Rounds per finished task, by playbook",
        )
        .buckets(ROUND_BUCKETS.to_vec()),
        &["playbook"],
    )?;
    let steps = HistogramVec::new(
        HistogramOpts::new(
            "errand_step_duration_seconds",
            "Time tasks spent in each step (status) before moving on",
        )
        .buckets(DURATION_BUCKETS.to_vec()),
        &["step"],
    )?;
    let review_wait = Histogram::with_opts(
        HistogramOpts::new(
            "errand_review_wait_seconds",
            "From a review request to the reviewer's decision",
        )
        .buckets(REVIEW_WAIT_BUCKETS.to_vec()),
    )?;
    for collector in [
        Box::new(started.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(finished.clone()),
        Box::new(in_progress.clone()),
        Box::new(rounds.clone()),
        Box::new(steps.clone()),
        Box::new(review_wait.clone()),
    ] {
        registry.register(collector)?;
    }

    for status in TaskStatus::ALL.into_iter().filter(|s| !s.is_final()) {
        in_progress.with_label_values(&[status.as_str()]).set(0);
    }
    for task in tasks {
        let playbook = task.playbook.as_deref().unwrap_or(AD_HOC);
        started.with_label_values(&[playbook]).inc();
        if task.status.is_final() {
            finished
                .with_label_values(&[playbook, task.status.as_str()])
                .inc();
            rounds
                .with_label_values(&[playbook])
                .observe(f64::from(task.round));
        } else {
            in_progress.with_label_values(&[task.status.as_str()]).inc();
        }
    }
    for (step, seconds) in step_durations(events) {
        steps.with_label_values(&[step.as_str()]).observe(seconds);
    }
    for seconds in review_waits(events) {
        review_wait.observe(seconds);
    }

    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// `errand_sandbox_kills_total{cause}`: sandboxed runs that did not end on their own.
pub fn render_sandbox_kills(kills: &SandboxKills) -> Result<String, prometheus::Error> {
    let registry = Registry::new();
    let counter = IntCounterVec::new(
        Opts::new(
            "errand_sandbox_kills_total",
            "Sandboxed runs killed, by cause: agent_time_budget, agent_signal (OOM killer, \
             process limit or from outside), check_time_budget",
        ),
        &["cause"],
    )?;
    registry.register(Box::new(counter.clone()))?;
    for (cause, n) in [
        ("agent_time_budget", kills.agent_time_budget),
        ("agent_signal", kills.agent_signal),
        ("check_time_budget", kills.check_time_budget),
    ] {
        counter.with_label_values(&[cause]).inc_by(n);
    }
    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Each status a task left, with the seconds it stayed in it.
fn step_durations(events: &[TaskEvent]) -> Vec<(TaskStatus, f64)> {
    let mut current: HashMap<&str, (TaskStatus, &TaskEvent)> = HashMap::new();
    let mut durations = Vec::new();
    for event in events {
        let TaskEventData::Status { status, .. } = event.data else {
            continue;
        };
        if let Some((previous, since)) = current.insert(&event.task_id, (status, event)) {
            durations.push((previous, seconds_between(since, event)));
        }
    }
    durations
}

/// For each decision at the gate, the seconds since the task started awaiting review.
fn review_waits(events: &[TaskEvent]) -> Vec<f64> {
    let mut awaiting: HashMap<&str, &TaskEvent> = HashMap::new();
    let mut waits = Vec::new();
    for event in events {
        match event.data {
            TaskEventData::Status {
                status: TaskStatus::AwaitingReview,
                ..
            } => {
                awaiting.insert(&event.task_id, event);
            }
            TaskEventData::Review { .. } => {
                if let Some(since) = awaiting.remove(event.task_id.as_str()) {
                    waits.push(seconds_between(since, event));
                }
            }
            _ => {}
        }
    }
    waits
}

fn seconds_between(from: &TaskEvent, to: &TaskEvent) -> f64 {
    let millis = (to.at - from.at).num_milliseconds().max(0);
    millis as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use workflows::ReviewVerdict;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::seconds(seconds)
    }

    #[test]
    fn sandbox_kills_are_counted_by_cause() {
        let text = render_sandbox_kills(&SandboxKills {
            agent_time_budget: 2,
            agent_signal: 1,
            check_time_budget: 0,
        })
        .unwrap();
        for line in [
            r#"errand_sandbox_kills_total{cause="agent_time_budget"} 2"#,
            r#"errand_sandbox_kills_total{cause="agent_signal"} 1"#,
            r#"errand_sandbox_kills_total{cause="check_time_budget"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
    }

    fn facts(id: &str, status: TaskStatus, round: u32, playbook: Option<&str>) -> TaskFacts {
        TaskFacts {
            id: id.into(),
            status,
            round,
            playbook: playbook.map(str::to_string),
            created_at: at(0),
            updated_at: at(100),
        }
    }

    fn event(id: i64, task: &str, seconds: i64, data: TaskEventData) -> TaskEvent {
        TaskEvent {
            id,
            task_id: task.into(),
            at: at(seconds),
            data,
        }
    }

    fn status(id: i64, task: &str, seconds: i64, status: TaskStatus) -> TaskEvent {
        event(
            id,
            task,
            seconds,
            TaskEventData::Status {
                status,
                round: 1,
                reason: None,
            },
        )
    }

    #[test]
    fn counters_histograms_and_gauges_from_the_store() {
        let tasks = [
            facts("t1", TaskStatus::Merged, 2, None),
            facts("t2", TaskStatus::Incomplete, 3, Some("fix-failing-test")),
            facts("t3", TaskStatus::RunningAgent, 1, Some("fix-failing-test")),
        ];
        let events = [
            status(1, "t1", 0, TaskStatus::Admitted),
            status(2, "t3", 1, TaskStatus::Admitted),
            status(3, "t1", 2, TaskStatus::RunningAgent),
            status(4, "t1", 12, TaskStatus::AwaitingReview),
            event(
                5,
                "t1",
                72,
                TaskEventData::Review {
                    round: 1,
                    decision: ReviewVerdict::Approve,
                    reviewer: "bob".into(),
                    comment: None,
                },
            ),
            status(6, "t1", 80, TaskStatus::Merged),
        ];
        let text = render(&tasks, &events).unwrap();
        for line in [
            r#"errand_tasks_started_total{playbook="ad-hoc"} 1"#,
            r#"errand_tasks_started_total{playbook="fix-failing-test"} 2"#,
            r#"errand_tasks_finished_total{outcome="merged",playbook="ad-hoc"} 1"#,
            r#"errand_tasks_finished_total{outcome="incomplete",playbook="fix-failing-test"} 1"#,
            r#"errand_tasks_in_progress{status="running_agent"} 1"#,
            r#"errand_tasks_in_progress{status="verifying"} 0"#,
            r#"errand_task_rounds_sum{playbook="fix-failing-test"} 3"#,
            r#"errand_step_duration_seconds_sum{step="running_agent"} 10"#,
            r#"errand_step_duration_seconds_sum{step="awaiting_review"} 68"#,
            r#"errand_step_duration_seconds_count{step="admitted"} 1"#,
            "errand_review_wait_seconds_sum 60",
            "errand_review_wait_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }
}
