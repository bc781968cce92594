//! A task's events: what the live progress stream and the metrics read, as typed values.
//!
//! An event is stored as its kind and its fields as JSON. Kinds and fields only ever get added
//! (readers skip kinds they do not know), so an older API can follow a newer worker's tasks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use workflows::contracts::CheckResult;
use workflows::{ReviewVerdict, TaskStatus};

use crate::StoreError;
use crate::entities::task_event;

/// One event of a task. `id` grows with every event of every task: it is the server-sent
/// event id that a reader resumes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskEvent {
    pub id: i64,
    pub task_id: String,
    pub at: DateTime<Utc>,
    pub data: TaskEventData,
}

/// What happened. Serialized as `{"kind": ..., "data": {...}}`; the store keeps the two apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum TaskEventData {
    /// The task moved to `status` (admitted, each step, and the final status last).
    Status {
        status: TaskStatus,
        round: u32,
        #[serde(default)]
        reason: Option<String>,
    },
    /// The agent's latest output line, bounded and with secrets redacted by the worker.
    AgentOutput {
        round: u32,
        line: String,
        elapsed_ms: u64,
        output_bytes: u64,
    },
    /// The round's checks ran; their output tails stay with the task's rounds.
    Checks {
        round: u32,
        checks: Vec<CheckOutcome>,
    },
    /// The work was pushed and a review requested (again, in a later round).
    ReviewRequested {
        round: u32,
        branch: String,
        commit: String,
    },
    /// A reviewer decided at the gate.
    Review {
        round: u32,
        decision: ReviewVerdict,
        reviewer: String,
        #[serde(default)]
        comment: Option<String>,
    },
}

/// One check of a `Checks` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub command: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub passed: bool,
}

impl From<&CheckResult> for CheckOutcome {
    fn from(check: &CheckResult) -> Self {
        CheckOutcome {
            command: check.command.clone(),
            exit_code: check.exit_code,
            timed_out: check.timed_out,
            duration_ms: check.duration_ms,
            passed: check.passed(),
        }
    }
}

/// The kinds of event, as stored in the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Status,
    AgentOutput,
    Checks,
    ReviewRequested,
    Review,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Status,
        EventKind::AgentOutput,
        EventKind::Checks,
        EventKind::ReviewRequested,
        EventKind::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::AgentOutput => "agent_output",
            EventKind::Checks => "checks",
            EventKind::ReviewRequested => "review_requested",
            EventKind::Review => "review",
        }
    }

    pub fn parse(kind: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl TaskEventData {
    pub fn kind(&self) -> EventKind {
        match self {
            TaskEventData::Status { .. } => EventKind::Status,
            TaskEventData::AgentOutput { .. } => EventKind::AgentOutput,
            TaskEventData::Checks { .. } => EventKind::Checks,
            TaskEventData::ReviewRequested { .. } => EventKind::ReviewRequested,
            TaskEventData::Review { .. } => EventKind::Review,
        }
    }

    /// The round the event belongs to.
    pub fn round(&self) -> u32 {
        match self {
            TaskEventData::Status { round, .. }
            | TaskEventData::AgentOutput { round, .. }
            | TaskEventData::Checks { round, .. }
            | TaskEventData::ReviewRequested { round, .. }
            | TaskEventData::Review { round, .. } => *round,
        }
    }

    /// The `data` column: the fields without the kind.
    pub(crate) fn to_column(&self, task_id: &str) -> Result<String, StoreError> {
        let encode = |source| StoreError::EncodeEvent {
            task_id: task_id.to_string(),
            kind: self.kind().as_str(),
            source,
        };
        let mut tagged = serde_json::to_value(self).map_err(encode)?;
        let fields = tagged
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or_default();
        serde_json::to_string(&fields).map_err(encode)
    }
}

impl TaskEvent {
    /// None for a kind this version does not know (a newer writer's); an error for a known
    /// kind whose fields do not read back.
    pub(crate) fn from_model(model: task_event::Model) -> Result<Option<TaskEvent>, StoreError> {
        if EventKind::parse(&model.kind).is_none() {
            tracing::debug!(kind = %model.kind, id = model.id, "skipping an event of an unknown kind");
            return Ok(None);
        }
        let corrupt = || StoreError::Corrupt {
            task_id: model.task_id.clone(),
            field: "event",
            value: format!("{} {}", model.kind, model.data),
        };
        let fields: serde_json::Value = serde_json::from_str(&model.data).map_err(|_| corrupt())?;
        let tagged = serde_json::json!({"kind": model.kind, "data": fields});
        let data = serde_json::from_value(tagged).map_err(|_| corrupt())?;
        Ok(Some(TaskEvent {
            id: model.id,
            task_id: model.task_id,
            at: model.created_at,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("cost"), None);
    }

    #[test]
    fn the_column_holds_the_fields_without_the_kind() {
        let data = TaskEventData::Status {
            status: TaskStatus::RunningAgent,
            round: 2,
            reason: None,
        };
        assert_eq!(
            data.to_column("t1").unwrap(),
            r#"{"reason":null,"round":2,"status":"running_agent"}"#
        );
        let model = task_event::Model {
            id: 7,
            task_id: "t1".into(),
            kind: "status".into(),
            data: data.to_column("t1").unwrap(),
            created_at: Utc::now(),
        };
        assert_eq!(TaskEvent::from_model(model).unwrap().unwrap().data, data);
    }

    #[test]
    fn unknown_kinds_are_skipped_and_bad_fields_are_errors() {
        let model = |kind: &str, data: &str| task_event::Model {
            id: 1,
            task_id: "t1".into(),
            kind: kind.into(),
            data: data.into(),
            created_at: Utc::now(),
        };
        assert_eq!(TaskEvent::from_model(model("cost", "{}")).unwrap(), None);
        let err = TaskEvent::from_model(model("status", r#"{"round":1}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"task t1: unknown event "status {\"round\":1}" in the database"#
        );
    }
}
