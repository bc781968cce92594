//! `errand demo`: the embedded default end to end, on a bundled example repository, with a
//! deterministic scripted agent and an approval the demo gives on the user's behalf.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use serde_json::json;

use crate::api_client::ApiClient;
use crate::commands::{print_task, watch};
use crate::serve::{Temporal, run_both};
use crate::settings::Settings;

const EXAMPLE: &[(&str, &str)] = &[
    ("calc.sh", include_str!("../../examples/calculator/calc.sh")),
    ("test.sh", include_str!("../../examples/calculator/test.sh")),
    (
        "README.md",
        include_str!("../../examples/calculator/README.md"),
    ),
];
const SCRIPTED_AGENT: &str = include_str!("../../examples/agents/scripted-fix.sh");

pub async fn demo(mut settings: Settings) -> anyhow::Result<()> {
    let dir = settings.data_dir.join("demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    settings.data_dir = dir.clone();
    settings.database.url = None;
    settings.listen = "127.0.0.1:0".parse()?;

    let remote = example_remote(&dir).context("cannot create the example repository")?;
    let agent = dir.join("scripted-fix.sh");
    std::fs::write(&agent, SCRIPTED_AGENT)?;
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;

    println!(
        "Errand demo: the embedded default end to end ({})",
        dir.display()
    );
    println!(
        "  example repository: {} (bare; `sh test.sh` fails)",
        remote.display()
    );
    println!("  agent: SCRIPTED (deterministic, for the demo; no model is called)");
    let temporal = Temporal::attach_or_start(&settings, "demo").await?;
    let (url_tx, url_rx) = tokio::sync::oneshot::channel::<String>();
    let outcome = RefCell::new(None);
    let result = run_both(
        &settings,
        &temporal,
        |url| {
            let _ = url_tx.send(url.to_string());
        },
        async {
            let result = match url_rx.await {
                Ok(url) => drive(&url, temporal.ui_url.as_deref(), &remote, &agent).await,
                Err(_) => Err(anyhow::anyhow!("the API did not start")),
            };
            *outcome.borrow_mut() = Some(result);
        },
    )
    .await;
    temporal.stop().await?;
    result?;
    outcome.into_inner().context("the demo did not run")?
}

async fn drive(
    api_url: &str,
    ui_url: Option<&str>,
    remote: &Path,
    agent: &Path,
) -> anyhow::Result<()> {
    println!("  API: {api_url}");
    if let Some(ui) = ui_url {
        println!("  Temporal UI: {ui} (while the demo runs)");
    }
    let api = ApiClient::new(api_url);
    println!("\n1. Trigger the shipped playbook fix-failing-test");
    let body = json!({
        "repo": remote.display().to_string(),
        "inputs": {"test": "sh test.sh"},
        "agent": {"kind": "command", "command": [agent.display().to_string()]},
        "requester": "you",
    });
    let answer = api
        .post(
            "/v1/playbooks/fix-failing-test/runs",
            &body,
            Some("errand-demo"),
        )
        .await?;
    let id = answer["id"]
        .as_str()
        .context("no task id in the answer")?
        .to_string();

    println!(
        "\n2. Watch it run: agent, checks, next round with the failure as feedback, push, review"
    );
    let task = watch(&api, &id, |s| s == "awaiting_review").await?;
    ensure!(
        task["status"] == "awaiting_review",
        "the task ended {} instead of reaching review: {}",
        task["status"],
        task["reason"]
    );
    print_task(&task);

    println!(
        "\n3. Approve: DONE BY THE DEMO ON YOUR BEHALF (reviewer \"demo-reviewer\"); normally a person reviews"
    );
    api.post(
        &format!("/v1/tasks/{id}/review"),
        &json!({"decision": "approve", "reviewer": "demo-reviewer", "comment": "approved automatically by `errand demo`"}),
        None,
    )
    .await?;
    let task = watch(&api, &id, |_| false).await?;
    if task["status"] != "merged" {
        bail!(
            "the task ended {} instead of merged: {}",
            task["status"],
            task["reason"]
        );
    }

    println!("\n4. The fix is on the example repository's main branch:");
    println!("{}", git(remote, &["log", "--oneline", "--graph", "main"])?);
    println!("{}", git(remote, &["show", "main:calc.sh"])?);
    println!("Demo finished: task {id} merged.");
    Ok(())
}

/// A bare repository seeded with the example, as a local forge would hold it.
fn example_remote(dir: &Path) -> anyhow::Result<PathBuf> {
    let seed = dir.join("seed");
    std::fs::create_dir_all(&seed)?;
    for (name, content) in EXAMPLE {
        std::fs::write(seed.join(name), content)?;
    }
    git(&seed, &["init", "-q", "-b", "main"])?;
    git(&seed, &["add", "."])?;
    git(
        &seed,
        &[
            "-c",
            "user.name=Errand demo",
            "-c",
            "user.email=demo@errand.invalid",
            "commit",
            "-q",
            "-m",
            "calculator with a failing test",
        ],
    )?;
    let remote = dir.join("calculator.git");
    git(dir, &["clone", "-q", "--bare", "seed", "calculator.git"])?;
    std::fs::remove_dir_all(&seed)?;
    Ok(remote)
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(args)
        .output()
        .context("cannot run git")?;
    ensure!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
