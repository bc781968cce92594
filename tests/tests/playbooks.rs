//! The shipped playbooks end to end, each with its scripted agent (`examples/agents/`) against
//! its fixture repository (`examples/`), all on one `errand up`: the harness enforces what the
//! playbooks declare (tamper detection, CI protection, red->green, merge policy), and the
//! `errand playbook` subcommands show and check them.

use std::process::Command;
use std::time::Duration;

use anyhow::ensure;
use serde_json::{Value, json};
use tests::{Errand, Remote, errand_bin, example_agent, repo_root};

const RUN: Duration = Duration::from_secs(240);

async fn run_playbook(
    errand: &Errand,
    playbook: &str,
    remote: &Remote,
    agent: &str,
    inputs: Value,
) -> anyhow::Result<String> {
    let body = json!({
        "repo": remote.path().display().to_string(),
        "inputs": inputs,
        "agent": {"kind": "command", "command": [example_agent(agent)]},
        "requester": "alice",
        "time_budget_secs": 60,
    });
    let answer = errand
        .post_ok(&format!("/v1/playbooks/{playbook}/runs"), body, None)
        .await?;
    Ok(answer["id"].as_str().unwrap_or_default().to_string())
}

/// The round's checks by command, with whether each passed.
fn checks(task: &Value, round: usize) -> Vec<(String, bool)> {
    task["rounds"][round]["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["command"].as_str().unwrap_or_default().to_string(),
                c["passed"] == json!(true),
            )
        })
        .collect()
}

fn has_check(task: &Value, round: usize, command: &str, passed: bool) -> bool {
    checks(task, round).contains(&(command.to_string(), passed))
}

async fn approve(errand: &Errand, id: &str) -> anyhow::Result<()> {
    let (status, body) = errand.review(id, "approve", "bob", None).await?;
    ensure!(
        (200..300).contains(&status),
        "approve {id}: {status} {body}"
    );
    Ok(())
}

