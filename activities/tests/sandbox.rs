//! The sandbox against the real bwrap: what a command inside can and cannot reach, that its
//! whole process tree dies at the deadline or on cancel, and that detection fails closed.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use activities::sandbox::{
    Exit, LOG_CAP_BYTES, Limits, Outcome, SANDBOX_ID_BASE, SANDBOX_ID_SLOTS, Sandbox, SandboxError,
    SandboxSpec,
};
use tempfile::TempDir;

/// No test may take longer than this, whatever goes wrong inside the sandbox.
const TEST_BOUND: Duration = Duration::from_secs(60);
/// How long a killed process tree may take to disappear from the host's /proc.
const REAP_BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

async fn sandbox() -> Sandbox {
    Sandbox::detect()
        .await
        .expect("bwrap must work on the test host")
}

/// A temporary workspace and a log path outside it.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("workspace")).expect("workspace");
        Self { dir }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("run.log")
    }

    fn spec(&self, argv: &[&str]) -> SandboxSpec {
        SandboxSpec {
            workspace: self.workspace(),
            inputs_dir: None,
            argv: argv.iter().map(|arg| (*arg).to_owned()).collect(),
            env: vec![],
            timeout: Duration::from_secs(30),
            log_path: self.log(),
            // An unprivileged test run cannot cap the workspace (such a run would be refused).
            limits: Limits {
                // SAFETY: a plain syscall.
                workspace_write_bytes: if unsafe { libc::geteuid() } == 0 {
                    Limits::default().workspace_write_bytes
                } else {
                    None
                },
                ..Limits::default()
            },
            network: None,
            model_gateway: None,
        }
    }

    fn script(&self, script: &str, args: &[&str]) -> SandboxSpec {
        let mut argv = vec!["sh", "-c", script, "sh"];
        argv.extend(args);
        self.spec(&argv)
    }
}

async fn run(spec: &SandboxSpec) -> Outcome {
    sandbox()
        .await
        .spawn(spec)
        .expect("spawn")
        .wait(std::future::pending())
        .await
        .expect("wait")
}

#[tokio::test]
async fn workspace_is_writable_and_the_working_directory() {
    bounded(async {
        let fx = Fixture::new();
        let outcome = run(&fx.script("echo hello > out.txt && pwd && id -un", &[])).await;
        assert_eq!(outcome.exit, Exit::Code(0), "{}", outcome.output_tail);
        assert_eq!(outcome.output_tail, "/repo\nagent\n");
        assert_eq!(
            std::fs::read_to_string(fx.workspace().join("out.txt")).expect("out"),
            "hello\n"
        );
        assert_eq!(
            std::fs::read_to_string(fx.log()).expect("log"),
            "/repo\nagent\n"
        );
    })
    .await;
}

#[tokio::test]
async fn exit_codes_come_through() {
    bounded(async {
        let fx = Fixture::new();
        assert_eq!(run(&fx.script("exit 7", &[])).await.exit, Exit::Code(7));
    })
    .await;
}

