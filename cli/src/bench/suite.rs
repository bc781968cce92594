//! `errand bench [--quick]`: every figure of issue 8 in one run, against a stack of its own
//! (`stack.rs`), each recorded in BENCHMARKS.md as soon as it is measured (so an interrupted
//! run keeps what it finished) and summed up in one printed table at the end.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::report::{self, Figure, Row};
use super::stack::Stack;
use super::{
    Machine, api_latency, density, first_output, load_average, overhead, provisioning, record,
    repos, throughput,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Overhead,
    FirstOutput,
    Provisioning,
    Sandbox,
    Density,
    Throughput,
    Api,
    Crashes,
}

impl Which {
    const ALL: [Which; 8] = [
        Which::Provisioning,
        Which::Sandbox,
        Which::Overhead,
        Which::FirstOutput,
        Which::Density,
        Which::Throughput,
        Which::Api,
        Which::Crashes,
    ];

    fn needs_stack(self) -> bool {
        !matches!(self, Which::Provisioning | Which::Sandbox)
    }
}

#[derive(Debug, clap::Args)]
pub struct SuiteArgs {
    /// A reduced run (under two minutes): fewer runs, shorter agents, no 100k-file repository
    #[arg(long)]
    quick: bool,
    /// Only these figures (comma-separated); all of them when left out
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Which>,
    /// Where to record the figures
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Synthetic repositories (cached between runs) and each run's scratch data
    #[arg(long, default_value = ".errand/bench")]
    bench_dir: PathBuf,
}

pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let wanted: Vec<Which> = Which::ALL
        .into_iter()
        .filter(|which| args.only.is_empty() || args.only.contains(which))
        .collect();
    let quick = args.quick;
    let machine = Machine::describe();
    let mut command = String::from(if quick {
        "errand bench --quick"
    } else {
        "errand bench"
    });
    if !args.only.is_empty() {
        let names: Vec<String> = args
            .only
            .iter()
            .filter_map(|which| {
                clap::ValueEnum::to_possible_value(which).map(|v| v.get_name().to_owned())
            })
            .collect();
        command.push_str(&format!(" --only {}", names.join(",")));
    }
    std::fs::create_dir_all(&args.bench_dir)
        .with_context(|| format!("cannot create {}", args.bench_dir.display()))?;
    let bench_dir = args.bench_dir.canonicalize()?;
    let repos_dir = bench_dir.join("repos");
    let scratch = bench_dir.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    eprintln!(
        "errand bench{}: {} ({})",
        if quick { " --quick" } else { "" },
        machine.summary(),
        scratch.display()
    );
    let started = Instant::now();
    let mut run = Run {
        figures: Vec::new(),
        failures: Vec::new(),
        out: args.out.clone(),
        command,
        machine,
    };

    if wanted.contains(&Which::Provisioning) {
        let params = provisioning::Params::new(quick);
        let result = measured(
            "provisioning",
            "Provisioning versus repository size",
            provisioning::measure(&repos_dir, &scratch, &params),
        )
        .await;
        run.finish("provisioning", result);
    }
    if wanted.contains(&Which::Sandbox) {
        let runs = if quick { super::MIN_RUNS } else { 100 };
        let load = load_average();
        let result = super::sandbox(runs).await.map(|result| {
            let (p50, _) = result.overhead();
            let row = Row::new("`true`, p50 overhead", report::human(p50))
                .floor(format!("directly {}", report::human(result.direct.p50)))
                .goal("<= 30 ms", result.meets_goal());
            Figure {
                key: "sandbox",
                title: "Sandbox start overhead",
                rows: vec![row],
                body: String::new(),
                load: (load, load_average()),
                own_section: Some(result.markdown()),
            }
        });
        run.finish("sandbox", result);
    }

    if wanted.iter().any(|which| which.needs_stack()) {
        eprintln!("starting errand up ...");
        let stack = Stack::start(&scratch.join("stack")).await?;
        let result = stack_figures(&mut run, &stack, &wanted, &repos_dir, &scratch, quick).await;
        stack.stop().await;
        result?;
    }

    println!("\n{}", report::summary(&run.figures));
    println!(
        "{} figures in {}; recorded in {}",
        run.figures.len(),
        report::human(started.elapsed()),
        run.out.display()
    );
    if run.failures.is_empty() {
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(())
    } else {
        anyhow::bail!(
            "{} figure(s) failed: {} (the stack's data and log are kept in {})",
            run.failures.len(),
            run.failures.join("; "),
            scratch.display()
        )
    }
}

