//! The review gate's records: the task's one review request and the decisions taken on it,
//! each with its event in the same transaction.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    TransactionTrait,
};
use workflows::contracts::{ReviewRecord, ReviewRequest};

use crate::columns::{now, round_to_db};
use crate::entities::{review_decision, review_request};
use crate::event_log::{append, append_unless_repeated};
use crate::events::TaskEventData;
use crate::{Store, StoreError};

impl Store {
    /// Upsert the task's one review request: a later round updates commit, round and body,
    /// and it stays one row. Appends a `review_requested` event unless a retry repeats it.
    pub async fn open_review(&self, request: &ReviewRequest) -> Result<(), StoreError> {
        let task_id = request.task_id.as_str();
        let action = || format!("open the review of task {task_id} round {}", request.round);
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
        let txn = self.db.begin().await.map_err(StoreError::query(action))?;
        review_request::Entity::insert(row)
            .on_conflict(upsert)
            .exec_without_returning(&txn)
            .await
            .map_err(StoreError::write_of(task_id, action))?;
        let event = TaskEventData::ReviewRequested {
            round: request.round,
            branch: request.branch.clone(),
            commit: request.commit.clone(),
        };
        append_unless_repeated(&txn, task_id, &event).await?;
        txn.commit().await.map_err(StoreError::query(action))
    }

    /// Insert the decision for (task, round) if absent (idempotent: the first one stands),
    /// with its `review` event.
    pub async fn record_review(&self, record: &ReviewRecord) -> Result<(), StoreError> {
        let task_id = record.task_id.as_str();
        let action = || format!("record the review of task {task_id} round {}", record.round);
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
        let txn = self.db.begin().await.map_err(StoreError::query(action))?;
        let inserted = review_decision::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([Column::TaskId, Column::Round])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(StoreError::write_of(task_id, action))?;
        if inserted == 1 {
            let event = TaskEventData::Review {
                round: record.round,
                decision: decision.decision,
                reviewer: decision.reviewer.clone(),
                comment: decision.comment.clone(),
            };
            append(&txn, task_id, &event).await?;
        }
        txn.commit().await.map_err(StoreError::query(action))
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
