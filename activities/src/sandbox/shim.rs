//! Where the in-sandbox shim lives. The shim is the first program bwrap starts: it applies
//! Landlock and, for a run with egress or the model gateway, starts a bridge to each host
//! socket, then execs the command. It is the `errand` binary itself (`errand sandbox-shim`), or, for this crate's own
//! tests, the `errand-sandbox-shim` binary built next to them.
//!
//! `shim [selector] run [--writable PATH]... [--bridge PORT SOCKET]... -- COMMAND...`
//!
//! It runs inside the sandbox, already under seccomp and no_new_privs: nothing it does widens
//! what the command may do. Landlock grants read access to everything bwrap mounted and write
//! access only to the listed paths, so a path mounted writable by mistake still is not (a
//! layer that does not depend on the mount table being right).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// How to start the shim: an executable and the arguments that select the shim in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shim {
    pub program: PathBuf,
    pub selector: Vec<String>,
}

/// The subcommand of the `errand` binary that is the shim.
pub const ERRAND_SUBCOMMAND: &str = "sandbox-shim";
/// The name of the standalone shim binary of this crate.
pub const STANDALONE_NAME: &str = "errand-sandbox-shim";

impl Shim {
    /// The `errand` binary as the shim (its hidden `sandbox-shim` subcommand).
    pub fn errand(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            selector: vec![ERRAND_SUBCOMMAND.into()],
        }
    }

    /// The standalone shim binary.
    pub fn standalone(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            selector: Vec::new(),
        }
    }

    /// Finds a shim for this process: a standalone shim next to the running executable (or
    /// one directory up, where cargo puts binaries relative to test executables), which starts
    /// faster than the whole `errand` binary; else the running executable when it is `errand`.
    pub fn locate() -> Option<Self> {
        let exe = std::env::current_exe().ok()?;
        let dir = exe.parent()?;
        let standalone = [Some(dir), dir.parent()]
            .into_iter()
            .flatten()
            .map(|dir| dir.join(STANDALONE_NAME))
            .find(|candidate| is_file(candidate))
            .map(Self::standalone);
        standalone.or_else(|| {
            exe.file_name()
                .is_some_and(|name| name == "errand")
                .then(|| Self::errand(exe.clone()))
        })
    }
}

fn is_file(path: &Path) -> bool {
    path.metadata().is_ok_and(|meta| meta.is_file())
}

/// The fd the bridge process finds its listening socket on.
const BRIDGE_FD: RawFd = 3;
/// Exit status when the shim itself fails (like `env` and `timeout`, distinct from the
/// command's own statuses).
const SHIM_FAILED: u8 = 125;
const NOT_RUNNABLE: u8 = 127;

/// Runs the shim and ends the process (for a caller with nothing left to do after it).
pub fn run_and_exit(args: Vec<OsString>) -> ! {
    match run(args) {
        Ok(never) => match never {},
        Err(Failure { message, code }) => {
            eprintln!("errand-sandbox-shim: {message}");
            std::process::exit(i32::from(code))
        }
    }
}

/// The shim's entry point; `args` are its arguments after the selector (`run ...`).
pub fn main(args: Vec<OsString>) -> ExitCode {
    match run(args) {
        Ok(never) => match never {},
        Err(Failure { message, code }) => {
            eprintln!("errand-sandbox-shim: {message}");
            ExitCode::from(code)
        }
    }
}

struct Failure {
    message: String,
    code: u8,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: SHIM_FAILED,
    }
}

enum Never {}

fn run(args: Vec<OsString>) -> Result<Never, Failure> {
    let mut args = args.into_iter();
    match args.next().as_deref().and_then(|mode| mode.to_str()) {
        Some("run") => run_command(parse_run(args)?),
        Some("bridge") => bridge(args.collect()),
        Some("watchdog") => watchdog(args.collect()),
        other => Err(fail(format!(
            "unknown mode {other:?}; expected run, bridge or watchdog"
        ))),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct RunArgs {
    writable: Vec<PathBuf>,
    /// Each a loopback port relayed to a host socket (the egress proxy, the model gateway).
    bridges: Vec<(u16, PathBuf)>,
    command: Vec<OsString>,
}

fn parse_run(mut args: impl Iterator<Item = OsString>) -> Result<RunArgs, Failure> {
    let mut parsed = RunArgs::default();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--writable") => {
                let path = args.next().ok_or_else(|| fail("--writable needs a path"))?;
                parsed.writable.push(path.into());
            }
            Some("--bridge") => {
                let port = args
                    .next()
                    .and_then(|port| port.to_str()?.parse().ok())
                    .ok_or_else(|| fail("--bridge needs a port"))?;
                let socket = args
                    .next()
                    .ok_or_else(|| fail("--bridge needs a socket path"))?;
                parsed.bridges.push((port, socket.into()));
            }
            Some("--") => {
                parsed.command = args.collect();
                break;
            }
            _ => return Err(fail(format!("unexpected argument {arg:?}"))),
        }
    }
    if parsed.command.is_empty() {
        return Err(fail("no command after --"));
    }
    Ok(parsed)
}

