//! Go panics and goroutine dumps: `panic: ...` or `fatal error: ...`, then `goroutine N
//! [state]:` blocks of function and location lines. The first goroutine is the one that
//! crashed. Frames above the last `panic(...)` call are deferred functions that ran while
//! panicking (a `recover` that re-panicked), not where it crashed.

use std::sync::LazyLock;

use regex::Regex;

use super::{Language, Parsed, RawFrame, strip_trailing_args};
use crate::crash::report::{Frame, FrameKind};
use crate::crash::scrub::{self, re};

static HEADER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?P<kind>panic|fatal error|SIG[A-Z]+): (?P<msg>.*)$"));
static GOROUTINE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^goroutine \d+(?: [^\[]*)?\[[^\]]*\]:\s*$"));
static RECOVERED: LazyLock<Regex> = LazyLock::new(|| re(r"\s*\[recovered[^\]]*\]"));
/// Closures are numbered in source order (`serve.func1`), which shifts with unrelated edits.
static CLOSURE: LazyLock<Regex> = LazyLock::new(|| re(r"\.(?P<kind>func|gowrap)\d+(?:\.\d+)*"));
static TYPE_PARAMS: LazyLock<Regex> = LazyLock::new(|| re(r"\[[^\[\]]*\]"));

const NOISE: [&str; 15] = [
    "runtime.gopanic",
    "runtime.panic",
    "runtime.goPanic",
    "runtime.throw",
    "runtime.fatal",
    "runtime.sigpanic",
    "runtime.raise",
    "runtime.crash",
    "runtime.dieFromSignal",
    "runtime.abort",
    "runtime.goexit",
    "runtime.sighandler",
    "runtime.sigtramp",
    "runtime.sigfwd",
    "runtime.gorecover",
];

pub(super) fn parse(lines: &[&str]) -> Option<Parsed> {
    let g = lines
        .iter()
        .position(|l| GOROUTINE.is_match(l.trim_end()))?;
    // The header closest to the dump (a nested "panic: A [recovered]" prints its follow-up indented).
    let header = lines[..g]
        .iter()
        .rev()
        .find_map(|l| HEADER.captures(l.trim_end()));
    let mut frames: Vec<RawFrame> = Vec::new();
    for line in &lines[g + 1..] {
        if line.trim().is_empty() || line.starts_with("created by ") || line.starts_with("...") {
            break;
        }
        if line.starts_with(char::is_whitespace) {
            if let Some(last) = frames.last_mut()
                && last.file.is_none()
            {
                last.file = location(line);
            }
            continue;
        }
        // Go prints every call with its arguments; anything else is output after the dump.
        if !line.trim_end().ends_with(')') {
            break;
        }
        frames.push(RawFrame::new(strip_trailing_args(line.trim()), None));
    }
    if frames.is_empty() && header.is_none() {
        return None;
    }
    let mut parsed = Parsed::new(Language::Go);
    match header {
        Some(caps) => {
            parsed.crash_type = classify(&caps["kind"], &caps["msg"]);
            parsed.message = scrub::message(&caps["msg"]);
        }
        None => parsed.crash_type = "goroutine dump".into(),
    }
    parsed.frames = frames;
    Some(parsed)
}

/// `pkg/sentry/watchdog/watchdog.go` from `\tpkg/sentry/watchdog/watchdog.go:386 +0x737 fp=...`.
fn location(line: &str) -> Option<String> {
    let path = line.split_whitespace().next()?;
    let path = path.rsplit_once(':').map_or(path, |(p, line)| {
        if line.chars().all(|c| c.is_ascii_digit()) {
            p
        } else {
            path
        }
    });
    Some(path.to_string())
}

/// A runtime error keeps its kind without indices (`runtime error: index out of range`); a
/// fatal error keeps its (static) text; any other panic is `panic`, since its value is data
/// and the frames tell panics apart.
fn classify(kind: &str, msg: &str) -> String {
    let msg = RECOVERED.replace_all(msg, "");
    let msg = msg.trim();
    match kind {
        "panic" => match msg.strip_prefix("runtime error: ") {
            Some(rest) => {
                let cut = [" [", " with ", ": "]
                    .iter()
                    .filter_map(|s| rest.find(s))
                    .min()
                    .unwrap_or(rest.len());
                format!("runtime error: {}", scrub::strip_numbers(&rest[..cut]))
            }
            None => "panic".into(),
        },
        "fatal error" => format!(
            "fatal error: {}",
            scrub::bounded(&scrub::strip_numbers(msg), 120)
        ),
        signal => signal.to_string(),
    }
}

/// For structured inputs: the same classification when the message is a panic's, else the
/// reported type (`*errors.errorString`), else `panic`.
pub(super) fn crash_type(ty: &str, value: &str) -> String {
    let first = value
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if let Some(caps) = HEADER.captures(first) {
        return classify(&caps["kind"], &caps["msg"]);
    }
    if first.starts_with("runtime error: ") {
        return classify("panic", first);
    }
    let ty = ty.trim();
    if ty.is_empty() {
        "panic".into()
    } else {
        scrub::bounded(ty, 200)
    }
}

/// `gvisor.dev/gvisor/pkg/sentry/watchdog.(*Watchdog).doAction`: package path and function,
/// without arguments, type parameters or closure numbers.
pub(super) fn frame(raw: &RawFrame) -> Option<Frame> {
    let function = strip_trailing_args(raw.function.trim());
    let function = match raw.module.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() && !function.starts_with(&format!("{m}.")) => {
            format!("{m}.{function}")
        }
        _ => function.to_string(),
    };
    let function = TYPE_PARAMS.replace_all(&function, "");
    let function = CLOSURE.replace_all(&function, ".$kind").into_owned();
    if function.is_empty() {
        return None;
    }
    let (dir, rest) = function.rsplit_once('/').unwrap_or(("", &function));
    let package = rest.split('.').next().unwrap_or(rest);
    let path = if dir.is_empty() {
        package.to_string()
    } else {
        format!("{dir}/{package}")
    };
    let first = path.split('/').next().unwrap_or("");
    let kind = if function == "panic"
        || NOISE.iter().any(|n| function.starts_with(n))
        || function.contains("LLVMFuzzerTestOneInput")
    {
        FrameKind::Noise
    } else if path == "runtime"
        || path.starts_with("runtime/")
        || path.starts_with("internal/")
        || path.starts_with("golang.org/x/")
        || (!first.contains('.') && path != "main")
    {
        FrameKind::Library
    } else {
        FrameKind::App
    };
    Some(Frame {
        function,
        file: raw.file.as_deref().and_then(scrub::display_path),
        kind,
    })
}

/// Frames above the last `panic` call ran during the panic (deferred and recovering functions).
pub(super) fn mark_panic_machinery(frames: &mut [Frame]) {
    if let Some(last) = frames
        .iter()
        .rposition(|f| f.function == "panic" || f.function == "runtime.gopanic")
    {
        for frame in &mut frames[..last] {
            frame.kind = FrameKind::Noise;
        }
    }
}
