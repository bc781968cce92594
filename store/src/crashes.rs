//! Crash groups: what each `CrashInvestigation` workflow recorded (counts, status, its task),
//! their latest occurrences, the per-service investigation slots of the rate limit, and reads
//! for the API; and the intake's outbox (`crash_outbox`, `crash_intake_groups`): occurrences
//! taken by `POST /v1/crashes` and not yet delivered to their workflow.
//!
//! Writes are idempotent: the group's counts are absolute values, occurrences are numbered
//! within their group, and a slot is keyed by group and investigation.

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use workflows::TaskStatus;
use workflows::crash_contracts::{
    ClaimOutcome, CrashGroup, CrashGroupStatus, CrashGroupUpdate, InvestigationClaim, LinkedTask,
    Occurrence, RecordedOccurrence,
};
use workflows::crash_investigation::CrashInvestigationInput;

use crate::columns::now;
use crate::entities::{crash_group, crash_investigation_slot, crash_occurrence, task};
use crate::{Store, StoreError};

/// A crash group as stored, with how its investigation task stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashGroupRecord {
    pub group: CrashGroup,
    pub updated_at: DateTime<Utc>,
    /// The status of `group.task_id` in the store (None until the task is admitted).
    pub task_status: Option<TaskStatus>,
}

/// Filters of the crash group listing; newest `last_seen` first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashGroupFilter {
    pub service: Option<String>,
    pub status: Option<CrashGroupStatus>,
    pub limit: u64,
    pub offset: u64,
}

