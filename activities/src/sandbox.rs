//! Runs untrusted commands inside bubblewrap; fails closed: if the sandbox cannot be set up,
//! nothing runs (there is no unsandboxed fallback).

mod profile;
mod running;

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::net::unix::pipe;

use crate::output::{OUTPUT_TAIL_BYTES, OutputCapture};
pub use profile::{HostLayout, INPUTS_MOUNT, SANDBOX_HOME, SANDBOX_PATH, WORKSPACE_MOUNT};
pub use running::{Exit, Outcome, Progress, ProgressHandle, RunningCommand};

/// The log file keeps the first this many bytes of output; the rest is drained and dropped.
pub const LOG_CAP_BYTES: u64 = 8 << 20;
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox unavailable: {reason}")]
    Unavailable { reason: String },
    #[error("invalid sandbox spec: {field}: {reason}")]
    InvalidSpec { field: &'static str, reason: String },
    #[error("cannot create sandbox log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {bwrap}: {source}")]
    Spawn {
        bwrap: PathBuf,
        source: std::io::Error,
    },
    #[error("waiting for the sandbox failed: {source}")]
    Wait { source: std::io::Error },
}

#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Bound read-write at /repo, the working directory.
    pub workspace: PathBuf,
    /// Bound read-only at /run/errand (prompt and feedback files).
    pub inputs_dir: Option<PathBuf>,
    /// The program and its arguments, never a shell string. An absolute `argv[0]` outside
    /// /usr is bound read-only at the same path so the program is reachable.
    pub argv: Vec<String>,
    /// The only environment besides PATH, HOME, TMPDIR and LANG (which it may override).
    /// It travels on bwrap's argv, visible to host processes: never put secrets here.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    /// Combined stdout and stderr, capped at `LOG_CAP_BYTES`. Keep it outside the workspace:
    /// it is created on the host, following symlinks.
    pub log_path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    host: HostLayout,
}

impl Sandbox {
    /// Finds bwrap on PATH and proves it works; otherwise `Unavailable`.
    pub async fn detect() -> Result<Sandbox, SandboxError> {
        Self::detect_on_path(&std::env::var_os("PATH").unwrap_or_default()).await
    }

    /// Like `detect`, searching `search_path` (PATH syntax) instead of the process's PATH.
    pub async fn detect_on_path(search_path: &OsStr) -> Result<Sandbox, SandboxError> {
        let found = std::env::split_paths(search_path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join("bwrap"))
            .find(|candidate| is_executable_file(candidate));
        match found {
            Some(bwrap) => Self::detect_with(&bwrap).await,
            None => Err(SandboxError::Unavailable {
                reason: format!("bwrap not found on PATH {:?}", search_path),
            }),
        }
    }

