//! JavaScript and TypeScript stacks: V8 (`Error: msg` then `    at f (file.js:10:5)`, Node and
//! Chrome) and Gecko/JavaScriptCore (`f@file.js:10:5`). Frames are `module.function`: the
//! module from the file name (anonymous functions are common; bundle hashes are dropped).

use std::sync::LazyLock;

use regex::Regex;

use super::{Language, Parsed, RawFrame, strip_trailing_args, type_prefix};
use crate::crash::report::{Frame, FrameKind};
use crate::crash::scrub::{self, re};

static V8_FRAME: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*at (?:async )?(?P<rest>.+?)\s*$"));
static GECKO_FRAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?P<func>[^@\s]*)@(?P<loc>\S+:\d+:\d+)\s*$"));
static LINE_COLUMN: LazyLock<Regex> = LazyLock::new(|| re(r":\d+:\d+$"));
static ALIAS: LazyLock<Regex> = LazyLock::new(|| re(r"\s*\[as [^\]]*\]$"));

/// A frame, and whether it has a real `file:line:column` location (what tells a JavaScript
/// stack apart from other `at ...` lines).
fn js_frame(line: &str) -> Option<(RawFrame, bool)> {
    if let Some(caps) = GECKO_FRAME.captures(line) {
        return Some((
            RawFrame::new(&caps["func"], Some(strip_position(&caps["loc"]))),
            true,
        ));
    }
    let rest = V8_FRAME.captures(line)?.name("rest")?.as_str();
    let (func, loc) = if rest.ends_with(')') {
        let func = strip_trailing_args(rest);
        let loc = rest
            .get(func.len()..)
            .unwrap_or("")
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')');
        (func, loc)
    } else {
        ("", rest)
    };
    let located = LINE_COLUMN.is_match(loc);
    let known = located || loc == "native" || loc == "<anonymous>" || loc.starts_with("index ");
    known.then(|| (RawFrame::new(func, Some(strip_position(loc))), located))
}

fn strip_position(loc: &str) -> &str {
    match LINE_COLUMN.find(loc) {
        Some(m) => &loc[..m.start()],
        None => loc,
    }
}

pub(super) fn parse(lines: &[&str]) -> Option<Parsed> {
    // Each run of frame lines is a stack; the last one with a real location is the crash.
    let mut stacks: Vec<(usize, Vec<RawFrame>)> = Vec::new();
    let mut current: Option<(usize, Vec<RawFrame>, bool)> = None;
    for (i, line) in lines.iter().enumerate() {
        match (js_frame(line), current.as_mut()) {
            (Some((frame, located)), Some((_, frames, any))) => {
                frames.push(frame);
                *any |= located;
            }
            (Some((frame, located)), None) => current = Some((i, vec![frame], located)),
            (None, _) => {
                if let Some((start, frames, true)) = current.take() {
                    stacks.push((start, frames));
                }
            }
        }
    }
    if let Some((start, frames, true)) = current.take() {
        stacks.push((start, frames));
    }
    let (start, frames) = stacks.pop()?;
    let header = lines[..start]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut parsed = Parsed::new(Language::JavaScript);
    if let Some((ty, message)) = type_prefix(header) {
        parsed.crash_type = ty.trim_start_matches('[').to_string();
        parsed.message = scrub::message(message);
    }
    parsed.frames = frames;
    Some(parsed)
}

/// `users.Object.handler`: the file's stem (bundle hashes removed) and the function.
pub(super) fn frame(raw: &RawFrame) -> Option<Frame> {
    let mut func = raw.function.trim();
    for prefix in ["async ", "new "] {
        func = func.strip_prefix(prefix).unwrap_or(func);
    }
    let func = ALIAS.replace(func, "");
    // V8 prefixes the receiver's type (`Object.handler`, `Layer.handle`), other engines do not,
    // and the receiver depends on how the function was called: keep the function's own name.
    let func = func
        .rsplit('.')
        .find(|part| !part.is_empty() && *part != "prototype")
        .unwrap_or("<anonymous>");
    let file = raw.file.as_deref().map(str::trim).filter(|f| !f.is_empty());
    let module = match (file, raw.module.as_deref()) {
        (Some(f), _) if !matches!(f, "native" | "<anonymous>") && !f.starts_with("index ") => {
            scrub::stem(f)
        }
        (_, Some(m)) => m.rsplit(['/', '.', ':']).next().unwrap_or("").to_string(),
        _ => String::new(),
    };
    let location = file.unwrap_or("");
    let library = location.contains("node_modules/")
        || location.starts_with("node:")
        || location.starts_with("internal/")
        || matches!(location, "native" | "<anonymous>")
        || location.starts_with("index ")
        || raw
            .module
            .as_deref()
            .is_some_and(|m| m.contains("node_modules"));
    Some(Frame {
        function: if module.is_empty() {
            func.to_string()
        } else {
            format!("{module}.{func}")
        },
        file: file.and_then(scrub::display_path),
        kind: if library {
            FrameKind::Library
        } else {
            FrameKind::App
        },
    })
}
