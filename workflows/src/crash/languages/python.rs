//! Python tracebacks: `Traceback (most recent call last):`, `File "...", line N, in f` frames
//! (outermost first), then `Type: message`. In a chain (`raise ... from ...`, or an exception
//! raised while handling another) the first, oldest exception is the root cause and counts, as
//! for Java's `Caused by:` and Sentry's exception values.

use std::sync::LazyLock;

use regex::Regex;

use super::{Language, Parsed, RawFrame, type_prefix};
use crate::crash::report::{Frame, FrameKind};
use crate::crash::scrub::{self, re};

const HEADER: &str = "Traceback (most recent call last):";
const CHAIN_MARKERS: [&str; 2] = [
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
];

static FRAME: LazyLock<Regex> =
    LazyLock::new(|| re(r#"^\s*File "(?P<file>[^"]*)", line \d+(?:, in (?P<func>.+?))?\s*$"#));
/// The standard library, frozen modules and installed packages: not the application's code.
static LIBRARY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^<frozen |^<embedded stdlib>|[/\\]lib[/\\]python\d(?:\.\d+)?[/\\]|[/\\]Lib[/\\]|[/\\](?:site|dist)-packages[/\\]",
    )
});

struct Traceback {
    frames: Vec<RawFrame>,
    ty: String,
    message: String,
    /// Printed after a chain marker: part of the previous traceback's chain.
    chained: bool,
}

pub(super) fn parse(lines: &[&str]) -> Option<Parsed> {
    let mut tracebacks: Vec<Traceback> = Vec::new();
    let mut chained = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if CHAIN_MARKERS.contains(&line) {
            chained = true;
        } else if line.ends_with(HEADER) {
            let (traceback, end) = traceback(lines, i + 1, chained);
            tracebacks.push(traceback);
            chained = false;
            i = end;
            continue;
        }
        i += 1;
    }
    // The last chain in the log is the crash (earlier ones were logged and survived); its
    // first traceback is the root cause.
    let start = tracebacks.iter().rposition(|t| !t.chained)?;
    let root = tracebacks.swap_remove(start);
    let mut parsed = Parsed::new(Language::Python);
    parsed.crash_type = root.ty;
    parsed.message = scrub::message(&root.message);
    parsed.frames = root.frames;
    Some(parsed)
}

/// One traceback from the line after its header; returns it and the index after it.
fn traceback(lines: &[&str], start: usize, chained: bool) -> (Traceback, usize) {
    let mut frames = Vec::new();
    let mut j = start;
    while j < lines.len() {
        let line = lines[j];
        if let Some(caps) = FRAME.captures(line) {
            let func = caps.name("func").map_or("<module>", |m| m.as_str());
            frames.push(RawFrame::new(func, Some(&caps["file"])));
        } else if !(line.trim().is_empty() || line.starts_with(char::is_whitespace)) {
            break;
        }
        // Indented lines are source excerpts, carets and "[Previous line repeated N times]".
        j += 1;
    }
    let (ty, message) = match lines.get(j).and_then(|l| type_prefix(l)) {
        Some((ty, message)) => (ty.to_string(), message.to_string()),
        None => (String::new(), String::new()),
    };
    frames.reverse();
    (
        Traceback {
            frames,
            ty,
            message,
            chained,
        },
        (j + 1).min(lines.len()),
    )
}

/// `views.handler`: the module's last component (or the file's stem) and the function's name
/// (a qualified name's last part, as tracebacks print only that).
pub(super) fn frame(raw: &RawFrame) -> Option<Frame> {
    let file = raw.file.as_deref().unwrap_or("");
    let module = match raw.module.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() => m.rsplit('.').next().unwrap_or(m).to_string(),
        _ => scrub::stem(file),
    };
    let function = raw.function.trim();
    let function = function
        .rsplit('.')
        .next()
        .filter(|f| !f.is_empty())
        .unwrap_or("<module>");
    let library = LIBRARY.is_match(file)
        || raw
            .module
            .as_deref()
            .is_some_and(|m| m.contains("site-packages"));
    Some(Frame {
        function: if module.is_empty() {
            function.to_string()
        } else {
            format!("{module}.{function}")
        },
        file: scrub::display_path(file),
        kind: if library {
            FrameKind::Library
        } else {
            FrameKind::App
        },
    })
}
