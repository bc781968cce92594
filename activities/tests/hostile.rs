//! The hostile suite: an agent that tries every escape in shared/notes/sandbox.md §5 (the case
//! number is in each test's name), run through the real launcher (`Sandbox::spawn`, the path
//! tasks take), asserting the denial and, where one exists, the control case showing what the
//! denial depends on. Every test is bounded in time; nothing sleeps to synchronise.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use activities::sandbox::cgroup::CgroupLayout;
use activities::sandbox::egress::{EgressPolicy, Verdict, decision_log_path};
use activities::sandbox::{
    EGRESS_PORT, Exit, Limits, Outcome, Sandbox, SandboxConfig, SandboxError, SandboxSpec, Shim,
};
use tempfile::TempDir;

/// No test may take longer than this, whatever goes wrong inside the sandbox.
const TEST_BOUND: Duration = Duration::from_secs(60);
/// How long a killed process tree may take to disappear from the host's /proc.
const REAP_BOUND: Duration = Duration::from_secs(10);
const SHIM: &str = env!("CARGO_BIN_EXE_errand-sandbox-shim");

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

/// One detected sandbox for the whole binary (detection runs a probe; once is enough).
fn sandbox() -> Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX
        .get_or_init(|| open_sandbox(Some(Shim::standalone(SHIM))))
        .clone()
}

fn open_sandbox(shim: Option<Shim>) -> Sandbox {
    // A runtime of its own: tests each have theirs, and the sandbox outlives any one of them.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(Sandbox::open(SandboxConfig {
            bwrap: which("bwrap").expect("bwrap on PATH"),
            shim,
            cgroup_layout: None,
        }))
    })
    .join()
    .expect("detect thread")
    .expect("the sandbox must work on the test host")
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn is_root() -> bool {
    // SAFETY: a plain syscall.
    unsafe { libc::geteuid() == 0 }
}

/// A workspace (a git checkout with one commit) and a log path outside it.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).expect("workspace");
        std::fs::write(ws.join("README"), "hello\n").expect("readme");
        git(&ws, &["init", "--quiet"]);
        git(&ws, &["add", "README"]);
        git(
            &ws,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "--quiet",
                "-m",
                "init",
            ],
        );
        Self { dir }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("run.log")
    }

    /// `bash -c script`, with `args` as $1...
    fn script(&self, script: &str, args: &[&str]) -> SandboxSpec {
        let mut argv: Vec<String> = vec!["bash".into(), "-c".into(), script.into(), "bash".into()];
        argv.extend(args.iter().map(|arg| (*arg).to_owned()));
        SandboxSpec {
            workspace: self.workspace(),
            inputs_dir: None,
            argv,
            env: vec![],
            timeout: Duration::from_secs(20),
            log_path: self.log(),
            limits: test_limits(),
            network: None,
            model_gateway: None,
        }
    }
}

/// Default limits; an unprivileged test run cannot cap the workspace (it would be refused).
fn test_limits() -> Limits {
    Limits {
        workspace_write_bytes: if is_root() {
            Limits::default().workspace_write_bytes
        } else {
            None
        },
        ..Limits::default()
    }
}

/// Cases that need the run's own cgroup (a root worker here) say so and pass trivially.
fn needs_cgroups(case: &str) -> bool {
    if sandbox().cgroups().is_none() {
        eprintln!("skipped {case}: no writable cgroup on this host (rlimits only)");
        return false;
    }
    true
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

async fn run_in(sandbox: &Sandbox, spec: &SandboxSpec) -> Outcome {
    sandbox
        .spawn(spec)
        .expect("spawn")
        .wait(std::future::pending())
        .await
        .expect("wait")
}

async fn run(spec: &SandboxSpec) -> Outcome {
    run_in(&sandbox(), spec).await
}

/// The log of a run (the whole output, where the tail would cut it).
fn log_text(fx: &Fixture) -> String {
    std::fs::read_to_string(fx.log()).expect("log")
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Live host processes with `needle` in their argv (zombies have none, so they don't count).
fn processes_with(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
        })
        .collect()
}

/// Polls `condition` until it holds, failing the test after `bound`.
async fn poll_until(what: &str, bound: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + bound;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A perl one-liner that makes raw syscalls and prints `name errno` for each (0: success).
/// Numbers come from the test's own libc, so the script is right for the host architecture.
fn syscall_script(calls: &[(&str, libc::c_long, &str)]) -> String {
    let mut perl = String::from("my $buf = \"\\0\" x 256; my $r; ");
    for (name, number, args) in calls {
        let args = if args.is_empty() {
            String::new()
        } else {
            format!(", {args}")
        };
        perl.push_str(&format!(
            "$! = 0; $r = syscall({number}{args}); print \"{name} \", ($r < 0 ? $!+0 : 0), \"\\n\"; "
        ));
    }
    format!("perl -e '{perl}'")
}

fn parse_results(output: &str) -> BTreeMap<String, i32> {
    output
        .lines()
        .filter_map(|line| {
            let (name, errno) = line.split_once(' ')?;
            Some((name.to_owned(), errno.trim().parse().ok()?))
        })
        .collect()
}

// --- 1, 2: secrets ----------------------------------------------------------------------------

#[tokio::test]
async fn case_01_no_decoy_token_in_env_or_any_environ() {
    bounded(async {
        let decoy = unique("DECOYTOKEN");
        // SAFETY: std serialises its own environment access; nothing here reads it from C.
        unsafe {
            std::env::set_var("GITHUB_TOKEN", &decoy);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", &decoy);
        }
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            "env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; echo checked",
            &[],
        ))
        .await;
        let log = log_text(&fx);
        assert!(log.ends_with("checked\n"), "{log}");
        assert!(!log.contains(&decoy), "a decoy leaked: {log}");
        assert_eq!(outcome.exit, Exit::Code(0));
    })
    .await;
}

