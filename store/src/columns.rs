//! How domain values map to column values and back; reading back checks every value.

use chrono::{DateTime, SubsecRound, Utc};
use workflows::contracts::AgentExit;
use workflows::{ReviewVerdict, TaskStatus};

use crate::StoreError;

/// Now, cut to the microseconds PostgreSQL keeps, so a stored time reads back equal.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub(crate) fn round_to_db(task_id: &str, round: u32) -> Result<i32, StoreError> {
    i32::try_from(round).map_err(|_| StoreError::OutOfRange {
        task_id: task_id.to_string(),
        field: "round",
        value: round.to_string(),
    })
}

pub(crate) fn round_from_db(task_id: &str, round: i32) -> Result<u32, StoreError> {
    u32::try_from(round).map_err(|_| corrupt(task_id, "round", round))
}

pub(crate) fn millis_to_db(task_id: &str, millis: u64) -> Result<i64, StoreError> {
    i64::try_from(millis).map_err(|_| StoreError::OutOfRange {
        task_id: task_id.to_string(),
        field: "duration_ms",
        value: millis.to_string(),
    })
}

pub(crate) fn millis_from_db(task_id: &str, millis: i64) -> Result<u64, StoreError> {
    u64::try_from(millis).map_err(|_| corrupt(task_id, "duration_ms", millis))
}

pub(crate) fn status_from_db(task_id: &str, status: &str) -> Result<TaskStatus, StoreError> {
    TaskStatus::parse(status).ok_or_else(|| corrupt(task_id, "status", status))
}

/// The statuses a task never leaves, as stored.
pub(crate) fn final_statuses() -> Vec<&'static str> {
    TaskStatus::ALL
        .into_iter()
        .filter(|status| status.is_final())
        .map(TaskStatus::as_str)
        .collect()
}

const VERDICTS: [ReviewVerdict; 3] = [
    ReviewVerdict::Approve,
    ReviewVerdict::RequestChanges,
    ReviewVerdict::Reject,
];

pub(crate) fn verdict_from_db(task_id: &str, verdict: &str) -> Result<ReviewVerdict, StoreError> {
    VERDICTS
        .into_iter()
        .find(|known| known.as_str() == verdict)
        .ok_or_else(|| corrupt(task_id, "review decision", verdict))
}

const EXITED: &str = "exited";
const TIMED_OUT: &str = "timed_out";

/// The `agent_exit` and `agent_exit_code` columns.
pub(crate) fn agent_exit_to_db(exit: AgentExit) -> (&'static str, Option<i32>) {
    match exit {
        AgentExit::Exited { code } => (EXITED, code),
        AgentExit::TimedOut => (TIMED_OUT, None),
    }
}

pub(crate) fn agent_exit_from_db(
    task_id: &str,
    exit: &str,
    code: Option<i32>,
) -> Result<AgentExit, StoreError> {
    match exit {
        EXITED => Ok(AgentExit::Exited { code }),
        TIMED_OUT => Ok(AgentExit::TimedOut),
        other => Err(corrupt(task_id, "agent exit", other)),
    }
}

fn corrupt(task_id: &str, field: &'static str, value: impl ToString) -> StoreError {
    StoreError::Corrupt {
        task_id: task_id.to_string(),
        field,
        value: value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_exits_round_trip() {
        for exit in [
            AgentExit::Exited { code: Some(0) },
            AgentExit::Exited { code: Some(3) },
            AgentExit::Exited { code: None },
            AgentExit::TimedOut,
        ] {
            let (text, code) = agent_exit_to_db(exit);
            assert_eq!(agent_exit_from_db("t", text, code).unwrap(), exit);
        }
        assert!(agent_exit_from_db("t", "vanished", None).is_err());
    }

    #[test]
    fn verdicts_round_trip() {
        for verdict in VERDICTS {
            assert_eq!(verdict_from_db("t", verdict.as_str()).unwrap(), verdict);
        }
        let err = verdict_from_db("t1", "maybe").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"task t1: unknown review decision "maybe" in the database"#
        );
    }

    #[test]
    fn out_of_range_numbers_are_errors() {
        assert!(round_to_db("t", u32::MAX).is_err());
        assert!(round_from_db("t", -1).is_err());
        assert!(millis_to_db("t", u64::MAX).is_err());
        assert!(millis_from_db("t", -5).is_err());
        assert_eq!(final_statuses().len(), 6);
    }
}
