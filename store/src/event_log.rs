//! Appending a task's events and reading them back in order.
//!
//! The store's own writes (status, checks, review) append their event in the same transaction
//! as the change, so a reader never sees one without the other; a retried write that changes
//! nothing appends nothing.

use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use workflows::TaskStatus;

use crate::columns::{now, status_from_db};
use crate::entities::{task, task_event};
use crate::events::{TaskEvent, TaskEventData};
use crate::{Store, StoreError};

impl Store {
    /// Appends an event to an admitted task (the worker's agent output goes this way).
    pub async fn append_event(
        &self,
        task_id: &str,
        data: &TaskEventData,
    ) -> Result<(), StoreError> {
        append(&self.db, task_id, data).await
    }

    /// The task's events with an id above `after` (0: from the start), oldest first, at most
    /// `limit`. Events of kinds this version does not know are left out.
    pub async fn events_since(
        &self,
        task_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<TaskEvent>, StoreError> {
        let models = task_event::Entity::find()
            .filter(task_event::Column::TaskId.eq(task_id))
            .filter(task_event::Column::Id.gt(after))
            .order_by_asc(task_event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the events of task {task_id} after {after}")
            }))?;
        let mut events = Vec::with_capacity(models.len());
        for model in models {
            events.extend(TaskEvent::from_model(model)?);
        }
        Ok(events)
    }

    /// Only the task's status (None if it was never admitted): cheap enough to poll, for
    /// followers of the events that must know when nothing more will come.
    pub async fn task_status(&self, task_id: &str) -> Result<Option<TaskStatus>, StoreError> {
        let status: Option<String> = task::Entity::find_by_id(task_id)
            .select_only()
            .column(task::Column::Status)
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the status of task {task_id}")
            }))?;
        status
            .map(|status| status_from_db(task_id, &status))
            .transpose()
    }
}

/// Appends one event on `db` (a transaction, or the pool).
pub(crate) async fn append(
    db: &impl ConnectionTrait,
    task_id: &str,
    data: &TaskEventData,
) -> Result<(), StoreError> {
    let kind = data.kind().as_str();
    let row = task_event::ActiveModel {
        id: NotSet,
        task_id: Set(task_id.to_string()),
        kind: Set(kind.to_string()),
        data: Set(data.to_column(task_id)?),
        created_at: Set(now()),
    };
    task_event::Entity::insert(row)
        .exec_without_returning(db)
        .await
        .map_err(StoreError::write_of(task_id, || {
            format!("append a {kind} event to task {task_id}")
        }))?;
    Ok(())
}

/// Appends the event unless the task's latest event of the same kind says the same: for
/// upserts and replacements, whose retry cannot tell "already done" from "done now".
pub(crate) async fn append_unless_repeated(
    db: &impl ConnectionTrait,
    task_id: &str,
    data: &TaskEventData,
) -> Result<(), StoreError> {
    let kind = data.kind().as_str();
    let column = data.to_column(task_id)?;
    let latest = task_event::Entity::find()
        .filter(task_event::Column::TaskId.eq(task_id))
        .filter(task_event::Column::Kind.eq(kind))
        .order_by_desc(task_event::Column::Id)
        .one(db)
        .await
        .map_err(StoreError::query(|| {
            format!("read the latest {kind} event of task {task_id}")
        }))?;
    if latest.is_some_and(|latest| latest.data == column) {
        return Ok(());
    }
    append(db, task_id, data).await
}