#[tokio::test]
async fn case_02_host_secrets_are_absent() {
    bounded(async {
        let fx = Fixture::new();
        // A decoy on the host, next to the workspace (not in it).
        let decoy = unique("DECOYFILE");
        std::fs::write(fx.dir.path().join("credentials"), &decoy).expect("decoy");
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let outcome = run(&fx.script(
            r#"decoy=$1; shift
               for path in "$@" /root/.ssh/id_rsa /root/.aws/credentials /etc/shadow /etc/ssh \
                   /var /run/secrets /home/runner; do
                 if [ -e "$path" ]; then echo "PRESENT $path"; fi
               done
               grep -rsl -e "$decoy" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr
               echo checked"#,
            &[
                &decoy,
                &format!("{home}/.ssh/id_rsa"),
                &format!("{home}/.aws/credentials"),
                &fx.dir.path().join("credentials").display().to_string(),
            ],
        ))
        .await;
        assert_eq!(outcome.output_tail, "checked\n");
    })
    .await;
}

// --- 3, 4, 5: filesystem ------------------------------------------------------------------

#[tokio::test]
async fn case_03_writes_outside_the_workspace_fail() {
    bounded(async {
        let fx = Fixture::new();
        let marker = unique("errand-write");
        let outcome = run(&fx.script(
            r#"m=$1
               for target in /usr/bin/$m /etc/$m /$m /proc/sys/kernel/core_pattern /sys/kernel/$m \
                             /dev/$m /proc/self/oom_score_adj /run/$m /repo/.git/$m; do
                 if (echo x > "$target") 2>/dev/null; then echo "WROTE $target"; fi
               done
               echo data > /repo/in-workspace && echo "workspace ok"
               # /dev/shm is private to the run and bounded: it takes a little, never more.
               echo x > /dev/shm/$m && echo "shm private"
               head -c 100M /dev/zero > /dev/shm/big 2>/dev/null || echo "shm full"
               echo checked"#,
            &[&marker],
        ))
        .await;
        assert_eq!(
            outcome.output_tail,
            "workspace ok\nshm private\nshm full\nchecked\n"
        );
        for host_path in [
            format!("/usr/bin/{marker}"),
            format!("/etc/{marker}"),
            format!("/{marker}"),
            format!("/dev/shm/{marker}"),
        ] {
            assert!(
                !Path::new(&host_path).exists(),
                "{host_path} appeared on the host"
            );
        }
        assert_eq!(
            std::fs::read_to_string(fx.workspace().join("in-workspace")).expect("workspace file"),
            "data\n"
        );
    })
    .await;
}

#[tokio::test]
async fn case_04_git_internals_stay_read_only() {
    bounded(async {
        let fx = Fixture::new();
        let config_before = std::fs::read(fx.workspace().join(".git/config")).expect("config");
        let outcome = run(&fx.script(
            r#"git config core.fsmonitor '/tmp/evil' 2>/dev/null && echo "SET FSMONITOR"
               git config core.hooksPath /tmp 2>/dev/null && echo "SET HOOKSPATH"
               (printf '#!/bin/sh\ntouch /tmp/pwned\n' > .git/hooks/pre-commit) 2>/dev/null && echo "WROTE HOOK"
               mv .git .git-moved 2>/dev/null && echo "MOVED GIT"
               rm -rf .git 2>/dev/null; [ -f .git/config ] || echo "REMOVED GIT"
               umount /repo/.git 2>/dev/null && echo "UNMOUNTED"
               git status --short >/dev/null 2>&1 && echo "git reads"
               echo checked"#,
            &[],
        ))
        .await;
        assert_eq!(outcome.output_tail, "git reads\nchecked\n");
        assert_eq!(
            std::fs::read(fx.workspace().join(".git/config")).expect("config"),
            config_before
        );
        assert!(!fx.workspace().join(".git/hooks/pre-commit").exists());
        // The host's git still works on the workspace after the run.
        git(&fx.workspace(), &["status", "--short"]);
    })
    .await;
}

#[tokio::test]
async fn case_05_nothing_persists_between_runs() {
    bounded(async {
        let fx = Fixture::new();
        let first = run(&fx.script(
            r#"echo evil >> ~/.bashrc; mkdir -p ~/.config/autostart && echo x > ~/.config/autostart/x
               echo x > /tmp/persist; echo x > /dev/shm/persist; echo checked"#,
            &[],
        ))
        .await;
        assert_eq!(first.output_tail, "checked\n");
        let second = run(&fx.script(
            r#"for path in ~/.bashrc ~/.config/autostart/x /tmp/persist /dev/shm/persist; do
                 [ -e "$path" ] && echo "SURVIVED $path"
               done; echo checked"#,
            &[],
        ))
        .await;
        assert_eq!(second.output_tail, "checked\n");
    })
    .await;
}

