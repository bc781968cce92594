//! The schedule watcher: syncs the playbooks' schedules when the API starts (deleting those
//! the playbooks dropped), then watches
//! every Errand schedule and pauses one whose last N runs (since its last resume) failed or
//! ended incomplete, with a note naming them.
//!
//! Durable without state of its own: each pass recomputes the streak from Temporal (the
//! schedule's recent fires, N and the resume boundary in its action's input) and the store
//! (each fire's task), and pausing twice is harmless; after a restart, or on any replica, the
//! next pass sees the same and does the same.

use std::path::PathBuf;
use std::time::Duration;

use store::Store;
use temporalio_client::Client;

use super::{auto_pause_note, sync_playbooks, temporal, view};

/// How often the watcher looks; a failed run is paused for at most this long after it ends.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// How long to wait before trying the sync again when Temporal was not reachable.
const SYNC_RETRY: Duration = Duration::from_secs(5);

/// Starts the watcher on the runtime; it runs as long as the process.
pub fn spawn(client: Client, store: Store, playbooks_dir: PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match sync_playbooks(&client, &playbooks_dir).await {
                Ok(synced) => {
                    tracing::info!(
                        schedules = synced.synced,
                        deleted = synced.deleted.len(),
                        "playbook schedules synced"
                    );
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err.message, "cannot sync the playbook schedules; retrying");
                    tokio::time::sleep(SYNC_RETRY).await;
                }
            }
        }
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(err) = pass(&client, &store).await {
                tracing::debug!(error = %err.message, "schedule watch pass failed");
            }
        }
    })
}

/// One look at every schedule; answers the ids it paused.
pub async fn pass(client: &Client, store: &Store) -> Result<Vec<String>, crate::ApiError> {
    let mut paused = Vec::new();
    for id in temporal::list_ids(client).await? {
        let schedule = match view(client, store, &id).await {
            Ok(schedule) => schedule,
            // Deleted since the listing, or unreadable for now: the next pass looks again.
            Err(_) => continue,
        };
        let Some(n) = schedule.pause_after_failures else {
            continue;
        };
        if schedule.paused || schedule.consecutive_failures < n {
            continue;
        }
        let note = auto_pause_note(n, &schedule.recent_runs);
        temporal::pause(client, &id, &note).await?;
        tracing::warn!(schedule = %id, %note, "schedule auto-paused");
        paused.push(id);
    }
    Ok(paused)
}
