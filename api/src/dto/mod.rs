//! The API's own request and response bodies: the HTTP contract, mapped from store rows and
//! workflow types so that neither leaks its internals (or changes the contract) by accident.

mod events;
mod history;
mod playbooks;
mod requests;
mod stats;
mod tasks;

pub use events::{CheckOutcomeView, TaskEventBody, TaskEventView};
pub use history::{
    HistoryStep, PolicyDecision, StepKind, StepOutcome, TaskHistory, WorkflowRun, WorkflowRunStatus,
};
pub use playbooks::{PlaybookSummary, PlaybookView};
pub use requests::{PlaybookRunRequest, TaskRequest};
pub use stats::{StatsGroup, TaskStats};
pub use tasks::{
    AgentExitKind, AgentRunView, CheckView, DecisionView, ReviewAccepted, ReviewView, RoundView,
    TaskDetail, TaskState, TaskSummary, temporal_ui_link,
};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What `GET /healthz` answers while the process serves requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}