// --- 6, 7, 8, 9: network and sockets ---------------------------------------------------------

#[tokio::test]
async fn case_06_no_network_but_loopback() {
    bounded(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port().to_string();
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            r#"tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '
               (exec 3<>/dev/tcp/192.0.2.1/80) 2>&1 | grep -o 'Network is unreachable' | head -1
               (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>&1 | grep -o 'Connection refused' | head -1
               getent hosts example.com || echo "no dns"
               [ -e /etc/resolv.conf ] || echo "no resolv.conf"
               echo checked"#,
            &[&port],
        ))
        .await;
        assert_eq!(
            outcome.output_tail,
            "lo\nNetwork is unreachable\nConnection refused\nno dns\nno resolv.conf\nchecked\n"
        );
        let accepted = listener.accept();
        assert!(
            matches!(&accepted, Err(err) if err.kind() == std::io::ErrorKind::WouldBlock),
            "the host listener was reached: {accepted:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn case_07_host_abstract_unix_socket_is_unreachable() {
    bounded(async {
        let name = unique("errand-abstract");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let listener = UnixListener::bind_addr(&addr).expect("abstract listener");
        listener.set_nonblocking(true).expect("nonblocking");
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            r#"perl -MSocket -e 'socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
                 connect($s, pack_sockaddr_un("\0" . $ARGV[0])) ? print "CONNECTED\n" : print "refused\n"' "$1"
               echo checked"#,
            &[&name],
        ))
        .await;
        assert_eq!(outcome.output_tail, "refused\nchecked\n");
        assert!(listener.accept().is_err(), "the host socket was reached");
    })
    .await;
}

#[tokio::test]
async fn case_08_no_host_daemon_sockets() {
    bounded(async {
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            r#"for path in /var/run/docker.sock /run/docker.sock /run/dbus/system_bus_socket \
                   /var/run/dbus /run/systemd /run/user /tmp/.X11-unix; do
                 [ -e "$path" ] && echo "PRESENT $path"
               done
               find / -xdev -type s 2>/dev/null | grep -v '^/proc' | head
               echo checked"#,
            &[],
        ))
        .await;
        assert_eq!(outcome.output_tail, "checked\n");
    })
    .await;
}

#[tokio::test]
async fn case_09_only_unix_and_ip_sockets() {
    bounded(async {
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            r#"perl -MSocket -e '
                 for my $c (["netlink", 16, 3], ["packet", 17, 3], ["vsock", 40, 1], ["bluetooth", 31, 1],
                            ["raw_inet", 2, 3], ["packet_type", 2, 10], ["unix", 1, 1], ["inet", 2, 1], ["inet6", 10, 1]) {
                   $! = 0; my $ok = socket(my $s, $c->[1], $c->[2], 0);
                   print $c->[0], " ", ($ok ? 0 : $!+0), "\n";
                 }'
               ping -c1 -W1 127.0.0.1 >/dev/null 2>&1 && echo "PINGED"
               echo checked"#,
            &[],
        ))
        .await;
        let results = parse_results(&outcome.output_tail);
        for denied in ["netlink", "packet", "vsock", "bluetooth", "raw_inet", "packet_type"] {
            assert_eq!(results.get(denied), Some(&libc::EPERM), "{denied}: {results:?}");
        }
        // Control: what builds and test suites need still works.
        for allowed in ["unix", "inet", "inet6"] {
            assert_eq!(results.get(allowed), Some(&0), "{allowed}: {results:?}");
        }
        assert!(outcome.output_tail.ends_with("checked\n"));
        assert!(!outcome.output_tail.contains("PINGED"));
    })
    .await;
}

// --- 10, 11, 12, 13, 14, 15: resources and process lifetime ----------------------------------