impl Store {
    /// Upserts the group, inserts its new occurrences (each once), keeps the last
    /// `keep_occurrences` of them, and answers how the group's task stands.
    pub async fn record_crash_group(
        &self,
        update: &CrashGroupUpdate,
    ) -> Result<Option<LinkedTask>, StoreError> {
        let group = &update.group;
        let action = || format!("record crash group {}", group.id);
        let at = now();
        let row = crash_group::ActiveModel {
            id: Set(group.id.clone()),
            fingerprint: Set(group.fingerprint.clone()),
            service: Set(group.service.clone()),
            title: Set(group.title.clone()),
            language: Set(group.language.clone()),
            crash_type: Set(group.crash_type.clone()),
            first_seen: Set(from_millis(group.first_seen_ms)),
            last_seen: Set(from_millis(group.last_seen_ms)),
            count: Set(i64::try_from(group.count).unwrap_or(i64::MAX)),
            releases: Set(json_list(&group.releases)),
            environments: Set(json_list(&group.environments)),
            status: Set(group.status.as_str().to_string()),
            task_id: Set(group.task_id.clone()),
            investigations: Set(i32::try_from(group.investigations).unwrap_or(i32::MAX)),
            reason: Set(group.reason.clone()),
            updated_at: Set(at),
        };
        use crash_group::Column as G;
        let txn = self.db.begin().await.map_err(StoreError::query(action))?;
        crash_group::Entity::insert(row)
            .on_conflict(
                OnConflict::column(G::Id)
                    .update_columns([
                        G::Title,
                        G::FirstSeen,
                        G::LastSeen,
                        G::Count,
                        G::Releases,
                        G::Environments,
                        G::Status,
                        G::TaskId,
                        G::Investigations,
                        G::Reason,
                        G::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(StoreError::query(action))?;
        if !update.occurrences.is_empty() {
            insert_occurrences(&txn, &group.id, &update.occurrences)
                .await
                .map_err(StoreError::query(action))?;
            let oldest_kept = i64::try_from(group.count)
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::from(update.keep_occurrences.max(1)));
            crash_occurrence::Entity::delete_many()
                .filter(crash_occurrence::Column::GroupId.eq(group.id.as_str()))
                .filter(crash_occurrence::Column::Seq.lte(oldest_kept))
                .exec(&txn)
                .await
                .map_err(StoreError::query(action))?;
        }
        let linked = match &group.task_id {
            Some(task_id) => task::Entity::find_by_id(task_id.as_str())
                .one(&txn)
                .await
                .map_err(StoreError::query(action))?
                .and_then(|t| {
                    Some(LinkedTask {
                        status: TaskStatus::parse(&t.status)?,
                        updated_at_ms: t.updated_at.timestamp_millis(),
                    })
                }),
            None => None,
        };
        txn.commit().await.map_err(StoreError::query(action))?;
        Ok(linked)
    }

    /// Takes a free slot of the service's current window for this investigation, or answers
    /// when the next window opens. A claim repeated for the same group and investigation finds
    /// the slot it took; the primary key (service, window, slot) makes concurrent claims of
    /// different groups take different slots.
    pub async fn claim_investigation_slot(
        &self,
        claim: &InvestigationClaim,
    ) -> Result<ClaimOutcome, StoreError> {
        use crash_investigation_slot::Column as S;
        let action = || format!("claim an investigation slot for {}", claim.group_id);
        let investigation = i32::try_from(claim.investigation).unwrap_or(i32::MAX);
        let held = || async {
            crash_investigation_slot::Entity::find()
                .filter(S::GroupId.eq(claim.group_id.as_str()))
                .filter(S::Investigation.eq(investigation))
                .one(&self.db)
                .await
                .map_err(StoreError::query(action))
        };
        if held().await?.is_some() {
            return Ok(ClaimOutcome::Granted);
        }
        let at = now();
        let window = i64::try_from(claim.window_secs.max(1)).unwrap_or(i64::MAX);
        let secs = at.timestamp();
        let window_start = secs - secs.rem_euclid(window);
        for slot in 0..i32::try_from(claim.max_per_window).unwrap_or(i32::MAX) {
            let row = crash_investigation_slot::ActiveModel {
                service: Set(claim.service.clone()),
                window_start: Set(window_start),
                slot: Set(slot),
                group_id: Set(claim.group_id.clone()),
                investigation: Set(investigation),
                claimed_at: Set(at),
            };
            let inserted = crash_investigation_slot::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([S::Service, S::WindowStart, S::Slot])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await
                .map_err(StoreError::query(action))?;
            if inserted == 1 {
                return Ok(ClaimOutcome::Granted);
            }
        }
        let retry_after_secs = u64::try_from(window_start + window - secs)
            .unwrap_or(1)
            .max(1);
        Ok(ClaimOutcome::Limited { retry_after_secs })
    }

    /// Crash groups, most recently seen first.
    pub async fn crash_groups(
        &self,
        filter: &CrashGroupFilter,
    ) -> Result<Vec<CrashGroupRecord>, StoreError> {
        use crash_group::Column as G;
        let mut query = crash_group::Entity::find();
        if let Some(service) = &filter.service {
            query = query.filter(G::Service.eq(service.as_str()));
        }
        if let Some(status) = filter.status {
            query = query.filter(G::Status.eq(status.as_str()));
        }
        let rows = query
            .order_by_desc(G::LastSeen)
            .order_by_desc(G::Id)
            .limit(filter.limit)
            .offset(filter.offset)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| "list crash groups".to_string()))?;
        self.with_task_status(rows).await
    }

    /// One group by its id, or the most recently seen group of a fingerprint.
    pub async fn crash_group(&self, key: &str) -> Result<Option<CrashGroupRecord>, StoreError> {
        use crash_group::Column as G;
        use sea_orm::sea_query::ExprTrait;
        let row = crash_group::Entity::find()
            .filter(G::Id.eq(key).or(G::Fingerprint.eq(key)))
            .order_by_desc(G::LastSeen)
            .one(&self.db)
            .await
            .map_err(StoreError::query(|| format!("read crash group {key}")))?;
        Ok(self
            .with_task_status(row.into_iter().collect())
            .await?
            .pop())
    }

