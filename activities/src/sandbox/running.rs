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
use crate::output::OutputCapture;

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
}

impl RunningCommand {
    pub(super) fn start(
        child: Child,
        output: pipe::Receiver,
        capture: OutputCapture<File>,
        timeout: Duration,
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
        })
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
        }
        if tokio::time::timeout(DRAIN_GRACE, &mut self.reader)
            .await
            .is_err()
        {
            tracing::warn!(pid = %self.process_group, "sandbox output still open after exit; dropping the rest");
            self.reader.abort();
        }
        let capture = lock(&self.capture);
        if let Some(err) = capture.sink_error() {
            tracing::warn!(error = %err, "writing the sandbox log failed; the output tail is still kept");
        }
        Ok(Outcome {
            exit,
            duration,
            output_tail: capture.tail(),
            output_bytes: capture.seen_bytes(),
        })
    }

    fn kill_tree(&mut self) {
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
