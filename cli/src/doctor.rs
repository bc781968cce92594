//! `errand doctor`: what this host offers the sandbox, item by item, and whether tasks could
//! run here at all (the same probe a worker runs before it takes work). Exits non-zero when
//! they could not.

use activities::sandbox::cgroup::{CgroupLayout, RunCgroup};
use activities::sandbox::{Limits, Sandbox, Shim, support};

/// One line of the report.
enum Check {
    Ok(String),
    Warn(String),
    Fail(String),
}

fn print(name: &str, check: &Check) {
    let (mark, text) = match check {
        Check::Ok(text) => ("ok  ", text),
        Check::Warn(text) => ("warn", text),
        Check::Fail(text) => ("FAIL", text),
    };
    println!("{mark}  {name:<16} {text}");
}

pub async fn doctor() -> anyhow::Result<()> {
    println!("errand doctor: sandbox support on this host\n");
    let bwrap = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("bwrap"))
        .find(|path| path.is_file());
    let checks = [
        (
            "bwrap",
            match &bwrap {
                Some(path) => match support::bwrap_version(path) {
                    Ok(version) => Check::Ok(format!("{} ({version})", path.display())),
                    Err(err) => Check::Fail(format!("{}: {err}", path.display())),
                },
                None => {
                    Check::Fail("not found on PATH (Debian: apt-get install bubblewrap)".into())
                }
            },
        ),
        (
            "user namespaces",
            match support::user_namespaces() {
                Ok(text) => Check::Ok(text),
                Err(err) => Check::Fail(err),
            },
        ),
        ("privilege", privilege()),
        ("cgroups", cgroups()),
        (
            "seccomp",
            match support::seccomp() {
                Ok(text) => Check::Ok(text),
                Err(err) => Check::Fail(err),
            },
        ),
        (
            "landlock",
            match support::landlock_abi() {
                Ok(abi) => Check::Ok(format!(
                    "ABI {abi} (applied in the shim as defence in depth)"
                )),
                Err(err) => Check::Warn(format!("unavailable: {err}; bwrap stays the boundary")),
            },
        ),
        (
            "shim",
            match Shim::locate() {
                Some(shim) => Check::Ok(
                    format!("{} {}", shim.program.display(), shim.selector.join(" "))
                        .trim_end()
                        .to_owned(),
                ),
                None => Check::Warn("not found: no Landlock and no egress allowlist".into()),
            },
        ),
    ];
    for (name, check) in &checks {
        print(name, check);
    }
    println!();
    match Sandbox::detect().await {
        Ok(sandbox) => {
            let mode = if sandbox.is_root() {
                "per-run uids, size-limited workspaces"
            } else {
                "the worker's own uid, no workspace cap"
            };
            print(
                "sandbox",
                &Check::Ok(format!("the full probe ran: tasks can run here ({mode})")),
            );
            Ok(())
        }
        Err(err) => {
            print("sandbox", &Check::Fail(format!("{err}")));
            anyhow::bail!("tasks could not run on this host: {err}")
        }
    }
}

fn privilege() -> Check {
    if support::is_root() {
        Check::Ok(
            "root: each run gets its own unprivileged uid and a size-limited workspace".into(),
        )
    } else {
        Check::Warn(
            "not root: runs keep this uid and workspace writes cannot be capped \
             (tasks need limits.workspace_write_bytes = None)"
                .into(),
        )
    }
}

/// Where run cgroups would go, and whether one can actually be made there.
fn cgroups() -> Check {
    let layout = match CgroupLayout::probe() {
        Ok(layout) => layout,
        Err(err) => return Check::Fail(format!("cannot read this process's cgroups: {err}")),
    };
    let name = format!("run-{}-doctor", std::process::id());
    match RunCgroup::create(&layout, &name, &Limits::default()) {
        Ok(run) => match run.remove() {
            Ok(()) => Check::Ok(format!(
                "writable: memory, pids and cpu limits per run ({})",
                layout.describe()
            )),
            Err(err) => Check::Warn(format!("created but not removed: {err}")),
        },
        Err(err) if support::is_root() => Check::Fail(format!("{err}")),
        Err(err) => Check::Warn(format!("not writable ({err}); runs fall back to rlimits")),
    }
}
