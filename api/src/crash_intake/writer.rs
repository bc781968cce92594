//! The group commit of the crash intake.

use std::collections::HashMap;
use std::sync::Arc;

use super::{KNOWN_GROUPS, MAX_WRITE, Pending, store_unavailable};
use tokio::sync::{Notify, mpsc};
use workflows::crash_investigation::CrashInvestigationInput;

/// Group commit: every crash that arrived while the previous transaction ran goes into the
/// next one, and each request is answered when the transaction holding its crash committed.
pub(super) async fn write_loop(
    store: store::Store,
    mut queue: mpsc::Receiver<Pending>,
    wake: Arc<Notify>,
) {
    // The input each group is stored with, as far as this process wrote it.
    let mut known: HashMap<String, CrashInvestigationInput> = HashMap::new();
    let mut batch = Vec::with_capacity(MAX_WRITE);
    while queue.recv_many(&mut batch, MAX_WRITE).await > 0 {
        let crashes: Vec<store::TakenCrash<'_>> = batch
            .iter()
            .map(|p: &Pending| store::TakenCrash {
                group_id: &p.input.group_id,
                input: (known.get(&p.input.group_id) != Some(&p.input)).then_some(&p.input),
                occurrence: &p.occurrence,
            })
            .collect();
        let started = std::time::Instant::now();
        let result = store.take_crashes(&crashes).await;
        drop(crashes);
        tracing::debug!(
            crashes = batch.len(),
            took_us = started.elapsed().as_micros() as u64,
            "crash intake commit"
        );
        match result {
            Ok(new) => {
                if known.len() > KNOWN_GROUPS {
                    known.clear();
                }
                for (pending, new) in batch.drain(..).zip(new) {
                    if known.get(&pending.input.group_id) != Some(&pending.input) {
                        known.insert(pending.input.group_id.clone(), pending.input);
                    }
                    let _ = pending.reply.send(Ok(new));
                }
                wake.notify_one();
            }
            Err(err) => {
                tracing::error!(error = %err, crashes = batch.len(), "cannot store crashes");
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(store_unavailable()));
                }
            }
        }
    }
}
