//! Reads for metrics and statistics: tasks without their texts, and events across tasks.
//!
//! These scan whole tables (bounded by a time range where one is given); they serve scrapes
//! and reports, not the pipeline.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use workflows::TaskStatus;

use crate::columns::{round_from_db, status_from_db};
use crate::entities::{check_result, round, task, task_event};
use crate::events::{EventKind, TaskEvent};
use crate::{Store, StoreError};

/// A task as metrics and statistics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    pub id: String,
    pub status: TaskStatus,
    pub round: u32,
    /// None for an ad-hoc task.
    pub playbook: Option<String>,
    pub created_at: DateTime<Utc>,
    /// For a final task: when it ended.
    pub updated_at: DateTime<Utc>,
}

/// Sandboxed runs that did not end on their own, by cause, over all tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxKills {
    /// Agent runs killed at their time budget (the whole process tree).
    pub agent_time_budget: u64,
    /// Agent runs ended by a signal: the OOM killer, the process limit, or from outside.
    pub agent_signal: u64,
    /// Check runs killed at their time budget.
    pub check_time_budget: u64,
}

type FactsColumns = (
    String,
    String,
    i32,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);

impl Store {
    /// Tasks created at or after `from` and before `to` (each bound optional), oldest first.
    pub async fn task_facts(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<TaskFacts>, StoreError> {
        let mut query = task::Entity::find()
            .select_only()
            .columns([
                task::Column::Id,
                task::Column::Status,
                task::Column::Round,
                task::Column::PlaybookName,
                task::Column::CreatedAt,
                task::Column::UpdatedAt,
            ])
            .order_by_asc(task::Column::CreatedAt)
            .order_by_asc(task::Column::Id);
        if let Some(from) = from {
            query = query.filter(task::Column::CreatedAt.gte(from));
        }
        if let Some(to) = to {
            query = query.filter(task::Column::CreatedAt.lt(to));
        }
        let rows: Vec<FactsColumns> = query
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| "read the facts of tasks".to_string()))?;
        rows.into_iter()
            .map(|(id, status, round, playbook, created_at, updated_at)| {
                Ok(TaskFacts {
                    status: status_from_db(&id, &status)?,
                    round: round_from_db(&id, round)?,
                    playbook,
                    created_at,
                    updated_at,
                    id,
                })
            })
            .collect()
    }

    pub async fn sandbox_kills(&self) -> Result<SandboxKills, StoreError> {
        let action = || "count the sandbox kills".to_string();
        let agent_time_budget = round::Entity::find()
            .filter(round::Column::AgentExit.eq("timed_out"))
            .count(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        let agent_signal = round::Entity::find()
            .filter(round::Column::AgentExit.eq("exited"))
            .filter(round::Column::AgentExitCode.is_null())
            .count(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        let check_time_budget = check_result::Entity::find()
            .filter(check_result::Column::TimedOut.eq(true))
            .count(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        Ok(SandboxKills {
            agent_time_budget,
            agent_signal,
            check_time_budget,
        })
    }

    /// Every event of these kinds, of every task, oldest first.
    pub async fn events_of_kinds(&self, kinds: &[EventKind]) -> Result<Vec<TaskEvent>, StoreError> {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let models = task_event::Entity::find()
            .filter(task_event::Column::Kind.is_in(names.clone()))
            .order_by_asc(task_event::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the {} events", names.join("/"))
            }))?;
        let mut events = Vec::with_capacity(models.len());
        for model in models {
            events.extend(TaskEvent::from_model(model)?);
        }
        Ok(events)
    }

    /// The first event of `kind` of each task that has one.
    pub async fn first_events(
        &self,
        kind: EventKind,
    ) -> Result<HashMap<String, TaskEvent>, StoreError> {
        let action = || format!("read the first {} event of each task", kind.as_str());
        // Ids, not times, are aggregated: an integer reads back the same on every backend.
        let first_ids: Vec<i64> = task_event::Entity::find()
            .select_only()
            .column_as(
                Expr::from(Func::min(Expr::col(task_event::Column::Id))),
                "first_id",
            )
            .filter(task_event::Column::Kind.eq(kind.as_str()))
            .group_by(task_event::Column::TaskId)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        let mut firsts = HashMap::with_capacity(first_ids.len());
        // Bounded batches keep each statement under SQLite's limit of bound parameters.
        for batch in first_ids.chunks(500) {
            let models = task_event::Entity::find()
                .filter(task_event::Column::Id.is_in(batch.iter().copied()))
                .all(&self.db)
                .await
                .map_err(StoreError::query(action))?;
            for model in models {
                if let Some(event) = TaskEvent::from_model(model)? {
                    firsts.insert(event.task_id.clone(), event);
                }
            }
        }
        Ok(firsts)
    }
}
