//! Durability: the worker process is killed with SIGKILL while the agent runs; a new worker
//! finishes the task with exactly one push and one review request.

use std::time::Duration;

use tests::{DevServer, Errand, FIX_ADD, Remote, agent, calculator_task};

#[tokio::test]
async fn killed_worker_loses_nothing_and_pushes_once() -> anyhow::Result<()> {
    let temporal = DevServer::start()?;
    let mut errand = Errand::split(&temporal).await?;
    let remote = Remote::calculator()?;
    let agent = agent(
        errand.data_dir.path(),
        "slow-fix.sh",
        &format!("echo started; sleep 4; {FIX_ADD}"),
    )?;
    let id = errand
        .post_ok("/v1/tasks", calculator_task(&remote, &agent, 3), None)
        .await?["id"]
        .as_str()
        .unwrap()
        .to_string();

    let log = errand.agent_log(&id, 1);
    tests::wait_for(Duration::from_secs(120), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("started"))
    })?;
    let worker = errand.processes.last_mut().unwrap();
    worker.kill_hard();
    assert_eq!(errand.task(&id).await?["status"], "running_agent");

    errand.start_worker(&temporal)?;
    let task = errand
        .wait_for_status(&id, "awaiting_review", Duration::from_secs(180))
        .await?;
    assert_eq!(task["round"], 1, "{task}");
    assert_eq!(
        remote.updates_of(&format!("errand/{id}"))?,
        1,
        "exactly one push"
    );
    assert_eq!(
        task["review"]["commit"],
        remote.git(&["rev-parse", &format!("errand/{id}")])?.trim()
    );
    assert!(
        remote
            .show(&format!("errand/{id}"), "calc.sh")?
            .contains("a + b")
    );
    errand.check_replay(&id, "worker-killed-mid-agent").await
}
