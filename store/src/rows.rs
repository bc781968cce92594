//! What the store hands back: a task's row and its full record, built from checked columns.

use chrono::{DateTime, Utc};
use serde::Serialize;
use workflows::contracts::{AgentRun, CheckResult};
use workflows::task::PlaybookRef;
use workflows::{ReviewVerdict, TaskStatus};

use crate::StoreError;
use crate::columns::{
    agent_exit_from_db, millis_from_db, round_from_db, status_from_db, verdict_from_db,
};
use crate::entities::{check_result, review_decision, review_request, round, task};

/// A task as listed: everything but its rounds and reviews.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRow {
    pub id: String,
    pub status: TaskStatus,
    pub round: u32,
    pub repo: String,
    pub base: String,
    pub branch: String,
    pub requester: String,
    pub instructions: String,
    pub playbook: Option<PlaybookRef>,
    pub reason: Option<String>,
    pub report: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A task with its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskRecord {
    pub task: TaskRow,
    /// Ascending; a round appears once it has an agent run or check results.
    pub rounds: Vec<RoundRow>,
    pub review: Option<ReviewRequestRow>,
    /// Ascending by round.
    pub decisions: Vec<ReviewDecisionRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundRow {
    pub round: u32,
    pub agent: Option<AgentRun>,
    /// In the order they ran.
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewRequestRow {
    pub branch: String,
    pub commit: String,
    pub round: u32,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewDecisionRow {
    pub round: u32,
    pub decision: ReviewVerdict,
    pub reviewer: String,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<task::Model> for TaskRow {
    type Error = StoreError;

    fn try_from(model: task::Model) -> Result<Self, StoreError> {
        let id = model.id;
        let playbook = match (model.playbook_name, model.playbook_hash) {
            (Some(name), Some(content_hash)) => Some(PlaybookRef { name, content_hash }),
            (None, None) => None,
            (name, hash) => {
                return Err(StoreError::Corrupt {
                    task_id: id,
                    field: "playbook",
                    value: format!("name {name:?} with hash {hash:?}"),
                });
            }
        };
        Ok(TaskRow {
            status: status_from_db(&id, &model.status)?,
            round: round_from_db(&id, model.round)?,
            repo: model.repo,
            base: model.base,
            branch: model.branch,
            requester: model.requester,
            instructions: model.instructions,
            playbook,
            reason: model.reason,
            report: model.report,
            created_at: model.created_at,
            updated_at: model.updated_at,
            id,
        })
    }
}

pub(crate) fn agent_run(model: round::Model) -> Result<(u32, AgentRun), StoreError> {
    let task_id = &model.task_id;
    let run = AgentRun {
        exit: agent_exit_from_db(task_id, &model.agent_exit, model.agent_exit_code)?,
        duration_ms: millis_from_db(task_id, model.agent_duration_ms)?,
        output_tail: model.agent_output_tail,
        log_path: model.agent_log_path,
        // Decisions travel in the workflow's report, not in the store.
        network: Vec::new(),
        // The refusal and the cost live in the ledger (`ledger_entries`).
        budget_refusal: None,
        cost: None,
        // The agent's own report and its checkpoints travel in the workflow's payloads.
        reported: None,
        checkpoints: 0,
    };
    Ok((round_from_db(task_id, model.round)?, run))
}

pub(crate) fn check(model: check_result::Model) -> Result<(u32, CheckResult), StoreError> {
    let task_id = &model.task_id;
    let check = CheckResult {
        command: model.command,
        exit_code: model.exit_code,
        timed_out: model.timed_out,
        duration_ms: millis_from_db(task_id, model.duration_ms)?,
        output_tail: model.output_tail,
    };
    Ok((round_from_db(task_id, model.round)?, check))
}

impl TryFrom<review_request::Model> for ReviewRequestRow {
    type Error = StoreError;

    fn try_from(model: review_request::Model) -> Result<Self, StoreError> {
        Ok(ReviewRequestRow {
            round: round_from_db(&model.task_id, model.round)?,
            branch: model.branch,
            commit: model.commit,
            body: model.body,
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }
}

impl TryFrom<review_decision::Model> for ReviewDecisionRow {
    type Error = StoreError;

    fn try_from(model: review_decision::Model) -> Result<Self, StoreError> {
        Ok(ReviewDecisionRow {
            round: round_from_db(&model.task_id, model.round)?,
            decision: verdict_from_db(&model.task_id, &model.decision)?,
            reviewer: model.reviewer,
            comment: model.comment,
            created_at: model.created_at,
        })
    }
}
