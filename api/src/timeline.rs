//! Projects a task's Temporal event history onto one entry per step: each activity from its
//! scheduling to its end (attempts and the retry cause included), the gate's timer, review
//! updates and cancel requests, and the run as a whole. Pure: tests feed recorded histories.

mod summaries;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use temporalio_common::protos::constants::LOCAL_ACTIVITY_MARKER_NAME;
use temporalio_common::protos::coresdk::common::extract_local_activity_marker_data;
use temporalio_common::protos::temporal::api::common::v1::Payloads;
use temporalio_common::protos::temporal::api::enums::v1::PendingActivityState;
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_common::protos::temporal::api::update::v1::{Request, outcome};
use temporalio_common::protos::temporal::api::workflow::v1::PendingActivityInfo;

use crate::dto::{HistoryStep, StepKind, StepOutcome, WorkflowRun, WorkflowRunStatus};

/// The projection of one workflow run.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub workflow: WorkflowRun,
    pub steps: Vec<HistoryStep>,
}

/// Projects `events` (one run, in order); `pending` (from describing a running workflow)
/// tells apart activities still waiting from running ones and gives their attempts so far.
pub fn project(events: &[HistoryEvent], pending: &[PendingActivityInfo]) -> Timeline {
    let mut projection = Projection::default();
    for event in events {
        projection.apply(event);
    }
    projection.apply_pending(pending);
    let workflow = WorkflowRun {
        duration_ms: millis_between(projection.started_at, projection.ended_at),
        status: projection.status,
        started_at: projection.started_at,
        ended_at: projection.ended_at,
        events: events.len() as u64,
    };
    Timeline {
        workflow,
        steps: projection.steps,
    }
}