async fn stack_figures(
    run: &mut Run,
    stack: &Stack,
    wanted: &[Which],
    repos_dir: &Path,
    scratch: &Path,
    quick: bool,
) -> anyhow::Result<()> {
    // Tasks push to their remote: each run works on copies, so the cache stays pristine.
    let small = copy_repo(
        &repos::ensure_repo(repos_dir, 10)?,
        &scratch.join("small.git"),
    )?;
    if wanted.contains(&Which::Overhead) {
        let repo = copy_repo(
            &repos::ensure_repo(repos_dir, 1_000)?,
            &scratch.join("files-1000.git"),
        )?;
        let params = overhead::Params::new(quick);
        let result = measured(
            "overhead",
            "Engine overhead",
            overhead::measure(stack, &repo, scratch, &params),
        )
        .await;
        run.finish("overhead", result);
    }
    if wanted.contains(&Which::FirstOutput) {
        let repo = copy_repo(
            &repos::ensure_repo(repos_dir, 10_000)?,
            &scratch.join("files-10000.git"),
        )?;
        let result = measured(
            "first-output",
            "Time to first agent output",
            first_output::measure(stack, &repo, scratch, first_output::runs(quick)),
        )
        .await;
        run.finish("first-output", result);
    }
    if wanted.contains(&Which::Density) {
        let params = density::Params::new(quick);
        let result = measured(
            "density",
            "Density",
            density::measure(stack, &small, &params),
        )
        .await;
        run.finish("density", result);
    }
    if wanted.contains(&Which::Throughput) {
        let result = measured(
            "throughput",
            "Throughput",
            throughput::measure(stack, &small, throughput::tasks(quick)),
        )
        .await;
        run.finish("throughput", result);
    }
    let api_params = api_latency::Params::new(quick);
    if wanted.contains(&Which::Api) {
        let result = measured(
            "api",
            "API latency",
            api_latency::measure(stack, &small, &api_params),
        )
        .await;
        run.finish("api", result);
    }
    // Last: its investigations keep the stack busy after it returns.
    if wanted.contains(&Which::Crashes) {
        eprintln!("measuring crash ingestion (errand bench crashes) ...");
        if let Err(err) = api_latency::crashes(stack, &api_params, &run.out).await {
            eprintln!("crash ingestion failed: {err:#}");
            run.failures.push(format!("crashes: {err:#}"));
        }
    }
    Ok(())
}

/// A figure's measurement with the load around it.
async fn measured(
    key: &'static str,
    title: &'static str,
    measure: impl Future<Output = anyhow::Result<(Vec<Row>, String)>>,
) -> anyhow::Result<Figure> {
    eprintln!("measuring {} ...", title.to_lowercase());
    quiet_disk().await;
    let load = load_average();
    let started = Instant::now();
    let (rows, body) = measure.await?;
    eprintln!("  measured in {}", report::human(started.elapsed()));
    Ok(Figure {
        key,
        title,
        rows,
        body,
        load: (load, load_average()),
        own_section: None,
    })
}

/// Writes back what earlier work left dirty and waits (30 s at most) for a second in which
/// the disk kept nobody waiting, so that a figure does not pay for the previous one's writes
/// and removals (on a filesystem that discards freed blocks online, files created while a
/// large removal is discarded take many times longer).
async fn quiet_disk() {
    let _ = tokio::process::Command::new("sync").status().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut before = io_stall();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = io_stall();
        match (before, now) {
            (Some(before), Some(now)) if now.saturating_sub(before) > QUIET_STALL => {}
            _ => return,
        }
        before = now;
    }
}

/// At most this much time stalled on I/O in a second counts as quiet (1%).
const QUIET_STALL: Duration = Duration::from_millis(10);

/// The time tasks have waited for I/O since boot (`some total` of /proc/pressure/io), where
/// the kernel keeps pressure stall information.
fn io_stall() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/pressure/io").ok()?;
    let micros = text
        .lines()
        .find_map(|line| line.strip_prefix("some "))?
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?
        .parse()
        .ok()?;
    Some(Duration::from_micros(micros))
}

struct Run {
    figures: Vec<Figure>,
    failures: Vec<String>,
    out: PathBuf,
    command: String,
    machine: Machine,
}

impl Run {
    /// Prints and records a figure as soon as it is measured; a failure is kept for the end.
    fn finish(&mut self, key: &str, result: anyhow::Result<Figure>) {
        let figure = match result {
            Ok(figure) => figure,
            Err(err) => {
                eprintln!("{key} failed: {err:#}");
                self.failures.push(format!("{key}: {err:#}"));
                return;
            }
        };
        println!("{}", report::summary(std::slice::from_ref(&figure)));
        let section = match &figure.own_section {
            Some(section) => section.clone(),
            None => report::section(&figure, &self.command, &self.machine),
        };
        let (start, end) = report::markers(figure.key);
        if let Err(err) = record(&self.out, &start, &end, &section) {
            eprintln!("cannot record {key}: {err:#}");
            self.failures.push(format!("{key}: {err:#}"));
        }
        self.figures.push(figure);
    }
}

/// A private copy of a cached bare repository (a pack and a few files: cheap).
fn copy_repo(from: &Path, to: &Path) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(to);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("cannot run cp")?;
    anyhow::ensure!(status.success(), "cp -a {} failed", from.display());
    Ok(to.to_owned())
}
