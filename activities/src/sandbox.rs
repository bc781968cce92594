//! Runs untrusted commands inside bubblewrap; fails closed: if the sandbox cannot be set up
//! (bwrap, user namespaces, the run's cgroup, its uid, its size-limited workspace), nothing
//! runs (there is no unsandboxed fallback).
//!
//! The layers, outermost first: a per-run cgroup (memory, pids, CPU, kill) and rlimits; a
//! dedicated unprivileged uid per run (root workers); a private mount namespace staging the
//! workspace as an idmapped overlay on a size-limited tmpfs; bwrap (all namespaces, no
//! capabilities, no new privileges, a read-only allowlisted root); a seccomp denylist; and,
//! when the shim is available, Landlock and the egress bridge. SECURITY.md has the threat model.

pub mod cgroup;
pub mod egress;
pub mod host_read;
mod identity;
mod launch;
mod limits;
mod merge;
mod mounts;
mod probe;
mod profile;
mod resolve;
mod running;
pub mod seccomp;
pub mod shim;
pub mod snapshot;
mod staging;
pub mod support;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::unix::pipe;

use crate::output::{OUTPUT_TAIL_BYTES, OutputCapture};
use cgroup::{CgroupLayout, RunCgroup};
use egress::EgressPolicy;
use identity::IdentityPool;
pub use identity::{SANDBOX_ID_BASE, SANDBOX_ID_SLOTS};
pub use limits::Limits;
pub use merge::MergeReport;
pub use profile::{
    EGRESS_PORT, GATEWAY_PORT, HostLayout, INPUTS_MOUNT, SANDBOX_HOME, SANDBOX_PATH,
    WORKSPACE_MOUNT,
};
pub use running::{Exit, Outcome, Progress, ProgressHandle, RunningCommand};
pub use shim::Shim;
pub use snapshot::LiveWorkspace;
pub use staging::STAGE_ROOT;

/// The log file keeps the first this many bytes of output; the rest is drained and dropped.
pub const LOG_CAP_BYTES: u64 = 8 << 20;

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
    /// A step of the launch failed; nothing ran.
    #[error("sandbox setup failed while {step}: {source}")]
    Setup {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("the run's cgroup: {0}")]
    Cgroup(#[from] cgroup::CgroupError),
    #[error("waiting for the sandbox failed: {source}")]
    Wait { source: std::io::Error },
    #[error(transparent)]
    Merge(#[from] merge::MergeError),
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
    pub limits: Limits,
    /// None: no network at all (only the sandbox's own loopback). Some: the allowlist the
    /// egress proxy enforces, reached through `http_proxy` on 127.0.0.1:`EGRESS_PORT`.
    pub network: Option<EgressPolicy>,
    /// The model gateway's Unix socket on the host, relayed to 127.0.0.1:`GATEWAY_PORT`
    /// inside (nothing else of the host's network becomes reachable). None: no gateway.
    pub model_gateway: Option<PathBuf>,
}

/// How a `Sandbox` is set up; `Sandbox::detect` fills it from the host.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub bwrap: PathBuf,
    /// Landlock and the egress bridge need it; without it runs have neither.
    pub shim: Option<Shim>,
    /// Where run cgroups go; None probes this process's own cgroups.
    pub cgroup_layout: Option<CgroupLayout>,
}

#[derive(Debug, Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
    /// An unprivileged worker, which cannot mount a size-limited workspace, runs tasks with an
    /// uncapped one instead of refusing them (the operator's explicit choice).
    uncapped_workspace_ok: bool,
}

#[derive(Debug)]
struct Inner {
    bwrap: PathBuf,
    host: HostLayout,
    shim: Option<Shim>,
    seccomp: Vec<Vec<u8>>,
    privilege: Privilege,
    /// None when no cgroup hierarchy is writable (unprivileged workers only): rlimits then.
    cgroups: Option<CgroupLayout>,
}

/// What the worker may do to set a run up.
#[derive(Debug)]
enum Privilege {
    /// Root: per-run uids, staged idmapped mounts, the size-limited workspace.
    Root {
        identities: IdentityPool,
        idmaps: Mutex<HashMap<u32, Arc<OwnedFd>>>,
    },
    /// Already unprivileged: runs keep the worker's uid and bind host paths directly.
    User,
}