#[tokio::test]
async fn case_10_fork_bomb_is_contained_and_reaped() {
    bounded(async {
        if !needs_cgroups("case_10_fork_bomb_is_contained_and_reaped") {
            return;
        }
        let fx = Fixture::new();
        let marker = unique("errand-forkbomb");
        // A counter started before the bomb samples how many processes the run has once the
        // bomb is going, with shell builtins only (it could not fork by then).
        let mut spec = fx.script(
            &format!(
                "(sleep 1; n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n > /repo/count) &
                 bomb() {{ bomb | bomb & }}; bomb; wait # {marker}"
            ),
            &[],
        );
        spec.limits.processes = 64;
        spec.timeout = Duration::from_secs(3);
        let started = Instant::now();
        let outcome = run(&spec).await;
        // Bounded by pids.max, the bomb either burns out (every fork failing) or is killed at
        // the deadline; either way the run ends by then, not later.
        assert!(
            matches!(outcome.exit, Exit::TimedOut | Exit::Code(_)),
            "{:?}",
            outcome.exit
        );
        assert!(outcome.duration <= spec.timeout + Duration::from_secs(1));
        // The host stayed responsive: the run ended at its deadline, not much later.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let count: u32 = std::fs::read_to_string(fx.workspace().join("count"))
            .expect("the counter wrote its sample")
            .trim()
            .parse()
            .expect("a count");
        // pids.max counts threads and processes alike; the bomb filled it and went no further.
        assert!((16..=64).contains(&count), "{count} processes in the run");
        poll_until("no fork bomb process left", REAP_BOUND, || {
            processes_with(&marker).is_empty()
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn case_11_memory_hog_is_oom_killed_inside_its_cgroup() {
    bounded(async {
        if !needs_cgroups("case_11_memory_hog_is_oom_killed_inside_its_cgroup") {
            return;
        }
        let fx = Fixture::new();
        let mut spec = fx.script(
            r#"perl -e 'my @hog; for (1..64) { push @hog, "x" x (32 << 20) } print "SURVIVED\n"'
               echo "exit $?""#,
            &[],
        );
        spec.limits.memory_bytes = 256 << 20;
        let outcome = run(&spec).await;
        assert!(outcome.oom_kills >= 1, "no OOM kill recorded: {outcome:?}");
        // (bash's report of the kill quotes the command, so look for the line itself.)
        assert!(
            !outcome.output_tail.lines().any(|line| line == "SURVIVED"),
            "{outcome:?}"
        );
        // The shell outside the hog lived on: the kill stayed inside the run.
        assert!(
            outcome.output_tail.contains("exit 137"),
            "{}",
            outcome.output_tail
        );
    })
    .await;
}

#[tokio::test]
async fn case_12_disk_writes_are_capped_by_filesystems() {
    bounded(async {
        if !is_root() {
            eprintln!("skipped: the size-limited workspace needs a root worker");
            return;
        }
        let fx = Fixture::new();
        let mut spec = fx.script(
            r#"exec 2>/dev/null  # the shell's own reports of SIGXFSZ
               head -c 12M /dev/zero > big; echo "big $(stat -c %s big)"; rm big
               for i in 1 2 3; do head -c 8M /dev/zero > "f$i" || echo "f$i full"; done
               for i in 1 2 3; do head -c 6M /dev/zero > "/tmp/t$i" || echo "tmp$i full"; done
               echo checked"#,
            &[],
        );
        spec.limits.file_bytes = 8 << 20;
        spec.limits.workspace_write_bytes = Some(20 << 20);
        spec.limits.tmp_bytes = 16 << 20;
        let outcome = run(&spec).await;
        // RLIMIT_FSIZE stops one file at 8 MiB; the workspace filesystem stops the total at
        // 20 MiB though every file is under the limit; /tmp is its own sized tmpfs.
        assert_eq!(
            outcome.output_tail,
            format!("big {}\nf3 full\ntmp3 full\nchecked\n", 8 << 20)
        );
        let total: u64 = std::fs::read_dir(fx.workspace())
            .expect("workspace")
            .filter_map(|entry| entry.ok()?.metadata().ok())
            .filter(|meta| meta.is_file())
            .map(|meta| meta.len())
            .sum::<u64>()
            - "hello\n".len() as u64;
        assert!(total <= 20 << 20, "the workspace grew by {total} bytes");
        let changes = outcome.workspace_changes.expect("merged");
        assert!(changes.bytes_written <= 20 << 20);
    })
    .await;
}

#[tokio::test]
async fn case_13_term_ignoring_loop_is_killed_at_the_deadline() {
    bounded(async {
        let fx = Fixture::new();
        let mut spec = fx.script("trap '' TERM; while :; do :; done", &[]);
        spec.timeout = Duration::from_secs(1);
        let outcome = run(&spec).await;
        assert_eq!(outcome.exit, Exit::TimedOut);
        assert!(outcome.duration >= spec.timeout);
        // The notes ask for ±0.1 s; CI hosts are slower, so allow a little more.
        assert!(
            outcome.duration < spec.timeout + Duration::from_secs(1),
            "{:?}",
            outcome.duration
        );
    })
    .await;
}

#[tokio::test]
async fn case_14_daemons_do_not_survive_the_run() {
    bounded(async {
        let fx = Fixture::new();
        let marker = unique("errand-daemon");
        // Daemons whose argv carries the marker without breaking sleep: sh -c 'sleep; : marker'.
        let daemon = format!("sh -c 'sleep 1000; : {marker}'");
        let outcome = run(&fx.script(
            &format!(
                "setsid nohup {daemon} >/dev/null 2>&1 &
                 ({daemon} &) ; {daemon} & disown
                 for i in $(seq 100); do [ $(pgrep -fc {marker}) -ge 3 ] && break; sleep 0.05; done
                 pgrep -fc {marker}"
            ),
            &[],
        ))
        .await;
        assert_eq!(outcome.exit, Exit::Code(0));
        assert!(
            outcome.output_tail.trim().parse::<u32>().unwrap_or(0) >= 3,
            "{}",
            outcome.output_tail
        );
        poll_until("no daemon left", REAP_BOUND, || {
            processes_with(&marker).is_empty()
        })
        .await;
    })
    .await;
}

/// Case 15's orchestrator: a copy of this test binary that starts a sandbox and waits to be
/// killed. It only runs when the parent test starts it.
#[tokio::test]
#[ignore = "started by case_15_killing_the_orchestrator_kills_the_sandbox"]
async fn orchestrator_child() {
    let Ok(marker) = std::env::var("ERRAND_HOSTILE_MARKER") else {
        return;
    };
    let fx = Fixture::new();
    let running = sandbox()
        .spawn(&fx.script(
            &format!(
                "sh -c 'sleep 1000; : {marker}' & setsid sh -c 'sleep 1000; : {marker}' & wait"
            ),
            &[],
        ))
        .expect("spawn");
    println!("started");
    let _ = running.wait(std::future::pending()).await;
}

#[tokio::test]
async fn case_15_killing_the_orchestrator_kills_the_sandbox() {
    bounded(async {
        let marker = unique("errand-orphan");
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "orchestrator_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ERRAND_HOSTILE_MARKER", &marker)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("orchestrator");
        let stdout = child.stdout.take().expect("stdout");
        let started = tokio::task::spawn_blocking(move || {
            // libtest prints "test orchestrator_child ... " and the test's output on one line.
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.ends_with("started"))
        });
        assert!(
            started.await.expect("reader"),
            "the orchestrator never started its sandbox"
        );
        poll_until("sandbox processes up", REAP_BOUND, || {
            processes_with(&format!(": {marker}")).len() >= 2
        })
        .await;
        let orchestrator = child.id();
        child.kill().expect("SIGKILL the orchestrator");
        child.wait().expect("reap");
        poll_until(
            "sandbox processes gone after the orchestrator died",
            REAP_BOUND,
            || processes_with(&format!(": {marker}")).is_empty(),
        )
        .await;
        // Its run cgroup was left behind; the next sandbox to start sweeps it away.
        let layout = CgroupLayout::probe().expect("layout");
        let prefix = format!("run-{orchestrator}-");
        let stale = || {
            layout
                .unified
                .iter()
                .chain(layout.v1.values())
                .filter_map(|own| std::fs::read_dir(own.join("errand-sandbox")).ok())
                .flatten()
                .flatten()
                .any(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        };
        // (Another test opening a sandbox meanwhile may already have swept it.)
        tokio::task::spawn_blocking(|| open_sandbox(None))
            .await
            .expect("open");
        assert!(!stale(), "the stale cgroup was not swept");
    })
    .await;
}

#[tokio::test]
async fn case_15_killing_bwrap_kills_the_tree() {
    bounded(async {
        let fx = Fixture::new();
        let marker = unique("errand-bwrap-kill");
        let running = sandbox()
            .spawn(&fx.script(
                &format!("setsid sh -c 'sleep 1000; : {marker}' & echo started; wait"),
                &[],
            ))
            .expect("spawn");
        let progress = running.progress();
        poll_until("the run started", REAP_BOUND, || {
            progress.snapshot().last_line == "started"
        })
        .await;
        poll_until("the daemon is up", REAP_BOUND, || {
            !processes_with(&format!(": {marker}")).is_empty()
        })
        .await;
        // bwrap is the process whose argv starts with the bwrap path and carries the marker.
        let bwrap = processes_with(&marker)
            .into_iter()
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                    cmdline.starts_with(b"/") && String::from_utf8_lossy(&cmdline).contains("bwrap")
                })
            })
            .expect("bwrap process");
        // SAFETY: a plain syscall on a pid we just found.
        unsafe { libc::kill(bwrap as i32, libc::SIGKILL) };
        let outcome = running.wait(std::future::pending()).await.expect("wait");
        assert_eq!(outcome.exit, Exit::Signal(libc::SIGKILL));
        poll_until(
            "sandbox processes gone after bwrap died",
            REAP_BOUND,
            || processes_with(&format!(": {marker}")).is_empty(),
        )
        .await;
    })
    .await;
}

