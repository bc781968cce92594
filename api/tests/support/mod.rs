//! Shared by the test binaries: real git repositories in temporary directories.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A bare repository `origin.git` under `root` with `main` and `x/refs/heads/dev` (a ref whose
/// tail looks like `dev`); returns its path.
pub fn bare_repo(root: &Path) -> String {
    let work = root.join("work");
    std::fs::create_dir(&work).unwrap();
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("README.md"), "hello\n").unwrap();
    git(&work, &["add", "README.md"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(&work, &["branch", "x/refs/heads/dev"]);
    git(root, &["clone", "-q", "--bare", "work", "origin.git"]);
    root.join("origin.git").to_str().unwrap().to_string()
}

/// A playbook that hands a GitHub issue to its `issue` input, routed by the label `bug`.
pub const TRIAGE_PLAYBOOK: &str = r#"name: triage
description: Fix what an issue reports.
outcome: The issue is resolved.
inputs:
  issue:
    description: The issue, as data.
procedure: |
  Resolve the issue quoted between the markers.
  <issue>
  {{issue}}
  </issue>
agent:
  kind: command
  command: ["/bin/true"]
verification:
  checks:
    - "true"
budget:
  max_rounds: 2
  time_per_round_secs: 60
triggers:
  github:
    labels: ["bug"]
    input: issue
"#;

/// A playbook with a `test` input, its check `sh test.sh`.
pub const FIX_TEST_PLAYBOOK: &str = "\
name: fix-test
description: fix a failing test
outcome: the test passes
inputs:
  test:
    description: the failing test
procedure: Fix {{test}}.
agent:
  kind: command
  command: [scripted-agent]
verification:
  checks: [sh test.sh]
budget:
  max_rounds: 4
  time_per_round_secs: 300
";

/// A Temporal client whose every call `service` answers (Temporal's API cannot be faked
/// otherwise without a server; what the API sends is what these tests check).
pub async fn fake_temporal(
    service: temporalio_client::callback_based::CallbackBasedGrpcService,
) -> temporalio_client::Client {
    use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
    let options = ConnectionOptions::new(Url::parse("http://temporal.invalid:7233").unwrap())
        .service_override(service)
        .dns_load_balancing(None)
        .build();
    let connection = Connection::connect(options).await.unwrap();
    Client::new(connection, ClientOptions::new("errand-test").build()).unwrap()
}

/// Serves `app` on a free port of 127.0.0.1 for the rest of the test; its address.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A real GitHub webhook payload from `tests/fixtures/github`.
pub fn github_fixture(name: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/github")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
