//! What the forked child does between fork and exec'ing bwrap: join the run's cgroups, set
//! rlimits, stage the run's mounts in a private mount namespace, close inherited fds, drop to
//! the run's uid and forbid new privileges. Everything is prepared beforehand, so the child
//! only makes raw syscalls (no allocation, no locks: the parent is multi-threaded).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::limits::Rlimit;

/// The steps in order; the child reports each on a pipe before taking it, so a failure names
/// the step rather than only an errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Step {
    JoinCgroup = 1,
    Rlimits,
    MountNamespace,
    StageRoot,
    StageEntries,
    PlaceMount,
    Overlay,
    CloseFds,
    DropGroups,
    SetGid,
    SetUid,
    ParentDeathSignal,
    NoNewPrivileges,
}

impl Step {
    const ALL: [Step; 13] = [
        Step::JoinCgroup,
        Step::Rlimits,
        Step::MountNamespace,
        Step::StageRoot,
        Step::StageEntries,
        Step::PlaceMount,
        Step::Overlay,
        Step::CloseFds,
        Step::DropGroups,
        Step::SetGid,
        Step::SetUid,
        Step::ParentDeathSignal,
        Step::NoNewPrivileges,
    ];

    pub(super) fn from_byte(byte: u8) -> Option<Step> {
        Self::ALL.iter().copied().find(|step| *step as u8 == byte)
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Step::JoinCgroup => "joining the run's cgroup",
            Step::Rlimits => "setting rlimits",
            Step::MountNamespace => "creating a private mount namespace",
            Step::StageRoot => "mounting the staging tmpfs",
            Step::StageEntries => "creating staging mount points",
            Step::PlaceMount => "placing a prepared mount",
            Step::Overlay => "mounting the size-limited workspace overlay",
            Step::CloseFds => "closing inherited file descriptors",
            Step::DropGroups => "dropping supplementary groups",
            Step::SetGid => "switching to the sandbox gid",
            Step::SetUid => "switching to the sandbox uid",
            Step::ParentDeathSignal => "arming the parent-death signal",
            Step::NoNewPrivileges => "setting no_new_privs",
        }
    }
}

/// Mounts made in the child's own mount namespace, so they vanish with the sandbox.
#[derive(Debug)]
pub(super) struct StagedMounts {
    /// An existing host directory; a small tmpfs goes on top, holding the mount points below.
    pub root: CString,
    pub dirs: Vec<CString>,
    pub files: Vec<CString>,
    /// Detached mounts and where they go.
    pub placements: Vec<(Arc<OwnedFd>, CString)>,
    /// `(target, options)` of the overlayfs mount, made after the placements.
    pub overlay: Option<(CString, CString)>,
}

#[derive(Debug)]
pub(super) struct ChildSetup {
    /// `cgroup.procs` of each hierarchy of the run's cgroup, opened for writing.
    pub cgroup_procs: Vec<OwnedFd>,
    pub rlimits: Vec<(Rlimit, u64)>,
    pub mounts: Option<StagedMounts>,
    /// `(uid, gid)` to become; None keeps the caller's (already unprivileged) ids.
    pub identity: Option<(u32, u32)>,
    /// Fds bwrap must inherit (its data and seccomp pipes).
    pub keep_fds: Vec<RawFd>,
    pub step_writer: OwnedFd,
    pub parent_pid: libc::pid_t,
}

