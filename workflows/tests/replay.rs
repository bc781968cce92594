//! Replays every recorded `AgentTask` and `CrashInvestigation` (`crash_*.json`) history in `tests/histories/` against the current code:
//! a change that would break running or past tasks fails here (ARCHITECTURE.md, invariant 2).
//! Record new histories with `ERRAND_RECORD_HISTORIES=1 cargo test -p tests`.

use std::path::Path;

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::{AgentTaskWorkflow, CrashInvestigationWorkflow};

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

    let is_crash = |p: &std::path::PathBuf| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("crash_"))
    };
    assert!(
        files.iter().any(is_crash),
        "no recorded CrashInvestigation history (crash_*.json) in {}",
        dir.display()
    );

    let options = WorkflowReplayerOptions::new()
        .register_workflow::<AgentTaskWorkflow>()
        .unwrap()
        .register_workflow::<CrashInvestigationWorkflow>()
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
