//! Crash groups: what each `CrashInvestigation` workflow recorded (counts, status, its task),
//! their latest occurrences, the per-service investigation slots of the rate limit, and reads
//! for the API.
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
    RecordedOccurrence,
};

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
        let retry_after_secs = u64::try_from(window_start + window - secs).unwrap_or(1).max(1);
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
        Ok(self.with_task_status(row.into_iter().collect()).await?.pop())
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
            .map_err(StoreError::query(|| format!("read occurrences of {group_id}")))?;
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
                .map_err(StoreError::query(|| "read crash investigation tasks".to_string()))?
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