struct Projection {
    steps: Vec<HistoryStep>,
    /// Activity steps by the id of their scheduled event, and by activity id.
    by_scheduled_event: HashMap<i64, usize>,
    by_activity_id: HashMap<String, usize>,
    /// The scheduled input of each activity step, for its summary once it ends.
    inputs: HashMap<usize, (String, Value)>,
    timers: HashMap<String, usize>,
    updates: HashMap<i64, usize>,
    /// The round and recorded status so far, for steps whose input does not say.
    round: u32,
    recorded_status: Option<String>,
    /// When the latest workflow task started (local activities run within it).
    task_started_at: Option<DateTime<Utc>>,
    status: WorkflowRunStatus,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

impl Default for Projection {
    fn default() -> Self {
        Projection {
            steps: Vec::new(),
            by_scheduled_event: HashMap::new(),
            by_activity_id: HashMap::new(),
            inputs: HashMap::new(),
            timers: HashMap::new(),
            updates: HashMap::new(),
            round: 0,
            recorded_status: None,
            task_started_at: None,
            status: WorkflowRunStatus::Running,
            started_at: None,
            ended_at: None,
        }
    }
}

impl Projection {
    fn apply(&mut self, event: &HistoryEvent) {
        let at = event_time(event);
        let Some(attributes) = &event.attributes else {
            return;
        };
        match attributes {
            Attributes::WorkflowExecutionStartedEventAttributes(_) => self.started_at = at,
            Attributes::WorkflowTaskStartedEventAttributes(_) => self.task_started_at = at,
            Attributes::ActivityTaskScheduledEventAttributes(a) => {
                let name = a
                    .activity_type
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                let input = first_payload(a.input.as_ref());
                let index = self.schedule(&name, input, at);
                self.by_scheduled_event.insert(event.event_id, index);
                self.by_activity_id.insert(a.activity_id.clone(), index);
            }
            // A local activity: one marker once it ended, its input kept in the marker; it ran
            // within the workflow task that started last.
            Attributes::MarkerRecordedEventAttributes(m)
                if m.marker_name == LOCAL_ACTIVITY_MARKER_NAME =>
            {
                let Some(data) = extract_local_activity_marker_data(&m.details) else {
                    return;
                };
                let input = first_payload(m.details.get("input"));
                let started = self.task_started_at.or(at);
                let index = self.schedule(&data.activity_type, input, started);
                let result = first_payload(m.details.get("result"));
                let (name, input) = &self.inputs[&index];
                let summary = summaries::completed(name, input, &result);
                let step = &mut self.steps[index];
                step.attempts = data.attempt.max(1);
                match &m.failure {
                    Some(failure) => {
                        step.outcome = StepOutcome::Failed;
                        step.failure = Some(failure_chain(failure));
                    }
                    None => {
                        step.outcome = StepOutcome::Completed;
                        step.summary = summary.or(step.summary.take());
                    }
                }
                end(step, at);
            }
            Attributes::ActivityTaskStartedEventAttributes(a) => {
                if let Some(step) = self.activity(a.scheduled_event_id) {
                    step.outcome = StepOutcome::Running;
                    step.attempts = u32::try_from(a.attempt).unwrap_or(1).max(1);
                    step.retry_cause = a.last_failure.as_ref().map(failure_chain);
                }
            }
            Attributes::ActivityTaskCompletedEventAttributes(a) => {
                let result = first_payload(a.result.as_ref());
                if let Some(&index) = self.by_scheduled_event.get(&a.scheduled_event_id)
                    && let Some((name, input)) = self.inputs.get(&index)
                    && let Some(summary) = summaries::completed(name, input, &result)
                {
                    self.steps[index].summary = Some(summary);
                }
                self.end_activity(a.scheduled_event_id, StepOutcome::Completed, at, None);
            }
            Attributes::ActivityTaskFailedEventAttributes(a) => {
                let failure = a.failure.as_ref().map(failure_chain);
                self.end_activity(a.scheduled_event_id, StepOutcome::Failed, at, failure);
            }
            Attributes::ActivityTaskTimedOutEventAttributes(a) => {
                let failure = a.failure.as_ref().map(failure_chain);
                self.end_activity(a.scheduled_event_id, StepOutcome::TimedOut, at, failure);
            }
            Attributes::ActivityTaskCanceledEventAttributes(a) => {
                self.end_activity(a.scheduled_event_id, StepOutcome::Cancelled, at, None);
            }
            Attributes::TimerStartedEventAttributes(a) => {
                let secs = a.start_to_fire_timeout.as_ref().map_or(0, |d| d.seconds);
                let after = seconds(u64::try_from(secs).unwrap_or(0));
                let summary = if self.recorded_status.as_deref() == Some("awaiting_review") {
                    format!("review deadline in {after}")
                } else {
                    format!("fires in {after}")
                };
                let index = self.push(StepKind::Timer, "timer", at, Some(summary));
                self.steps[index].outcome = StepOutcome::Running;
                self.timers.insert(a.timer_id.clone(), index);
            }
            Attributes::TimerFiredEventAttributes(a) => {
                self.end_timer(&a.timer_id, StepOutcome::Fired, at);
            }
            Attributes::TimerCanceledEventAttributes(a) => {
                self.end_timer(&a.timer_id, StepOutcome::Cancelled, at);
            }
            Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
                let (name, summary) = update_request(a.accepted_request.as_ref());
                let index = self.push(StepKind::Update, &name, at, summary);
                self.steps[index].outcome = StepOutcome::Accepted;
                self.updates.insert(event.event_id, index);
            }
            Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
                if let Some(step) = self
                    .updates
                    .get(&a.accepted_event_id)
                    .and_then(|&i| self.steps.get_mut(i))
                {
                    if let Some(outcome::Value::Failure(failure)) =
                        a.outcome.as_ref().and_then(|o| o.value.as_ref())
                    {
                        step.outcome = StepOutcome::Rejected;
                        step.failure = Some(failure_chain(failure));
                    }
                    end(step, at);
                }
            }
            Attributes::WorkflowExecutionUpdateRejectedEventAttributes(a) => {
                let (name, summary) = update_request(a.rejected_request.as_ref());
                let index = self.push(StepKind::Update, &name, at, summary);
                let step = &mut self.steps[index];
                step.outcome = StepOutcome::Rejected;
                step.failure = a.failure.as_ref().map(failure_chain);
                end(step, at);
            }
            Attributes::WorkflowExecutionCancelRequestedEventAttributes(a) => {
                let cause = (!a.cause.is_empty()).then(|| a.cause.clone());
                let index = self.push(StepKind::CancelRequest, "cancel", at, cause);
                let step = &mut self.steps[index];
                step.outcome = StepOutcome::Accepted;
                end(step, at);
            }
            Attributes::WorkflowExecutionCompletedEventAttributes(_) => {
                self.close(WorkflowRunStatus::Completed, at)
            }
            Attributes::WorkflowExecutionFailedEventAttributes(_) => {
                self.close(WorkflowRunStatus::Failed, at)
            }
            Attributes::WorkflowExecutionCanceledEventAttributes(_) => {
                self.close(WorkflowRunStatus::Cancelled, at)
            }
            Attributes::WorkflowExecutionTerminatedEventAttributes(_) => {
                self.close(WorkflowRunStatus::Terminated, at)
            }
            Attributes::WorkflowExecutionTimedOutEventAttributes(_) => {
                self.close(WorkflowRunStatus::TimedOut, at)
            }
            Attributes::WorkflowExecutionContinuedAsNewEventAttributes(_) => {
                self.close(WorkflowRunStatus::ContinuedAsNew, at)
            }
            _ => {}
        }
    }

    /// Activities not yet ended: their attempts so far, the last failure, and whether a worker
    /// has them now (history only records an activity's start once it ends).
    fn apply_pending(&mut self, pending: &[PendingActivityInfo]) {
        for info in pending {
            let Some(step) = self
                .by_activity_id
                .get(&info.activity_id)
                .and_then(|&i| self.steps.get_mut(i))
            else {
                continue;
            };
            if !matches!(step.outcome, StepOutcome::Scheduled | StepOutcome::Running) {
                continue;
            }
            step.attempts = u32::try_from(info.attempt).unwrap_or(1).max(1);
            step.retry_cause = info.last_failure.as_ref().map(failure_chain);
            let started = [
                PendingActivityState::Started,
                PendingActivityState::CancelRequested,
            ]
            .map(|s| s as i32)
            .contains(&info.state);
            step.outcome = if started {
                StepOutcome::Running
            } else {
                StepOutcome::Scheduled
            };
        }
    }

    fn push(
        &mut self,
        kind: StepKind,
        name: &str,
        at: Option<DateTime<Utc>>,
        summary: Option<String>,
    ) -> usize {
        self.steps.push(HistoryStep {
            seq: u32::try_from(self.steps.len() + 1).unwrap_or(u32::MAX),
            kind,
            step: name.to_string(),
            round: self.round,
            outcome: StepOutcome::Scheduled,
            started_at: at,
            ended_at: None,
            duration_ms: None,
            attempts: 1,
            retry_cause: None,
            failure: None,
            summary,
        });
        self.steps.len() - 1
    }

    /// A new activity step, scheduled at `at`: its round and the status it records, if it
    /// says, carry over to the steps after it.
    fn schedule(&mut self, name: &str, input: Value, at: Option<DateTime<Utc>>) -> usize {
        if let Some(round) = input.get("round").and_then(Value::as_u64) {
            self.round = u32::try_from(round).unwrap_or(u32::MAX);
        }
        if name == "record_status" {
            self.recorded_status = input["status"].as_str().map(str::to_string);
        }
        let summary = summaries::scheduled(name, &input);
        let index = self.push(StepKind::Activity, name, at, summary);
        self.inputs.insert(index, (name.to_string(), input));
        index
    }

    fn activity(&mut self, scheduled_event_id: i64) -> Option<&mut HistoryStep> {
        let index = *self.by_scheduled_event.get(&scheduled_event_id)?;
        self.steps.get_mut(index)
    }

    fn end_activity(
        &mut self,
        scheduled_event_id: i64,
        outcome: StepOutcome,
        at: Option<DateTime<Utc>>,
        failure: Option<String>,
    ) {
        if let Some(step) = self.activity(scheduled_event_id) {
            step.outcome = outcome;
            step.failure = failure;
            end(step, at);
        }
    }

    fn end_timer(&mut self, timer_id: &str, outcome: StepOutcome, at: Option<DateTime<Utc>>) {
        if let Some(step) = self
            .timers
            .get(timer_id)
            .and_then(|&i| self.steps.get_mut(i))
        {
            step.outcome = outcome;
            end(step, at);
        }
    }

    fn close(&mut self, status: WorkflowRunStatus, at: Option<DateTime<Utc>>) {
        self.status = status;
        self.ended_at = at;
    }
}