fn run_command(args: RunArgs) -> Result<Never, Failure> {
    landlock::restrict(&args.writable).map_err(|err| fail(format!("landlock: {err}")))?;
    for (port, socket) in &args.bridges {
        start_bridge(*port, socket)?;
    }
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| fail("no command"))?;
    let err = Command::new(program).args(rest).exec();
    Err(Failure {
        message: format!("cannot run {}: {err}", Path::new(program).display()),
        code: NOT_RUNNABLE,
    })
}

/// Listens on the sandbox's loopback before the command starts (so its first request finds
/// the port open), and leaves the serving to a detached process.
fn start_bridge(port: u16, socket: &Path) -> Result<(), Failure> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .map_err(|err| fail(format!("bridge: listening on 127.0.0.1:{port}: {err}")))?;
    let status = bridge_command(&["bridge", "--detach"], socket, listener.as_raw_fd())?
        .status()
        .map_err(|err| fail(format!("bridge: starting: {err}")))?;
    if !status.success() {
        return Err(fail(format!("bridge: starting: {status}")));
    }
    Ok(())
}

/// This executable again (with its selector), in `mode`, with `listener` as fd 3.
fn bridge_command(mode: &[&str], socket: &Path, listener: RawFd) -> Result<Command, Failure> {
    let exe = std::env::current_exe().map_err(|err| fail(format!("bridge: own path: {err}")))?;
    let own_args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let selector_len = own_args
        .iter()
        .position(|arg| arg == "run" || arg == "bridge")
        .unwrap_or(0);
    let mut command = Command::new(exe);
    command
        .args(&own_args[..selector_len])
        .args(mode)
        .arg(socket)
        .stdin(std::process::Stdio::null());
    // SAFETY: dup2 and fcntl are async-signal-safe; they give the child the listener at a
    // known fd without close-on-exec (dup2 clears it on a copy, but is a no-op when the
    // listener already is that fd).
    unsafe {
        command.pre_exec(move || {
            let rc = if listener == BRIDGE_FD {
                libc::fcntl(BRIDGE_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(listener, BRIDGE_FD)
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(command)
}

/// `bridge [--detach] SOCKET`: serves the listener on fd 3, forwarding every connection to
/// the Unix socket. With --detach it starts a copy of itself and returns at once, so the
/// serving process is no child of the command (which might wait for all its children).
fn bridge(args: Vec<OsString>) -> Result<Never, Failure> {
    let (detach, socket) = match args.as_slice() {
        [flag, socket] if flag == "--detach" => (true, PathBuf::from(socket)),
        [socket] => (false, PathBuf::from(socket)),
        _ => return Err(fail("bridge needs a socket path")),
    };
    if detach {
        bridge_command(&["bridge"], &socket, BRIDGE_FD)?
            .spawn()
            .map_err(|err| fail(format!("bridge: detaching: {err}")))?;
        std::process::exit(0);
    }
    // SAFETY: fd 3 was set up by `bridge_command` as the listening socket, owned by nobody else.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(BRIDGE_FD) };
    loop {
        let Ok((client, _)) = listener.accept() else {
            continue;
        };
        let socket = socket.clone();
        std::thread::spawn(move || forward(client, &socket));
    }
}

/// `watchdog PID`, on the host: waits until its stdin (a pipe only worker PID holds open)
/// ends, which happens when the worker dies however it dies, then kills every run cgroup the
/// worker left. bwrap's own parent-death signal covers a run once bwrap has armed it; this
/// covers a worker killed while bwrap was still setting up.
fn watchdog(args: Vec<OsString>) -> Result<Never, Failure> {
    let pid: u32 = match args.as_slice() {
        [pid] => pid.to_str().and_then(|pid| pid.parse().ok()),
        _ => None,
    }
    .ok_or_else(|| fail("watchdog needs the worker's pid"))?;
    let mut stdin = io::stdin().lock();
    let mut buf = [0u8; 64];
    loop {
        match io::Read::read(&mut stdin, &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let layout = super::cgroup::CgroupLayout::probe()
        .map_err(|err| fail(format!("watchdog: reading cgroups: {err}")))?;
    super::cgroup::sweep_runs_of(&layout, pid);
    std::process::exit(0)
}

/// Starts this process's watchdog (once; it lives as long as the process).
pub(super) fn start_watchdog(shim: &Shim) -> io::Result<()> {
    use std::sync::{Mutex, OnceLock};
    static WATCHDOG: OnceLock<Mutex<Option<std::process::Child>>> = OnceLock::new();
    let slot = WATCHDOG.get_or_init(|| Mutex::new(None));
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(child) = slot.as_mut()
        && child.try_wait()?.is_none()
    {
        return Ok(());
    }
    let child = Command::new(&shim.program)
        .args(&shim.selector)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        // The write end stays with us (close-on-exec, so no other child inherits it): when
        // this process dies, the watchdog reads end-of-file.
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    *slot = Some(child);
    Ok(())
}

fn forward(client: std::net::TcpStream, socket: &Path) {
    let Ok(upstream) = std::os::unix::net::UnixStream::connect(socket) else {
        return;
    };
    let (Ok(client_read), Ok(upstream_write)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let upload = std::thread::spawn(move || copy_then_close(client_read, upstream_write));
    copy_then_close(upstream, client);
    let _ = upload.join();
}

/// Copies until end of stream, then shuts the writer's sending side so the peer sees it.
fn copy_then_close<R: io::Read, W: io::Write + IntoRawFd>(mut from: R, mut to: W) {
    let _ = io::copy(&mut from, &mut to);
    let fd = to.into_raw_fd();
    // SAFETY: we own fd (from into_raw_fd) and close it right after.
    unsafe {
        libc::shutdown(fd, libc::SHUT_WR);
        libc::close(fd);
    }
}

mod landlock {
    //! The Landlock ruleset: read (and execute) anywhere, write only beneath the given paths,
    //! no abstract Unix sockets or signals beyond the sandbox. Best effort: an older kernel
    //! enforces what it knows, a kernel without Landlock nothing (bwrap is the boundary).

    use std::path::PathBuf;

    use landlock::{
        ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetError, Scope, path_beneath_rules,
    };

    const ABI_VERSION: ABI = ABI::V6;

    pub(super) fn restrict(writable: &[PathBuf]) -> Result<(), RulesetError> {
        let writable: Vec<&PathBuf> = writable.iter().filter(|path| path.exists()).collect();
        Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(ABI_VERSION))?
            .scope(Scope::from_all(ABI_VERSION))?
            .create()?
            .add_rules(path_beneath_rules(["/"], AccessFs::from_read(ABI_VERSION)))?
            .add_rules(path_beneath_rules(
                writable,
                AccessFs::from_all(ABI_VERSION),
            ))?
            .restrict_self()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_run_arguments() {
        let parsed = parse_run(
            os(&[
                "--writable",
                "/repo",
                "--bridge",
                "3128",
                "/run/sbx/egress/proxy.sock",
                "--",
                "sh",
                "-c",
                "x",
            ])
            .into_iter(),
        )
        .unwrap_or_else(|f| panic!("{}", f.message));
        assert_eq!(parsed.writable, [PathBuf::from("/repo")]);
        assert_eq!(
            parsed.bridges,
            [(3128, "/run/sbx/egress/proxy.sock".into())]
        );
        assert_eq!(parsed.command, os(&["sh", "-c", "x"]));
        let two = parse_run(
            os(&[
                "--bridge",
                "3128",
                "/run/sbx/egress/proxy.sock",
                "--bridge",
                "3129",
                "/run/sbx/gateway.sock",
                "--",
                "true",
            ])
            .into_iter(),
        )
        .unwrap_or_else(|f| panic!("{}", f.message));
        assert_eq!(
            two.bridges,
            [
                (3128, "/run/sbx/egress/proxy.sock".into()),
                (3129, "/run/sbx/gateway.sock".into())
            ]
        );
        for bad in [
            &["--"][..],
            &["--bridge", "x", "y", "--", "a"],
            &["--writable"],
            &["sh"],
        ] {
            assert!(parse_run(os(bad).into_iter()).is_err(), "{bad:?}");
        }
    }
}
