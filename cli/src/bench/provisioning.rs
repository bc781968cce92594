//! Figure 3, provisioning versus repository size: what the `provision` activity costs
//! (`activities::workspace::Workspaces::provision`) from a warm base (the base of the current
//! commit already built: an overlay mount, then the branch logic in it), what the first task on
//! a new base commit pays (the base's build), and the cold path a worker falls back to
//! (`activities::git::checkout_task`, a full clone), with the `git clone --shared` floor and
//! `git status` in the overlay measured in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use activities::data_dir::DataDir;
use activities::workspace::{Kind, Workspaces};
use anyhow::{Context, ensure};

use super::Percentiles;
use super::report::{Row, human, table};
use super::repos::git;

/// The 100k-file median may be at most this many times the 1k-file one.
const GOAL_GROWTH: f64 = 1.5;
const GOAL_WARM: Duration = Duration::from_millis(100);

pub struct Params {
    pub sizes: Vec<usize>,
    pub quick: bool,
}

impl Params {
    pub fn new(quick: bool) -> Params {
        Params {
            sizes: if quick {
                vec![1_000, 10_000]
            } else {
                vec![1_000, 10_000, 100_000]
            },
            quick,
        }
    }

    /// Fewer runs where one run takes seconds.
    fn runs(&self, files: usize) -> usize {
        match (self.quick, files >= 100_000) {
            (true, _) => 3,
            (false, true) => 3,
            (false, false) => 5,
        }
    }

    /// Warm provisions take milliseconds: more of them.
    fn warm_runs(&self) -> usize {
        if self.quick { 5 } else { 15 }
    }
}

struct Size {
    files: usize,
    runs: usize,
    warm_runs: usize,
    /// The first task on a commit: the base's build, then the overlay.
    first: Option<Duration>,
    warm: Option<Percentiles>,
    cold: Percentiles,
    shared: Percentiles,
    status_in_overlay: Option<Percentiles>,
}

pub async fn measure(
    repos: &Path,
    scratch: &Path,
    params: &Params,
) -> anyhow::Result<(Vec<Row>, String)> {
    let mut sizes = Vec::new();
    let mut fallback = None;
    for &files in &params.sizes {
        let repo = super::repos::ensure_repo(repos, files)?;
        let url = repo.display().to_string();
        let runs = params.runs(files);

        // Warm: one data directory per size; its first task builds the base.
        let data = scratch.join(format!("warm-{files}"));
        let workspaces = Workspaces::new(DataDir::new(&data));
        let mut first = None;
        let mut warm = Vec::new();
        let mut status = Vec::new();
        for run in 0..=params.warm_runs() {
            let task = format!("bench-warm-{run}");
            let started = Instant::now();
            let made = workspaces
                .provision(&url, "main", &format!("errand/{task}"), &task)
                .await
                .with_context(|| format!("provision of {files} files"))?;
            let took = started.elapsed();
            let dest = DataDir::new(&data).workspace(&task);
            if let Kind::Clone { reason } = &made.kind {
                fallback = Some(reason.clone());
                workspaces.remove(&task, &dest).await?;
                break;
            }
            if run == 0 {
                first = Some(took);
            } else {
                warm.push(took);
                if run <= runs {
                    let started = Instant::now();
                    let output =
                        tokio::process::Command::from(git(&dest, &["status", "--porcelain"]))
                            .output()
                            .await?;
                    status.push(started.elapsed());
                    ensure!(output.status.success(), "git status in the overlay failed");
                }
            }
            workspaces.remove(&task, &dest).await?;
        }
        remove(&data).await;

        // Cold: the clone a worker falls back to, and its floor.
        let mut cold = Vec::new();
        let mut shared = Vec::new();
        for run in 0..runs {
            let dest = scratch.join(format!("provision-{files}-{run}"));
            let started = Instant::now();
            activities::git::checkout_task(
                &url,
                "main",
                &format!("errand/bench-provision-{run}"),
                &dest,
            )
            .await
            .with_context(|| format!("checkout_task of {files} files"))?;
            cold.push(started.elapsed());
            remove(&dest).await;

            let dest = scratch.join(format!("shared-{files}-{run}"));
            let started = Instant::now();
            clone_shared(&repo, &dest).await?;
            shared.push(started.elapsed());
            remove(&dest).await;
        }
        sizes.push(Size {
            files,
            runs,
            warm_runs: warm.len(),
            first,
            warm: (!warm.is_empty()).then(|| Percentiles::of(&warm)),
            cold: Percentiles::of(&cold),
            shared: Percentiles::of(&shared),
            status_in_overlay: (!status.is_empty()).then(|| Percentiles::of(&status)),
        });
    }
    Ok(render(&sizes, fallback, params.quick))
}

