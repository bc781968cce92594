//! The bubblewrap profile: a pure function from a resolved spec and the host's layout to the
//! bwrap argv. No IO here, so every flag is unit tested; `HostLayout::probe` does the looking.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Where the workspace appears inside the sandbox; also the working directory.
pub const WORKSPACE_MOUNT: &str = "/repo";
/// Where `inputs_dir` appears inside the sandbox (prompt and feedback files).
pub const INPUTS_MOUNT: &str = "/run/errand";
pub const SANDBOX_HOME: &str = "/home/agent";
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// The uid and gid the agent sees; host root maps to it, so it holds no capability anywhere.
pub const SANDBOX_UID: u32 = 1000;
pub const SANDBOX_HOSTNAME: &str = "sandbox";

/// The top-level directories that merged-usr systems make symlinks into /usr.
const USR_ALIASES: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// Host /etc entries that dynamic linking, shells, git and coreutils need, and nothing that
/// could carry host configuration or secrets (no gitconfig, no ssl keys, no passwd of the host).
const HOST_ETC: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/nsswitch.conf",
    // Public CA certificates only (not /etc/ssl/private): TLS through the egress proxy needs
    // them, and so does the errand binary when it runs as the shim.
    "/etc/ssl/certs",
];

/// Files generated for the sandbox, passed to bwrap as pipe fds (`--ro-bind-data`).
pub fn generated_etc() -> Vec<(&'static str, String)> {
    let uid = SANDBOX_UID;
    vec![
        (
            "/etc/passwd",
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\n\
                 agent:x:{uid}:{uid}:errand agent:{SANDBOX_HOME}:/bin/sh\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        (
            "/etc/group",
            format!("root:x:0:\nagent:x:{uid}:\nnogroup:x:65534:\n"),
        ),
        (
            "/etc/hosts",
            format!("127.0.0.1 localhost\n::1 localhost\n127.0.1.1 {SANDBOX_HOSTNAME}\n"),
        ),
        ("/etc/hostname", format!("{SANDBOX_HOSTNAME}\n")),
    ]
}

/// How a top-level `/bin`-like entry looks on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsrAlias {
    /// A merged-usr symlink, recreated inside with the same target.
    Symlink { path: PathBuf, target: PathBuf },
    /// A real directory (split-usr host), bound read-only.
    Dir { path: PathBuf },
}

/// The parts of the host filesystem the profile exposes, found once by `probe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLayout {
    pub usr_aliases: Vec<UsrAlias>,
    pub etc: Vec<PathBuf>,
}

impl HostLayout {
    pub fn probe() -> Self {
        let usr_aliases = USR_ALIASES
            .iter()
            .filter_map(|path| {
                let path = PathBuf::from(path);
                let meta = std::fs::symlink_metadata(&path).ok()?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).ok()?;
                    Some(UsrAlias::Symlink { path, target })
                } else if meta.is_dir() {
                    Some(UsrAlias::Dir { path })
                } else {
                    None
                }
            })
            .collect();
        let etc = HOST_ETC
            .iter()
            .map(PathBuf::from)
            .filter(|path| path.exists())
            .collect();
        Self { usr_aliases, etc }
    }
}

