//! Replays every recorded history in `tests/histories/` (`AgentTask`, `CrashInvestigation`,
//! `ScheduledTask`, `PlaybookSlots`) against the current code:
//! a change that would break running or past tasks fails here (ARCHITECTURE.md, invariant 2).
//! Record new histories with `ERRAND_RECORD_HISTORIES=1 cargo test -p tests`.

use std::path::Path;

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::{
    AGENT_TASK_WORKFLOW, AgentTaskWorkflow, CRASH_INVESTIGATION_WORKFLOW,
    CrashInvestigationWorkflow, PLAYBOOK_SLOTS_WORKFLOW, PlaybookSlotsWorkflow,
    SCHEDULED_TASK_WORKFLOW, ScheduledTaskWorkflow,
};

#[tokio::test]
async fn recorded_histories_replay_without_nondeterminism() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/histories exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no recorded histories in {}",
        dir.display()
    );

    // Every workflow Errand runs has at least one recorded history.
    let types: Vec<String> = files
        .iter()
        .map(|file| workflow_type(&std::fs::read(file).unwrap()))
        .collect();
    for name in [
        AGENT_TASK_WORKFLOW,
        CRASH_INVESTIGATION_WORKFLOW,
        SCHEDULED_TASK_WORKFLOW,
        PLAYBOOK_SLOTS_WORKFLOW,
    ] {
        assert!(
            types.iter().any(|t| t == name),
            "no recorded {name} history in {}",
            dir.display()
        );
    }

    let options = WorkflowReplayerOptions::new()
        .register_workflow::<AgentTaskWorkflow>()
        .unwrap()
        .register_workflow::<CrashInvestigationWorkflow>()
        .unwrap()
        .register_workflow::<ScheduledTaskWorkflow>()
        .unwrap()
        .register_workflow::<PlaybookSlotsWorkflow>()
        .unwrap()
        .build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    for file in files {
        let history = WorkflowHistory::from_json(&std::fs::read(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        replayer
            .replay_workflow(history)
            .await
            .unwrap_or_else(|e| panic!("{} does not replay: {e}", file.display()));
    }
}

/// The workflow type a recorded history (JSON, as `errand export-history` writes it) is of.
fn workflow_type(json: &[u8]) -> String {
    let history: serde_json::Value = serde_json::from_slice(json).unwrap();
    history["events"][0]["attributes"]["WorkflowExecutionStartedEventAttributes"]["workflow_type"]
        ["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