#[tokio::test]
async fn writes_outside_the_workspace_fail() {
    bounded(async {
        let fx = Fixture::new();
        let inputs = fx.dir.path().join("inputs");
        std::fs::create_dir(&inputs).expect("inputs");
        std::fs::write(inputs.join("prompt.md"), "do the thing\n").expect("prompt");
        let marker = unique("errand-escape");
        let targets: Vec<String> = ["/usr", "/etc", "", "/root", "/run/errand", "/home", "/proc"]
            .iter()
            .map(|dir| format!("{dir}/{marker}"))
            .collect();
        let mut spec = fx.script(
            r#"cat /run/errand/prompt.md
               for target in "$@"; do
                 if (echo x > "$target") 2>/dev/null; then echo "WROTE $target"; fi
               done
               echo tmp > /tmp/ok && echo home > /home/agent/ok && echo checked"#,
            &targets.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        spec.inputs_dir = Some(inputs.clone());
        let outcome = run(&spec).await;
        assert_eq!(outcome.exit, Exit::Code(0), "{}", outcome.output_tail);
        assert_eq!(outcome.output_tail, "do the thing\nchecked\n");
        for target in &targets {
            assert!(!Path::new(target).exists(), "{target} appeared on the host");
        }
        assert_eq!(std::fs::read_dir(&inputs).expect("inputs").count(), 1);
    })
    .await;
}

#[tokio::test]
async fn git_metadata_is_read_only() {
    bounded(async {
        let fx = Fixture::new();
        let status = std::process::Command::new("git")
            .args(["init", "--quiet"])
            .current_dir(fx.workspace())
            .status()
            .expect("git init");
        assert!(status.success());
        let outcome = run(&fx.script(
            r#"echo edit > file.txt || echo "NO WORKTREE WRITE"
               (echo '#!/bin/sh' > .git/hooks/pre-commit) 2>/dev/null && echo "WROTE HOOK"
               (echo '[core]' >> .git/config) 2>/dev/null && echo "WROTE CONFIG"
               umount /repo/.git 2>/dev/null && echo "UNMOUNTED"
               (rm -rf .git) 2>/dev/null && echo "REMOVED"
               echo checked"#,
            &[],
        ))
        .await;
        assert_eq!(outcome.output_tail, "checked\n");
        assert!(fx.workspace().join("file.txt").exists());
        assert!(!fx.workspace().join(".git/hooks/pre-commit").exists());
        assert!(fx.workspace().join(".git/HEAD").exists());
    })
    .await;
}

#[tokio::test]
async fn environment_is_only_what_the_spec_gives() {
    bounded(async {
        // SAFETY: std serialises its own environment access, and nothing in this test binary
        // reads the environment from C while tests run.
        unsafe { std::env::set_var("ERRAND_TEST_DECOY", "host-secret") };
        let fx = Fixture::new();
        let mut spec = fx.spec(&["/usr/bin/env"]);
        spec.env = vec![("AGENT_MODE".into(), "test".into())];
        let outcome = run(&spec).await;
        assert_eq!(outcome.exit, Exit::Code(0));
        let seen: BTreeSet<&str> = outcome.output_tail.lines().collect();
        let expected: BTreeSet<&str> = [
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "HOME=/home/agent",
            "TMPDIR=/tmp",
            "LANG=C.UTF-8",
            "AGENT_MODE=test",
            // bwrap's --chdir sets it.
            "PWD=/repo",
        ]
        .into();
        assert_eq!(seen, expected);
    })
    .await;
}

#[tokio::test]
async fn no_network_but_loopback() {
    bounded(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port().to_string();
        let fx = Fixture::new();
        let outcome = run(&fx.spec(&[
            "bash",
            "-c",
            r#"tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '
               (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && echo CONNECTED
               echo checked"#,
            "bash",
            &port,
        ]))
        .await;
        assert_eq!(outcome.output_tail, "lo\nchecked\n");
        let accepted = listener.accept();
        assert!(
            matches!(&accepted, Err(err) if err.kind() == std::io::ErrorKind::WouldBlock),
            "the host listener was reached: {accepted:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn no_inherited_file_descriptors() {
    bounded(async {
        // An fd without close-on-exec, as a careless library or the test harness might hold.
        // SAFETY: dup of stderr; the new fd is closed below.
        let leaked = unsafe { libc::dup(2) };
        assert!(leaked > 2);
        let fx = Fixture::new();
        let outcome = run(&fx.script("ls /proc/$$/fd", &[])).await;
        // SAFETY: closes the fd opened above, which nothing else uses.
        unsafe { libc::close(leaked) };
        let fds: BTreeSet<&str> = outcome.output_tail.lines().collect();
        assert_eq!(fds, ["0", "1", "2"].into());
    })
    .await;
}

#[tokio::test]
async fn a_program_outside_usr_is_reachable() {
    bounded(async {
        let fx = Fixture::new();
        let program = fx.dir.path().join("agent");
        std::fs::write(&program, "#!/bin/sh\necho \"agent ran with $1\"\n").expect("program");
        set_mode(&program, 0o755);
        let program = program.to_str().expect("utf-8 path");
        let outcome = run(&fx.spec(&[program, "arg"])).await;
        assert_eq!(outcome.output_tail, "agent ran with arg\n");
    })
    .await;
}

#[tokio::test]
async fn timeout_kills_the_whole_tree() {
    bounded(async {
        let fx = Fixture::new();
        let marker = unique("errand-timeout");
        // A daemon in its own session that outlives its parent, and a parent deaf to SIGTERM.
        let daemon = format!("sleep 1000; : {marker}");
        let script = format!("setsid sh -c '{daemon}' & trap '' TERM; while :; do :; done");
        let mut spec = fx.script(&script, &[]);
        spec.timeout = Duration::from_secs(2);
        let running = sandbox().await.spawn(&spec).expect("spawn");
        // The deadline is enforced by wait, so the daemon is seen alive before it can fire.
        let daemon_argv = ["sh", "-c", daemon.as_str()];
        poll_until(REAP_BOUND, || {
            processes().iter().any(|(_, argv)| *argv == daemon_argv)
        })
        .await;
        let outcome = running.wait(std::future::pending()).await.expect("wait");
        assert_eq!(outcome.exit, Exit::TimedOut);
        assert!(outcome.duration >= spec.timeout, "{:?}", outcome.duration);
        poll_until(REAP_BOUND, || processes_with(&marker).is_empty()).await;
    })
    .await;
}

#[tokio::test]
async fn cancel_kills_the_whole_tree() {
    bounded(async {
        let fx = Fixture::new();
        let marker = unique("errand-cancel");
        let script =
            format!("echo started; setsid sh -c 'sleep 1000; : {marker}' & exec sleep 1000");
        let running = sandbox()
            .await
            .spawn(&fx.script(&script, &[]))
            .expect("spawn");
        let progress = running.progress();
        let cancel = async move {
            poll_until(REAP_BOUND, || progress.snapshot().last_line == "started").await;
        };
        let outcome = running.wait(cancel).await.expect("wait");
        assert_eq!(outcome.exit, Exit::Cancelled);
        assert_eq!(outcome.output_tail, "started\n");
        assert!(outcome.duration < Duration::from_secs(20));
        poll_until(REAP_BOUND, || processes_with(&marker).is_empty()).await;
    })
    .await;
}

#[tokio::test]
async fn output_beyond_the_cap_is_drained_and_dropped() {
    bounded(async {
        let fx = Fixture::new();
        let total: u64 = LOG_CAP_BYTES + (2 << 20);
        let script = "head -c \"$1\" /dev/zero | tr '\\0' x; echo; echo done";
        let outcome = run(&fx.script(script, &[&total.to_string()])).await;
        assert_eq!(outcome.exit, Exit::Code(0));
        assert_eq!(outcome.output_bytes, total + "\ndone\n".len() as u64);
        assert_eq!(
            std::fs::metadata(fx.log()).expect("log").len(),
            LOG_CAP_BYTES
        );
        assert_eq!(outcome.output_tail.len(), 4096);
        assert!(outcome.output_tail.ends_with("xxx\ndone\n"));
    })
    .await;
}

#[tokio::test]
async fn endless_output_does_not_block_the_deadline() {
    bounded(async {
        let fx = Fixture::new();
        let mut spec = fx.spec(&["yes"]);
        spec.timeout = Duration::from_secs(2);
        let outcome = run(&spec).await;
        assert_eq!(outcome.exit, Exit::TimedOut);
        assert!(
            outcome.output_bytes > LOG_CAP_BYTES,
            "{}",
            outcome.output_bytes
        );
        assert_eq!(
            std::fs::metadata(fx.log()).expect("log").len(),
            LOG_CAP_BYTES
        );
    })
    .await;
}

#[tokio::test]
async fn detection_fails_closed() {
    bounded(async {
        let empty = tempfile::tempdir().expect("tempdir");
        let unavailable = |result: Result<Sandbox, SandboxError>| {
            matches!(result, Err(SandboxError::Unavailable { .. }))
        };
        assert!(unavailable(
            Sandbox::detect_on_path(empty.path().as_os_str()).await
        ));
        assert!(unavailable(
            Sandbox::detect_with(Path::new("/nonexistent/bwrap")).await
        ));
        // Something that exits 0 without running anything is not a sandbox...
        assert!(unavailable(
            Sandbox::detect_with(Path::new("/usr/bin/true")).await
        ));
        // ...nor is one that runs the command but ignores the profile.
        let fake = empty.path().join("bwrap");
        std::fs::write(
            &fake,
            "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\n",
        )
        .expect("fake bwrap");
        set_mode(&fake, 0o755);
        assert!(unavailable(
            Sandbox::detect_on_path(empty.path().as_os_str()).await
        ));
        assert!(Sandbox::detect().await.is_ok(), "the real bwrap must pass");
    })
    .await;
}

#[tokio::test]
async fn a_root_worker_runs_the_agent_as_an_unprivileged_uid() {
    bounded(async {
        // SAFETY: a plain syscall.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: only a root worker changes uid");
            return;
        }
        let fx = Fixture::new();
        let marker = unique("errand-uid");
        let running = sandbox()
            .await
            .spawn(&fx.script(
                &format!("echo started; sh -c 'sleep 1000; : {marker}'"),
                &[],
            ))
            .expect("spawn");
        let progress = running.progress();
        poll_until(REAP_BOUND, || !processes_with(&marker).is_empty()).await;
        poll_until(REAP_BOUND, || progress.snapshot().last_line == "started").await;
        // bwrap itself, the shell and its child: every process of the run.
        for (pid, _) in processes_with(&marker) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let uid: u32 = status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next()?.parse().ok())
                .unwrap_or(u32::MAX);
            assert!(
                (SANDBOX_ID_BASE..SANDBOX_ID_BASE + SANDBOX_ID_SLOTS).contains(&uid),
                "process {pid} runs as uid {uid}"
            );
        }
        let outcome = running.wait(cancel_now()).await.expect("wait");
        assert_eq!(outcome.exit, Exit::Cancelled);
    })
    .await;
}

fn cancel_now() -> impl Future<Output = ()> {
    std::future::ready(())
}

#[tokio::test]
async fn workspace_changes_come_back_to_the_host_owned_by_it() {
    bounded(async {
        let fx = Fixture::new();
        let ws = fx.workspace();
        let git = |args: &[&str]| {
            let status = std::process::Command::new("git")
                .args(args)
                .current_dir(&ws)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .status()
                .expect("git");
            assert!(status.success(), "git {args:?}");
        };
        std::fs::create_dir(ws.join("dir")).expect("dir");
        std::fs::write(ws.join("dir/kept"), "kept\n").expect("kept");
        std::fs::write(ws.join("edit.txt"), "old\n").expect("edit");
        std::fs::write(ws.join("gone.txt"), "gone\n").expect("gone");
        git(&["init", "--quiet"]);
        git(&["add", "--all"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "base",
        ]);
        let outcome = run(&fx.script(
            r#"echo new > edit.txt && rm gone.txt && mv dir moved && mkdir -p a/b
               echo deep > a/b/file && ln -s /etc/passwd link && printf '#!/bin/sh\n' > tool
               chmod 4755 tool && mkfifo pipe && echo done"#,
            &[],
        ))
        .await;
        assert_eq!(outcome.output_tail, "done\n");
        let changes = outcome
            .workspace_changes
            .expect("the writes were merged back");
        assert_eq!(changes.skipped, 1, "the FIFO stays behind: {changes:?}");
        assert_eq!(
            std::fs::read_to_string(ws.join("edit.txt")).expect("edit"),
            "new\n"
        );
        assert!(!ws.join("gone.txt").exists() && !ws.join("dir").exists());
        assert_eq!(
            std::fs::read_to_string(ws.join("moved/kept")).expect("moved"),
            "kept\n"
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("a/b/file")).expect("deep"),
            "deep\n"
        );
        assert_eq!(
            std::fs::read_link(ws.join("link")).expect("link"),
            Path::new("/etc/passwd")
        );
        assert!(!ws.join("pipe").exists());
        use std::os::unix::fs::MetadataExt;
        let tool = std::fs::metadata(ws.join("tool")).expect("tool");
        assert_eq!(tool.mode() & 0o7777, 0o755, "set-uid must not come back");
        // SAFETY: a plain syscall.
        let own_uid = unsafe { libc::geteuid() };
        for path in ["edit.txt", "moved/kept", "a/b/file", "tool"] {
            assert_eq!(
                std::fs::metadata(ws.join(path)).expect("meta").uid(),
                own_uid,
                "{path}"
            );
        }
        // The host's git works on it as on any of its own checkouts.
        git(&["add", "--all"]);
        git(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "--quiet",
            "-m",
            "agent",
        ]);
    })
    .await;
}

/// Host processes with their argv (zombies have none, so they don't count as alive).
fn processes() -> Vec<(u32, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let argv = cmdline
                .split(|byte| *byte == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect::<Vec<_>>();
            (!argv.is_empty()).then_some((pid, argv))
        })
        .collect()
}

/// Live host processes with `needle` anywhere in their argv.
fn processes_with(needle: &str) -> Vec<(u32, Vec<String>)> {
    processes()
        .into_iter()
        .filter(|(_, argv)| argv.iter().any(|arg| arg.contains(needle)))
        .collect()
}

/// Polls `condition` until it holds, failing the test after `bound`.
async fn poll_until(bound: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + bound;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
