//! Writing a task's own row: admitting it, moving its status, finishing it.
//!
//! A task never leaves a final status: every status update is conditional on the stored
//! status not being final, so a late or replayed activity cannot resurrect a finished task.
//! Each change appends its `status` event in the same transaction; a repeat appends nothing.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, TransactionTrait,
};
use workflows::contracts::FinishRequest;
use workflows::{TaskSpec, TaskStatus};

use crate::columns::{final_statuses, now, round_to_db};
use crate::entities::task;
use crate::event_log::append;
use crate::events::TaskEventData;
use crate::{Store, StoreError};

impl Store {
    /// Insert the task with status admitted, round 0, if absent, with its first `status`
    /// event. Returns true if it inserted. Never overwrites an existing task.
    pub async fn admit(&self, spec: &TaskSpec) -> Result<bool, StoreError> {
        let spec_json = serde_json::to_string(spec).map_err(|source| StoreError::EncodeSpec {
            task_id: spec.id.clone(),
            source,
        })?;
        let at = now();
        let row = task::ActiveModel {
            id: Set(spec.id.clone()),
            status: Set(TaskStatus::Admitted.as_str().to_string()),
            round: Set(0),
            repo: Set(spec.repo.clone()),
            base: Set(spec.base.clone()),
            branch: Set(spec.branch()),
            requester: Set(spec.requester.clone()),
            instructions: Set(spec.instructions.clone()),
            spec: Set(spec_json),
            playbook_name: Set(spec.playbook.as_ref().map(|p| p.name.clone())),
            playbook_hash: Set(spec.playbook.as_ref().map(|p| p.content_hash.clone())),
            reason: Set(None),
            report: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        };
        let action = || format!("admit task {}", spec.id);
        let txn = self.db.begin().await.map_err(StoreError::query(action))?;
        let inserted = task::Entity::insert(row)
            .on_conflict(OnConflict::column(task::Column::Id).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await
            .map_err(StoreError::query(action))?;
        if inserted == 1 {
            let admitted = TaskEventData::Status {
                status: TaskStatus::Admitted,
                round: 0,
                reason: None,
            };
            append(&txn, &spec.id, &admitted).await?;
        }
        txn.commit().await.map_err(StoreError::query(action))?;
        Ok(inserted == 1)
    }

    /// Sets status/round/reason and updated_at, and appends the `status` event. Never moves a
    /// task out of a final status (`TaskStatus::is_final`), and a repeat of the stored
    /// status, round and reason (a retried activity) changes nothing: Ok without change then.
    pub async fn set_status(
        &self,
        task_id: &str,
        status: TaskStatus,
        round: u32,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let action = || format!("set task {task_id} to {status} in round {round}");
        let db_round = round_to_db(task_id, round)?;
        // Null-safe: `reason = x` alone is NULL on a NULL reason, and NOT NULL matches nothing.
        let same_reason = match reason {
            Some(reason) => Condition::all()
                .add(task::Column::Reason.is_not_null())
                .add(task::Column::Reason.eq(reason)),
            None => Condition::all().add(task::Column::Reason.is_null()),
        };
        let unchanged = Condition::all()
            .add(task::Column::Status.eq(status.as_str()))
            .add(task::Column::Round.eq(db_round))
            .add(same_reason);
        // The update comes first: on SQLite it takes the write lock before anything is read.
        let txn = self.db.begin().await.map_err(StoreError::query(&action))?;
        let changed = task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(status.as_str()))
            .col_expr(task::Column::Round, Expr::value(db_round))
            .col_expr(
                task::Column::Reason,
                Expr::value(reason.map(str::to_string)),
            )
            .col_expr(task::Column::UpdatedAt, Expr::value(now()))
            .filter(task::Column::Id.eq(task_id))
            .filter(task::Column::Status.is_not_in(final_statuses()))
            .filter(unchanged.not())
            .exec(&txn)
            .await
            .map_err(StoreError::query(&action))?
            .rows_affected;
        if changed == 0 {
            ensure_exists(&txn, task_id, &action).await?;
        } else {
            let event = TaskEventData::Status {
                status,
                round,
                reason: reason.map(str::to_string),
            };
            append(&txn, task_id, &event).await?;
        }
        txn.commit().await.map_err(StoreError::query(&action))
    }

    /// Final status, round, reason and report, and the final `status` event (the last event of
    /// the task). A task already final keeps its status, round and reason, and gets no second
    /// final event, but the report is stored if it has none yet.
    pub async fn finish(&self, request: &FinishRequest) -> Result<(), StoreError> {
        let task_id = request.task_id.as_str();
        if !request.status.is_final() {
            return Err(StoreError::NotFinal {
                task_id: task_id.to_string(),
                status: request.status,
            });
        }
        let action = || format!("finish task {task_id} as {}", request.status);
        let round = round_to_db(task_id, request.round)?;
        let at = now();
        let txn = self.db.begin().await.map_err(StoreError::query(&action))?;
        let finished = task::Entity::update_many()
            .col_expr(task::Column::Status, Expr::value(request.status.as_str()))
            .col_expr(task::Column::Round, Expr::value(round))
            .col_expr(task::Column::Reason, Expr::value(request.reason.clone()))
            .col_expr(task::Column::Report, Expr::value(request.report.clone()))
            .col_expr(task::Column::UpdatedAt, Expr::value(at))
            .filter(task::Column::Id.eq(task_id))
            .filter(task::Column::Status.is_not_in(final_statuses()))
            .exec(&txn)
            .await
            .map_err(StoreError::query(&action))?
            .rows_affected;
        if finished == 1 {
            let ended = TaskEventData::Status {
                status: request.status,
                round: request.round,
                reason: request.reason.clone(),
            };
            append(&txn, task_id, &ended).await?;
        } else {
            let reported = task::Entity::update_many()
                .col_expr(task::Column::Report, Expr::value(request.report.clone()))
                .col_expr(task::Column::UpdatedAt, Expr::value(at))
                .filter(task::Column::Id.eq(task_id))
                .filter(task::Column::Report.is_null())
                .exec(&txn)
                .await
                .map_err(StoreError::query(&action))?
                .rows_affected;
            if reported == 0 {
                ensure_exists(&txn, task_id, &action).await?;
            }
        }
        txn.commit().await.map_err(StoreError::query(&action))
    }
}

/// Tells "nothing to change" apart from "no such task" after an update matched no row.
async fn ensure_exists(
    db: &impl ConnectionTrait,
    task_id: &str,
    action: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    let found = task::Entity::find_by_id(task_id)
        .count(db)
        .await
        .map_err(StoreError::query(action))?;
    if found == 0 {
        return Err(StoreError::UnknownTask {
            task_id: task_id.to_string(),
        });
    }
    Ok(())
}