fn render(sizes: &[Size], fallback: Option<String>, quick: bool) -> (Vec<Row>, String) {
    let smallest = sizes.first();
    let largest = sizes.last();
    let warm_p50 = |size: &Size| size.warm.map(|p| p.p50);
    let growth = match (smallest, largest) {
        (Some(small), Some(large)) if large.files > small.files => {
            match (warm_p50(small), warm_p50(large)) {
                (Some(small), Some(large)) => {
                    Some(large.as_secs_f64() / small.as_secs_f64().max(1e-9))
                }
                _ => None,
            }
        }
        _ => None,
    };
    let has_100k = largest.is_some_and(|size| size.files >= 100_000);
    let worst_warm = sizes.iter().filter_map(warm_p50).max();
    let warm_met = worst_warm.is_some_and(|p50| p50 <= GOAL_WARM);
    let mut rows = Vec::new();
    for size in sizes {
        let measured = warm_p50(size).map_or_else(|| "no overlay".into(), human);
        let row = Row::new(format!("{} files, warm", size.files), measured)
            .floor(format!("cold clone {}", human(size.cold.p50)));
        let is_largest = Some(size.files) == largest.map(|l| l.files);
        rows.push(match growth {
            Some(growth) if is_largest && has_100k => row.goal(
                format!("<= {GOAL_GROWTH}x the 1k median (is {growth:.1}x)"),
                growth <= GOAL_GROWTH,
            ),
            _ => row,
        });
    }
    rows.push(match worst_warm {
        Some(p50) => Row::new("from a warm base, slowest size", human(p50))
            .goal(format!("p50 <= {} ms", GOAL_WARM.as_millis()), warm_met),
        None => Row::new("from a warm base", "not available").goal("p50 <= 100 ms", false),
    });

    let mut body = String::from(
        "Each run provisions a workspace of a synthetic repository (small files, 100 per \
         directory, one commit, a bare repository on the same disk) the way the `provision` \
         activity does (`activities::workspace::Workspaces::provision`: `git ls-remote` of \
         the base branch, an overlayfs mount of the base checkout of that commit, then the \
         branch logic of `git::checkout_task` inside it: the task branch named at the base \
         commit, with a fetch only when the remote holds a checkpoint of the task), and \
         removes it (unmount, delete the task's layer). The first task on a commit builds \
         the base (a clone, checkout and index refresh); every later task is warm. The cold \
         column is a full clone (`git::checkout_task`), what a worker that cannot mount an \
         overlay (not root) does for a repository it has no mirror of yet, with the `git \
         clone --shared` floor of notes/workspaces.md; `git status` in the overlay shows what \
         reading the change through git costs at that size.\n\n",
    );
    let cells: Vec<Vec<String>> = sizes
        .iter()
        .map(|size| {
            let pair = |p: &Percentiles| format!("{} / {}", human(p.p50), human(p.p95));
            vec![
                size.files.to_string(),
                format!("{} / {}", size.warm_runs, size.runs),
                size.warm.as_ref().map_or_else(|| "-".into(), pair),
                size.first.map_or_else(|| "-".into(), human),
                pair(&size.cold),
                pair(&size.shared),
                size.status_in_overlay
                    .as_ref()
                    .map_or_else(|| "-".into(), pair),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "files",
            "runs (warm / cold)",
            "warm: overlay on a built base (p50 / p95)",
            "first task on a new base (build)",
            "cold: full clone (p50 / p95)",
            "floor of a clone: `clone --shared`",
            "`git status` in the overlay",
        ],
        &cells,
    ));
    if let Some(reason) = fallback {
        body.push_str(&format!(
            "\nNo overlay could be mounted, so there is no warm figure: {reason}\n"
        ));
    }
    body.push('\n');
    match (growth, has_100k) {
        (Some(growth), true) => body.push_str(&format!(
            "Warm, the 100k-file median is {growth:.1} times the 1k-file one: this {} the goal \
             of at most {GOAL_GROWTH} times. ",
            if growth <= GOAL_GROWTH {
                "meets"
            } else {
                "misses"
            }
        )),
        (Some(growth), false) => body.push_str(&format!(
            "Warm, the largest size measured is {growth:.1} times the 1k-file median{}. ",
            if quick {
                " (a quick run: 100k files only in the full run)"
            } else {
                ""
            }
        )),
        _ => {}
    }
    if let Some(p50) = worst_warm {
        body.push_str(&format!(
            "The slowest warm median is {}: this {} the goal of at most {} ms p50 from a warm \
             base. ",
            human(p50),
            if warm_met { "meets" } else { "misses" },
            GOAL_WARM.as_millis()
        ));
    }
    body.push_str(
        "The cold path still grows with the number of files, and so does the first task on a \
         new base commit (the base's build); the worker's refresh loop (`[workspaces] \
         base_refresh_secs`) builds the base of a moved base branch ahead of that task. \
         `git status` over the overlay still walks the whole index.\n",
    );
    (rows, body)
}