// --- 16, 17, 18, 19: privilege ---------------------------------------------------------------

#[tokio::test]
async fn case_16_only_own_processes_and_no_tracing() {
    bounded(async {
        let fx = Fixture::new();
        let script = format!(
            r#"ls /proc | grep -c '^[0-9]'
               {}
               echo checked"#,
            syscall_script(&[
                ("ptrace_attach", libc::SYS_ptrace, "16, 1, 0, 0"),
                (
                    "process_vm_readv",
                    libc::SYS_process_vm_readv,
                    "1, 0, 0, 0, 0, 0"
                ),
                ("getpid", libc::SYS_getpid, ""),
            ])
        );
        let outcome = run(&fx.script(&script, &[])).await;
        let mut lines = outcome.output_tail.lines();
        let visible: u32 = lines
            .next()
            .and_then(|n| n.parse().ok())
            .expect("process count");
        // bwrap's init, the shell, ls and grep: a handful, never the host's.
        assert!(visible <= 6, "{visible} processes visible");
        let results = parse_results(&outcome.output_tail);
        assert_eq!(results.get("ptrace_attach"), Some(&libc::EPERM));
        assert_eq!(results.get("process_vm_readv"), Some(&libc::EPERM));
        assert_eq!(
            results.get("getpid"),
            Some(&0),
            "control: an ordinary syscall works"
        );
    })
    .await;
}

