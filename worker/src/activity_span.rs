//! Every activity runs in a `step` span carrying the task id, the round and the step, so each
//! log line written while it runs (sandbox, git, egress, store) says which task it is about;
//! and each step's start and end are logged with its attempt and duration.

use std::any::Any;
use std::time::Instant;

use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::interceptors::{
    ActivityInboundInterceptor, ExecuteActivityInput, ExecuteActivityOutput, Next,
};
use tracing::Instrument;
use workflows::contracts::{
    AgentRunRequest, ChecksRequest, DiffRequest, FinishRequest, RedGreenRequest, ReviewRecord,
    ReviewRequest, StatusChange, VerificationRecord,
};

pub struct ActivitySpans;

impl ActivityInboundInterceptor for ActivitySpans {
    fn execute_activity<'a>(
        &'a self,
        input: ExecuteActivityInput,
        next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
    ) -> ExecuteActivityOutput<'a> {
        let info = input.activity_info();
        // Task workflows are started with the task id as their workflow id.
        let task_id = info.workflow_id.clone().unwrap_or_default();
        let step = info.activity_type.clone();
        let attempt = info.attempt;
        let round = round_of(&input);
        let span = tracing::info_span!("step", task_id = %task_id, round, step = %step, attempt);
        Box::pin(
            async move {
                let started = Instant::now();
                tracing::info!("step started");
                let result = next.run(input).await;
                let ms = started.elapsed().as_millis() as u64;
                match &result {
                    Ok(_) => tracing::info!(ms, "step finished"),
                    Err(ActivityError::Cancelled { .. }) => tracing::info!(ms, "step cancelled"),
                    Err(err) => tracing::warn!(ms, error = ?err, "step failed"),
                }
                result
            }
            .instrument(span),
        )
    }
}

/// The round an activity's input is about, for the inputs that name one.
fn round_of(input: &ExecuteActivityInput) -> Option<u32> {
    fn get<T: Any>(input: &ExecuteActivityInput, round: fn(&T) -> u32) -> Option<u32> {
        input.args_ref::<T>().map(round)
    }
    get::<AgentRunRequest>(input, |r| r.round)
        .or_else(|| get::<ChecksRequest>(input, |r| r.round))
        .or_else(|| get::<DiffRequest>(input, |r| r.round))
        .or_else(|| get::<RedGreenRequest>(input, |r| r.round))
        .or_else(|| get::<VerificationRecord>(input, |r| r.round))
        .or_else(|| get::<StatusChange>(input, |r| r.round))
        .or_else(|| get::<ReviewRequest>(input, |r| r.round))
        .or_else(|| get::<ReviewRecord>(input, |r| r.round))
        .or_else(|| get::<FinishRequest>(input, |r| r.round))
}