async fn clone_shared(repo: &Path, dest: &Path) -> anyhow::Result<()> {
    let status =
        tokio::process::Command::from(git(Path::new("/"), &["clone", "--quiet", "--shared"]))
            .arg(repo)
            .arg(dest)
            .status()
            .await?;
    ensure!(
        status.success(),
        "git clone --shared {} failed",
        repo.display()
    );
    Ok(())
}

async fn remove(dir: &Path) {
    let _ = tokio::fs::remove_dir_all(dir).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(files: usize, warm_ms: u64) -> Size {
        let p = Percentiles::of(&[Duration::from_millis(warm_ms)]);
        Size {
            files,
            runs: 1,
            warm_runs: 1,
            first: Some(Duration::from_secs(1)),
            warm: Some(p),
            cold: p,
            shared: p,
            status_in_overlay: None,
        }
    }

    #[test]
    fn the_growth_goal_is_judged_only_with_100k_files() {
        let (rows, body) = render(&[size(1_000, 50), size(100_000, 500)], None, false);
        assert_eq!(rows[1].met, Some(false));
        assert!(body.contains("10.0 times the 1k-file one"), "{body}");
        let (rows, body) = render(&[size(1_000, 50), size(10_000, 60)], None, true);
        assert!(rows.iter().take(2).all(|row| row.met.is_none()));
        assert!(body.contains("a quick run"), "{body}");
    }

    #[test]
    fn the_warm_goal_is_judged_on_the_slowest_size() {
        let (rows, body) = render(&[size(1_000, 50), size(100_000, 70)], None, false);
        assert_eq!(rows[1].met, Some(true));
        assert_eq!(rows[2].met, Some(true));
        assert!(body.contains("meets the goal of at most 100 ms"), "{body}");
        let (rows, _) = render(&[size(1_000, 50), size(100_000, 120)], None, false);
        assert_eq!(rows[2].met, Some(false));
    }
}