impl ChildSetup {
    /// Runs in the child after fork. Async-signal-safe: raw syscalls on prepared data only.
    pub(super) fn run(&self) -> io::Result<()> {
        self.step(Step::JoinCgroup);
        for procs in &self.cgroup_procs {
            // "0" moves the writing process; everything bwrap starts then stays inside.
            check(unsafe { libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) } as i64)?;
        }
        self.step(Step::Rlimits);
        for (limit, value) in &self.rlimits {
            let rlimit = libc::rlimit {
                rlim_cur: *value,
                rlim_max: *value,
            };
            // SAFETY: a plain syscall on a stack value.
            check(unsafe { libc::setrlimit(limit.resource(), &rlimit) }.into())?;
        }
        if let Some(mounts) = &self.mounts {
            self.stage(mounts)?;
        }
        self.step(Step::CloseFds);
        close_inherited_fds(&self.keep_fds)?;
        if let Some((uid, gid)) = self.identity {
            self.step(Step::DropGroups);
            // SAFETY: plain syscalls; the order (groups, gid, then uid) keeps the privilege
            // needed for each until it is done.
            check(unsafe { libc::setgroups(0, std::ptr::null()) }.into())?;
            self.step(Step::SetGid);
            check(unsafe { libc::setresgid(gid, gid, gid) }.into())?;
            self.step(Step::SetUid);
            check(unsafe { libc::setresuid(uid, uid, uid) }.into())?;
        }
        // After the uid change, which clears it. If the worker thread that spawned us is
        // already gone, the signal would never come: refuse to start.
        self.step(Step::ParentDeathSignal);
        check(
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) }.into(),
        )?;
        if unsafe { libc::getppid() } != self.parent_pid {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        self.step(Step::NoNewPrivileges);
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into())?;
        Ok(())
    }

    fn stage(&self, mounts: &StagedMounts) -> io::Result<()> {
        self.step(Step::MountNamespace);
        // SAFETY (this function): raw syscalls on prepared NUL-terminated strings and fds.
        check(unsafe { libc::unshare(libc::CLONE_NEWNS) }.into())?;
        // Nothing we mount may propagate back to the host.
        check(
            unsafe {
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_SLAVE,
                    std::ptr::null(),
                )
            }
            .into(),
        )?;
        self.step(Step::StageRoot);
        check(
            unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    mounts.root.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=0755,size=1m".as_ptr().cast(),
                )
            }
            .into(),
        )?;
        self.step(Step::StageEntries);
        for dir in &mounts.dirs {
            check(unsafe { libc::mkdir(dir.as_ptr(), 0o755) }.into())?;
        }
        for file in &mounts.files {
            let fd = unsafe {
                libc::open(
                    file.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                )
            };
            check(fd.into())?;
            unsafe { libc::close(fd) };
        }
        self.step(Step::PlaceMount);
        for (tree, target) in &mounts.placements {
            check(unsafe {
                libc::syscall(
                    libc::SYS_move_mount,
                    tree.as_raw_fd(),
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
                )
            })?;
        }
        if let Some((target, options)) = &mounts.overlay {
            self.step(Step::Overlay);
            check(
                unsafe {
                    libc::mount(
                        c"overlay".as_ptr(),
                        target.as_ptr(),
                        c"overlay".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        options.as_ptr().cast(),
                    )
                }
                .into(),
            )?;
        }
        Ok(())
    }

    fn step(&self, step: Step) {
        let byte = step as u8;
        // SAFETY: a one-byte write to our own pipe; losing it only loses the step's name.
        unsafe { libc::write(self.step_writer.as_raw_fd(), (&raw const byte).cast(), 1) };
    }
}

fn check(rc: i64) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Marks every fd above 2 close-on-exec except bwrap's data fds. Rust's Command does not
/// close fds it did not open, and bwrap passes inherited fds into the sandbox, where a stray
/// one would expose host files. CLOEXEC (not close) keeps std's own exec-error pipe working.
fn close_inherited_fds(keep: &[RawFd]) -> io::Result<()> {
    // SAFETY: plain syscalls on fd numbers; no memory is touched.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    // Fail closed: an older kernel without close_range must not leak fds silently.
    check(rc)?;
    for fd in keep {
        // SAFETY: as above.
        check(unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) }.into())?;
    }
    Ok(())
}

/// The last step the child reported before failing (read after spawn failed).
pub(super) fn last_step(reader: OwnedFd) -> Option<Step> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let _ = std::fs::File::from(reader).read_to_end(&mut bytes);
    bytes.last().copied().and_then(Step::from_byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_through_their_byte() {
        for step in Step::ALL {
            assert_eq!(Step::from_byte(step as u8), Some(step));
            assert!(!step.describe().is_empty());
        }
        assert_eq!(Step::from_byte(0), None);
    }
}
