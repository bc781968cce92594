//! A sandboxed command in flight: progress while it runs, and its end by exit, deadline or
//! cancel, where the two last kill the whole process tree.

use std::fs::File;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::Child;
use tokio::task::JoinHandle;

use super::SandboxError;
use super::cgroup::RunCgroup;
use super::egress::{Decision, EgressProxy};
use super::identity::RunIdentity;
use super::merge::{self, MergeReport};
use super::snapshot::LiveWorkspace;
use crate::output::OutputCapture;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// Once the sandbox is gone its output pipe closes at once; this only bounds a pathological
/// case (a writer that survived), so a wedged reader never blocks the outcome.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
const READ_CHUNK_BYTES: usize = 64 * 1024;

type SharedCapture = Arc<Mutex<OutputCapture<File>>>;

/// How a sandboxed command ended. A signal that killed a program inside the sandbox shows
/// as `Code(128 + signal)`, the way bwrap reports it; `Signal` means bwrap itself was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit: Exit,
    pub duration: Duration,
    /// The last `OUTPUT_TAIL_BYTES` of the combined output, lossily decoded.
    pub output_tail: String,
    /// Every byte the command wrote, including what the log cap dropped.
    pub output_bytes: u64,
    /// Processes the kernel killed because the run hit its memory limit.
    pub oom_kills: u64,
    /// What the run changed in the workspace, when its writes went to a size-limited layer
    /// and were merged back.
    pub workspace_changes: Option<MergeReport>,
    /// Every egress proxy decision, in order (empty without network).
    pub egress: Vec<Decision>,
}

/// What is left to do once the sandbox is gone.
#[derive(Debug)]
pub(super) struct Finish {
    pub cgroup: Option<RunCgroup>,
    /// The upper layer of the workspace overlay and the workspace to merge it into.
    pub upper: Option<(Arc<OwnedFd>, PathBuf)>,
    pub egress: Option<EgressProxy>,
    /// Held until the run's processes are gone, then its uid is free for another run.
    pub identity: Option<RunIdentity>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    pub elapsed_ms: u64,
    pub output_bytes: u64,
    pub last_line: String,
}

/// A cheap view on a running command, for heartbeats.
#[derive(Debug, Clone)]
pub struct ProgressHandle {
    started: Instant,
    capture: SharedCapture,
}

impl ProgressHandle {
    pub fn snapshot(&self) -> Progress {
        let capture = lock(&self.capture);
        Progress {
            elapsed_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            output_bytes: capture.seen_bytes(),
            last_line: capture.last_line(),
        }
    }
}

#[derive(Debug)]
pub struct RunningCommand {
    child: Child,
    // bwrap leads its own process group; killing the group kills bwrap, and bwrap's PID
    // namespace then takes every process inside, setsid'd and daemonised ones included.
    process_group: Pid,
    started: Instant,
    timeout: Duration,
    capture: SharedCapture,
    reader: JoinHandle<()>,
    finish: Finish,
}

impl RunningCommand {
    pub(super) fn start(
        child: Child,
        output: pipe::Receiver,
        capture: OutputCapture<File>,
        timeout: Duration,
        finish: Finish,
    ) -> Result<Self, SandboxError> {
        let pid = child.id().ok_or_else(|| SandboxError::Wait {
            source: std::io::Error::other("bwrap exited before its pid was read"),
        })?;
        let pid = i32::try_from(pid).map_err(|_| SandboxError::Wait {
            source: std::io::Error::other(format!("pid {pid} out of range")),
        })?;
        let capture = Arc::new(Mutex::new(capture));
        let reader = tokio::spawn(drain(output, Arc::clone(&capture)));
        Ok(Self {
            child,
            process_group: Pid::from_raw(pid),
            started: Instant::now(),
            timeout,
            capture,
            reader,
            finish,
        })
    }

    /// What a mid-run checkpoint may reach of this run: its upper layer and its freezer.
    pub fn live_workspace(&self) -> LiveWorkspace {
        LiveWorkspace {
            layer: self.finish.upper.as_ref().map(|(fd, _)| Arc::clone(fd)),
            freezer: self.finish.cgroup.as_ref().and_then(RunCgroup::freezer),
        }
    }

    pub fn progress(&self) -> ProgressHandle {
        ProgressHandle {
            started: self.started,
            capture: Arc::clone(&self.capture),
        }
    }

