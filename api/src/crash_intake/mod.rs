//! The crash intake behind `POST /v1/crashes`: a store outbox between the request and the
//! `CrashInvestigation` workflow. A request is answered once its crash is durably stored:
//! the writer (`writer.rs`) commits every crash that arrived meanwhile in one transaction
//! (group commit). The sender (`sender.rs`) takes the outbox rows, coalesces each group's into
//! batches of at most [`MAX_BATCH`], and delivers each batch with one signal-with-start (the
//! `occurrences` signal; the batch id is the request id, so a re-sent batch is signalled
//! once); rows are deleted only after their signal succeeded, and a restart sends what was
//! left. Where a crash goes when its request does not say is `settings.rs` (`[crashes]`).

mod sender;
mod settings;
mod writer;

use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{Notify, mpsc, oneshot};
use workflows::crash_contracts::Occurrence;
use workflows::crash_investigation::CrashInvestigationInput;

pub use settings::{CrashService, CrashSettings};

use crate::SharedState;
use crate::error::ApiError;
use sender::send_loop;
use writer::write_loop;

/// Occurrences in one signal, at most: well inside Temporal's payload limit (2 MB).
const MAX_BATCH: usize = 100;
/// Crashes written in one transaction, at most.
const MAX_WRITE: usize = 512;
/// Outbox rows one sender pass claims, at most.
const CLAIM_LIMIT: u64 = 5000;
/// How long a pass holds the rows it claimed: a sender that dies leaves them to another
/// (or to itself after a restart) this much later.
const LEASE_MS: i64 = 30_000;
/// Groups sent to at once within a pass.
const SEND_CONCURRENCY: usize = 32;
/// Passes of the sender start at most this often while there is work.
const PASS_INTERVAL: Duration = Duration::from_millis(500);
/// How often the sender looks for rows it was not woken for (another replica's, a restart's).
const POLL: Duration = Duration::from_secs(1);
/// The pause after a pass that could not send everything.
const RETRY: Duration = Duration::from_millis(500);
/// One signal-with-start, at most (well inside the lease).
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Groups whose stored input the intake remembers; past this it forgets them all.
const KNOWN_GROUPS: usize = 10_000;

/// A crash waiting for the intake's next transaction.
struct Pending {
    input: CrashInvestigationInput,
    occurrence: Occurrence,
    reply: oneshot::Sender<Result<bool, ApiError>>,
}

/// One API state's intake: the queue of its writer, and the wake-up of its sender.
struct Intake {
    state: Weak<crate::ApiState>,
    queue: mpsc::Sender<Pending>,
}

static INTAKES: LazyLock<Mutex<Vec<Arc<Intake>>>> = LazyLock::new(Mutex::default);

/// Starts the crash intake of an API state: its writer (the group commit of `POST
/// /v1/crashes`) and its outbox sender, which also delivers what an earlier process left
/// undelivered. Without a Tokio runtime it starts with the first crash instead.
pub(crate) fn start_intake(state: &SharedState) {
    if tokio::runtime::Handle::try_current().is_ok() {
        intake_of(state);
    }
}

fn intake_of(state: &SharedState) -> Arc<Intake> {
    let mut intakes = INTAKES.lock().unwrap_or_else(|e| e.into_inner());
    // A dropped state's writer ends with its queue.
    intakes.retain(|i| i.state.strong_count() > 0);
    if let Some(intake) = intakes
        .iter()
        .find(|i| std::ptr::eq(i.state.as_ptr(), Arc::as_ptr(state)))
    {
        return intake.clone();
    }
    let (queue, pending) = mpsc::channel(4 * MAX_WRITE);
    let wake = Arc::new(Notify::new());
    tokio::spawn(write_loop(state.store.clone(), pending, wake.clone()));
    tokio::spawn(send_loop(Arc::downgrade(state), wake));
    let intake = Arc::new(Intake {
        state: Arc::downgrade(state),
        queue,
    });
    intakes.push(intake.clone());
    intake
}

fn store_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the crash was not stored; send it again",
    )
}

/// Takes the crash durably (an outbox row; the group's input when it is new or changed) and
/// answers whether it started a new group. Its delivery to the workflow is the sender's.
pub(crate) async fn take(
    state: &SharedState,
    input: CrashInvestigationInput,
    occurrence: Occurrence,
) -> Result<bool, ApiError> {
    let intake = intake_of(state);
    let (reply, answer) = oneshot::channel();
    intake
        .queue
        .send(Pending {
            input,
            occurrence,
            reply,
        })
        .await
        .map_err(|_| store_unavailable())?;
    answer.await.unwrap_or_else(|_| Err(store_unavailable()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
