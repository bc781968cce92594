//! The `PlaybookSlots` workflow: at most N tasks of one playbook run at once, the others wait
//! in order of arrival. One long-lived workflow per playbook (`slots-<playbook>`) holds the
//! queue; an `AgentTask` asks for a slot (signal-with-start, by the `request_slot` activity),
//! waits for the `slot_granted` signal, and gives the slot back with a `release` signal when it
//! stops running (review reached, or ended). Deterministic, so the queue survives any crash.
//!
//! A task that vanished without releasing (terminated by hand) is dropped when its grant
//! cannot be delivered, and `release` of a task that holds nothing is a no-op, so duplicates
//! and races are harmless.

#![allow(unused_variables)]

use serde::{Deserialize, Serialize};
use temporalio_macros::{activity_definitions, workflow, workflow_methods};
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::{
    ContinueAsNewOptions, SignalWorkflowOptions, SyncWorkflowContext, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

use crate::agent_task::AgentTaskWorkflow;

/// The pinned workflow type name (never derived from the Rust identifier).
pub const PLAYBOOK_SLOTS_WORKFLOW: &str = "PlaybookSlots";
/// Grants handed out before the workflow continues as new with its queue.
const GRANTS_PER_RUN: u32 = 500;

/// The workflow id of a playbook's slots.
pub fn slots_workflow_id(playbook: &str) -> String {
    format!("slots-{playbook}")
}

/// The queue of one playbook: its input, and what continue-as-new carries. Lives in history:
/// additive changes only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotQueue {
    pub playbook: String,
    /// Tasks running now (holding a slot), in the order they got it.
    #[serde(default)]
    pub holders: Vec<String>,
    /// Tasks waiting for a slot, first come first.
    #[serde(default)]
    pub waiting: Vec<String>,
    /// How many may run at once: the latest request's limit (the playbook's `max_running`).
    #[serde(default)]
    pub max_running: u32,
}

impl SlotQueue {
    pub fn new(playbook: impl Into<String>) -> Self {
        Self {
            playbook: playbook.into(),
            ..Self::default()
        }
    }

    /// Queues a task unless it already holds or awaits a slot.
    fn request(&mut self, request: SlotRequest) {
        self.max_running = request.max_running.max(1);
        if !self.holders.contains(&request.task_id) && !self.waiting.contains(&request.task_id) {
            self.waiting.push(request.task_id);
        }
    }

    fn release(&mut self, task_id: &str) {
        self.holders.retain(|t| t != task_id);
        self.waiting.retain(|t| t != task_id);
    }

    /// The next task to get a slot, moved to the holders.
    fn next_grant(&mut self) -> Option<String> {
        if self.waiting.is_empty() || self.holders.len() >= self.max_running as usize {
            return None;
        }
        let task = self.waiting.remove(0);
        self.holders.push(task.clone());
        Some(task)
    }
}

/// A task asks for a slot of its playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRequest {
    pub playbook: String,
    /// The task id, which is also its workflow id (where the grant is signalled).
    pub task_id: String,
    pub max_running: u32,
}

#[workflow]
pub struct PlaybookSlotsWorkflow {
    queue: SlotQueue,
}

#[workflow_methods]
impl PlaybookSlotsWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, queue: SlotQueue) -> Self {
        Self { queue }
    }

    #[run(name = "PlaybookSlots")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        let mut granted = 0u32;
        loop {
            while let Some(task) = ctx.state_mut(|s| s.queue.next_grant()) {
                let delivered = ctx
                    .external_workflow(task.clone(), None)
                    .signal(
                        AgentTaskWorkflow::slot_granted,
                        (),
                        SignalWorkflowOptions::default(),
                    )
                    .await;
                if delivered.is_err() {
                    // The task is gone (it ended or was terminated): its slot is free again.
                    ctx.state_mut(|s| s.queue.release(&task));
                }
                granted += 1;
            }
            if granted >= GRANTS_PER_RUN || ctx.continue_as_new_suggested() {
                let queue = ctx.state(|s| s.queue.clone());
                match ctx.continue_as_new(queue, ContinueAsNewOptions::default())? {}
            }
            ctx.wait_condition(|s| {
                !s.queue.waiting.is_empty() && s.queue.holders.len() < s.queue.max_running as usize
            })
            .await?;
        }
    }

    /// A task asks for a slot (the first one through signal-with-start).
    #[signal(name = "acquire")]
    pub fn acquire(&mut self, _ctx: &mut SyncWorkflowContext<Self>, request: SlotRequest) {
        self.queue.request(request);
    }

    /// A task stopped running, or gave up waiting.
    #[signal(name = "release")]
    pub fn release(&mut self, _ctx: &mut SyncWorkflowContext<Self>, task_id: String) {
        self.queue.release(&task_id);
    }

    #[query(name = "queue")]
    pub fn queue(&self, _ctx: &WorkflowContextView) -> SlotQueue {
        self.queue.clone()
    }
}

/// The activity that asks for a slot: it starts the playbook's `PlaybookSlots` workflow if it
/// is not running and delivers the request to it (a workflow cannot signal-with-start).
pub struct SlotActivities;

#[activity_definitions]
impl SlotActivities {
    #[activity(name = "request_slot")]
    pub fn request_slot(request: SlotRequest) -> Result<(), ActivityError> {
        unimplemented!()
    }
}

/// The definition markers (`slot_definitions::RequestSlot`) implementations link to.
pub mod slot_definitions {
    pub use super::slot_activities::*;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(queue: &mut SlotQueue, task: &str, max: u32) {
        queue.request(SlotRequest {
            playbook: "p".into(),
            task_id: task.into(),
            max_running: max,
        });
    }

    #[test]
    fn grants_in_order_up_to_the_limit() {
        let mut queue = SlotQueue::new("p");
        for task in ["a", "b", "c", "b"] {
            ask(&mut queue, task, 2);
        }
        assert_eq!(queue.waiting, ["a", "b", "c"], "a repeated request keeps its place");
        assert_eq!(queue.next_grant().as_deref(), Some("a"));
        assert_eq!(queue.next_grant().as_deref(), Some("b"));
        assert_eq!(queue.next_grant(), None, "two running: c waits");
        queue.release("a");
        assert_eq!(queue.next_grant().as_deref(), Some("c"));
        ask(&mut queue, "c", 2);
        assert!(queue.waiting.is_empty(), "a holder asking again is not queued twice");
    }

    #[test]
    fn release_of_a_waiting_or_unknown_task_frees_nothing_else() {
        let mut queue = SlotQueue::new("p");
        ask(&mut queue, "a", 1);
        ask(&mut queue, "b", 1);
        assert_eq!(queue.next_grant().as_deref(), Some("a"));
        queue.release("b");
        queue.release("zzz");
        assert_eq!(queue.holders, ["a"]);
        assert!(queue.waiting.is_empty());
        assert_eq!(queue.next_grant(), None);
    }

    #[test]
    fn a_limit_of_zero_still_lets_one_run() {
        let mut queue = SlotQueue::new("p");
        ask(&mut queue, "a", 0);
        assert_eq!(queue.next_grant().as_deref(), Some("a"));
    }
}