/// A spec after its paths were checked on the host (see `Sandbox::spawn`). Paths are the
/// sources bwrap binds: host paths, or the staged mounts of a root worker.
#[derive(Debug, Clone)]
pub struct ResolvedSpec {
    /// What bwrap binds at /repo.
    pub workspace: PathBuf,
    /// The workspace has a `.git` (a real directory or file, never a symlink) to protect.
    pub protect_git: bool,
    pub inputs_dir: Option<PathBuf>,
    /// A file bound read-only at `argv[0]` when the program lives outside /usr.
    pub program: Option<PathBuf>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Where the shim (Landlock and the egress bridge, inside the sandbox) is mounted.
pub const SHIM_MOUNT: &str = "/run/sbx/shim";
/// Where the egress proxy's socket directory is mounted.
pub const EGRESS_MOUNT: &str = "/run/sbx/egress";
/// The proxy's socket inside `EGRESS_MOUNT`.
pub const EGRESS_SOCKET: &str = "proxy.sock";
/// Where the in-sandbox bridge to the egress proxy listens (loopback of the sandbox's own
/// network namespace).
pub const EGRESS_PORT: u16 = 3128;
/// Where the model gateway's socket is mounted.
pub const GATEWAY_MOUNT: &str = "/run/sbx/gateway.sock";
/// Where the in-sandbox bridge to the model gateway listens (the agent's model base URL is
/// `http://127.0.0.1:GATEWAY_PORT`).
pub const GATEWAY_PORT: u16 = 3129;
/// Paths the agent may write (everything else is read-only to it), for Landlock.
pub const WRITABLE: &[&str] = &[
    WORKSPACE_MOUNT,
    "/tmp",
    SANDBOX_HOME,
    "/dev/shm",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
];

/// Everything else the profile needs besides the spec and the host layout.
#[derive(Debug, Clone, Default)]
pub struct Extras<'a> {
    /// Each generated file's destination and the fd bwrap reads it from.
    pub data_fds: &'a [(&'a str, RawFd)],
    /// Compiled seccomp filters, one fd each.
    pub seccomp_fds: &'a [RawFd],
    pub tmp_bytes: u64,
    pub home_bytes: u64,
    /// The shim's source file and the arguments that select it (e.g. a subcommand).
    pub shim: Option<(&'a Path, &'a [String])>,
    /// The egress proxy's socket directory; implies the shim's bridge.
    pub egress_dir: Option<&'a Path>,
    /// The model gateway's socket; implies the shim's bridge on `GATEWAY_PORT`.
    pub gateway_socket: Option<&'a Path>,
}

