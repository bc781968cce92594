//! The review gate's records: the task's one review request and the decisions taken on it.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use workflows::contracts::{ReviewRecord, ReviewRequest};

use crate::columns::{now, round_to_db};
use crate::entities::{review_decision, review_request};
use crate::{Store, StoreError};

impl Store {
    /// Upsert the task's one review request: a later round updates commit, round and body,
    /// and it stays one row.
    pub async fn open_review(&self, request: &ReviewRequest) -> Result<(), StoreError> {
        let task_id = request.task_id.as_str();
        let at = now();
        let row = review_request::ActiveModel {
            task_id: Set(task_id.to_string()),
            branch: Set(request.branch.clone()),
            commit: Set(request.commit.clone()),
            round: Set(round_to_db(task_id, request.round)?),
            body: Set(request.report.clone()),
            created_at: Set(at),
            updated_at: Set(at),
        };
        use review_request::Column;
        let upsert = OnConflict::column(Column::TaskId)
            .update_columns([
                Column::Branch,
                Column::Commit,
                Column::Round,
                Column::Body,
                Column::UpdatedAt,
            ])
            .to_owned();
        review_request::Entity::insert(row)
            .on_conflict(upsert)
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::write_of(task_id, || {
                format!("open the review of task {task_id} round {}", request.round)
            }))?;
        Ok(())
    }

    /// Insert the decision for (task, round) if absent (idempotent: the first one stands).
    pub async fn record_review(&self, record: &ReviewRecord) -> Result<(), StoreError> {
        let task_id = record.task_id.as_str();
        let decision = &record.decision;
        let row = review_decision::ActiveModel {
            id: NotSet,
            task_id: Set(task_id.to_string()),
            round: Set(round_to_db(task_id, record.round)?),
            decision: Set(decision.decision.as_str().to_string()),
            reviewer: Set(decision.reviewer.clone()),
            comment: Set(decision.comment.clone()),
            created_at: Set(now()),
        };
        use review_decision::Column;
        review_decision::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([Column::TaskId, Column::Round])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::write_of(task_id, || {
                format!("record the review of task {task_id} round {}", record.round)
            }))?;
        Ok(())
    }

    /// Count of review requests for a task (0 or 1), used by tests and the API.
    pub async fn review_request_count(&self, task_id: &str) -> Result<u64, StoreError> {
        review_request::Entity::find()
            .filter(review_request::Column::TaskId.eq(task_id))
            .count(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("count the review requests of task {task_id}")
            }))
    }
}