#[tokio::test]
async fn shipped_playbooks_are_enforced_end_to_end() -> anyhow::Result<()> {
    let errand = Errand::up().await?;
    let calculator = Remote::calculator()?;
    let docs = Remote::example("docs-site")?;
    let divider = Remote::example("divider")?;
    let deps = Remote::example("pinned-deps")?;
    let flaky = Remote::example("flaky-greeter")?;
    let issue_repo = Remote::calculator()?;
    let cheat_repo = Remote::calculator()?;

    // All six run at once on the one worker.
    let fix = run_playbook(
        &errand,
        "fix-failing-test",
        &calculator,
        "cheat-then-fix.sh",
        json!({"test": "sh test.sh"}),
    )
    .await?;
    let refresh = run_playbook(
        &errand,
        "docs-refresh",
        &docs,
        "refresh-docs.sh",
        json!({"checks": "sh check-docs.sh"}),
    )
    .await?;
    let crash = "$ sh div.sh 1 0\ndiv.sh: 4: arithmetic expression: division by zero: \"a / b\"";
    let investigate = run_playbook(
        &errand,
        "investigate-crash",
        &divider,
        "investigate-div.sh",
        json!({"crash": crash}),
    )
    .await?;
    let bump = run_playbook(
        &errand,
        "dependency-bump",
        &deps,
        "bump-leftpad.sh",
        json!({"package": "leftpad", "version": "1.1.0"}),
    )
    .await?;
    let deflake = run_playbook(
        &errand,
        "fix-flaky-test",
        &flaky,
        "fix-flaky-greeter.sh",
        json!({"test": "sh test.sh", "runs": 20}),
    )
    .await?;
    let feature = run_playbook(
        &errand,
        "issue-to-pr",
        &issue_repo,
        "add-sub.sh",
        json!({"issue": "Add a sub operation to calc.sh", "checks": "test \"$(sh calc.sh sub 5 3)\" = 2"}),
    )
    .await?;

    // The same cheat with a single round: the findings end the task, the work is kept.
    let body = json!({
        "repo": cheat_repo.path().display().to_string(),
        "inputs": {"test": "sh test.sh"},
        "agent": {"kind": "command", "command": [example_agent("cheat-then-fix.sh")]},
        "requester": "alice",
        "max_rounds": 1,
    });
    let cheat = errand
        .post_ok("/v1/playbooks/fix-failing-test/runs", body, None)
        .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // docs-refresh: documentation only, small, green: merged without a reviewer.
    let task = errand.wait_for_status(&refresh, "merged", RUN).await?;
    let reason = task["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("without a reviewer") && reason.contains("auto_when held"),
        "{task}"
    );
    assert_eq!(
        task["decisions"].as_array().map(Vec::len),
        Some(0),
        "{task}"
    );
    assert!(docs.show("main", "docs/usage.md")?.contains("## count"));
    assert!(
        task["report"]
            .as_str()
            .unwrap_or_default()
            .contains("- merge decision: review.merge: auto_when held")
    );

    // fix-failing-test: round 1 skipped the test (checks green, finding), round 2 fixed the
    // code and proved it red->green.
    let task = errand.wait_for_status(&fix, "awaiting_review", RUN).await?;
    assert_eq!(task["round"], 2, "{task}");
    assert!(
        has_check(&task, 0, "sh test.sh", true),
        "the cheat passes the check: {task}"
    );
    assert!(
        has_check(&task, 0, "policy: test_skipped (test.sh)", false),
        "{task}"
    );
    assert!(has_check(&task, 1, "red-green: sh test.sh", true), "{task}");
    assert!(
        !calculator
            .show(&format!("errand/{fix}"), "test.sh")?
            .contains("exit 0\n#")
    );
    approve(&errand, &fix).await?;
    let task = errand.wait_for_status(&fix, "merged", RUN).await?;
    let report = task["report"].as_str().unwrap_or_default();
    assert!(
        report.contains("- **test_skipped**: test.sh: adds a skip marker `exit 0`"),
        "{report}"
    );
    assert!(report.contains("Red->green proof"), "{report}");
    assert!(
        report.contains("proven `sh test.sh`: fails (exit 1) on base"),
        "{report}"
    );
    assert!(calculator.show("main", "calc.sh")?.contains("a + b"));
    errand
        .check_replay(&fix, "playbook-tamper-then-red-green")
        .await?;
    errand
        .check_replay(&refresh, "playbook-docs-auto-merge")
        .await?;

    let task = errand.wait_for_status(&cheat, "incomplete", RUN).await?;
    assert_eq!(
        task["reason"],
        "round_limit: policy findings after 1 round(s): test_skipped (test.sh)"
    );
    let report = task["report"].as_str().unwrap_or_default();
    assert!(
        report.contains("The last round still broke these rules"),
        "{report}"
    );
    assert!(
        cheat_repo
            .show(&format!("errand/{cheat}"), "test.sh")?
            .contains("exit 0")
    );

    // investigate-crash: a reproduction test proven red->green; merge policy `never`, so an
    // approval ends the task without touching main.
    let task = errand
        .wait_for_status(&investigate, "awaiting_review", RUN)
        .await?;
    assert!(
        has_check(&task, 0, "red-green: sh tests/test_div_by_zero.sh", true),
        "{task}"
    );
    approve(&errand, &investigate).await?;
    let task = errand
        .wait_for_status(&investigate, "approved", RUN)
        .await?;
    assert!(
        task["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not merged: review.merge: never"),
        "{task}"
    );
    assert!(
        !divider.show("main", "div.sh")?.contains("division by zero"),
        "main is untouched"
    );
    assert!(
        divider
            .show(
                &format!("errand/{investigate}"),
                "tests/test_div_by_zero.sh"
            )
            .is_ok()
    );
    errand
        .check_replay(&investigate, "playbook-merge-never")
        .await?;

    // dependency-bump: dependencies may change, CI configuration may not.
    let task = errand
        .wait_for_status(&bump, "awaiting_review", RUN)
        .await?;
    assert_eq!(task["round"], 2, "{task}");
    assert!(
        has_check(
            &task,
            0,
            "policy: ci_config_changed (.github/workflows/ci.yml)",
            false
        ),
        "{task}"
    );
    approve(&errand, &bump).await?;
    errand.wait_for_status(&bump, "merged", RUN).await?;
    assert!(
        deps.show("main", "requirements.lock")?
            .contains("leftpad==1.1.0")
    );
    assert!(
        deps.show("main", ".github/workflows/ci.yml")?
            .contains("deps-leftpad-1.0.0")
    );

    // fix-flaky-test: twenty green runs in a row.
    let task = errand
        .wait_for_status(&deflake, "awaiting_review", RUN)
        .await?;
    assert_eq!(task["round"], 1, "{task}");
    let (status, _) = errand
        .review(&deflake, "reject", "bob", Some("we will remove greet.sh"))
        .await?;
    ensure!(status < 300, "reject: {status}");
    errand.wait_for_status(&deflake, "closed", RUN).await?;

    // issue-to-pr: the issue's change, merged on approval.
    errand
        .wait_for_status(&feature, "awaiting_review", RUN)
        .await?;
    approve(&errand, &feature).await?;
    errand.wait_for_status(&feature, "merged", RUN).await?;
    assert!(issue_repo.show("main", "calc.sh")?.contains("sub)"));

    // The API and the CLI show the playbooks.
    let (status, view) = errand
        .call("GET", "/v1/playbooks/fix-flaky-test", None, None)
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        view["inputs_schema"]["properties"]["runs"],
        json!({"type": "integer", "default": 20, "description": "How many runs in a row must pass."})
    );
    let listed = errand_cli(&errand.api, &["playbook", "list"])?;
    for name in [
        "dependency-bump",
        "docs-refresh",
        "fix-failing-test",
        "fix-flaky-test",
        "investigate-crash",
        "issue-to-pr",
    ] {
        assert!(listed.contains(name), "{listed}");
    }
    let shown = errand_cli(&errand.api, &["playbook", "show", "docs-refresh"])?;
    assert!(
        shown.contains("auto_when") && shown.contains("docs/**"),
        "{shown}"
    );
    Ok(())
}

#[test]
fn playbook_validate_checks_files_and_points_at_errors() -> anyhow::Result<()> {
    let dir = repo_root().join("playbooks");
    let out = Command::new(errand_bin())
        .arg("--playbooks-dir")
        .arg(&dir)
        .args(["playbook", "validate"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        6,
        "{stdout}"
    );

    let tmp = tempfile::tempdir()?;
    let bad = tmp.path().join("bump.yaml");
    let fix = std::fs::read_to_string(dir.join("dependency-bump.yaml"))?;
    std::fs::write(
        &bad,
        fix.replace("name: dependency-bump", "name: bump")
            .replace("max_rounds: 3", "max_rounds: three"),
    )?;
    let out = Command::new(errand_bin())
        .args(["playbook", "validate"])
        .arg(&bad)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let want = format!(
        "{}:28:15: budget.max_rounds: expected a positive integer, got \"three\"",
        bad.display()
    );
    assert!(stdout.contains(&want), "{stdout}");
    Ok(())
}

fn errand_cli(api: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(errand_bin())
        .arg("--api")
        .arg(api)
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "errand {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