/// The bwrap argv (without the bwrap path itself).
pub fn bwrap_args(spec: &ResolvedSpec, host: &HostLayout, extras: &Extras<'_>) -> Vec<OsString> {
    let mut args = Args::default();
    // Isolation: every namespace, a user namespace even for root (otherwise root keeps
    // capabilities over the mounts), no nested user namespaces, no tty to inject into.
    args.flags(&["--unshare-all", "--unshare-user", "--disable-userns"]);
    args.flags(&["--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
    args.flags(&["--hostname", SANDBOX_HOSTNAME]);
    let uid = SANDBOX_UID.to_string();
    args.flags(&["--uid", &uid, "--gid", &uid]);

    args.flag("--clearenv");
    let defaults = [
        ("PATH", SANDBOX_PATH),
        ("HOME", SANDBOX_HOME),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
    ];
    for (name, value) in defaults {
        args.flags(&["--setenv", name, value]);
    }
    if extras.egress_dir.is_some() {
        let proxy = format!("http://127.0.0.1:{EGRESS_PORT}");
        for name in PROXY_VARIABLES {
            args.flags(&["--setenv", name, &proxy]);
        }
        args.flags(&["--setenv", "NO_PROXY", "localhost,127.0.0.1,::1"]);
        args.flags(&["--setenv", "no_proxy", "localhost,127.0.0.1,::1"]);
    }
    // Later --setenv wins, so the spec may override a default (e.g. a longer PATH).
    for (name, value) in &spec.env {
        args.flags(&["--setenv", name, value]);
    }

    args.flag("--ro-bind").path("/usr").path("/usr");
    for alias in &host.usr_aliases {
        match alias {
            UsrAlias::Symlink { path, target } => args.flag("--symlink").path(target).path(path),
            UsrAlias::Dir { path } => args.flag("--ro-bind").path(path).path(path),
        };
    }
    for path in &host.etc {
        args.flag("--ro-bind").path(path).path(path);
    }
    for (dest, fd) in extras.data_fds {
        args.flags(&["--perms", "0444", "--ro-bind-data", &fd.to_string(), dest]);
    }

    args.flags(&["--proc", "/proc", "--dev", "/dev"]);
    // Sized, like every writable place: /dev/shm would otherwise be an unbounded directory
    // of the /dev tmpfs (POSIX shared memory and semaphores live there).
    args.flags(&["--size", &SHM_SIZE_BYTES.to_string(), "--tmpfs", "/dev/shm"]);
    // bwrap's /dev is a tmpfs the agent owns; only its device nodes (writes to which reach
    // the device, not the filesystem) and the mounts on it stay writable.
    args.flags(&["--remount-ro", "/dev"]);
    args.flags(&["--size", &extras.tmp_bytes.to_string(), "--tmpfs", "/tmp"]);
    args.flags(&[
        "--size",
        &extras.home_bytes.to_string(),
        "--tmpfs",
        SANDBOX_HOME,
    ]);

    args.flag("--bind")
        .path(&spec.workspace)
        .path(WORKSPACE_MOUNT);
    if spec.protect_git {
        // After the workspace bind, so it lands on top: the agent edits files but cannot plant
        // hooks or config that the host's git would later run.
        let git = Path::new(WORKSPACE_MOUNT).join(".git");
        args.flag("--ro-bind")
            .path(spec.workspace.join(".git"))
            .path(&git);
    }
    if let Some(inputs) = &spec.inputs_dir {
        args.flag("--ro-bind").path(inputs).path(INPUTS_MOUNT);
    }
    if let Some(program) = &spec.program {
        args.flag("--ro-bind").path(program).path(&spec.argv[0]);
    }
    if let Some((shim, _)) = extras.shim {
        args.flag("--ro-bind").path(shim).path(SHIM_MOUNT);
    }
    if let Some(egress) = extras.egress_dir {
        args.flag("--ro-bind").path(egress).path(EGRESS_MOUNT);
    }
    if let Some(gateway) = extras.gateway_socket {
        args.flag("--ro-bind").path(gateway).path(GATEWAY_MOUNT);
    }
    for fd in extras.seccomp_fds {
        args.flags(&["--add-seccomp-fd", &fd.to_string()]);
    }
    // Last, once every mount point exists: the sandbox root itself is read-only.
    args.flags(&["--remount-ro", "/", "--chdir", WORKSPACE_MOUNT, "--"]);
    if let Some((_, selector)) = extras.shim {
        args.flag(SHIM_MOUNT);
        args.0.extend(selector.iter().map(OsString::from));
        args.flag("run");
        for path in WRITABLE {
            args.flags(&["--writable", path]);
        }
        if extras.egress_dir.is_some() {
            let socket = Path::new(EGRESS_MOUNT).join(EGRESS_SOCKET);
            args.flag("--bridge")
                .flag(&EGRESS_PORT.to_string())
                .path(socket);
        }
        if extras.gateway_socket.is_some() {
            args.flag("--bridge")
                .flag(&GATEWAY_PORT.to_string())
                .flag(GATEWAY_MOUNT);
        }
        args.flag("--");
    }
    args.0.extend(spec.argv.iter().map(OsString::from));
    args.0
}

/// Proxy variables that curl, git, cargo, pip, npm and friends read.
const PROXY_VARIABLES: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "CARGO_HTTP_PROXY",
    "npm_config_proxy",
    "npm_config_https_proxy",
    "PIP_PROXY",
];
const SHM_SIZE_BYTES: u64 = 64 << 20;

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, flag: &str) -> &mut Self {
        self.0.push(flag.into());
        self
    }

    fn flags(&mut self, flags: &[&str]) -> &mut Self {
        self.0.extend(flags.iter().map(OsString::from));
        self
    }

    fn path(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.0.push(path.as_ref().as_os_str().to_owned());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ResolvedSpec {
        ResolvedSpec {
            workspace: "/work/ws".into(),
            protect_git: true,
            inputs_dir: Some("/work/in".into()),
            program: None,
            argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec![("AGENT_MODE".into(), "test".into())],
        }
    }

    fn merged_usr() -> HostLayout {
        HostLayout {
            usr_aliases: vec![
                UsrAlias::Symlink {
                    path: "/bin".into(),
                    target: "usr/bin".into(),
                },
                UsrAlias::Dir {
                    path: "/lib64".into(),
                },
            ],
            etc: vec!["/etc/ld.so.cache".into()],
        }
    }

    fn args(spec: &ResolvedSpec) -> Vec<String> {
        args_with(spec, &Extras::default())
    }

    fn args_with(spec: &ResolvedSpec, extras: &Extras<'_>) -> Vec<String> {
        let data = [("/etc/passwd", 7)];
        let extras = Extras {
            data_fds: &data,
            seccomp_fds: &[9, 10],
            tmp_bytes: 1 << 30,
            home_bytes: 1 << 28,
            ..extras.clone()
        };
        bwrap_args(spec, &merged_usr(), &extras)
            .into_iter()
            .map(|arg| arg.into_string().expect("utf-8 in test"))
            .collect()
    }

    /// Position of a run of consecutive arguments.
    fn find(args: &[String], run: &[&str]) -> Option<usize> {
        args.windows(run.len()).position(|window| window == run)
    }

    #[test]
    fn isolates_every_namespace_and_drops_everything() {
        let args = args(&spec());
        for run in [
            &["--unshare-all"][..],
            &["--unshare-user"],
            &["--disable-userns"],
            &["--die-with-parent"],
            &["--new-session"],
            &["--cap-drop", "ALL"],
            &["--clearenv"],
            &["--proc", "/proc"],
            &["--dev", "/dev"],
            &["--remount-ro", "/"],
            &["--chdir", "/repo"],
        ] {
            assert!(find(&args, run).is_some(), "missing {run:?} in {args:?}");
        }
        assert!(
            !args.iter().any(|arg| arg == "--share-net"),
            "network must stay unshared"
        );
        assert!(
            find(&args, &["--ro-bind", "/", "/"]).is_none()
                && find(&args, &["--bind", "/", "/"]).is_none()
        );
    }

    #[test]
    fn mounts_the_workspace_then_its_git_read_only_on_top() {
        let args = args(&spec());
        let workspace = find(&args, &["--bind", "/work/ws", "/repo"]).expect("workspace bind");
        let git = find(&args, &["--ro-bind", "/work/ws/.git", "/repo/.git"]).expect("git bind");
        assert!(
            workspace < git,
            "the .git bind must come after the workspace bind"
        );
        assert!(find(&args, &["--ro-bind", "/work/in", "/run/errand"]).is_some());

        let without_git = args_for(|spec| {
            spec.protect_git = false;
            spec.inputs_dir = None;
        });
        assert!(
            !without_git
                .iter()
                .any(|arg| arg == "/repo/.git" || arg == "/run/errand")
        );
    }

    fn args_for(change: impl FnOnce(&mut ResolvedSpec)) -> Vec<String> {
        let mut spec = spec();
        change(&mut spec);
        args(&spec)
    }

    #[test]
    fn host_layout_and_generated_files() {
        let args = args(&spec());
        assert!(find(&args, &["--ro-bind", "/usr", "/usr"]).is_some());
        assert!(find(&args, &["--symlink", "usr/bin", "/bin"]).is_some());
        assert!(find(&args, &["--ro-bind", "/lib64", "/lib64"]).is_some());
        assert!(
            find(
                &args,
                &["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
            )
            .is_some()
        );
        assert!(find(&args, &["--ro-bind-data", "7", "/etc/passwd"]).is_some());
        assert!(
            !args
                .iter()
                .any(|arg| arg == "/etc" || arg == "/root" || arg == "/run")
        );
    }

    #[test]
    fn environment_is_cleared_then_set_with_spec_last() {
        let args = args_for(|spec| spec.env.push(("PATH".into(), "/opt/x:/usr/bin".into())));
        let clear = find(&args, &["--clearenv"]).expect("clearenv");
        let default_path = find(&args, &["--setenv", "PATH", SANDBOX_PATH]).expect("default PATH");
        let spec_path = find(&args, &["--setenv", "PATH", "/opt/x:/usr/bin"]).expect("spec PATH");
        assert!(clear < default_path && default_path < spec_path);
        assert!(find(&args, &["--setenv", "HOME", "/home/agent"]).is_some());
        assert!(find(&args, &["--setenv", "AGENT_MODE", "test"]).is_some());
    }

    #[test]
    fn argv_follows_the_separator_verbatim() {
        let args = args(&spec());
        let separator = args.iter().rposition(|arg| arg == "--").expect("separator");
        assert_eq!(args[separator + 1..], ["sh", "-c", "echo hi"]);
    }

    #[test]
    fn a_program_outside_usr_is_bound_at_its_path() {
        let args = args_for(|spec| {
            spec.program = Some("/opt/agent/bin/agent-1.2".into());
            spec.argv = vec!["/opt/agent/bin/agent".into()];
        });
        assert!(
            find(
                &args,
                &[
                    "--ro-bind",
                    "/opt/agent/bin/agent-1.2",
                    "/opt/agent/bin/agent"
                ]
            )
            .is_some()
        );
    }

    #[test]
    fn generated_passwd_names_the_agent() {
        let files = generated_etc();
        let passwd = &files
            .iter()
            .find(|(dest, _)| *dest == "/etc/passwd")
            .expect("passwd")
            .1;
        assert!(passwd.contains("agent:x:1000:1000:errand agent:/home/agent:/bin/sh"));
    }

    #[test]
    fn seccomp_filters_and_sized_tmpfs() {
        let args = args(&spec());
        assert!(find(&args, &["--add-seccomp-fd", "9"]).is_some());
        assert!(find(&args, &["--add-seccomp-fd", "10"]).is_some());
        assert!(find(&args, &["--size", "1073741824", "--tmpfs", "/tmp"]).is_some());
        assert!(find(&args, &["--size", "268435456", "--tmpfs", "/home/agent"]).is_some());
        let shm = find(&args, &["--tmpfs", "/dev/shm"]).expect("shm");
        let dev_ro = find(&args, &["--remount-ro", "/dev"]).expect("/dev read-only");
        assert!(
            shm < dev_ro,
            "/dev/shm is mounted before /dev turns read-only"
        );
        let separator = args.iter().rposition(|arg| arg == "--").expect("separator");
        let filter = args
            .iter()
            .position(|arg| arg == "--add-seccomp-fd")
            .expect("filter");
        assert!(filter < separator);
    }

    #[test]
    fn the_shim_wraps_the_command_and_the_bridge_sets_proxies() {
        let selector = vec!["sandbox-shim".to_owned()];
        let extras = Extras {
            shim: Some((Path::new("/opt/errand"), &selector)),
            egress_dir: Some(Path::new("/stage/egress")),
            ..Extras::default()
        };
        let args = args_with(&spec(), &extras);
        assert!(find(&args, &["--ro-bind", "/opt/errand", SHIM_MOUNT]).is_some());
        assert!(find(&args, &["--ro-bind", "/stage/egress", EGRESS_MOUNT]).is_some());
        assert!(find(&args, &["--setenv", "https_proxy", "http://127.0.0.1:3128"]).is_some());
        let command = args.iter().position(|arg| arg == "--chdir").expect("chdir") + 3;
        assert_eq!(
            args[command..command + 3],
            [SHIM_MOUNT, "sandbox-shim", "run"]
        );
        assert!(find(&args, &["--writable", "/repo"]).is_some());
        assert!(find(&args, &["--bridge", "3128", "/run/sbx/egress/proxy.sock"]).is_some());
        let separator = args.iter().rposition(|arg| arg == "--").expect("separator");
        assert_eq!(args[separator + 1..], ["sh", "-c", "echo hi"]);

        let plain = super::tests::args(&spec());
        assert!(
            !plain
                .iter()
                .any(|arg| arg.contains("proxy") || arg == SHIM_MOUNT)
        );
    }

    #[test]
    fn the_model_gateway_is_one_more_bridge_and_no_network() {
        let selector = vec![];
        let extras = Extras {
            shim: Some((Path::new("/opt/shim"), &selector)),
            gateway_socket: Some(Path::new("/stage/gateway.sock")),
            ..Extras::default()
        };
        let args = args_with(&spec(), &extras);
        assert!(find(&args, &["--ro-bind", "/stage/gateway.sock", GATEWAY_MOUNT]).is_some());
        assert!(find(&args, &["--bridge", "3129", "/run/sbx/gateway.sock"]).is_some());
        assert!(!args.iter().any(|arg| arg == "--share-net"));
        assert!(
            !args.iter().any(|arg| arg.contains("proxy")),
            "the gateway alone sets no proxy: {args:?}"
        );
        let both = args_with(
            &spec(),
            &Extras {
                egress_dir: Some(Path::new("/stage/egress")),
                ..extras.clone()
            },
        );
        assert!(find(&both, &["--bridge", "3128", "/run/sbx/egress/proxy.sock"]).is_some());
        assert!(find(&both, &["--bridge", "3129", "/run/sbx/gateway.sock"]).is_some());
    }
}