fn end(step: &mut HistoryStep, at: Option<DateTime<Utc>>) {
    step.ended_at = at;
    step.duration_ms = millis_between(step.started_at, at);
}

/// `45s`, `30m`, `7d`, `1d2h`: the largest units, two at most.
fn seconds(secs: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in units {
        if rest >= size && parts.len() < 2 {
            parts.push(format!("{}{unit}", rest / size));
            rest %= size;
        } else if !parts.is_empty() {
            break;
        }
    }
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.concat()
    }
}

fn millis_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<u64> {
    let millis = (to? - from?).num_milliseconds();
    u64::try_from(millis).ok()
}

fn event_time(event: &HistoryEvent) -> Option<DateTime<Utc>> {
    let time = event.event_time.as_ref()?;
    DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).ok()?)
}

/// The first payload as JSON (our payloads are `json/plain`); Null when absent or not JSON.
fn first_payload(payloads: Option<&Payloads>) -> Value {
    payloads
        .and_then(|p| p.payloads.first())
        .and_then(|p| serde_json::from_slice(&p.data).ok())
        .unwrap_or(Value::Null)
}

/// A failure's message and its causes', outermost first.
fn failure_chain(failure: &Failure) -> String {
    let mut messages = Vec::new();
    let mut next = Some(failure);
    while let Some(f) = next {
        if !f.message.is_empty() {
            messages.push(f.message.as_str());
        }
        next = f.cause.as_deref();
    }
    messages.join(": ")
}

/// An update's name and, for a review decision, who decided what.
fn update_request(request: Option<&Request>) -> (String, Option<String>) {
    let Some(input) = request.and_then(|r| r.input.as_ref()) else {
        return ("update".to_string(), None);
    };
    let args = first_payload(input.args.as_ref());
    (input.name.clone(), summaries::update(&input.name, &args))
}

#[cfg(test)]
mod tests;