    /// The group's kept occurrences, newest first.
    pub async fn crash_occurrences(
        &self,
        group_id: &str,
        limit: u64,
    ) -> Result<Vec<RecordedOccurrence>, StoreError> {
        let rows = crash_occurrence::Entity::find()
            .filter(crash_occurrence::Column::GroupId.eq(group_id))
            .order_by_desc(crash_occurrence::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| {
                format!("read occurrences of {group_id}")
            }))?;
        Ok(rows
            .into_iter()
            .map(|r| RecordedOccurrence {
                seq: u64::try_from(r.seq).unwrap_or(0),
                received_at_ms: r.received_at.timestamp_millis(),
                release: r.release,
                environment: r.environment,
                host: r.host,
                message: r.message,
                task_id: r.task_id,
            })
            .collect())
    }

    async fn with_task_status(
        &self,
        rows: Vec<crash_group::Model>,
    ) -> Result<Vec<CrashGroupRecord>, StoreError> {
        let task_ids: Vec<String> = rows.iter().filter_map(|r| r.task_id.clone()).collect();
        let tasks = if task_ids.is_empty() {
            Vec::new()
        } else {
            task::Entity::find()
                .filter(task::Column::Id.is_in(task_ids))
                .all(&self.db)
                .await
                .map_err(StoreError::query(|| {
                    "read crash investigation tasks".to_string()
                }))?
        };
        rows.into_iter()
            .map(|row| {
                let task_status = row.task_id.as_deref().and_then(|id| {
                    tasks
                        .iter()
                        .find(|t| t.id == id)
                        .and_then(|t| TaskStatus::parse(&t.status))
                });
                Ok(CrashGroupRecord {
                    updated_at: row.updated_at,
                    task_status,
                    group: group_from_row(row)?,
                })
            })
            .collect()
    }
}

async fn insert_occurrences(
    db: &impl ConnectionTrait,
    group_id: &str,
    occurrences: &[RecordedOccurrence],
) -> Result<(), sea_orm::DbErr> {
    use crash_occurrence::Column as O;
    let rows = occurrences.iter().map(|o| crash_occurrence::ActiveModel {
        group_id: Set(group_id.to_string()),
        seq: Set(i64::try_from(o.seq).unwrap_or(i64::MAX)),
        received_at: Set(from_millis(o.received_at_ms)),
        release: Set(o.release.clone()),
        environment: Set(o.environment.clone()),
        host: Set(o.host.clone()),
        message: Set(o.message.clone()),
        task_id: Set(o.task_id.clone()),
        ..Default::default()
    });
    crash_occurrence::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([O::GroupId, O::Seq])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

fn group_from_row(row: crash_group::Model) -> Result<CrashGroup, StoreError> {
    let corrupt = |field: &'static str, value: String| StoreError::Corrupt {
        task_id: row.id.clone(),
        field,
        value,
    };
    let status = CrashGroupStatus::parse(&row.status)
        .ok_or_else(|| corrupt("crash group status", row.status.clone()))?;
    let list = |field: &'static str, text: &str| {
        serde_json::from_str::<Vec<String>>(text).map_err(|_| corrupt(field, text.to_string()))
    };
    Ok(CrashGroup {
        releases: list("releases", &row.releases)?,
        environments: list("environments", &row.environments)?,
        id: row.id,
        service: row.service,
        fingerprint: row.fingerprint,
        title: row.title,
        language: row.language,
        crash_type: row.crash_type,
        first_seen_ms: row.first_seen.timestamp_millis(),
        last_seen_ms: row.last_seen.timestamp_millis(),
        count: u64::try_from(row.count).unwrap_or(0),
        status,
        task_id: row.task_id,
        investigations: u32::try_from(row.investigations).unwrap_or(0),
        reason: row.reason,
    })
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_string())
}

/// The `crash_intake_groups` table: each crash group the intake has seen, with the
/// `CrashInvestigation` input a signal-with-start of it sends.
mod intake_group {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "crash_intake_groups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_id: String,
        #[sea_orm(column_type = "Text")]
        pub input: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `crash_outbox` table: occurrences taken and not yet delivered to their workflow.
mod outbox {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "crash_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub group_id: String,
        #[sea_orm(column_type = "Text")]
        pub occurrence: String,
        pub received_at: DateTimeUtc,
        pub batch_id: Option<String>,
        pub lease_owner: Option<String>,
        pub lease_until_ms: i64,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// One crash taken by the intake: its group, the occurrence, and the group's workflow input
/// when the group may be new or its input changed (None: the caller knows the group is
/// stored with this input already).
#[derive(Debug, Clone)]
pub struct TakenCrash<'a> {
    pub group_id: &'a str,
    pub input: Option<&'a CrashInvestigationInput>,
    pub occurrence: &'a Occurrence,
}

/// An occurrence waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxOccurrence {
    pub id: i64,
    pub group_id: String,
    /// Fixed when the row is first sent; a re-send uses it again (Temporal's request id).
    pub batch_id: Option<String>,
    pub occurrence: Occurrence,
}

