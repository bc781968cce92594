//! Synthetic repositories for the benchmarks: N small files on `main` of a bare repository,
//! written by one `git fast-import` stream (seconds, even for 100k files, where committing a
//! working tree would take minutes) and cached under the bench directory between runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, ensure};

/// Files per directory: real repositories are trees, not one flat folder.
const FILES_PER_DIR: usize = 100;

/// The bare repository with `files` files, made once and cached in `dir`.
pub fn ensure_repo(dir: &Path, files: usize) -> anyhow::Result<PathBuf> {
    let repo = dir.join(format!("files-{files}.git"));
    if repo.join("refs/heads/main").exists() || has_packed_main(&repo) {
        return Ok(repo);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Built beside its final name and renamed, so an interrupted build is never taken as cached.
    let staging = dir.join(format!("files-{files}.git.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    git(dir, &["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(&staging)
        .status()
        .context("cannot run git init")?
        .success()
        .then_some(())
        .context("git init --bare failed")?;
    let mut import = git(&staging, &["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .context("cannot run git fast-import")?;
    let mut stdin = import.stdin.take().context("fast-import stdin")?;
    stdin.write_all(&fast_import_stream(files))?;
    drop(stdin);
    let status = import.wait()?;
    ensure!(status.success(), "git fast-import failed: {status}");
    std::fs::rename(&staging, &repo)
        .with_context(|| format!("cannot move the repository to {}", repo.display()))?;
    Ok(repo)
}

fn has_packed_main(repo: &Path) -> bool {
    std::fs::read_to_string(repo.join("packed-refs"))
        .is_ok_and(|refs| refs.lines().any(|line| line.ends_with(" refs/heads/main")))
}

/// Path of file `i` in a synthetic repository.
pub fn file_path(i: usize) -> String {
    format!("src/d{:04}/f{i:06}.txt", i / FILES_PER_DIR)
}

/// One commit on `refs/heads/main` holding `files` small files, each with its own content.
pub fn fast_import_stream(files: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(files * 64 + 256);
    let message = format!("{files} synthetic files for errand bench\n");
    let _ = write!(
        out,
        "commit refs/heads/main\n\
         author Errand bench <bench@errand.invalid> 1700000000 +0000\n\
         committer Errand bench <bench@errand.invalid> 1700000000 +0000\n\
         data {}\n{message}\n",
        message.len()
    );
    for i in 0..files {
        let content = format!("line one of file {i}\nline two\n");
        let _ = write!(
            out,
            "M 100644 inline {}\ndata {}\n{content}\n",
            file_path(i),
            content.len()
        );
    }
    out
}

/// git with no user or system configuration, so the host's settings do not skew timings.
pub fn git(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(args);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_fill_directories_of_a_hundred() {
        assert_eq!(file_path(0), "src/d0000/f000000.txt");
        assert_eq!(file_path(99), "src/d0000/f000099.txt");
        assert_eq!(file_path(100), "src/d0001/f000100.txt");
        assert_eq!(file_path(99_999), "src/d0999/f099999.txt");
    }

    #[test]
    fn the_stream_holds_one_entry_per_file() {
        let stream = String::from_utf8(fast_import_stream(250)).expect("utf-8");
        assert_eq!(stream.matches("\nM 100644 inline ").count(), 250);
        assert_eq!(stream.matches("commit refs/heads/main").count(), 1);
    }

    #[test]
    fn a_generated_repository_has_exactly_its_files_and_is_cached() {
        let dir = std::env::temp_dir().join(format!("errand-bench-repos-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = ensure_repo(&dir, 1000).expect("repo");
        let listed = git(&repo, &["ls-tree", "-r", "--name-only", "main"])
            .output()
            .expect("ls-tree");
        let names = String::from_utf8_lossy(&listed.stdout);
        assert_eq!(names.lines().count(), 1000);
        assert!(names.lines().any(|name| name == file_path(999)));
        let marker = repo.join("cached");
        std::fs::write(&marker, "").expect("marker");
        assert_eq!(ensure_repo(&dir, 1000).expect("cached"), repo);
        assert!(
            marker.exists(),
            "the cached repository is reused, not rebuilt"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
