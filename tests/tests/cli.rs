//! The `errand` binary as people use it: client subcommands over the API, and `up` stopping
//! cleanly on Ctrl-C with its Temporal dev server.

use std::process::Command;
use std::time::Duration;

use anyhow::ensure;
use tests::{Errand, FIX_ADD, Remote, agent, errand_bin};

fn errand(api: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(errand_bin()).arg("--api").arg(api).args(args).output()?;
    ensure!(out.status.success(), "errand {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn client_subcommands_drive_a_task_to_merge() -> anyhow::Result<()> {
    let errand_up = Errand::up().await?;
    let api = errand_up.api.clone();
    let remote = Remote::calculator()?;
    let agent = agent(errand_up.data_dir.path(), "fix.sh", FIX_ADD)?;
    let repo = remote.path().display().to_string();

    let out = errand(
        &api,
        &["run", "--repo", &repo, "--instructions", "make the tests pass", "--check", "sh test.sh", "--requester", "alice", "--watch", "--", &agent],
    )?;
    let id = out.split_whitespace().nth(1).expect("`task <id> <status>` first").to_string();
    assert!(out.contains("awaiting_review"), "{out}");

    assert!(errand(&api, &["tasks", "--status", "awaiting_review"])?.contains(&id));
    let refused = Command::new(errand_bin()).args(["--api", &api, "review", &id, "--approve", "--reviewer", "alice"]).output()?;
    assert!(!refused.status.success(), "the requester cannot approve");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"));

    errand(&api, &["review", &id, "--approve", "--reviewer", "bob"])?;
    errand_up.wait_for_status(&id, "merged", Duration::from_secs(120)).await?;
    let shown = errand(&api, &["show", &id])?;
    assert!(shown.contains("status  merged"), "{shown}");
    assert!(errand(&api, &["show", &id, "--json"])?.contains("\"status\": \"merged\""));
    Ok(())
}

#[tokio::test]
async fn up_stops_on_ctrl_c_with_its_dev_server() -> anyhow::Result<()> {
    let mut errand_up = Errand::up().await?;
    let temporal = errand_up.temporal_address.clone();
    assert!(std::net::TcpStream::connect(&temporal).is_ok());
    let proc = &mut errand_up.processes[0];
    let pid = nix::unistd::Pid::from_raw(proc.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)?;
    let mut status = None;
    tests::wait_for(Duration::from_secs(60), || {
        status = proc.child.try_wait().ok().flatten();
        status.is_some()
    })?;
    assert!(status.unwrap().success(), "errand up exits 0 on Ctrl-C: {status:?}");
    tests::wait_for(Duration::from_secs(15), || std::net::TcpStream::connect(&temporal).is_err())?;
    Ok(())
}
