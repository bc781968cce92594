//! What this host offers the sandbox, checked one item at a time for `errand doctor`. The
//! authority on whether tasks can run is still `Sandbox::detect`, which runs a real probe.

use std::path::Path;

/// Whether unprivileged user namespaces (which bwrap needs) are allowed, or why not.
pub fn user_namespaces() -> Result<String, String> {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|text| text.trim().to_owned())
    };
    let max = read("/proc/sys/user/max_user_namespaces");
    if max.as_deref() == Some("0") {
        return Err("user.max_user_namespaces is 0".into());
    }
    // Debian and Ubuntu kernels before 6.x gate them behind this sysctl.
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err("kernel.unprivileged_userns_clone is 0".into());
    }
    // Ubuntu 24.04 lets only AppArmor-profiled programs (/usr/bin/bwrap has one) create them.
    let apparmor = read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    let note = match apparmor.as_deref() {
        Some("1") => "; AppArmor restricts them to profiled programs (use /usr/bin/bwrap)",
        _ => "",
    };
    Ok(format!(
        "allowed (max_user_namespaces={}){note}",
        max.unwrap_or_else(|| "?".into())
    ))
}

/// The Landlock ABI version the kernel offers, or why there is none.
pub fn landlock_abi() -> Result<i64, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented version query: no ruleset pointer, size 0.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if version >= 0 {
        return Ok(version);
    }
    let err = std::io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::ENOSYS) => "not built into this kernel".into(),
        Some(libc::EOPNOTSUPP) => "built in but not enabled (add landlock to lsm=)".into(),
        _ => err.to_string(),
    })
}

/// Whether the kernel has seccomp filters (a `Seccomp:` line in /proc/self/status).
pub fn seccomp() -> Result<String, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|err| err.to_string())?;
    if !status.lines().any(|line| line.starts_with("Seccomp:")) {
        return Err("the kernel has no seccomp (CONFIG_SECCOMP)".into());
    }
    let programs = super::seccomp::programs().map_err(|err| err.to_string())?;
    Ok(format!(
        "available; {} filters, {} syscalls denied",
        programs.len(),
        super::seccomp::denied_syscalls().count()
    ))
}

/// The bwrap version line, e.g. "bubblewrap 0.8.0".
pub fn bwrap_version(bwrap: &Path) -> Result<String, String> {
    let output = std::process::Command::new(bwrap)
        .arg("--version")
        .output()
        .map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(format!("--version exited with {}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether this process is root (per-run uids, the size-limited workspace need it).
pub fn is_root() -> bool {
    // SAFETY: a plain syscall.
    unsafe { libc::geteuid() == 0 }
}