#[tokio::test]
async fn case_17_no_namespaces_or_mounts() {
    bounded(async {
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            r#"unshare -Urm true 2>/dev/null && echo "UNSHARED"
               unshare -n true 2>/dev/null && echo "UNSHARED NET"
               mount -t tmpfs none /tmp 2>/dev/null && echo "MOUNTED"
               umount /repo/.git 2>/dev/null && echo "UNMOUNTED"
               mount -o remount,rw / 2>/dev/null && echo "REMOUNTED"
               mount -o remount,rw /repo/.git 2>/dev/null && echo "REMOUNTED GIT"
               echo checked"#,
            &[],
        ))
        .await;
        assert_eq!(outcome.output_tail, "checked\n");
    })
    .await;
}

/// The control of case 17: the same bwrap run by root without `--unshare-user` and
/// `--cap-drop ALL` lets the command undo the read-only `.git`. This is why the profile
/// always passes both.
#[tokio::test]
async fn case_17_control_without_the_flags_root_keeps_its_power() {
    bounded(async {
        if !is_root() {
            eprintln!("skipped: the control needs a root caller");
            return;
        }
        let fx = Fixture::new();
        let ws = fx.workspace();
        let ws = ws.to_str().expect("utf-8");
        let git = format!("{ws}/.git");
        let output = tokio::process::Command::new(which("bwrap").expect("bwrap"))
            .args([
                "--unshare-pid",
                "--unshare-net",
                "--ro-bind",
                "/usr",
                "/usr",
            ])
            .args([
                "--symlink",
                "usr/bin",
                "/bin",
                "--symlink",
                "usr/lib",
                "/lib",
                "--symlink",
                "usr/lib64",
                "/lib64",
            ])
            .args([
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--bind",
                ws,
                "/repo",
                "--ro-bind",
                &git,
                "/repo/.git",
            ])
            .args([
                "--",
                "sh",
                "-c",
                "umount /repo/.git && echo x > /repo/.git/planted && echo UNMOUNTED",
            ])
            .output()
            .await
            .expect("bwrap");
        assert_eq!(String::from_utf8_lossy(&output.stdout), "UNMOUNTED\n");
        assert!(fx.workspace().join(".git/planted").exists());
    })
    .await;
}

#[tokio::test]
async fn case_18_no_privileges_to_gain() {
    bounded(async {
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            r#"grep -E '^(NoNewPrivs|CapInh|CapPrm|CapEff|CapBnd|CapAmb):' /proc/self/status | tr -d ' \t'
               grep -E ' /usr ' /proc/self/mountinfo | grep -q nosuid && echo "usr nosuid"
               # setuid binaries run, but as the agent: the bit is ignored.
               /usr/bin/mount -t tmpfs none /tmp 2>/dev/null && echo "MOUNTED VIA SETUID"
               su -c id root </dev/null 2>/dev/null && echo "SU WORKED"
               id -u
               echo checked"#,
            &[],
        ))
        .await;
        assert_eq!(
            outcome.output_tail,
            "CapInh:0000000000000000\nCapPrm:0000000000000000\nCapEff:0000000000000000\n\
             CapBnd:0000000000000000\nCapAmb:0000000000000000\nNoNewPrivs:1\nusr nosuid\n1000\nchecked\n"
        );
    })
    .await;
}

#[tokio::test]
async fn case_19_no_devices() {
    bounded(async {
        let fx = Fixture::new();
        let outcome = run(&fx.script(
            r#"for dev in /dev/vda /dev/sda /dev/mem /dev/kmem /dev/kvm /dev/port /dev/nvme0; do
                 [ -e "$dev" ] && echo "PRESENT $dev"
               done
               mknod /tmp/disk b 254 0 2>/dev/null && echo "MKNOD"
               mknod /tmp/null c 1 3 2>/dev/null && echo "MKNOD CHAR"
               ls /dev | tr '\n' ' '; echo
               echo checked"#,
            &[],
        ))
        .await;
        let lines: Vec<&str> = outcome.output_tail.lines().collect();
        assert_eq!(lines.last(), Some(&"checked"), "{}", outcome.output_tail);
        assert!(!outcome.output_tail.contains("PRESENT") && !outcome.output_tail.contains("MKNOD"));
        let devices: Vec<&str> = lines[lines.len() - 2].split_whitespace().collect();
        for dev in &devices {
            assert!(
                [
                    "core", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr",
                    "stdin", "stdout", "tty", "urandom", "zero"
                ]
                .contains(dev),
                "unexpected /dev/{dev}"
            );
        }
    })
    .await;
}

// --- 20: output ------------------------------------------------------------------------------