    /// Proves that `bwrap` sets up the full profile by running a shell inside it that must
    /// echo a nonce from its sandbox environment; anything else is `Unavailable`.
    pub async fn detect_with(bwrap: &Path) -> Result<Sandbox, SandboxError> {
        let unavailable = |reason: String| SandboxError::Unavailable {
            reason: format!("{}: {reason}", bwrap.display()),
        };
        if !is_executable_file(bwrap) {
            return Err(unavailable("not an executable file".into()));
        }
        let sandbox = Sandbox {
            bwrap: bwrap.to_owned(),
            host: HostLayout::probe(),
        };
        let scratch =
            ScratchDir::create().map_err(|err| unavailable(format!("probe dir: {err}")))?;
        let nonce = scratch.nonce.clone();
        let spec = SandboxSpec {
            workspace: scratch.path.join("workspace"),
            inputs_dir: None,
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo errand-probe-$ERRAND_PROBE".into(),
            ],
            env: vec![("ERRAND_PROBE".into(), nonce.clone())],
            timeout: PROBE_TIMEOUT,
            log_path: scratch.path.join("probe.log"),
        };
        std::fs::create_dir(&spec.workspace)
            .map_err(|err| unavailable(format!("probe dir: {err}")))?;
        let outcome = sandbox
            .spawn(&spec)
            .map_err(|err| unavailable(err.to_string()))?
            .wait(std::future::pending())
            .await
            .map_err(|err| unavailable(err.to_string()))?;
        let expected = format!("errand-probe-{nonce}");
        if outcome.exit != Exit::Code(0) || outcome.output_tail.trim() != expected {
            return Err(unavailable(format!(
                "probe ended with {:?}, output {:?}",
                outcome.exit,
                outcome.output_tail.trim()
            )));
        }
        Ok(sandbox)
    }

    pub fn bwrap(&self) -> &Path {
        &self.bwrap
    }

    /// Starts `spec` in the sandbox. Call it from a long-lived thread (any tokio worker):
    /// bwrap's --die-with-parent fires when the *thread* that spawned it exits.
    pub fn spawn(&self, spec: &SandboxSpec) -> Result<RunningCommand, SandboxError> {
        let resolved = resolve(spec)?;
        let etc_files = profile::generated_etc();
        let data_pipes = etc_files
            .iter()
            .map(|(_, content)| data_pipe(content))
            .collect::<std::io::Result<Vec<OwnedFd>>>()
            .map_err(|source| self.spawn_error(source))?;
        let data_fds: Vec<(&str, RawFd)> = etc_files
            .iter()
            .zip(&data_pipes)
            .map(|((dest, _), fd)| (*dest, fd.as_raw_fd()))
            .collect();
        let args = profile::bwrap_args(&resolved, &self.host, &data_fds);

        let log = File::create(&spec.log_path).map_err(|source| SandboxError::Log {
            path: spec.log_path.clone(),
            source,
        })?;
        let capture = OutputCapture::new(log, LOG_CAP_BYTES, OUTPUT_TAIL_BYTES);
        // One pipe for stdout and stderr keeps their interleaving as the program wrote it.
        let (output_reader, output_writer) =
            std::io::pipe().map_err(|source| self.spawn_error(source))?;
        let stderr_writer = output_writer
            .try_clone()
            .map_err(|source| self.spawn_error(source))?;

        let mut command = tokio::process::Command::new(&self.bwrap);
        command
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(output_writer)
            .stderr(stderr_writer)
            .process_group(0)
            .kill_on_drop(true);
        let keep_fds: Vec<RawFd> = data_fds.iter().map(|(_, fd)| *fd).collect();
        // SAFETY: the closure only makes raw syscalls (close_range, fcntl), which are
        // async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || close_inherited_fds(&keep_fds));
        }
        let child = command.spawn().map_err(|source| self.spawn_error(source))?;
        // The command holds our copies of the pipe's write end: drop it, or the output
        // would never reach end-of-file. The data pipes were read by bwrap's copy.
        drop(command);
        drop(data_pipes);
        let output = pipe::Receiver::from_owned_fd(output_reader.into())
            .map_err(|source| self.spawn_error(source))?;
        RunningCommand::start(child, output, capture, spec.timeout)
    }

    fn spawn_error(&self, source: std::io::Error) -> SandboxError {
        SandboxError::Spawn {
            bwrap: self.bwrap.clone(),
            source,
        }
    }
}

