//! Beyond one machine: several `errand worker` processes (each its own host: its own data
//! directory and task queue) and one `errand api` against one Temporal server and PostgreSQL.
//! Tasks spread over the workers; a worker killed mid-run or drained with SIGTERM hands its
//! tasks over, and they continue elsewhere from what was pushed, without pushing anything twice.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::ensure;
use tests::{Cluster, DevServer, FIX_ADD, Postgres, Remote, agent, calculator_task};

/// Every task of the test, once, in review: one review request, the reviewed commit is the
/// branch head, the fix is on it, and no change was committed twice.
async fn assert_in_review_once(
    cluster: &Cluster,
    db: &Postgres,
    remote: &Remote,
    id: &str,
) -> anyhow::Result<()> {
    let task = cluster.errand.task(id).await?;
    let branch = format!("errand/{id}");
    let head = remote.git(&["rev-parse", &branch])?;
    ensure!(
        task["review"]["commit"] == head.trim(),
        "task {id}: the review is not of the branch head {head}: {task}"
    );
    let requests = db.query(&format!(
        "SELECT count(*) FROM review_requests WHERE task_id = '{id}'"
    ))?;
    ensure!(
        requests.trim() == "1",
        "task {id}: {requests} review requests"
    );
    ensure!(
        remote.show(&branch, "calc.sh")?.contains("a + b"),
        "task {id}: the fix is not on {branch}"
    );
    let (commits, changes) = remote.distinct_changes("main", &branch)?;
    ensure!(
        commits >= 1 && commits == changes,
        "task {id}: {commits} commits but {changes} distinct changes on {branch}: {:?}",
        remote.subjects("main", &branch)?
    );
    Ok(())
}

#[tokio::test]
async fn ten_tasks_spread_over_three_workers_survive_a_killed_one() -> anyhow::Result<()> {
    let temporal = DevServer::start()?;
    let db = Postgres::create()?;
    let mut cluster = Cluster::start(
        &temporal,
        &db.url,
        3,
        &[("ERRAND__WORKER__MAX_CONCURRENT_RUNS", "2")],
    )
    .await?;
    let (status, ready) = cluster.errand.call("GET", "/readyz", None, None).await?;
    ensure!(status == 200, "GET /readyz: {status} {ready}");

    for worker in &cluster.workers {
        tests::wait_for_async(Duration::from_secs(60), || async {
            worker
                .get("/readyz")
                .await
                .is_ok_and(|(status, _)| status == 200)
        })
        .await?;
        let (status, metrics) = worker.get("/metrics").await?;
        ensure!(
            status == 200
                && metrics.contains("errand_worker_runs_limit{")
                && metrics.contains("} 2\n"),
            "worker metrics: {status} {metrics}"
        );
    }

    let remote = Remote::calculator()?;
    let agent = agent(
        cluster.errand.data_dir.path(),
        "slow-fix.sh",
        &format!("echo started; sleep 3; {FIX_ADD}"),
    )?;
    let mut ids = Vec::new();
    for _ in 0..10 {
        let answer = cluster
            .errand
            .post_ok("/v1/tasks", calculator_task(&remote, &agent, 3), None)
            .await?;
        ids.push(answer["id"].as_str().unwrap().to_string());
    }

    // Kill a worker while its agent runs (it printed "started" and sleeps before fixing).
    let deadline = Instant::now() + Duration::from_secs(90);
    let (victim, victim_task) = loop {
        let found = ids.iter().find_map(|id| {
            cluster
                .workers
                .iter()
                .position(|w| w.agent_said(id, "started"))
                .map(|w| (w, id.clone()))
        });
        if let Some(found) = found {
            break found;
        }
        ensure!(Instant::now() < deadline, "no agent started within 90s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cluster.workers[victim].proc.kill_hard();
    let orphaned: Vec<String> = ids
        .iter()
        .filter(|id| cluster.workers[victim].ran_agent(id))
        .cloned()
        .collect();

    for id in &ids {
        cluster
            .errand
            .wait_for_status(id, "awaiting_review", Duration::from_secs(150))
            .await?;
    }
    for id in &ids {
        assert_in_review_once(&cluster, &db, &remote, id).await?;
    }
    let ran_agents: BTreeSet<usize> = ids
        .iter()
        .flat_map(|id| {
            let workers = &cluster.workers;
            (0..workers.len()).filter(move |w| workers[*w].ran_agent(id))
        })
        .collect();
    ensure!(
        ran_agents.len() > 1,
        "the agents all ran on one worker: {ran_agents:?}"
    );
    // The task whose agent was killed mid-run continued on another worker.
    for id in &orphaned {
        let survivors = (0..cluster.workers.len()).filter(|w| *w != victim);
        ensure!(
            survivors
                .into_iter()
                .any(|w| cluster.workers[w].ran_agent(id)),
            "task {id} of the killed worker never ran elsewhere"
        );
    }
    assert!(orphaned.contains(&victim_task));
    cluster
        .errand
        .check_replay(&victim_task, "worker-lost-relocated")
        .await
}

#[tokio::test]
async fn drained_worker_pushes_its_work_and_hands_the_task_over() -> anyhow::Result<()> {
    let temporal = DevServer::start()?;
    let db = Postgres::create()?;
    let mut cluster = Cluster::start(
        &temporal,
        &db.url,
        2,
        &[("ERRAND__WORKER__GRACEFUL_SHUTDOWN_SECS", "2")],
    )
    .await?;
    let remote = Remote::calculator()?;
    // The first run fixes, then outlives any grace period; a run that finds the fix (from the
    // drained worker's checkpoint) is done at once.
    let agent = agent(
        cluster.errand.data_dir.path(),
        "fix-then-linger.sh",
        &format!(
            "if grep -q 'a + b' calc.sh; then echo resumed; exit 0; fi\n\
             echo started; {FIX_ADD}; echo fixed; sleep 50"
        ),
    )?;
    let id = cluster
        .errand
        .post_ok("/v1/tasks", calculator_task(&remote, &agent, 3), None)
        .await?["id"]
        .as_str()
        .unwrap()
        .to_string();

    let deadline = Instant::now() + Duration::from_secs(90);
    let drained = loop {
        if let Some(w) = cluster
            .workers
            .iter()
            .position(|w| w.agent_said(&id, "fixed"))
        {
            break w;
        }
        ensure!(
            Instant::now() < deadline,
            "the agent did not fix within 90s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let started = Instant::now();
    // SIGTERM: the running round gets the 2s grace period, then its work is pushed and the
    // worker exits by itself.
    ensure!(
        cluster.workers[drained].proc.stop(Duration::from_secs(30)),
        "the drained worker did not exit by itself within 30s"
    );
    let drain_took = started.elapsed();

    cluster
        .errand
        .wait_for_status(&id, "awaiting_review", Duration::from_secs(120))
        .await?;
    assert_in_review_once(&cluster, &db, &remote, &id).await?;
    let other = 1 - drained;
    ensure!(
        cluster.workers[other].agent_said(&id, "resumed"),
        "the task did not continue on the other worker from the checkpoint"
    );
    let subjects = remote.subjects("main", &format!("errand/{id}"))?;
    ensure!(
        subjects.iter().any(|s| s.contains("worker draining")),
        "no checkpoint of the drained worker on the branch: {subjects:?}"
    );
    ensure!(
        drain_took < Duration::from_secs(20),
        "draining took {drain_took:?}"
    );
    cluster
        .errand
        .check_replay(&id, "worker-drained-handover")
        .await
}
