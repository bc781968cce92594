//! GitHub webhook state: deliveries acted on (for de-duplication), PRs mapped to tasks, and
//! follow-up comments recorded against a task for its next round; and the write-back's state:
//! the issue a task was started from, and every comment or PR written for it.

use std::time::Duration;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::columns::now;
use crate::entities::{
    github_delivery, github_pull_request, github_task_origin, github_write, task_followup,
};
use crate::{Store, StoreError};

/// The GitHub issue a task was started from: where its reports are written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOrigin {
    pub task_id: String,
    /// `owner/name`.
    pub repo: String,
    pub issue_number: u64,
    pub issue_title: String,
    pub playbook: String,
}

/// What was written on GitHub for a task; each at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GithubWriteKind {
    /// The comment on the issue that the task started, with its link.
    Acknowledgement,
    /// The task's PR (its id is the PR's number).
    PullRequest,
    /// The PR's body replaced by the final report (its id is the PR's number).
    PullRequestBody,
    /// The comment on the issue with the final report.
    FinalReport,
}

impl GithubWriteKind {
    pub const ALL: [GithubWriteKind; 4] = [
        Self::Acknowledgement,
        Self::PullRequest,
        Self::PullRequestBody,
        Self::FinalReport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledgement => "acknowledgement",
            Self::PullRequest => "pull_request",
            Self::PullRequestBody => "pull_request_body",
            Self::FinalReport => "final_report",
        }
    }

    pub fn parse(kind: &str) -> Option<GithubWriteKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// A write recorded for a task: its kind and GitHub's id (a comment's id, a PR's number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GithubWrite {
    pub kind: GithubWriteKind,
    pub github_id: u64,
}

fn to_db(task_id: &str, field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        task_id: task_id.to_string(),
        field,
        value: value.to_string(),
    })
}

fn from_db(task_id: &str, field: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        task_id: task_id.to_string(),
        field,
        value: value.to_string(),
    })
}

