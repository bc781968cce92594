//! The builtin loop's tools: list, read, write and search files, run a command, finish.
//!
//! They act on the workspace from inside the sandbox, which is the boundary: paths are still
//! kept relative to the workspace (no `..`, no absolute paths elsewhere) so the model's view
//! stays the repository, and every answer is bounded so one tool call cannot flood the context.

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// The most text one tool answer carries.
pub const MAX_TOOL_OUTPUT_BYTES: usize = 16 * 1024;
const MAX_LIST_ENTRIES: usize = 1000;
const MAX_SEARCH_MATCHES: usize = 100;
const MAX_MATCH_LINE_CHARS: usize = 200;
/// Files larger than this are not read whole or searched.
const MAX_FILE_BYTES: u64 = 1 << 20;
const MAX_WRITE_BYTES: usize = 1 << 20;
const DEFAULT_RUN_TIMEOUT_SECS: u64 = 300;
const MAX_RUN_TIMEOUT_SECS: u64 = 1800;
/// After a command ended or was killed, how long its output may take to close (a daemon it
/// left could hold the pipe open forever).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// What a tool call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Text for the model.
    Answer(String),
    /// `finish`: the work is done; the summary.
    Finish(String),
}

/// The tools, as the chat completions API declares them.
pub fn definitions() -> Value {
    let tool = |name: &str, description: &str, properties: Value, required: &[&str]| {
        json!({"type": "function", "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        }})
    };
    json!([
        tool(
            "list_files",
            "List the files and directories under a directory of the repository (recursively, .git left out).",
            json!({"path": {"type": "string", "description": "a directory relative to the repository root; default ."}}),
            &[],
        ),
        tool(
            "read_file",
            "Read a text file of the repository, from a line on.",
            json!({
                "path": {"type": "string"},
                "start_line": {"type": "integer", "description": "1-based; default 1"},
            }),
            &["path"],
        ),
        tool(
            "write_file",
            "Create or replace a file of the repository with the given content.",
            json!({"path": {"type": "string"}, "content": {"type": "string"}}),
            &["path", "content"],
        ),
        tool(
            "search",
            "Find the lines containing a literal text in the repository's files.",
            json!({
                "pattern": {"type": "string"},
                "path": {"type": "string", "description": "a directory or file to search; default ."},
            }),
            &["pattern"],
        ),
        tool(
            "run",
            "Run a shell command in the repository root (e.g. the build or the tests); returns its exit code and output.",
            json!({
                "command": {"type": "string"},
                "timeout_secs": {"type": "integer", "description": "default 300"},
            }),
            &["command"],
        ),
        tool(
            "finish",
            "End the work: say what you changed and why, and what is left.",
            json!({"summary": {"type": "string"}}),
            &["summary"],
        ),
    ])
}

/// Runs tool `name` with `arguments` (JSON text from the model) in `workspace`. A bad call is
/// an answer that says what was wrong, so the model can correct itself.
pub async fn call(workspace: &Path, name: &str, arguments: &str) -> Outcome {
    let args: Value = match serde_json::from_str(arguments) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(_) | Err(_) if arguments.trim().is_empty() => json!({}),
        _ => {
            return Outcome::Answer(format!(
                "error: the arguments of {name} are not a JSON object: {}",
                super::super::report::cut(arguments, 200)
            ));
        }
    };
    let text = |field: &str| args.get(field).and_then(Value::as_str);
    let result = match name {
        "list_files" => list_files(workspace, text("path").unwrap_or(".")),
        "read_file" => match text("path") {
            Some(path) => {
                let start = args.get("start_line").and_then(Value::as_u64).unwrap_or(1);
                read_file(workspace, path, start)
            }
            None => Err("read_file needs a path".into()),
        },
        "write_file" => match (text("path"), text("content")) {
            (Some(path), Some(content)) => write_file(workspace, path, content),
            _ => Err("write_file needs a path and a content".into()),
        },
        "search" => match text("pattern") {
            Some(pattern) if !pattern.is_empty() => {
                search(workspace, pattern, text("path").unwrap_or("."))
            }
            _ => Err("search needs a pattern".into()),
        },
        "run" => match text("command") {
            Some(command) => {
                let timeout = args
                    .get("timeout_secs")
                    .and_then(Value::as_u64)
                    .unwrap_or(DEFAULT_RUN_TIMEOUT_SECS)
                    .clamp(1, MAX_RUN_TIMEOUT_SECS);
                Ok(run(workspace, command, Duration::from_secs(timeout)).await)
            }
            None => Err("run needs a command".into()),
        },
        "finish" => return Outcome::Finish(text("summary").unwrap_or("").to_string()),
        other => Err(format!(
            "unknown tool {other:?}; the tools are list_files, read_file, write_file, search, run and finish"
        )),
    };
    Outcome::Answer(match result {
        Ok(answer) => bounded(answer),
        Err(message) => format!("error: {message}"),
    })
}

/// `path` inside the workspace: relative (or absolute beneath the workspace), without `..`.
fn resolve(workspace: &Path, path: &str) -> Result<PathBuf, String> {
    let given = Path::new(path.trim());
    let relative = if given.is_absolute() {
        given.strip_prefix(workspace).map_err(|_| {
            format!(
                "{path}: not inside the repository ({})",
                workspace.display()
            )
        })?
    } else {
        given
    };
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!("{path}: paths stay inside the repository (no ..)"));
    }
    Ok(workspace.join(relative))
}