impl Store {
    /// Takes crashes durably, all in one transaction (the intake's group commit): each
    /// occurrence becomes an outbox row, and each group with an input is inserted if absent
    /// (or its input updated). Answers, per crash, whether it started a new group.
    pub async fn take_crashes(&self, crashes: &[TakenCrash<'_>]) -> Result<Vec<bool>, StoreError> {
        use intake_group::Column as I;
        let action = || format!("take {} crash(es)", crashes.len());
        let at = now();
        let txn = self.db.begin().await.map_err(StoreError::query(action))?;
        let mut seen: Vec<&str> = Vec::new();
        let mut new = Vec::with_capacity(crashes.len());
        for crash in crashes {
            let input = match crash.input {
                Some(input) if !seen.contains(&crash.group_id) => input,
                _ => {
                    new.push(false);
                    continue;
                }
            };
            seen.push(crash.group_id);
            let text = serde_json::to_string(input).map_err(|e| StoreError::Corrupt {
                task_id: crash.group_id.to_string(),
                field: "crash investigation input",
                value: e.to_string(),
            })?;
            let inserted = intake_group::Entity::insert(intake_group::ActiveModel {
                group_id: Set(crash.group_id.to_string()),
                input: Set(text.clone()),
                created_at: Set(at),
                updated_at: Set(at),
            })
            .on_conflict(OnConflict::column(I::GroupId).do_nothing().to_owned())
            .exec_without_returning(&txn)
            .await
            .map_err(StoreError::query(action))?;
            if inserted == 0 {
                intake_group::Entity::update_many()
                    .col_expr(I::Input, sea_orm::sea_query::Expr::value(text.clone()))
                    .col_expr(I::UpdatedAt, sea_orm::sea_query::Expr::value(at))
                    .filter(I::GroupId.eq(crash.group_id))
                    .filter(I::Input.ne(text.as_str()))
                    .exec(&txn)
                    .await
                    .map_err(StoreError::query(action))?;
            }
            new.push(inserted == 1);
        }
        let mut rows = Vec::with_capacity(crashes.len());
        for crash in crashes {
            let occurrence =
                serde_json::to_string(crash.occurrence).map_err(|e| StoreError::Corrupt {
                    task_id: crash.group_id.to_string(),
                    field: "crash occurrence",
                    value: e.to_string(),
                })?;
            rows.push(outbox::ActiveModel {
                group_id: Set(crash.group_id.to_string()),
                occurrence: Set(occurrence),
                received_at: Set(from_millis(crash.occurrence.received_at_ms)),
                batch_id: Set(None),
                lease_owner: Set(None),
                lease_until_ms: Set(0),
                ..Default::default()
            });
        }
        // Bounded statements: each row binds 6 values, well inside both backends' limits.
        for chunk in rows.chunks(500) {
            outbox::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await
                .map_err(StoreError::query(action))?;
        }
        txn.commit().await.map_err(StoreError::query(action))?;
        Ok(new)
    }

    /// Leases up to `limit` outbox rows that no live lease holds (oldest first) to `owner`
    /// until `until_ms`, and answers them.
    pub async fn claim_crash_outbox(
        &self,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        limit: u64,
    ) -> Result<Vec<OutboxOccurrence>, StoreError> {
        use outbox::Column as O;
        use sea_orm::sea_query::{Expr, Query};
        let action = || "claim crash outbox rows".to_string();
        let free = Query::select()
            .column(O::Id)
            .from(outbox::Entity)
            .and_where(O::LeaseUntilMs.lt(now_ms))
            .order_by(O::Id, sea_orm::Order::Asc)
            .limit(limit)
            .to_owned();
        outbox::Entity::update_many()
            .col_expr(O::LeaseOwner, Expr::value(owner))
            .col_expr(O::LeaseUntilMs, Expr::value(until_ms))
            .filter(O::Id.in_subquery(free))
            .filter(O::LeaseUntilMs.lt(now_ms))
            .exec(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        let rows = outbox::Entity::find()
            .filter(O::LeaseOwner.eq(owner))
            .filter(O::LeaseUntilMs.eq(until_ms))
            .order_by_asc(O::Id)
            .all(&self.db)
            .await
            .map_err(StoreError::query(action))?;
        rows.into_iter()
            .map(|row| {
                let occurrence =
                    serde_json::from_str(&row.occurrence).map_err(|_| StoreError::Corrupt {
                        task_id: row.group_id.clone(),
                        field: "crash outbox occurrence",
                        value: row.occurrence.clone(),
                    })?;
                Ok(OutboxOccurrence {
                    id: row.id,
                    group_id: row.group_id,
                    batch_id: row.batch_id,
                    occurrence,
                })
            })
            .collect()
    }

    /// Fixes the batch of outbox rows before they are first sent: `(batch id, row ids)`.
    pub async fn assign_crash_batches(
        &self,
        batches: &[(String, Vec<i64>)],
    ) -> Result<(), StoreError> {
        use outbox::Column as O;
        if batches.is_empty() {
            return Ok(());
        }
        let action = || format!("assign {} crash batch(es)", batches.len());
        let txn = self.db.begin().await.map_err(StoreError::query(action))?;
        for (batch, ids) in batches {
            outbox::Entity::update_many()
                .col_expr(O::BatchId, sea_orm::sea_query::Expr::value(batch.as_str()))
                .filter(O::Id.is_in(ids.iter().copied()))
                .filter(O::BatchId.is_null())
                .exec(&txn)
                .await
                .map_err(StoreError::query(action))?;
        }
        txn.commit().await.map_err(StoreError::query(action))
    }

    /// The workflow input of each of these groups the intake has stored.
    pub async fn crash_intake_inputs(
        &self,
        group_ids: &[String],
    ) -> Result<Vec<(String, CrashInvestigationInput)>, StoreError> {
        use intake_group::Column as I;
        let rows = intake_group::Entity::find()
            .filter(I::GroupId.is_in(group_ids.iter().map(String::as_str)))
            .all(&self.db)
            .await
            .map_err(StoreError::query(|| "read crash intake groups".to_string()))?;
        rows.into_iter()
            .map(|row| {
                let input = serde_json::from_str(&row.input).map_err(|_| StoreError::Corrupt {
                    task_id: row.group_id.clone(),
                    field: "crash investigation input",
                    value: row.input.clone(),
                })?;
                Ok((row.group_id, input))
            })
            .collect()
    }

    /// Deletes delivered outbox rows.
    pub async fn crash_outbox_delivered(&self, ids: &[i64]) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            outbox::Entity::delete_many()
                .filter(outbox::Column::Id.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await
                .map_err(StoreError::query(|| {
                    "delete delivered crash outbox rows".to_string()
                }))?;
        }
        Ok(())
    }

    /// Gives up the lease of rows that could not be sent, so the next pass takes them again.
    pub async fn release_crash_outbox(&self, ids: &[i64]) -> Result<(), StoreError> {
        use outbox::Column as O;
        for chunk in ids.chunks(500) {
            outbox::Entity::update_many()
                .col_expr(
                    O::LeaseOwner,
                    sea_orm::sea_query::Expr::value(Option::<String>::None),
                )
                .col_expr(O::LeaseUntilMs, sea_orm::sea_query::Expr::value(0i64))
                .filter(O::Id.is_in(chunk.iter().copied()))
                .exec(&self.db)
                .await
                .map_err(StoreError::query(|| {
                    "release crash outbox rows".to_string()
                }))?;
        }
        Ok(())
    }

    /// Occurrences taken and not yet delivered.
    pub async fn crash_outbox_len(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        outbox::Entity::find()
            .count(&self.db)
            .await
            .map_err(StoreError::query(|| "count crash outbox rows".to_string()))
    }
}
