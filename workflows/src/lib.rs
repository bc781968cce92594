//! Errand's deterministic core: domain types, the contracts of every workflow and activity,
//! pure policy, and the `AgentTask` workflow.
//!
//! Nothing here does IO, reads a clock, spawns or draws random numbers except through the
//! workflow context (ARCHITECTURE.md, invariant 1).

pub mod agent_task;
pub mod budget;
pub mod contracts;
pub mod cost;
pub mod crash;
pub mod crash_contracts;
pub mod crash_investigation;
pub mod playbook;
pub mod playbook_slots;
pub mod policy;
pub mod report;
pub mod scheduled_task;
pub mod task;

pub use agent_task::{AGENT_TASK_WORKFLOW, AgentTaskWorkflow};
pub use crash_investigation::{CRASH_INVESTIGATION_WORKFLOW, CrashInvestigationWorkflow};
pub use playbook_slots::{PLAYBOOK_SLOTS_WORKFLOW, PlaybookSlotsWorkflow};
pub use scheduled_task::{SCHEDULED_TASK_WORKFLOW, ScheduledTaskWorkflow};
pub use task::{AgentSpec, ReviewDecision, ReviewVerdict, TaskSpec, TaskStatus};

/// The task queue every worker polls for `AgentTask` workflows and their activities.
pub const TASK_QUEUE: &str = "errand";