#[tokio::test]
async fn case_20_endless_output_is_capped_and_killed() {
    bounded(async {
        let fx = Fixture::new();
        let mut spec = fx.script("yes", &[]);
        spec.timeout = Duration::from_secs(2);
        let rss_before = own_rss_kib();
        let outcome = run(&spec).await;
        assert_eq!(outcome.exit, Exit::TimedOut);
        assert!(outcome.output_bytes > activities::sandbox::LOG_CAP_BYTES);
        assert_eq!(
            std::fs::metadata(fx.log()).expect("log").len(),
            activities::sandbox::LOG_CAP_BYTES
        );
        assert_eq!(outcome.output_tail.len(), 4096);
        // The orchestrator held only the capture's bounded buffers (other tests run alongside,
        // so this is loose).
        let grown = own_rss_kib().saturating_sub(rss_before);
        assert!(grown < 256 * 1024, "the orchestrator grew by {grown} KiB");
    })
    .await;
}

fn own_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

// --- 21, 22: defence in depth ----------------------------------------------------------------

#[tokio::test]
async fn case_21_landlock_denies_writes_that_mounts_allow() {
    bounded(async {
        // /proc/self/* files are writable for the process itself as far as mounts go; no
        // bwrap option makes them read-only. Landlock in the shim does.
        let script = r#"(echo renamed > /proc/self/comm) 2>/dev/null && echo "WROTE" || echo "denied"
                        (echo 1 > /proc/self/oom_score_adj) 2>/dev/null && echo "WROTE ADJ" || echo "denied adj""#;
        let fx = Fixture::new();
        let outcome = run(&fx.script(script, &[])).await;
        assert_eq!(outcome.output_tail, "denied\ndenied adj\n");
        // Control: the same sandbox without the shim (so without Landlock) lets both through.
        let without = open_sandbox(None);
        let outcome = run_in(&without, &fx.script(script, &[])).await;
        assert_eq!(outcome.output_tail, "WROTE\nWROTE ADJ\n");
    })
    .await;
}

#[tokio::test]
async fn case_22_dangerous_syscalls_are_denied() {
    bounded(async {
        let fx = Fixture::new();
        let script = format!(
            "{}; echo checked",
            syscall_script(&[
                ("io_uring_setup", libc::SYS_io_uring_setup, "8, $buf"),
                ("bpf", libc::SYS_bpf, "0, $buf, 48"),
                ("userfaultfd", libc::SYS_userfaultfd, "0"),
                (
                    "perf_event_open",
                    libc::SYS_perf_event_open,
                    "$buf, 0, -1, -1, 0"
                ),
                ("keyctl", libc::SYS_keyctl, "0, -3, 0"),
                ("add_key", libc::SYS_add_key, "$buf, $buf, $buf, 1, -3"),
                ("unshare", libc::SYS_unshare, "0x10000000"),
                ("setns", libc::SYS_setns, "0, 0"),
                ("mount", libc::SYS_mount, "$buf, $buf, $buf, 0, 0"),
                (
                    "open_by_handle_at",
                    libc::SYS_open_by_handle_at,
                    "-100, $buf, 0"
                ),
                ("kexec_load", libc::SYS_kexec_load, "0, 0, 0, 0"),
                ("init_module", libc::SYS_init_module, "$buf, 0, $buf"),
                ("clone_newuser", libc::SYS_clone, "0x10000011, 0, 0, 0, 0"),
                ("clone3", libc::SYS_clone3, "$buf, 88"),
                ("getppid", libc::SYS_getppid, ""),
            ])
        );
        let outcome = run(&fx.script(&script, &[])).await;
        assert!(
            outcome.output_tail.ends_with("checked\n"),
            "{}",
            outcome.output_tail
        );
        let results = parse_results(&outcome.output_tail);
        for denied in [
            "io_uring_setup",
            "bpf",
            "userfaultfd",
            "perf_event_open",
            "keyctl",
            "add_key",
            "unshare",
            "setns",
            "mount",
            "open_by_handle_at",
            "kexec_load",
            "init_module",
            "clone_newuser",
        ] {
            assert_eq!(
                results.get(denied),
                Some(&libc::EPERM),
                "{denied}: {results:?}"
            );
        }
        assert_eq!(
            results.get("clone3"),
            Some(&libc::ENOSYS),
            "clone3 falls back to clone"
        );
        assert_eq!(
            results.get("getppid"),
            Some(&0),
            "control: an ordinary syscall works"
        );
    })
    .await;
}

// --- 23: egress ------------------------------------------------------------------------------

/// A tiny HTTP server on the host's loopback: answers every request with `body`.
fn http_server(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("server");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, response.as_bytes());
        }
    });
    port
}

