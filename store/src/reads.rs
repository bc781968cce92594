//! Reading tasks back: one task with its history, and the newest tasks for listings.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use workflows::TaskStatus;

use crate::entities::{check_result, review_decision, review_request, round, task};
use crate::rows::{self, ReviewDecisionRow, ReviewRequestRow, RoundRow, TaskRecord, TaskRow};
use crate::{Store, StoreError};

impl Store {
    /// The task with its rounds, review request and decisions; None if it was never admitted.
    pub async fn task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let action = || format!("read task {id}");
        let Some(model) = task::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(StoreError::query(&action))?
        else {
            return Ok(None);
        };
        let agent_runs = round::Entity::find()
            .filter(round::Column::TaskId.eq(id))
            .order_by_asc(round::Column::Round)
            .all(&self.db)
            .await
            .map_err(StoreError::query(&action))?;
        let checks = check_result::Entity::find()
            .filter(check_result::Column::TaskId.eq(id))
            .order_by_asc(check_result::Column::Round)
            .order_by_asc(check_result::Column::Seq)
            .all(&self.db)
            .await
            .map_err(StoreError::query(&action))?;
        let review = review_request::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .map_err(StoreError::query(&action))?;
        let decisions = review_decision::Entity::find()
            .filter(review_decision::Column::TaskId.eq(id))
            .order_by_asc(review_decision::Column::Round)
            .all(&self.db)
            .await
            .map_err(StoreError::query(&action))?;

        let mut rounds: BTreeMap<u32, RoundRow> = BTreeMap::new();
        for model in agent_runs {
            let (round, run) = rows::agent_run(model)?;
            round_row(&mut rounds, round).agent = Some(run);
        }
        for model in checks {
            let (round, check) = rows::check(model)?;
            round_row(&mut rounds, round).checks.push(check);
        }
        Ok(Some(TaskRecord {
            task: TaskRow::try_from(model)?,
            rounds: rounds.into_values().collect(),
            review: review.map(ReviewRequestRow::try_from).transpose()?,
            decisions: decisions
                .into_iter()
                .map(ReviewDecisionRow::try_from)
                .collect::<Result<_, _>>()?,
        }))
    }

    /// Newest first, optionally only those in one status, at most `limit`.
    pub async fn tasks(
        &self,
        status: Option<TaskStatus>,
        limit: u64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let mut query = task::Entity::find();
        if let Some(status) = status {
            query = query.filter(task::Column::Status.eq(status.as_str()));
        }
        query
            .order_by_desc(task::Column::CreatedAt)
            .order_by_desc(task::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| match status {
                Some(status) => format!("list {status} tasks"),
                None => "list tasks".to_string(),
            }))?
            .into_iter()
            .map(TaskRow::try_from)
            .collect()
    }
}

fn round_row(rounds: &mut BTreeMap<u32, RoundRow>, round: u32) -> &mut RoundRow {
    rounds.entry(round).or_insert_with(|| RoundRow {
        round,
        agent: None,
        checks: Vec::new(),
    })
}
