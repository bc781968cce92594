//! Figure 3, provisioning versus repository size: what `provision` costs today (it calls
//! `activities::git::checkout_task`, a full clone and checkout), against the floors of
//! notes/workspaces.md measured in the same run: `git clone --shared`, and an overlayfs mount
//! over a prebuilt checkout (the per-task layer of the prebuilt-base design).

use std::path::Path;
use std::time::{Duration, Instant};

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
}

struct Size {
    files: usize,
    runs: usize,
    provision: Percentiles,
    shared: Percentiles,
    overlay: Option<Percentiles>,
    status_in_overlay: Option<Percentiles>,
}

pub async fn measure(
    repos: &Path,
    scratch: &Path,
    params: &Params,
) -> anyhow::Result<(Vec<Row>, String)> {
    let mut sizes = Vec::new();
    let mut overlay_error = None;
    for &files in &params.sizes {
        let repo = super::repos::ensure_repo(repos, files)?;
        let runs = params.runs(files);
        let mut provision = Vec::new();
        let mut shared = Vec::new();
        let mut overlay = Vec::new();
        let mut status = Vec::new();
        let base = scratch.join(format!("base-{files}"));
        clone_shared(&repo, &base).await?;
        for run in 0..runs {
            let dest = scratch.join(format!("provision-{files}-{run}"));
            let started = Instant::now();
            activities::git::checkout_task(
                &repo.display().to_string(),
                "main",
                &format!("errand/bench-provision-{run}"),
                &dest,
            )
            .await
            .with_context(|| format!("checkout_task of {files} files"))?;
            provision.push(started.elapsed());
            remove(&dest).await;

            let dest = scratch.join(format!("shared-{files}-{run}"));
            let started = Instant::now();
            clone_shared(&repo, &dest).await?;
            shared.push(started.elapsed());
            remove(&dest).await;

            if overlay_error.is_none() {
                match overlay_once(&base, &scratch.join(format!("overlay-{files}-{run}"))).await {
                    Ok((mount, git_status)) => {
                        overlay.push(mount);
                        status.push(git_status);
                    }
                    Err(err) => overlay_error = Some(format!("{err:#}")),
                }
            }
        }
        remove(&base).await;
        sizes.push(Size {
            files,
            runs,
            provision: Percentiles::of(&provision),
            shared: Percentiles::of(&shared),
            overlay: (!overlay.is_empty()).then(|| Percentiles::of(&overlay)),
            status_in_overlay: (!status.is_empty()).then(|| Percentiles::of(&status)),
        });
    }
    Ok(render(&sizes, overlay_error, params.quick))
}

