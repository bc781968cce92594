//! Proves a sandbox works before any task uses it: a probe runs through the real launcher
//! with default limits and must show, from inside, a nonce from its environment, no
//! capabilities, no_new_privs, a seccomp filter and the agent's uid. A bwrap that ignores its
//! profile, a missing user namespace, an unwritable cgroup: each fails detection.

use std::path::PathBuf;
use std::time::Duration;

use super::cgroup::{CgroupLayout, RunCgroup};
use super::{Exit, Limits, Sandbox, SandboxSpec};

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the probe prints: the nonce, then three lines of /proc/self/status, then its uid.
const PROBE_SCRIPT: &str = r#"echo "errand-probe-$ERRAND_PROBE"
grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status | tr -d ' \t'
id -u"#;

/// Creates and removes a run cgroup with default limits.
pub(super) fn cgroups_work(layout: &CgroupLayout) -> Result<(), String> {
    let cgroup = RunCgroup::create(layout, &super::run_name(), &Limits::default())
        .map_err(|err| format!("cannot create a run cgroup ({}): {err}", layout.describe()))?;
    cgroup.remove().map_err(|err| err.to_string())
}

pub(super) async fn run(sandbox: &Sandbox) -> Result<(), String> {
    let scratch = ScratchDir::create().map_err(|err| format!("probe dir: {err}"))?;
    let nonce = scratch.nonce.clone();
    let workspace = scratch.path.join("workspace");
    std::fs::create_dir(&workspace).map_err(|err| format!("probe dir: {err}"))?;
    let limits = if sandbox.is_root() {
        Limits::default()
    } else {
        // An unprivileged worker cannot mount the size-limited workspace; spawn refuses a
        // capped run there, so probe what such a worker can run.
        Limits {
            workspace_write_bytes: None,
            ..Limits::default()
        }
    };
    let spec = SandboxSpec {
        workspace,
        inputs_dir: None,
        argv: vec!["sh".into(), "-c".into(), PROBE_SCRIPT.into()],
        env: vec![("ERRAND_PROBE".into(), nonce.clone())],
        timeout: PROBE_TIMEOUT,
        log_path: scratch.path.join("probe.log"),
        limits,
        network: None,
        model_gateway: None,
    };
    let outcome = sandbox
        .spawn(&spec)
        .map_err(|err| err.to_string())?
        .wait(std::future::pending())
        .await
        .map_err(|err| err.to_string())?;
    let expected = format!(
        "errand-probe-{nonce}\nCapEff:0000000000000000\nNoNewPrivs:1\nSeccomp:2\n{}\n",
        super::profile::SANDBOX_UID
    );
    if outcome.exit != Exit::Code(0) || outcome.output_tail != expected {
        return Err(format!(
            "probe ended with {:?}, output {:?}",
            outcome.exit,
            outcome.output_tail.trim()
        ));
    }
    Ok(())
}

/// A private temporary directory for the detection probe, removed on drop.
struct ScratchDir {
    path: PathBuf,
    nonce: String,
}

impl ScratchDir {
    fn create() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let nonce = super::run_name();
        let path = std::env::temp_dir().join(format!("errand-sandbox-probe-{nonce}"));
        // create (not create_all), so an existing path – perhaps planted – is an error.
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self { path, nonce })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
