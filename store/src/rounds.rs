//! Recording what happened in a round: the agent run and the check results.
//!
//! Both writes are idempotent, because an activity that recorded and then failed is retried.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait,
};
use workflows::contracts::{AgentRun, CheckResult};

use crate::columns::{agent_exit_to_db, millis_to_db, round_to_db};
use crate::entities::{check_result, round as round_entity};
use crate::event_log::append_unless_repeated;
use crate::events::{CheckOutcome, TaskEventData};
use crate::{Store, StoreError};

impl Store {
    /// Upsert the round's agent run (idempotent: a retry overwrites the same row).
    pub async fn record_agent_run(
        &self,
        task_id: &str,
        round: u32,
        run: &AgentRun,
    ) -> Result<(), StoreError> {
        let (exit, exit_code) = agent_exit_to_db(run.exit);
        let row = round_entity::ActiveModel {
            task_id: Set(task_id.to_string()),
            round: Set(round_to_db(task_id, round)?),
            agent_exit: Set(exit.to_string()),
            agent_exit_code: Set(exit_code),
            agent_duration_ms: Set(millis_to_db(task_id, run.duration_ms)?),
            agent_output_tail: Set(run.output_tail.clone()),
            agent_log_path: Set(run.log_path.clone()),
        };
        use round_entity::Column;
        let upsert = OnConflict::columns([Column::TaskId, Column::Round])
            .update_columns([
                Column::AgentExit,
                Column::AgentExitCode,
                Column::AgentDurationMs,
                Column::AgentOutputTail,
                Column::AgentLogPath,
            ])
            .to_owned();
        round_entity::Entity::insert(row)
            .on_conflict(upsert)
            .exec_without_returning(&self.db)
            .await
            .map_err(StoreError::write_of(task_id, || {
                format!("record the agent run of task {task_id} round {round}")
            }))?;
        Ok(())
    }

    /// Replace the round's check results (idempotent), with a `checks` event unless a retry
    /// found the same results.
    pub async fn record_checks(
        &self,
        task_id: &str,
        round: u32,
        checks: &[CheckResult],
    ) -> Result<(), StoreError> {
        let action = || format!("record the checks of task {task_id} round {round}");
        let db_round = round_to_db(task_id, round)?;
        let rows = checks
            .iter()
            .zip(0..)
            .map(|(check, seq)| {
                Ok(check_result::ActiveModel {
                    id: NotSet,
                    task_id: Set(task_id.to_string()),
                    round: Set(db_round),
                    seq: Set(seq),
                    command: Set(check.command.clone()),
                    exit_code: Set(check.exit_code),
                    timed_out: Set(check.timed_out),
                    duration_ms: Set(millis_to_db(task_id, check.duration_ms)?),
                    output_tail: Set(check.output_tail.clone()),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        let txn = self.db.begin().await.map_err(StoreError::query(&action))?;
        check_result::Entity::delete_many()
            .filter(check_result::Column::TaskId.eq(task_id))
            .filter(check_result::Column::Round.eq(db_round))
            .exec(&txn)
            .await
            .map_err(StoreError::query(&action))?;
        if !rows.is_empty() {
            check_result::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await
                .map_err(StoreError::write_of(task_id, &action))?;
        }
        let event = TaskEventData::Checks {
            round,
            checks: checks.iter().map(CheckOutcome::from).collect(),
        };
        append_unless_repeated(&txn, task_id, &event).await?;
        txn.commit().await.map_err(StoreError::query(&action))
    }
}
