//! `errand bench`: the engine measured against its physical floor. Without a subcommand it runs
//! every figure of the suite (`suite.rs`) against a stack of its own; `bench sandbox` (here:
//! `true` directly and in the full sandbox, the launcher tasks use: cgroup, uid, staged mounts,
//! bwrap, seccomp, shim, merge) and `bench crashes` run one figure each. Every figure is
//! recorded in BENCHMARKS.md with the machine, between markers of its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod api_latency;
mod crash_bench;
mod density;
mod first_output;
mod overhead;
mod proc_stats;
mod provisioning;
mod report;
mod repos;
mod stack;
mod suite;
mod throughput;

use activities::sandbox::{Limits, Sandbox, SandboxSpec, support};
use anyhow::Context;

/// The issue asks for at least this many runs per figure.
const MIN_RUNS: usize = 50;
const WARMUP_RUNS: usize = 5;
const TRUE: &str = "/usr/bin/true";
const SECTION_START: &str = "<!-- errand bench sandbox: start -->";
const SECTION_END: &str = "<!-- errand bench sandbox: end -->";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// One figure alone; without it, the whole suite
    #[command(subcommand)]
    what: Option<BenchWhat>,
    #[command(flatten)]
    suite: suite::SuiteArgs,
}

#[derive(Debug, clap::Subcommand)]
enum BenchWhat {
    /// Start overhead of the sandbox: `true` inside it versus directly
    Sandbox {
        /// Runs per figure (at least 50)
        #[arg(long, default_value_t = 100)]
        runs: usize,
        /// Where to record the result
        #[arg(long, default_value = "BENCHMARKS.md")]
        out: PathBuf,
    },
    /// Crash ingestion: `POST /v1/crashes` against a running stack (`errand up`), with
    /// duplicates
    Crashes(crash_bench::CrashBenchArgs),
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        None => suite::run(args.suite).await,
        Some(BenchWhat::Sandbox { runs, out }) => {
            let result = sandbox(runs).await?;
            println!("{}", result.table());
            record(
                out.as_path(),
                SECTION_START,
                SECTION_END,
                &result.markdown(),
            )?;
            println!("recorded in {}", out.display());
            Ok(())
        }
        Some(BenchWhat::Crashes(args)) => crash_bench::crashes(args).await,
    }
}

/// The sandbox figure: `true` directly and in the full sandbox, `runs` times each.
async fn sandbox(runs: usize) -> anyhow::Result<SandboxResult> {
    anyhow::ensure!(runs >= MIN_RUNS, "--runs must be at least {MIN_RUNS}");
    let sandbox = Sandbox::detect()
        .await
        .context("the sandbox does not work on this host (see errand doctor)")?;
    let scratch = tempfile_dir()?;
    let workspace = scratch.join("workspace");
    std::fs::create_dir(&workspace)?;
    let spec = SandboxSpec {
        workspace,
        inputs_dir: None,
        argv: vec![TRUE.into()],
        env: Vec::new(),
        timeout: Duration::from_secs(30),
        log_path: scratch.join("bench.log"),
        limits: Limits::default(),
        network: None,
        model_gateway: None,
    };

    let machine = Machine::describe();
    let direct = measure(runs, || async {
        let status = tokio::process::Command::new(TRUE).status().await?;
        anyhow::ensure!(status.success(), "true failed: {status}");
        Ok(())
    })
    .await?;
    let sandboxed = measure(runs, || async {
        let outcome = sandbox.spawn(&spec)?.wait(std::future::pending()).await?;
        anyhow::ensure!(
            outcome.exit == activities::sandbox::Exit::Code(0),
            "true in the sandbox ended with {:?}: {}",
            outcome.exit,
            outcome.output_tail
        );
        Ok(())
    })
    .await?;
    let _ = std::fs::remove_dir_all(&scratch);

    Ok(SandboxResult {
        runs,
        direct: Percentiles::of(&direct),
        sandboxed: Percentiles::of(&sandboxed),
        machine,
        setup: format!(
            "{} build, {}, {}{}",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            support::bwrap_version(sandbox.bwrap()).unwrap_or_else(|_| "bwrap".into()),
            if sandbox.is_root() {
                "root worker (per-run uid, cgroup, idmapped overlay on a sized tmpfs)"
            } else {
                "unprivileged worker"
            },
            match sandbox.shim() {
                Some(shim) => format!(
                    ", shim with Landlock ({})",
                    shim.program
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                ),
                None => ", no shim".to_owned(),
            }
        ),
    })
}

