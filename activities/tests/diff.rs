//! The diff summary and the red->green base probe against real git: a repository with a base
//! commit and a workspace changed every way an agent can (edit, add untracked, delete, rename).

use std::path::Path;
use std::process::Command;

use activities::{diff, red_green};
use workflows::contracts::ChangeStatus;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(dir: &Path, path: &str, content: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// A workspace (`ws` in a temporary directory) whose base commit has a calculator, its test
/// and some docs.
fn workspace() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let ws = &dir.path().join("ws");
    std::fs::create_dir(ws).unwrap();
    git(ws, &["init", "--quiet", "-b", "main"]);
    write(ws, "calc.sh", "echo $((a - b))\n");
    write(
        ws,
        "test.sh",
        "check add 2 3 5\ncheck add 1 1 2\nexit $fail\n",
    );
    write(ws, "tests/test_mul.sh", "check mul 2 3 6\n");
    write(ws, "docs/old.md", "# Old\n".repeat(20).as_str());
    git(ws, &["add", "."]);
    git(ws, &["commit", "--quiet", "-m", "base"]);
    let base = git(ws, &["rev-parse", "HEAD"]);
    git(ws, &["switch", "--quiet", "-c", "errand/t1"]);
    (dir, base)
}

#[tokio::test]
async fn every_kind_of_change_is_summarized_with_test_lines_first() {
    let (dir, base) = workspace();
    let ws = &dir.path().join("ws");
    write(ws, "calc.sh", "echo $((a + b))\n");
    write(ws, "test.sh", "exit 0\ncheck add 2 3 5\nexit $fail\n");
    write(ws, "tests/test_div.sh", "check div 6 3 2\n");
    std::fs::remove_file(ws.join("tests/test_mul.sh")).unwrap();
    std::fs::rename(ws.join("docs/old.md"), ws.join("docs/new.md")).unwrap();

    let test_paths = vec!["**/test.*".to_string(), "**/tests/**".to_string()];
    let summary = diff::summarize(ws, &base, &test_paths).await.unwrap();
    assert_eq!(summary.base_commit, base);
    let files: Vec<(&str, ChangeStatus, Option<&str>)> = summary
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.status, f.old_path.as_deref()))
        .collect();
    assert_eq!(
        files,
        [
            ("calc.sh", ChangeStatus::Modified, None),
            ("docs/new.md", ChangeStatus::Renamed, Some("docs/old.md")),
            ("test.sh", ChangeStatus::Modified, None),
            ("tests/test_div.sh", ChangeStatus::Added, None),
            ("tests/test_mul.sh", ChangeStatus::Deleted, None),
        ]
    );
    let test_sh = &summary.files[2];
    assert_eq!((test_sh.lines_added, test_sh.lines_removed), (1, 1));
    let lines = test_sh.lines.as_ref().expect("test files are inspected");
    assert_eq!(lines.added, ["exit 0"]);
    assert_eq!(lines.removed, ["check add 1 1 2"]);
    assert!(
        summary.files[4].lines.is_none(),
        "a deleted file has nothing to read"
    );
    assert_eq!((summary.lines_added, summary.lines_removed), (3, 3));
    assert_eq!(summary.changed_files(), 5);
}

#[tokio::test]
async fn the_base_probe_is_the_base_commit_with_the_agents_tests() {
    let (dir, base) = workspace();
    let ws = &dir.path().join("ws");
    write(ws, "calc.sh", "echo $((a + b))\n");
    write(ws, "tests/test_div.sh", "check div 6 3 2\n");
    write(
        ws,
        "test.sh",
        "check add 2 3 5\ncheck add 1 1 2\ncheck add 0 0 0\nexit $fail\n",
    );
    diff::summarize(ws, &base, &[]).await.unwrap();

    let probe = dir.path().join("probe");
    let files = vec!["tests/test_div.sh".to_string(), "test.sh".to_string()];
    red_green::prepare_base(ws, &base, &files, &probe)
        .await
        .unwrap();
    let read = |p: &str| std::fs::read_to_string(probe.join(p)).unwrap();
    assert_eq!(
        read("calc.sh"),
        "echo $((a - b))\n",
        "the code is the base's"
    );
    assert_eq!(
        read("tests/test_div.sh"),
        "check div 6 3 2\n",
        "new tests are laid over it"
    );
    assert!(
        read("test.sh").contains("check add 0 0 0"),
        "changed tests too"
    );
    assert_eq!(git(&probe, &["rev-parse", "HEAD"]), base);

    // A second attempt replaces the probe; removing it twice is fine.
    red_green::prepare_base(ws, &base, &[], &probe)
        .await
        .unwrap();
    assert!(!probe.join("tests/test_div.sh").exists());
    red_green::remove(&probe).unwrap();
    red_green::remove(&probe).unwrap();
    assert!(!probe.exists());
}
