//! Activity options: timeouts and retries chosen per side effect.

use std::time::Duration;

use temporalio_sdk::{ActivityCancellationType, ActivityOptions, LocalActivityOptions};
use temporalio_workflow::RetryPolicy;

use crate::contracts::BAD_INPUT;
use crate::playbook::Retry;

/// Store writes and other quick, idempotent steps: retried patiently.
pub(super) fn short() -> ActivityOptions {
    options(Duration::from_secs(30), None, 50, &[])
}

/// `short` as a local activity (store writes under the local-store-writes patch); the input
/// is kept in the marker, so the task's timeline can say what was written.
pub(super) fn local_short() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry_policy(50, Duration::from_secs(1), &[]))
        .include_arguments_in_marker(true)
        .build()
}

/// The agent and the checks: heartbeating, cancelled with their whole process tree before the
/// workflow moves on, and re-run after a lost worker.
pub(super) fn long_running(budget_secs: u64) -> ActivityOptions {
    long_running_with(budget_secs, &Retry::default())
}

/// `long_running` with a playbook's retry policy.
pub(super) fn long_running_with(budget_secs: u64, retry: &Retry) -> ActivityOptions {
    let mut opts = with_retry(
        Duration::from_secs(budget_secs.saturating_add(120)),
        Some(Duration::from_secs(10)),
        retry.max_attempts.get(),
        Duration::from_secs(retry.initial_interval_secs.get()),
        &[BAD_INPUT],
    );
    opts.cancellation_type = ActivityCancellationType::WaitCancellationCompleted;
    opts
}

pub(super) fn options(
    start_to_close: Duration,
    heartbeat: Option<Duration>,
    attempts: u32,
    non_retryable: &[&str],
) -> ActivityOptions {
    with_retry(
        start_to_close,
        heartbeat,
        attempts,
        Duration::from_secs(1),
        non_retryable,
    )
}

fn with_retry(
    start_to_close: Duration,
    heartbeat: Option<Duration>,
    attempts: u32,
    initial_interval: Duration,
    non_retryable: &[&str],
) -> ActivityOptions {
    let mut opts = ActivityOptions::with_start_to_close_timeout(start_to_close)
        .retry_policy(retry_policy(attempts, initial_interval, non_retryable))
        .build();
    opts.heartbeat_timeout = heartbeat;
    opts
}

/// Exponential backoff from `initial_interval`, doubling up to 30 s (or the initial interval).
fn retry_policy(attempts: u32, initial_interval: Duration, non_retryable: &[&str]) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(initial_interval)
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(30).max(initial_interval))
        .maximum_attempts(attempts)
        .non_retryable_error_types(non_retryable.iter().copied())
        .build()
}