async fn measure<F, Fut>(runs: usize, mut run: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..WARMUP_RUNS {
        run().await?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        run().await?;
        times.push(started.elapsed());
    }
    Ok(times)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Percentiles {
    p50: Duration,
    p95: Duration,
    p99: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles; all zero for no samples.
    fn of(times: &[Duration]) -> Self {
        let mut sorted = times.to_vec();
        sorted.sort_unstable();
        let rank = |p: usize| {
            sorted
                .get((p * sorted.len()).div_ceil(100).max(1) - 1)
                .copied()
                .unwrap_or_default()
        };
        Self {
            p50: rank(50),
            p95: rank(95),
            p99: rank(99),
        }
    }
}

struct SandboxResult {
    runs: usize,
    direct: Percentiles,
    sandboxed: Percentiles,
    machine: Machine,
    setup: String,
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

impl SandboxResult {
    fn overhead(&self) -> (Duration, Duration) {
        (
            self.sandboxed.p50.saturating_sub(self.direct.p50),
            self.sandboxed.p95.saturating_sub(self.direct.p95),
        )
    }

    fn table(&self) -> String {
        let (p50, p95) = self.overhead();
        format!(
            "| `true` ({} runs) | p50 | p95 |\n|---|---|---|\n| directly | {} | {} |\n\
             | in the full sandbox | {} | {} |\n| overhead | {} | {} |",
            self.runs,
            ms(self.direct.p50),
            ms(self.direct.p95),
            ms(self.sandboxed.p50),
            ms(self.sandboxed.p95),
            ms(p50),
            ms(p95),
        )
    }

    fn meets_goal(&self) -> bool {
        self.overhead().0 <= Duration::from_millis(30)
    }

    fn markdown(&self) -> String {
        let verdict = if self.meets_goal() { "within" } else { "over" };
        format!(
            "{SECTION_START}\n## Sandbox start overhead\n\n\
             Measured by `errand bench sandbox --runs {}` on {} ({}).\n\
             Each sandboxed run is the whole launcher path a task takes: run cgroup, per-run uid, \
             idmapped overlay workspace, bwrap with seccomp, the shim, merging the (empty) \
             changes back and removing the cgroup. Setup: {}.\n\n{}\n\n\
             The p50 overhead is {verdict} the 30 ms goal.\n{SECTION_END}\n",
            self.runs,
            self.machine.date,
            self.machine.summary(),
            self.setup,
            self.table()
        )
    }
}

struct Machine {
    /// The 1-minute load average when the measurement started (other work skews it).
    load: String,
    cores: usize,
    memory: String,
    kernel: String,
    cpu: String,
    date: String,
}

impl Machine {
    fn describe() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or_else(
                || "unknown".into(),
                |kib| format!("{:.1} GiB", kib as f64 / 1048576.0),
            );
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(
                || std::env::consts::ARCH.to_owned(),
                |(_, name)| name.trim().to_owned(),
            );
        Self {
            load: load_average(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |text| text.trim().to_owned()),
            cpu,
            date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        }
    }

    fn summary(&self) -> String {
        format!(
            "{} cores ({}), {} memory, Linux {}, load average {} at the start",
            self.cores, self.cpu, self.memory, self.kernel, self.load
        )
    }
}

/// The 1-minute load average now, as /proc/loadavg gives it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Writes `section` into `path`, replacing an earlier run's section and keeping the rest.
fn record(path: &Path, start_marker: &str, end_marker: &str, section: &str) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n\n".to_owned(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let updated = match (existing.find(start_marker), existing.find(end_marker)) {
        (Some(start), Some(end)) if start < end => {
            let end = end + end_marker.len();
            let end = end + usize::from(existing[end..].starts_with('\n'));
            format!("{}{section}{}", &existing[..start], &existing[end..])
        }
        _ => format!(
            "{}\n{section}",
            existing.trim_end_matches('\n').to_owned() + "\n"
        ),
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

/// A private scratch directory for the benchmark's workspace and log.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("errand-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&times);
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p95, Duration::from_millis(95));
        assert_eq!(p.p99, Duration::from_millis(99));
        let few: Vec<Duration> = [3, 1, 2].map(Duration::from_millis).to_vec();
        assert_eq!(Percentiles::of(&few).p50, Duration::from_millis(2));
        assert_eq!(Percentiles::of(&few).p99, Duration::from_millis(3));
        assert_eq!(Percentiles::of(&[]).p50, Duration::ZERO);
    }

    #[test]
    fn records_replace_their_own_section_only() {
        let dir = std::env::temp_dir().join(format!("errand-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("BENCHMARKS.md");
        std::fs::write(&path, "# Benchmarks\n\n## Other\n\nkeep me\n").expect("write");
        let section = |text: &str| format!("{SECTION_START}\n{text}\n{SECTION_END}\n");
        record(&path, SECTION_START, SECTION_END, &section("first")).expect("record");
        record(&path, SECTION_START, SECTION_END, &section("second")).expect("record");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("keep me") && text.contains("second") && !text.contains("first"));
        assert_eq!(text.matches(SECTION_START).count(), 1);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