fn origin(row: github_task_origin::Model) -> Result<TaskOrigin, StoreError> {
    Ok(TaskOrigin {
        issue_number: from_db(&row.task_id, "issue_number", row.issue_number)?,
        task_id: row.task_id,
        repo: row.repo,
        issue_title: row.issue_title,
        playbook: row.playbook,
    })
}

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

    /// Records the issue a task was started from, if absent; true if it was new. The task
    /// must be admitted (`UnknownTask` otherwise).
    pub async fn record_task_origin(&self, origin: &TaskOrigin) -> Result<bool, StoreError> {
        let task_id = origin.task_id.as_str();
        let action = || format!("record the GitHub origin of task {task_id}");
        let row = github_task_origin::ActiveModel {
            task_id: Set(task_id.to_string()),
            repo: Set(origin.repo.clone()),
            issue_number: Set(to_db(task_id, "issue_number", origin.issue_number)?),
            issue_title: Set(origin.issue_title.clone()),
            playbook: Set(origin.playbook.clone()),
            created_at: Set(now()),
            done_at: Set(None),
            claimed_by: Set(None),
            claimed_until: Set(None),
        };
        let inserted = github_task_origin::Entity::insert(row)
            .on_conflict(
                OnConflict::column(github_task_origin::Column::TaskId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::write_of(task_id, action))?;
        Ok(inserted == 1)
    }

    /// The issue the task was started from, if it was.
    pub async fn task_origin(&self, task_id: &str) -> Result<Option<TaskOrigin>, StoreError> {
        github_task_origin::Entity::find_by_id(task_id.to_string())
            .one(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the GitHub origin of task {task_id}")
            }))?
            .map(origin)
            .transpose()
    }

    /// The origins the reporter still follows (not done), by task id after `after` (a page's
    /// last), at most `limit`.
    pub async fn pending_task_origins(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<TaskOrigin>, StoreError> {
        let mut query =
            github_task_origin::Entity::find().filter(github_task_origin::Column::DoneAt.is_null());
        if let Some(after) = after {
            query = query.filter(github_task_origin::Column::TaskId.gt(after));
        }
        query
            .order_by_asc(github_task_origin::Column::TaskId)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                "list the GitHub origins not done".to_string()
            }))?
            .into_iter()
            .map(origin)
            .collect()
    }

    /// Claims the task's write-back for `holder` for `lease`, unless another holder's claim
    /// is still running or the origin is done: true if `holder` has it now (a holder may
    /// renew its own claim). One API replica at a time writes for a task.
    pub async fn claim_task_origin(
        &self,
        task_id: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let at = now();
        let until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        use github_task_origin::Column;
        let free = Condition::any()
            .add(Column::ClaimedUntil.is_null())
            .add(Column::ClaimedUntil.lt(at))
            .add(Column::ClaimedBy.eq(holder));
        let claimed = github_task_origin::Entity::update_many()
            .col_expr(Column::ClaimedBy, Expr::value(holder.to_string()))
            .col_expr(Column::ClaimedUntil, Expr::value(Some(until)))
            .filter(Column::TaskId.eq(task_id))
            .filter(Column::DoneAt.is_null())
            .filter(free)
            .exec(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("claim the GitHub write-back of task {task_id}")
            }))?
            .rows_affected;
        Ok(claimed == 1)
    }

    /// Gives up `holder`'s claim (another holder's claim stays).
    pub async fn release_task_origin(&self, task_id: &str, holder: &str) -> Result<(), StoreError> {
        use github_task_origin::Column;
        github_task_origin::Entity::update_many()
            .col_expr(Column::ClaimedBy, Expr::value(Option::<String>::None))
            .col_expr(
                Column::ClaimedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(Column::TaskId.eq(task_id))
            .filter(Column::ClaimedBy.eq(holder))
            .exec(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("release the GitHub write-back of task {task_id}")
            }))?;
        Ok(())
    }

    /// Marks the task's write-back done (the reporter stops following it); the first time
    /// stays. Call it only once every write is recorded.
    pub async fn finish_task_origin(&self, task_id: &str) -> Result<(), StoreError> {
        use github_task_origin::Column;
        github_task_origin::Entity::update_many()
            .col_expr(Column::DoneAt, Expr::value(Some(now())))
            .col_expr(Column::ClaimedBy, Expr::value(Option::<String>::None))
            .col_expr(
                Column::ClaimedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            )
            .filter(Column::TaskId.eq(task_id))
            .filter(Column::DoneAt.is_null())
            .exec(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("finish the GitHub write-back of task {task_id}")
            }))?;
        Ok(())
    }

    /// Records a write on GitHub for the task; true if new. The first record of a kind
    /// stays (a second, with another id, changes nothing and answers false).
    pub async fn record_github_write(
        &self,
        task_id: &str,
        kind: GithubWriteKind,
        github_id: u64,
    ) -> Result<bool, StoreError> {
        let action = || format!("record the GitHub {} of task {task_id}", kind.as_str());
        let row = github_write::ActiveModel {
            task_id: Set(task_id.to_string()),
            kind: Set(kind.as_str().to_string()),
            github_id: Set(to_db(task_id, "github_id", github_id)?),
            created_at: Set(now()),
            ..Default::default()
        };
        let inserted = github_write::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([github_write::Column::TaskId, github_write::Column::Kind])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::write_of(task_id, action))?;
        Ok(inserted == 1)
    }

    /// The writes recorded for the task, in the order they were recorded.
    pub async fn github_writes(&self, task_id: &str) -> Result<Vec<GithubWrite>, StoreError> {
        let rows = github_write::Entity::find()
            .filter(github_write::Column::TaskId.eq(task_id))
            .order_by_asc(github_write::Column::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read the GitHub writes of task {task_id}")
            }))?;
        rows.into_iter()
            .map(|row| {
                let kind =
                    GithubWriteKind::parse(&row.kind).ok_or_else(|| StoreError::Corrupt {
                        task_id: row.task_id.clone(),
                        field: "github write kind",
                        value: row.kind.clone(),
                    })?;
                Ok(GithubWrite {
                    kind,
                    github_id: from_db(&row.task_id, "github_id", row.github_id)?,
                })
            })
            .collect()
    }
}
