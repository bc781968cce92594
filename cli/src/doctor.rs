//! `errand doctor`: what this host offers the sandbox and the workspaces, item by item, and
//! whether tasks could run here at all (the same probe a worker runs before it takes work).
//! Exits non-zero when they could not.

use std::path::Path;

use activities::sandbox::cgroup::{CgroupLayout, RunCgroup};
use activities::sandbox::{Limits, Sandbox, Shim, support};
use activities::workspace::{Layers, overlay};

use crate::settings::Settings;

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

pub async fn doctor(settings: &Settings) -> anyhow::Result<()> {
    println!("errand doctor: sandbox and workspace support on this host\n");
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
        ("workspaces", workspaces(settings)),
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

/// Whether tasks get copy-on-write workspaces over prebuilt bases: an overlay mounted for real
/// in the data directory, where the bases and the task layers live.
fn workspaces(settings: &Settings) -> Check {
    const CLONES: &str = "every task is a clone with a checkout of every file";
    let data_dir = &settings.data_dir;
    if !settings.workspaces.overlay {
        Check::Warn(format!("[workspaces] overlay = false: {CLONES}"))
    } else if !support::is_root() {
        Check::Warn(format!("not root (overlay mounts need it): {CLONES}"))
    } else {
        match probe_overlay(data_dir) {
            Ok(()) => Check::Ok(format!(
                "overlay mounts work in {}: copy-on-write workspaces over prebuilt bases",
                data_dir.display()
            )),
            Err(err) => Check::Warn(format!(
                "cannot mount an overlay in {} ({err}): {CLONES}",
                data_dir.display()
            )),
        }
    }
}

/// Mounts an overlay in a scratch directory of `data_dir`, writes through it, and removes it.
fn probe_overlay(data_dir: &Path) -> std::io::Result<()> {
    let dir = data_dir.join(format!(".doctor-overlay-{}", std::process::id()));
    let layers = Layers {
        lower: vec![dir.join("lower")],
        upper: dir.join("upper"),
        work: dir.join("work"),
    };
    let merged = dir.join("merged");
    let probe = || {
        for path in [&layers.lower[0], &layers.upper, &layers.work, &merged] {
            std::fs::create_dir_all(path)?;
        }
        overlay::mount(&layers, &merged)?;
        let written = std::fs::write(merged.join("probe"), "ok");
        overlay::unmount(&merged)?;
        written?;
        match std::fs::read(layers.upper.join("probe")) {
            Ok(bytes) if bytes == b"ok" => Ok(()),
            _ => Err(std::io::Error::other(
                "a write did not reach the upper layer",
            )),
        }
    };
    let existed = data_dir.exists();
    let result = probe();
    let _ = std::fs::remove_dir_all(if existed { &dir } else { data_dir });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_probe_mounts_writes_and_cleans_up() {
        if !support::is_root() {
            eprintln!("skipped: overlays need root");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        probe_overlay(dir.path()).expect("probe");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        let missing = dir.path().join("data");
        probe_overlay(&missing).expect("probe in a new data directory");
        assert!(!missing.exists(), "the data directory it made is left");
    }
}