fn render(sizes: &[Size], overlay_error: Option<String>, quick: bool) -> (Vec<Row>, String) {
    let smallest = sizes.first();
    let largest = sizes.last();
    let growth = match (smallest, largest) {
        (Some(small), Some(large)) if large.files > small.files => {
            Some(large.provision.p50.as_secs_f64() / small.provision.p50.as_secs_f64().max(1e-9))
        }
        _ => None,
    };
    let has_100k = largest.is_some_and(|size| size.files >= 100_000);
    let mut rows = Vec::new();
    for size in sizes {
        let floor = match &size.overlay {
            Some(overlay) => format!(
                "clone --shared {}, overlay {}",
                human(size.shared.p50),
                human(overlay.p50)
            ),
            None => format!("clone --shared {}", human(size.shared.p50)),
        };
        let row = Row::new(format!("{} files", size.files), human(size.provision.p50)).floor(floor);
        rows.push(
            match (
                growth,
                Some(size.files) == largest.map(|l| l.files) && has_100k,
            ) {
                (Some(growth), true) => row.goal(
                    format!("<= {GOAL_GROWTH}x the 1k median (is {growth:.1}x)"),
                    growth <= GOAL_GROWTH,
                ),
                _ => row,
            },
        );
    }
    rows.push(Row::new("from a warm base", "not available").goal("p50 <= 100 ms", false));

    let mut body = String::from(
        "Each run provisions a fresh workspace of a synthetic repository (small files, 100 per \
         directory, one commit, a bare repository on the same disk) the way the `provision` \
         activity does (`activities::git::checkout_task`: clone, then switch to the task \
         branch), next to the floors of notes/workspaces.md measured in the same run: `git \
         clone --shared` (no object copy), and an overlayfs mount (the `mount` program, as \
         root) over a prebuilt checkout, which is what a per-task layer on a prebuilt base \
         costs. `git status` in that overlay shows what reading the change through git costs \
         at that size.\n\n",
    );
    let cells: Vec<Vec<String>> = sizes
        .iter()
        .map(|size| {
            let pair = |p: &Percentiles| format!("{} / {}", human(p.p50), human(p.p95));
            vec![
                size.files.to_string(),
                size.runs.to_string(),
                pair(&size.provision),
                pair(&size.shared),
                size.overlay.as_ref().map_or_else(|| "-".into(), pair),
                size.status_in_overlay
                    .as_ref()
                    .map_or_else(|| "-".into(), pair),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "files",
            "runs",
            "provision today (p50 / p95)",
            "floor: `clone --shared`",
            "floor: overlay mount",
            "`git status` in the overlay",
        ],
        &cells,
    ));
    if let Some(err) = overlay_error {
        body.push_str(&format!(
            "\nThe overlay floor could not be measured: {err}\n"
        ));
    }
    body.push('\n');
    match (growth, has_100k) {
        (Some(growth), true) => body.push_str(&format!(
            "The 100k-file median is {growth:.1} times the 1k-file one: this {} the goal of at \
             most {GOAL_GROWTH} times. ",
            if growth <= GOAL_GROWTH {
                "meets"
            } else {
                "misses"
            }
        )),
        (Some(growth), false) => body.push_str(&format!(
            "The largest size measured is {growth:.1} times the 1k-file median{}. ",
            if quick {
                " (a quick run: 100k files only in the full run)"
            } else {
                ""
            }
        )),
        _ => {}
    }
    body.push_str(&format!(
        "There is no warm base yet, so the goal of at most {} ms p50 from a warm base cannot \
         be met; the overlay column is its floor.\n\n\
         Provisioning is a full clone and checkout today: its time grows with the number of \
         files, like the `clone --shared` floor, while the overlay mount stays flat. The fix is \
         the design of notes/workspaces.md: a prebuilt base per repository and commit, \
         refreshed on a schedule or when the base branch moves, and a copy-on-write overlay \
         per task; what changed is then read from the upper directory, not with `git status`.\n",
        GOAL_WARM.as_millis()
    ));
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

/// Mounts an overlay over `base` under `dir`, timed; then times `git status` in it.
async fn overlay_once(base: &Path, dir: &Path) -> anyhow::Result<(Duration, Duration)> {
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for sub in [&upper, &work, &merged] {
        std::fs::create_dir_all(sub)?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        base.display(),
        upper.display(),
        work.display()
    );
    let started = Instant::now();
    let mounted = tokio::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged)
        .output()
        .await?;
    let mount = started.elapsed();
    ensure!(
        mounted.status.success(),
        "mount -t overlay: {}",
        String::from_utf8_lossy(&mounted.stderr).trim()
    );
    let started = Instant::now();
    let status = tokio::process::Command::from(git(&merged, &["status", "--porcelain"]))
        .output()
        .await;
    let git_status = started.elapsed();
    let unmounted = tokio::process::Command::new("umount")
        .arg(&merged)
        .status()
        .await?;
    ensure!(unmounted.success(), "umount {} failed", merged.display());
    remove(dir).await;
    ensure!(status?.status.success(), "git status in the overlay failed");
    Ok((mount, git_status))
}

async fn remove(dir: &Path) {
    let _ = tokio::fs::remove_dir_all(dir).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(files: usize, provision_ms: u64) -> Size {
        let p = Percentiles::of(&[Duration::from_millis(provision_ms)]);
        Size {
            files,
            runs: 1,
            provision: p,
            shared: p,
            overlay: Some(p),
            status_in_overlay: None,
        }
    }

    #[test]
    fn the_growth_goal_is_judged_only_with_100k_files() {
        let (rows, body) = render(&[size(1_000, 100), size(100_000, 1_000)], None, false);
        assert_eq!(rows[1].met, Some(false));
        assert!(body.contains("10.0 times the 1k-file one"), "{body}");
        let (rows, body) = render(&[size(1_000, 100), size(10_000, 120)], None, true);
        assert!(rows.iter().take(2).all(|row| row.met.is_none()));
        assert!(body.contains("a quick run"), "{body}");
    }
}