    /// Waits for exit, the deadline (kills the whole tree), or `cancel` resolving (kills the
    /// whole tree). Pass `std::future::pending()` for no cancel.
    pub async fn wait(mut self, cancel: impl Future<Output = ()>) -> Result<Outcome, SandboxError> {
        let deadline = tokio::time::Instant::from_std(self.started + self.timeout);
        let exit = tokio::select! {
            status = self.child.wait() => {
                let status = status.map_err(|source| SandboxError::Wait { source })?;
                match (status.code(), status.signal()) {
                    (Some(code), _) => Exit::Code(code),
                    (None, Some(signal)) => Exit::Signal(signal),
                    (None, None) => Exit::Signal(0),
                }
            }
            () = tokio::time::sleep_until(deadline) => Exit::TimedOut,
            () = cancel => Exit::Cancelled,
        };
        let duration = self.started.elapsed();
        if matches!(exit, Exit::TimedOut | Exit::Cancelled) {
            self.kill_tree();
            self.child
                .wait()
                .await
                .map_err(|source| SandboxError::Wait { source })?;
        } else if let Some(cgroup) = &self.finish.cgroup {
            // bwrap is gone, and its PID namespace with it; this only makes sure nothing that
            // holds the output pipe lingers while it drains.
            cgroup.kill();
        }
        if tokio::time::timeout(DRAIN_GRACE, &mut self.reader)
            .await
            .is_err()
        {
            tracing::warn!(pid = %self.process_group, "sandbox output still open after exit; dropping the rest");
            self.reader.abort();
        }
        let (oom_kills, workspace_changes) =
            finish_run(self.finish.cgroup.take(), self.finish.upper.take()).await?;
        let egress = match self.finish.egress.take() {
            Some(proxy) => proxy.finish().await,
            None => Vec::new(),
        };
        drop(self.finish.identity.take());
        let capture = lock(&self.capture);
        if let Some(err) = capture.sink_error() {
            tracing::warn!(error = %err, "writing the sandbox log failed; the output tail is still kept");
        }
        Ok(Outcome {
            exit,
            duration,
            output_tail: capture.tail(),
            output_bytes: capture.seen_bytes(),
            oom_kills,
            workspace_changes,
            egress,
        })
    }

    fn kill_tree(&mut self) {
        // The cgroup takes every process of the run at once, wherever it hid; killing bwrap's
        // group then tears down its PID namespace as a second, independent mechanism.
        if let Some(cgroup) = &self.finish.cgroup {
            cgroup.kill();
        }
        match killpg(self.process_group, Signal::SIGKILL) {
            // Already gone (it exited while we were deciding): nothing left to kill.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => {
                tracing::error!(pid = %self.process_group, %errno, "killpg failed; killing bwrap alone");
                // bwrap's death still takes its PID namespace with it (--die-with-parent).
                let _ = self.child.start_kill();
            }
        }
    }
}

/// Once bwrap is gone: empties and removes the run's cgroup (reading its OOM count first),
/// then merges the workspace layer, which nothing writes to any more.
async fn finish_run(
    cgroup: Option<RunCgroup>,
    upper: Option<(Arc<OwnedFd>, PathBuf)>,
) -> Result<(u64, Option<MergeReport>), SandboxError> {
    tokio::task::spawn_blocking(move || {
        let mut oom_kills = 0;
        if let Some(cgroup) = cgroup {
            oom_kills = cgroup.oom_kills();
            cgroup.kill();
            cgroup.remove()?;
        }
        let changes = match upper {
            Some((fd, workspace)) => {
                Some(upper_dir(&fd).and_then(|dir| Ok(merge::apply(&dir, &workspace)?))?)
            }
            None => None,
        };
        Ok((oom_kills, changes))
    })
    .await
    .map_err(|err| SandboxError::Wait {
        source: std::io::Error::other(err),
    })?
}

/// The `upper/` directory of the layer's tmpfs.
pub(super) fn upper_dir(tmpfs: &OwnedFd) -> Result<OwnedFd, SandboxError> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: a valid dirfd and a static name; the fd is owned right away.
    let fd = unsafe {
        libc::openat(
            tmpfs.as_raw_fd(),
            c"upper".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(SandboxError::Wait {
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads the combined output until every writer in the sandbox has closed it.
async fn drain(mut output: pipe::Receiver, capture: SharedCapture) {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        match output.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => lock(&capture).push(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                tracing::warn!(error = %err, "reading sandbox output failed");
                return;
            }
        }
    }
}

fn lock(capture: &SharedCapture) -> MutexGuard<'_, OutputCapture<File>> {
    // A panic while holding the lock leaves the capture usable (it only appends), so a
    // poisoned lock is not a reason to lose the output.
    capture
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
