//! GitHub webhook state: deliveries acted on (for de-duplication), PRs mapped to tasks, and
//! follow-up comments recorded against a task for its next round.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::columns::now;
use crate::entities::{github_delivery, github_pull_request, task_followup};
use crate::{Store, StoreError};

/// A comment recorded for a task's next round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followup {
    pub task_id: String,
    pub delivery_id: String,
    pub author: String,
    pub body: String,
}

impl Store {
    /// Whether this delivery was acted on before.
    pub async fn delivery_seen(&self, delivery_id: &str) -> Result<bool, StoreError> {
        let found = github_delivery::Entity::find_by_id(delivery_id.to_string())
            .one(&self.db)
            .await
            .map_err(StoreError::query(|| format!("read delivery {delivery_id}")))?;
        Ok(found.is_some())
    }

    /// Records a delivery as acted on; true if it was new (a concurrent duplicate loses).
    pub async fn record_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let row = github_delivery::ActiveModel {
            delivery_id: Set(delivery_id.to_string()),
            event: Set(event.to_string()),
            outcome: Set(outcome.to_string()),
            received_at: Set(now()),
        };
        let inserted = github_delivery::Entity::insert(row)
            .on_conflict(
                OnConflict::column(github_delivery::Column::DeliveryId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("record delivery {delivery_id}")
            }))?;
        Ok(inserted == 1)
    }

    /// Maps PR `number` of `repo` to a task; the first mapping stays.
    pub async fn map_pull_request(
        &self,
        repo: &str,
        number: u64,
        task_id: &str,
    ) -> Result<(), StoreError> {
        let row = github_pull_request::ActiveModel {
            repo: Set(repo.to_string()),
            number: Set(number as i64),
            task_id: Set(task_id.to_string()),
            created_at: Set(now()),
            ..Default::default()
        };
        github_pull_request::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    github_pull_request::Column::Repo,
                    github_pull_request::Column::Number,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("map {repo}#{number} to {task_id}")
            }))?;
        Ok(())
    }

    /// The task PR `number` of `repo` is mapped to.
    pub async fn pull_request_task(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Option<String>, StoreError> {
        let found = github_pull_request::Entity::find()
            .filter(github_pull_request::Column::Repo.eq(repo))
            .filter(github_pull_request::Column::Number.eq(number as i64))
            .one(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the task of {repo}#{number}")
            }))?;
        Ok(found.map(|row| row.task_id))
    }

    /// Records a follow-up for the task's next round; once per delivery.
    pub async fn record_followup(&self, followup: &Followup) -> Result<bool, StoreError> {
        let row = task_followup::ActiveModel {
            task_id: Set(followup.task_id.clone()),
            delivery_id: Set(followup.delivery_id.clone()),
            author: Set(followup.author.clone()),
            body: Set(followup.body.clone()),
            created_at: Set(now()),
            ..Default::default()
        };
        let inserted = task_followup::Entity::insert(row)
            .on_conflict(
                OnConflict::column(task_followup::Column::DeliveryId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("record a follow-up of task {}", followup.task_id)
            }))?;
        Ok(inserted == 1)
    }

    /// A task's follow-ups, oldest first.
    pub async fn followups(&self, task_id: &str) -> Result<Vec<Followup>, StoreError> {
        let rows = task_followup::Entity::find()
            .filter(task_followup::Column::TaskId.eq(task_id))
            .order_by_asc(task_followup::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the follow-ups of task {task_id}")
            }))?;
        Ok(rows
            .into_iter()
            .map(|row| Followup {
                task_id: row.task_id,
                delivery_id: row.delivery_id,
                author: row.author,
                body: row.body,
            })
            .collect())
    }
}
