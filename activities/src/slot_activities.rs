//! The `request_slot` activity: a workflow cannot signal-with-start, so the task asks for a
//! slot of its playbook through this activity, which starts the playbook's `PlaybookSlots`
//! workflow if none runs and delivers the request to it (idempotent: a repeated request keeps
//! its place in the queue).

use std::sync::Arc;

use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use workflows::playbook_slots::{
    PlaybookSlotsWorkflow, SlotQueue, SlotRequest, slot_definitions, slots_workflow_id,
};
use workflows::TASK_QUEUE;

pub struct SlotActivitiesImpl {
    client: Client,
}

impl SlotActivitiesImpl {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[activities]
impl SlotActivitiesImpl {
    #[activity(definition = slot_definitions::RequestSlot)]
    pub async fn request_slot(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: SlotRequest,
    ) -> Result<(), ActivityError> {
        let id = slots_workflow_id(&request.playbook);
        let options = WorkflowStartOptions::new(TASK_QUEUE, id.clone())
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build();
        self.client
            .signal_with_start_workflow(
                PlaybookSlotsWorkflow::run,
                SlotQueue::new(request.playbook.clone()),
                PlaybookSlotsWorkflow::acquire,
                request,
                options,
            )
            .await
            .map_err(|err| std::io::Error::other(format!("cannot ask {id} for a slot: {err}")))?;
        Ok(())
    }
}