fn shown(workspace: &Path, path: &Path) -> String {
    path.strip_prefix(workspace)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn list_files(workspace: &Path, path: &str) -> Result<String, String> {
    let root = resolve(workspace, path)?;
    let mut entries = Vec::new();
    let mut more = false;
    walk(&root, &mut |entry, is_dir| {
        if entries.len() >= MAX_LIST_ENTRIES {
            more = true;
            return false;
        }
        let name = shown(workspace, entry);
        entries.push(if is_dir { format!("{name}/") } else { name });
        true
    })
    .map_err(|err| format!("{path}: {err}"))?;
    if more {
        entries.push(format!(
            "[... more than {MAX_LIST_ENTRIES} entries; list a subdirectory]"
        ));
    }
    Ok(entries.join("\n"))
}

/// Visits everything under `dir` (sorted, `.git` left out, symlinks not followed) until `visit`
/// says stop.
fn walk(dir: &Path, visit: &mut dyn FnMut(&Path, bool) -> bool) -> std::io::Result<bool> {
    let mut children: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != ".git")
        .collect();
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let is_dir = child.file_type().is_ok_and(|t| t.is_dir());
        if !visit(&path, is_dir) {
            return Ok(false);
        }
        if is_dir && !walk(&path, visit)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn read_file(workspace: &Path, path: &str, start_line: u64) -> Result<String, String> {
    let file = resolve(workspace, path)?;
    let meta = std::fs::metadata(&file).map_err(|err| format!("{path}: {err}"))?;
    if !meta.is_file() {
        return Err(format!("{path}: not a file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{path}: {} bytes, larger than {MAX_FILE_BYTES}; search it instead",
            meta.len()
        ));
    }
    let bytes = std::fs::read(&file).map_err(|err| format!("{path}: {err}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let skip = usize::try_from(start_line.max(1) - 1).unwrap_or(usize::MAX);
    let mut answer = String::new();
    for (i, line) in text.lines().enumerate().skip(skip) {
        let numbered = format!("{:>5}  {line}\n", i + 1);
        if answer.len() + numbered.len() > MAX_TOOL_OUTPUT_BYTES - 100 {
            answer.push_str(&format!("[... cut; read on with start_line {}]\n", i + 1));
            break;
        }
        answer.push_str(&numbered);
    }
    if answer.is_empty() {
        answer = format!("[{path} has no lines from {start_line} on]");
    }
    Ok(answer)
}

fn write_file(workspace: &Path, path: &str, content: &str) -> Result<String, String> {
    if content.len() > MAX_WRITE_BYTES {
        return Err(format!(
            "{path}: content larger than {MAX_WRITE_BYTES} bytes"
        ));
    }
    let file = resolve(workspace, path)?;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(|err| format!("{path}: {err}"))?;
    }
    std::fs::write(&file, content).map_err(|err| format!("{path}: {err}"))?;
    Ok(format!("wrote {} bytes to {path}", content.len()))
}

fn search(workspace: &Path, pattern: &str, path: &str) -> Result<String, String> {
    let root = resolve(workspace, path)?;
    let mut matches = Vec::new();
    let mut search_file = |file: &Path| -> bool {
        let Ok(meta) = std::fs::metadata(file) else {
            return true;
        };
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            return true;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            return true; // binary
        };
        for (i, line) in text.lines().enumerate() {
            if line.contains(pattern) {
                if matches.len() >= MAX_SEARCH_MATCHES {
                    matches.push(format!("[... more than {MAX_SEARCH_MATCHES} matches]"));
                    return false;
                }
                let line: String = line.trim().chars().take(MAX_MATCH_LINE_CHARS).collect();
                matches.push(format!("{}:{}: {line}", shown(workspace, file), i + 1));
            }
        }
        true
    };
    if root.is_file() {
        search_file(&root);
    } else {
        walk(&root, &mut |entry, is_dir| is_dir || search_file(entry))
            .map_err(|err| format!("{path}: {err}"))?;
    }
    Ok(if matches.is_empty() {
        format!("no line contains {pattern:?}")
    } else {
        matches.join("\n")
    })
}

/// Runs `command` with `sh -c`. A shell string is acceptable here only because this code
/// already runs inside the sandbox, on the model's behalf: the sandbox, not this function,
/// bounds what the command can do (on the host, commands are argv vectors, never shell text).
async fn run(workspace: &Path, command: &str, timeout: Duration) -> String {
    let mut child = match tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(err) => return format!("error: cannot start sh: {err}"),
    };
    let stdout = tokio::spawn(read_bounded(child.stdout.take()));
    let stderr = tokio::spawn(read_bounded(child.stderr.take()));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match status.code() {
            Some(code) => format!("exit code {code}"),
            None => "killed by a signal".to_string(),
        },
        Ok(Err(err)) => format!("waiting failed: {err}"),
        Err(_) => {
            if let Some(pid) = child.id() {
                // SAFETY: a plain syscall on the group this command leads.
                unsafe { libc::killpg(pid as i32, libc::SIGKILL) };
            }
            let _ = child.wait().await;
            format!("timed out after {}s and was killed", timeout.as_secs())
        }
    };
    let collect = |task: tokio::task::JoinHandle<String>| async move {
        tokio::time::timeout(OUTPUT_GRACE, task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let (out, err) = (collect(stdout).await, collect(stderr).await);
    let mut answer = status;
    for (name, text) in [("stdout", out), ("stderr", err)] {
        if !text.trim().is_empty() {
            answer.push_str(&format!("\n--- {name}\n{}", text.trim_end()));
        }
    }
    answer
}

/// Reads a pipe to its end, keeping its first and last bytes within half the answer's bound
/// each (the end of a build log says what failed, its start what ran).
async fn read_bounded(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let keep = MAX_TOOL_OUTPUT_BYTES / 2 - 64;
    let mut head = Vec::new();
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut dropped = 0u64;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        if head.len() < keep {
            let take = chunk.len().min(keep - head.len());
            head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        tail.extend(chunk);
        while tail.len() > keep {
            tail.pop_front();
            dropped += 1;
        }
    }
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if dropped > 0 {
        text.push_str(&format!("\n[... {dropped} bytes cut ...]\n"));
    }
    text.push_str(&String::from_utf8_lossy(tail.make_contiguous()));
    text
}

/// Keeps an answer within `MAX_TOOL_OUTPUT_BYTES`.
fn bounded(answer: String) -> String {
    if answer.len() <= MAX_TOOL_OUTPUT_BYTES {
        return answer;
    }
    let mut cut = super::super::report::cut(&answer, MAX_TOOL_OUTPUT_BYTES - 40);
    cut.push_str("\n[... cut]");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_workspace() {
        let ws = Path::new("/repo");
        assert_eq!(
            resolve(ws, "src/a.rs").unwrap(),
            Path::new("/repo/src/a.rs")
        );
        assert_eq!(
            resolve(ws, "/repo/src/a.rs").unwrap(),
            Path::new("/repo/src/a.rs")
        );
        assert_eq!(resolve(ws, ".").unwrap(), Path::new("/repo/."));
        for bad in ["../etc/passwd", "/etc/passwd", "src/../../x"] {
            assert!(resolve(ws, bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn tools_answer_bad_calls_with_what_was_wrong() {
        let ws = Path::new("/nonexistent-workspace");
        for (name, args, want) in [
            ("read_file", "{}", "error: read_file needs a path"),
            ("nope", "{}", "error: unknown tool \"nope\""),
            (
                "run",
                "[1]",
                "error: the arguments of run are not a JSON object",
            ),
        ] {
            let Outcome::Answer(answer) = call(ws, name, args).await else {
                panic!("{name} finished");
            };
            assert!(answer.starts_with(want), "{name}: {answer}");
        }
        assert_eq!(
            call(ws, "finish", r#"{"summary":"done"}"#).await,
            Outcome::Finish("done".into())
        );
    }

    #[tokio::test]
    async fn run_bounds_its_output_and_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let answer = run(
            dir.path(),
            "yes line | head -c 100000; exit 3",
            Duration::from_secs(30),
        )
        .await;
        assert!(answer.starts_with("exit code 3"), "{answer}");
        assert!(answer.len() <= MAX_TOOL_OUTPUT_BYTES, "{}", answer.len());
        assert!(answer.contains("bytes cut"), "{answer}");
        let answer = run(dir.path(), "sleep 30", Duration::from_secs(1)).await;
        assert!(answer.starts_with("timed out after 1s"), "{answer}");
    }
}