/// Marks every fd above 2 close-on-exec except bwrap's data fds. Rust's Command does not
/// close fds it did not open, and bwrap passes inherited fds into the sandbox, where a stray
/// one would expose host files. CLOEXEC (not close) keeps std's own exec-error pipe working.
fn close_inherited_fds(keep: &[RawFd]) -> std::io::Result<()> {
    // SAFETY: plain syscalls on fd numbers; no memory is touched.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        // Fail closed: an older kernel without close_range must not leak fds silently.
        return Err(std::io::Error::last_os_error());
    }
    for fd in keep {
        // SAFETY: as above.
        if unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pipe already holding `content` (small, so the write cannot block), for --ro-bind-data.
fn data_pipe(content: &str) -> std::io::Result<OwnedFd> {
    let (reader, mut writer) = std::io::pipe()?;
    writer.write_all(content.as_bytes())?;
    Ok(reader.into())
}

/// Checks the spec against the host; anything surprising is refused rather than guessed at.
fn resolve(spec: &SandboxSpec) -> Result<profile::ResolvedSpec, SandboxError> {
    let invalid = |field, reason: String| SandboxError::InvalidSpec { field, reason };
    let workspace = spec
        .workspace
        .canonicalize()
        .map_err(|err| invalid("workspace", format!("{}: {err}", spec.workspace.display())))?;
    if workspace == Path::new("/") {
        return Err(invalid(
            "workspace",
            "the host root cannot be a workspace".into(),
        ));
    }
    if !workspace.is_dir() {
        return Err(invalid(
            "workspace",
            format!("{} is not a directory", workspace.display()),
        ));
    }
    let git = workspace.join(".git");
    let protect_git = match std::fs::symlink_metadata(&git) {
        // A symlinked .git would make bwrap bind wherever it points, host paths included.
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(invalid(
                "workspace",
                format!("{} is a symlink", git.display()),
            ));
        }
        Ok(_) => true,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
        Err(err) => return Err(invalid("workspace", format!("{}: {err}", git.display()))),
    };
    let inputs_dir = match &spec.inputs_dir {
        Some(dir) if dir.is_dir() => Some(
            dir.canonicalize()
                .map_err(|err| invalid("inputs_dir", format!("{}: {err}", dir.display())))?,
        ),
        Some(dir) => {
            return Err(invalid(
                "inputs_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        None => None,
    };
    let program = match spec.argv.first() {
        None => return Err(invalid("argv", "empty".into())),
        Some(program) => program_outside_usr(program),
    };
    if let Some(arg) = spec.argv.iter().find(|arg| arg.contains('\0')) {
        return Err(invalid("argv", format!("{arg:?} contains a NUL byte")));
    }
    for (name, value) in &spec.env {
        if !is_env_name(name) {
            return Err(invalid("env", format!("{name:?} is not a variable name")));
        }
        if value.contains('\0') {
            return Err(invalid(
                "env",
                format!("the value of {name} contains a NUL byte"),
            ));
        }
    }
    Ok(profile::ResolvedSpec {
        workspace,
        protect_git,
        inputs_dir,
        program,
        argv: spec.argv.clone(),
        env: spec.env.clone(),
    })
}

/// The host file to bind for an absolute `argv[0]` that /usr does not already provide.
fn program_outside_usr(program: &str) -> Option<PathBuf> {
    let path = Path::new(program);
    if !path.is_absolute() {
        return None;
    }
    let real = path.canonicalize().ok().filter(|real| real.is_file())?;
    (!real.starts_with("/usr")).then_some(real)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A private temporary directory for the detection probe, removed on drop.
struct ScratchDir {
    path: PathBuf,
    nonce: String,
}

impl ScratchDir {
    fn create() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or_default();
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nonce = format!("{}-{count}-{nanos}", std::process::id());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        for good in ["A", "_x", "PATH", "a_1"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A=B", "A B", "É"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    fn spec_in(workspace: &Path) -> SandboxSpec {
        SandboxSpec {
            workspace: workspace.to_owned(),
            inputs_dir: None,
            argv: vec!["true".into()],
            env: vec![],
            timeout: Duration::from_secs(1),
            log_path: workspace.join("log"),
        }
    }

    #[test]
    fn resolve_refuses_bad_specs() {
        let dir = tempfile::tempdir().expect("tempdir");
        type Change = Box<dyn Fn(&mut SandboxSpec)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "workspace",
                Box::new(|spec| spec.workspace = "/nonexistent/errand".into()),
            ),
            ("workspace", Box::new(|spec| spec.workspace = "/".into())),
            ("argv", Box::new(|spec| spec.argv.clear())),
            ("argv", Box::new(|spec| spec.argv.push("a\0b".into()))),
            (
                "env",
                Box::new(|spec| spec.env.push(("A=B".into(), "x".into()))),
            ),
            (
                "inputs_dir",
                Box::new(|spec| spec.inputs_dir = Some("/nonexistent/in".into())),
            ),
        ];
        for (field, change) in cases {
            let mut spec = spec_in(dir.path());
            change(&mut spec);
            match resolve(&spec) {
                Err(SandboxError::InvalidSpec { field: got, .. }) => assert_eq!(got, field),
                other => panic!("expected invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn resolve_refuses_a_symlinked_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/root", dir.path().join(".git")).expect("symlink");
        assert!(matches!(
            resolve(&spec_in(dir.path())),
            Err(SandboxError::InvalidSpec { .. })
        ));
    }

    #[test]
    fn programs_in_usr_are_not_rebound() {
        assert_eq!(program_outside_usr("/usr/bin/env"), None);
        assert_eq!(program_outside_usr("sh"), None);
        assert_eq!(program_outside_usr("/nonexistent/agent"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = dir.path().join("agent");
        std::fs::write(&agent, "#!/bin/sh\n").expect("write");
        assert_eq!(
            program_outside_usr(agent.to_str().expect("utf-8")),
            agent.canonicalize().ok()
        );
    }
}
