//! The implementations of the crash activity contracts (`workflows::crash_contracts`): store
//! writes of crash groups and the per-service investigation slots. Both are idempotent.

use std::sync::Arc;

use store::Store;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use workflows::crash_contracts::{
    ClaimOutcome, CrashGroupRecorded, CrashGroupUpdate, InvestigationClaim, crash_definitions,
};

pub struct CrashActivitiesImpl {
    store: Store,
}

impl CrashActivitiesImpl {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[activities]
impl CrashActivitiesImpl {
    #[activity(definition = crash_definitions::RecordCrashGroup)]
    pub async fn record_crash_group(
        self: Arc<Self>,
        _ctx: ActivityContext,
        update: CrashGroupUpdate,
    ) -> Result<CrashGroupRecorded, ActivityError> {
        let task = self.store.record_crash_group(&update).await?;
        Ok(CrashGroupRecorded { task })
    }

    #[activity(definition = crash_definitions::ClaimInvestigation)]
    pub async fn claim_investigation(
        self: Arc<Self>,
        _ctx: ActivityContext,
        claim: InvestigationClaim,
    ) -> Result<ClaimOutcome, ActivityError> {
        let outcome = self.store.claim_investigation_slot(&claim).await?;
        if let ClaimOutcome::Limited { retry_after_secs } = &outcome {
            tracing::info!(group = %claim.group_id, service = %claim.service, retry_after_secs, "investigation rate-limited");
        }
        Ok(outcome)
    }
}