impl Sandbox {
    /// Finds bwrap on PATH and the shim next to this executable, and proves the whole profile
    /// works; otherwise `Unavailable`.
    pub async fn detect() -> Result<Sandbox, SandboxError> {
        Self::detect_on_path(&std::env::var_os("PATH").unwrap_or_default()).await
    }

    /// Like `detect`, searching `search_path` (PATH syntax) instead of the process's PATH.
    pub async fn detect_on_path(search_path: &OsStr) -> Result<Sandbox, SandboxError> {
        let found = std::env::split_paths(search_path)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join("bwrap"))
            .find(|candidate| resolve::is_executable_file(candidate));
        match found {
            Some(bwrap) => Self::detect_with(&bwrap).await,
            None => Err(SandboxError::Unavailable {
                reason: format!("bwrap not found on PATH {:?}", search_path),
            }),
        }
    }

    /// Proves that `bwrap` sets up the full profile (see `open`).
    pub async fn detect_with(bwrap: &Path) -> Result<Sandbox, SandboxError> {
        Self::open(SandboxConfig {
            bwrap: bwrap.to_owned(),
            shim: Shim::locate(),
            cgroup_layout: None,
        })
        .await
    }

    /// Sets up a sandbox from `config` and proves it by running a probe inside that must
    /// echo a nonce and show no capabilities, no_new_privs and the seccomp filter; anything
    /// else is `Unavailable`.
    pub async fn open(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let unavailable = |reason: String| SandboxError::Unavailable {
            reason: format!("{}: {reason}", config.bwrap.display()),
        };
        if !resolve::is_executable_file(&config.bwrap) {
            return Err(unavailable("not an executable file".into()));
        }
        let seccomp = seccomp::programs().map_err(|err| unavailable(err.to_string()))?;
        // SAFETY: a plain syscall.
        let privilege = if unsafe { libc::geteuid() } == 0 {
            staging::ensure_stage_root()
                .map_err(|err| unavailable(format!("staging directory {STAGE_ROOT}: {err}")))?;
            Privilege::Root {
                identities: IdentityPool::process_wide(),
                idmaps: Mutex::new(HashMap::new()),
            }
        } else {
            Privilege::User
        };
        let cgroups = match config.cgroup_layout.clone() {
            Some(layout) => layout,
            None => CgroupLayout::probe()
                .map_err(|err| unavailable(format!("reading this process's cgroups: {err}")))?,
        };
        // Runs of a worker that died (SIGKILL) leave their cgroups behind: remove them.
        cgroup::sweep_stale(&cgroups);
        if let Some(shim) = &config.shim
            && let Err(err) = shim::start_watchdog(shim)
        {
            // bwrap's parent-death signal still covers every run past its first milliseconds.
            tracing::warn!(error = %err, "the sandbox watchdog did not start");
        }
        let cgroups = match probe::cgroups_work(&cgroups) {
            Ok(()) => Some(cgroups),
            Err(err) if matches!(privilege, Privilege::Root { .. }) => {
                return Err(unavailable(err));
            }
            Err(err) => {
                tracing::warn!(error = %err, "no writable cgroup: runs are limited by rlimits only");
                None
            }
        };
        let sandbox = Sandbox {
            inner: Arc::new(Inner {
                bwrap: config.bwrap.clone(),
                host: HostLayout::probe(),
                shim: config.shim.clone(),
                seccomp,
                privilege,
                cgroups,
            }),
            uncapped_workspace_ok: false,
        };
        probe::run(&sandbox).await.map_err(unavailable)?;
        Ok(sandbox)
    }

    /// Lets an unprivileged worker run tasks whose limits ask for a capped workspace without
    /// the cap (`sandbox.uncapped_workspace`); a root worker always caps it.
    pub fn accept_uncapped_workspace(mut self, accept: bool) -> Sandbox {
        self.uncapped_workspace_ok = accept;
        self
    }

    pub fn bwrap(&self) -> &Path {
        &self.inner.bwrap
    }

    pub fn shim(&self) -> Option<&Shim> {
        self.inner.shim.as_ref()
    }

    /// Whether runs get their own uid and a size-limited workspace (a root worker).
    pub fn is_root(&self) -> bool {
        matches!(self.inner.privilege, Privilege::Root { .. })
    }

    /// The cgroup layout runs use, if any.
    pub fn cgroups(&self) -> Option<&CgroupLayout> {
        self.inner.cgroups.as_ref()
    }

    /// Starts `spec` in the sandbox. Call it from a long-lived thread (any tokio worker):
    /// bwrap's --die-with-parent fires when the *thread* that spawned it exits.
    pub fn spawn(&self, spec: &SandboxSpec) -> Result<RunningCommand, SandboxError> {
        let resolved = resolve::resolve(spec)?;
        let inner = &self.inner;
        let identity =
            match &inner.privilege {
                Privilege::Root { identities, .. } => Some(identities.acquire().ok_or_else(
                    || SandboxError::Unavailable {
                        reason: format!("all {SANDBOX_ID_SLOTS} sandbox uids are in use"),
                    },
                )?),
                Privilege::User => None,
            };
        let run_name = run_name();
        let cgroup = inner
            .cgroups
            .as_ref()
            .map(|layout| RunCgroup::create(layout, &run_name, &spec.limits))
            .transpose()?;
        if spec.network.is_some() && inner.shim.is_none() {
            return Err(SandboxError::Unavailable {
                reason: "egress needs the sandbox shim (its bridge), which was not found".into(),
            });
        }
        if let Some(socket) = &spec.model_gateway {
            use std::os::unix::fs::FileTypeExt;
            if inner.shim.is_none() {
                return Err(SandboxError::Unavailable {
                    reason: "the model gateway needs the sandbox shim (its bridge), which was \
                             not found"
                        .into(),
                });
            }
            // A socket, not a symlink to one: bwrap would bind wherever a link points.
            if !std::fs::symlink_metadata(socket).is_ok_and(|meta| meta.file_type().is_socket()) {
                return Err(SandboxError::InvalidSpec {
                    field: "model_gateway",
                    reason: format!("{} is not a socket", socket.display()),
                });
            }
        }
        let egress = spec
            .network
            .as_ref()
            .map(|policy| {
                let owner = identity.as_ref().map(|id| (id.uid, id.gid));
                egress::start(policy.clone(), &spec.log_path, owner)
            })
            .transpose()
            .map_err(|err| SandboxError::Setup {
                step: "starting the egress proxy",
                source: err,
            })?;
        let paths = staging::HostPaths {
            workspace: &resolved.workspace,
            inputs_dir: resolved.inputs_dir.as_deref(),
            program: resolved.program.as_deref(),
            shim: inner.shim.as_ref().map(|shim| shim.program.as_path()),
            egress_dir: egress.as_ref().map(|proxy| proxy.socket_dir()),
            gateway_socket: spec.model_gateway.as_deref(),
        };
        let cap = spec
            .limits
            .workspace_write_bytes
            .map(|bytes| staging::WriteCap {
                bytes,
                inodes: spec.limits.workspace_write_inodes,
            });
        let (sources, staged_mounts, upper) = match (&inner.privilege, &identity) {
            (Privilege::Root { idmaps, .. }, Some(id)) => {
                let idmap = self.idmap(idmaps, id.uid, id.gid)?;
                let staged =
                    staging::stage(&paths, &idmap, (id.uid, id.gid), cap).map_err(|source| {
                        SandboxError::Setup {
                            step: "preparing the workspace mounts",
                            source,
                        }
                    })?;
                (staged.sources, Some(staged.mounts), staged.upper)
            }
            _ if cap.is_some() && !self.uncapped_workspace_ok => {
                return Err(SandboxError::Unavailable {
                    reason: "capping workspace writes needs a root worker (it mounts a \
                             size-limited filesystem); run the worker as root, or set \
                             sandbox.uncapped_workspace = true to accept an uncapped workspace"
                        .into(),
                });
            }
            _ => (staging::Sources::direct(&paths), None, None),
        };
        let profile_spec = profile::ResolvedSpec {
            workspace: sources.workspace.clone(),
            protect_git: resolved.protect_git,
            inputs_dir: sources.inputs_dir.clone(),
            program: sources.program.clone(),
            argv: resolved.argv.clone(),
            env: resolved.env.clone(),
        };

        let etc_files = profile::generated_etc();
        let data_pipes = etc_files
            .iter()
            .map(|(_, content)| data_pipe(content.as_bytes()))
            .collect::<std::io::Result<Vec<OwnedFd>>>()
            .map_err(|source| self.spawn_error(source))?;
        let data_fds: Vec<(&str, RawFd)> = etc_files
            .iter()
            .zip(&data_pipes)
            .map(|((dest, _), fd)| (*dest, fd.as_raw_fd()))
            .collect();
        let seccomp_pipes = inner
            .seccomp
            .iter()
            .map(|program| data_pipe(program))
            .collect::<std::io::Result<Vec<OwnedFd>>>()
            .map_err(|source| self.spawn_error(source))?;
        let seccomp_fds: Vec<RawFd> = seccomp_pipes.iter().map(AsRawFd::as_raw_fd).collect();
        let shim = inner.shim.as_ref().zip(sources.shim.as_deref());
        let extras = profile::Extras {
            data_fds: &data_fds,
            seccomp_fds: &seccomp_fds,
            tmp_bytes: spec.limits.tmp_bytes,
            home_bytes: spec.limits.home_bytes,
            shim: shim.map(|(shim, source)| (source, shim.selector.as_slice())),
            egress_dir: sources.egress_dir.as_deref(),
            gateway_socket: sources.gateway_socket.as_deref(),
        };
        let args = profile::bwrap_args(&profile_spec, &inner.host, &extras);

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
        let (step_reader, step_writer) =
            std::io::pipe().map_err(|source| self.spawn_error(source))?;

        let mut rlimits = spec.limits.rlimits(identity.is_some());
        if cgroup.is_none() {
            rlimits.extend(spec.limits.fallback_rlimits());
        }
        let cgroup_procs = match &cgroup {
            Some(cgroup) => cgroup.procs_files()?,
            None => Vec::new(),
        };
        let setup = launch::ChildSetup {
            cgroup_procs,
            rlimits,
            mounts: staged_mounts,
            identity: identity.as_ref().map(|id| (id.uid, id.gid)),
            keep_fds: data_fds
                .iter()
                .map(|(_, fd)| *fd)
                .chain(seccomp_fds.iter().copied())
                .collect(),
            step_writer: step_writer.into(),
            parent_pid: std::process::id() as libc::pid_t,
        };

        let mut command = tokio::process::Command::new(&inner.bwrap);
        command
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(output_writer)
            .stderr(stderr_writer)
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: `ChildSetup::run` only makes raw syscalls on data prepared above, which
        // is async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || setup.run());
        }
        let spawned = command.spawn();
        // The command holds our copies of the pipes' write ends: drop them, or the output
        // would never reach end-of-file. The data pipes were read by bwrap's copy.
        drop(command);
        drop(data_pipes);
        drop(seccomp_pipes);
        let child = match spawned {
            Ok(child) => child,
            Err(source) => {
                return Err(match launch::last_step(step_reader.into()) {
                    Some(step) => SandboxError::Setup {
                        step: step.describe(),
                        source,
                    },
                    None => self.spawn_error(source),
                });
            }
        };
        let output = pipe::Receiver::from_owned_fd(output_reader.into())
            .map_err(|source| self.spawn_error(source))?;
        let finish = running::Finish {
            cgroup,
            upper: upper.map(|fd| (fd, resolved.workspace.clone())),
            egress,
            identity,
        };
        RunningCommand::start(child, output, capture, spec.timeout, finish)
    }

    /// The idmap namespace of `uid` (made once per uid, then reused).
    fn idmap(
        &self,
        idmaps: &Mutex<HashMap<u32, Arc<OwnedFd>>>,
        uid: u32,
        gid: u32,
    ) -> Result<Arc<OwnedFd>, SandboxError> {
        let mut idmaps = idmaps.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ns) = idmaps.get(&uid) {
            return Ok(Arc::clone(ns));
        }
        let ns =
            Arc::new(
                mounts::idmap_namespace(uid, gid).map_err(|source| SandboxError::Setup {
                    step: "creating the workspace's id mapping",
                    source,
                })?,
            );
        idmaps.insert(uid, Arc::clone(&ns));
        Ok(ns)
    }

    fn spawn_error(&self, source: std::io::Error) -> SandboxError {
        SandboxError::Spawn {
            bwrap: self.inner.bwrap.clone(),
            source,
        }
    }
}

/// A pipe already holding `content` (small, so the write cannot block), for bwrap to read.
fn data_pipe(content: &[u8]) -> std::io::Result<OwnedFd> {
    let (reader, mut writer) = std::io::pipe()?;
    writer.write_all(content)?;
    Ok(reader.into())
}

/// A name for a run's cgroup, unique on this host.
pub(crate) fn run_name() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!("run-{}-{count}-{nanos}", std::process::id())
}