#[tokio::test]
async fn case_23_egress_only_through_the_proxy_to_allowed_names() {
    bounded(async {
        let port = http_server("registry says hi");
        let port_text = port.to_string();
        let fx = Fixture::new();
        let mut spec = fx.script(
            r#"request() {  # request LINE: send one request to the bridge, print the status line
                 exec 3<>/dev/tcp/127.0.0.1/3128 || { echo "no bridge"; return; }
                 printf '%s\r\nHost: x\r\n\r\n' "$1" >&3
                 head -n 1 <&3 | tr -d '\r'; exec 3<&-
               }
               request "GET http://registry.test:$1/index HTTP/1.1"
               exec 3<>/dev/tcp/127.0.0.1/3128; printf 'GET http://registry.test:%s/ HTTP/1.1\r\nHost: registry.test\r\n\r\n' "$1" >&3
               tail -n 1 <&3; echo; exec 3<&-
               request "GET http://evil.test:$1/ HTTP/1.1"
               request "GET http://127.0.0.1:$1/ HTTP/1.1"
               request "GET http://169.254.169.254/latest/meta-data/ HTTP/1.1"
               request "CONNECT evil.test:443 HTTP/1.1"
               (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && echo "DIRECT CONNECT" || echo "direct refused"
               echo "proxy=$https_proxy"
               echo checked"#,
            &[&port_text],
        );
        spec.network = Some(EgressPolicy {
            allow: vec![format!("registry.test:{port}").parse().expect("entry")],
            // The test resolver: the allowed name is pinned to the host's loopback server.
            pinned: [("registry.test".to_owned(), vec!["127.0.0.1".parse().expect("ip")])]
                .into_iter()
                .collect(),
        });
        let outcome = run(&spec).await;
        assert_eq!(
            outcome.output_tail,
            format!(
                "HTTP/1.1 200 OK\nregistry says hi\nHTTP/1.1 403 Forbidden\nHTTP/1.1 403 Forbidden\n\
                 HTTP/1.1 403 Forbidden\nHTTP/1.1 403 Forbidden\ndirect refused\n\
                 proxy=http://127.0.0.1:{EGRESS_PORT}\nchecked\n"
            )
        );
        let verdicts: Vec<(String, Verdict)> = outcome
            .egress
            .iter()
            .map(|decision| (decision.target.clone(), decision.verdict))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                (format!("registry.test:{port}"), Verdict::Allowed),
                (format!("registry.test:{port}"), Verdict::Allowed),
                (format!("evil.test:{port}"), Verdict::NotAllowlisted),
                (format!("127.0.0.1:{port}"), Verdict::IpLiteral),
                ("169.254.169.254:80".to_owned(), Verdict::IpLiteral),
                ("evil.test:443".to_owned(), Verdict::NotAllowlisted),
            ]
        );
        let logged = std::fs::read_to_string(decision_log_path(&fx.log())).expect("decision log");
        assert_eq!(logged.lines().count(), 6, "{logged}");
        assert!(logged.contains("\"verdict\":\"not_allowlisted\""));
    })
    .await;
}

// --- 24: fail closed -------------------------------------------------------------------------

#[tokio::test]
async fn case_24_missing_bwrap_fails_closed() {
    bounded(async {
        let empty = tempfile::tempdir().expect("tempdir");
        let result = Sandbox::detect_on_path(empty.path().as_os_str()).await;
        assert!(
            matches!(result, Err(SandboxError::Unavailable { .. })),
            "{result:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn case_24_disabled_user_namespaces_fail_closed() {
    bounded(async {
        // A real bwrap in a user namespace whose owner forbade further user namespaces, as an
        // AppArmor or sysctl policy would: bwrap cannot create its own, and detection fails.
        let dir = tempfile::tempdir().expect("tempdir");
        let wrapper = dir.path().join("bwrap");
        let real = which("bwrap").expect("bwrap");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec unshare --user --map-root-user sh -c \
                 'echo 0 > /proc/sys/user/max_user_namespaces && exec {} \"$@\"' sh \"$@\"\n",
                real.display()
            ),
        )
        .expect("wrapper");
        set_mode(&wrapper, 0o755);
        set_mode(dir.path(), 0o755);
        let result = Sandbox::open(SandboxConfig {
            bwrap: wrapper,
            shim: None,
            cgroup_layout: None,
        })
        .await;
        match result {
            Err(SandboxError::Unavailable { reason }) => {
                assert!(reason.contains("probe ended"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn case_24_unwritable_cgroups_fail_closed() {
    bounded(async {
        if !is_root() {
            eprintln!("skipped: an unprivileged worker falls back to rlimits by design");
            return;
        }
        // A layout pointing into /proc, where no cgroup can be made.
        let layout = activities::sandbox::cgroup::CgroupLayout::parse(
            "1 1 0:1 / /proc rw - cgroup cgroup rw,memory,pids,cpu\n",
            "5:memory,pids,cpu:/errand-test\n",
        );
        let result = Sandbox::open(SandboxConfig {
            bwrap: which("bwrap").expect("bwrap"),
            shim: None,
            cgroup_layout: Some(layout),
        })
        .await;
        match result {
            Err(SandboxError::Unavailable { reason }) => {
                assert!(reason.contains("run cgroup"), "{reason}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn case_24_a_limit_that_cannot_be_applied_stops_the_run() {
    bounded(async {
        let fx = Fixture::new();
        let marker = fx.workspace().join("ran");
        let mut spec = fx.script("touch /repo/ran", &[]);
        // A limit the kernel could not apply is refused before anything starts.
        spec.limits.processes = 0;
        let result = sandbox().spawn(&spec);
        assert!(
            matches!(
                result,
                Err(SandboxError::InvalidSpec {
                    field: "limits",
                    ..
                })
            ),
            "{result:?}"
        );
        assert!(!marker.exists());
    })
    .await;
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
