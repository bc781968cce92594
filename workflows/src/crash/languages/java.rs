//! Java, Kotlin and Android stack traces: an exception line, `at pkg.Class.method(File.java:N)`
//! frames, `Caused by:` chains whose last link (the root cause) counts, with its frames
//! completed from the enclosing trace when truncated (`... N more`). In a log with several
//! traces, the crash is the one after `FATAL EXCEPTION` (Android), else an uncaught one
//! (`Exception in thread`), else the last.

use std::sync::LazyLock;

use regex::Regex;

use super::{Language, Parsed, RawFrame};
use crate::crash::report::{Frame, FrameKind};
use crate::crash::scrub::{self, re};

static FRAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*at\s+(?P<func>[^\s(]+)\((?P<loc>[^)]*)\)(?:\s*~?\[[^\]]*\])?\s*$"));
/// What a JVM prints as a frame's location (a JavaScript frame has `file:line:column`).
static LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:Native Method|Unknown Source|SourceFile|[\w$.-]+\.(?:java|kt|kts|scala|groovy|clj|aj))(?::\d+)?$",
    )
});
static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r#"^(?:Exception in thread "[^"]*"\s+|Caused by:\s+|== Java Exception:\s+|Uncaught exception:\s+)?"#,
        r"(?P<type>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+)(?::\s*(?P<msg>.*))?$",
    ))
});
static MORE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*\.\.\. (?P<n>\d+) (?:more|common frames omitted)\s*$"));
static LAMBDA_CLASS: LazyLock<Regex> =
    LazyLock::new(|| re(r"\$\$Lambda(?:\$\d+)?(?:/(?:0x)?[0-9a-fA-F]+)?"));
static LAMBDA_METHOD: LazyLock<Regex> = LazyLock::new(|| re(r"lambda\$(?P<name>[\w$]*?)\$\d+"));
static PROXY: LazyLock<Regex> =
    LazyLock::new(|| re(r"\$\$(?P<kind>EnhancerBy\w+|FastClassBy\w+|SpringCGLIB)\$\$[0-9a-fA-F]+"));
/// Compiler-generated accessors, numbered per build: never a crash's identity.
static SYNTHETIC: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:access\$\d+|-wrap\d+|-get\d+|-set\d+|-\$\$Nest\$.*)$"));

/// Reflection plumbing and the Jazzer fuzzing harness.
const NOISE_PREFIXES: [&str; 4] = [
    "jdk.internal.reflect.",
    "sun.reflect.",
    "java.lang.reflect.Method.invoke",
    "com.code_intelligence.jazzer.",
];
const LIBRARY_PREFIXES: [&str; 18] = [
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "android.",
    "androidx.",
    "dalvik.",
    "libcore.",
    "com.android.internal.",
    "org.junit.",
    "junit.",
    "org.jetbrains.kotlin.",
    "groovy.lang.",
    "org.codehaus.groovy.",
];

struct Segment {
    ty: String,
    message: String,
    frames: Vec<RawFrame>,
    more: usize,
}

fn java_frame(line: &str) -> Option<RawFrame> {
    let caps = FRAME.captures(line)?;
    let loc = caps["loc"].trim();
    LOCATION
        .is_match(loc)
        .then(|| RawFrame::new(&caps["func"], Some(loc.split(':').next().unwrap_or(loc))))
}

pub(super) fn parse(lines: &[&str]) -> Option<Parsed> {
    let mut blocks: Vec<(usize, Vec<Segment>)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if !line.starts_with(char::is_whitespace)
            && !line.starts_with("Caused by:")
            && HEADER.is_match(line)
            && frame_follows(lines, i + 1)
        {
            let (segments, end) = block(lines, i);
            blocks.push((i, segments));
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    let fatal = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("FATAL EXCEPTION"));
    let chosen = match fatal {
        Some(f) => blocks.iter().position(|(start, _)| *start > f),
        None => None,
    }
    .or_else(|| {
        blocks
            .iter()
            .rposition(|(start, _)| lines[*start].starts_with("Exception in thread"))
    })
    .or_else(|| blocks.len().checked_sub(1))?;
    let (_, segments) = blocks.swap_remove(chosen);
    Some(root_cause(segments))
}

/// A frame within a few lines, past a multi-line message but not a blank line.
fn frame_follows(lines: &[&str], from: usize) -> bool {
    for line in lines.iter().skip(from).take(8) {
        if java_frame(line).is_some() {
            return true;
        }
        if line.trim().is_empty() {
            return false;
        }
    }
    false
}

/// The exception chain starting at `start`, and the index after it. Suppressed exceptions
/// (indented deeper than the trace's frames) are skipped: they are not the cause.
fn block(lines: &[&str], start: usize) -> (Vec<Segment>, usize) {
    let segment = |line: &str| {
        let caps = HEADER.captures(line.trim());
        let ty = caps
            .as_ref()
            .map_or("", |c| c.name("type").map_or("", |m| m.as_str()));
        let message = caps
            .as_ref()
            .and_then(|c| c.name("msg"))
            .map_or("", |m| m.as_str());
        Segment {
            ty: ty.to_string(),
            message: message.to_string(),
            frames: Vec::new(),
            more: 0,
        }
    };
    let mut segments = vec![segment(lines[start])];
    let mut base_indent: Option<usize> = None;
    let mut since_header = 0;
    let mut j = start + 1;
    while j < lines.len() {
        let line = lines[j];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let deeper = base_indent.is_some_and(|b| indent > b);
        let current = segments.last_mut().expect("a chain has a first segment");
        since_header += 1;
        if let Some(frame) = java_frame(line) {
            let base = *base_indent.get_or_insert(indent);
            if indent <= base {
                current.frames.push(frame);
            }
        } else if let Some(caps) = MORE.captures(line) {
            if !deeper {
                current.more = caps["n"].parse().unwrap_or(0);
            }
        } else if indent == 0 && trimmed.starts_with("Caused by:") {
            segments.push(segment(trimmed));
            since_header = 0;
        } else {
            let suppressed = deeper || trimmed.starts_with("Suppressed:");
            let message_continues =
                current.frames.is_empty() && !trimmed.is_empty() && since_header < 8;
            if !(suppressed || message_continues) {
                break;
            }
        }
        j += 1;
    }
    (segments, j)
}

/// The last `Caused by:` is the root cause; its frames, completed by the enclosing trace's
/// last `N` frames when it printed `... N more`.
fn root_cause(segments: Vec<Segment>) -> Parsed {
    let mut frames: Vec<RawFrame> = Vec::new();
    let mut last: Option<Segment> = None;
    for segment in segments {
        let inherited = frames.len().saturating_sub(segment.more);
        let mut own = segment.frames.clone();
        if segment.more > 0 {
            own.extend(frames.drain(inherited..));
        }
        frames = own;
        last = Some(segment);
    }
    let mut parsed = Parsed::new(Language::Java);
    if let Some(root) = last {
        parsed.crash_type = root.ty;
        parsed.message = scrub::message(&root.message);
    }
    parsed.frames = frames;
    parsed
}

/// `com.example.Foo$1.bar`, without the module/class-loader prefix (`java.base/`, `app//`),
/// lambda and proxy numbering that changes with each build.
pub(super) fn frame(raw: &RawFrame) -> Option<Frame> {
    // Lambda classes first: their names hold a `/` too (`Foo$$Lambda$14/0x0000000800c0b8`).
    let unlambda = LAMBDA_CLASS.replace_all(raw.function.trim(), "$$$$Lambda");
    let function = unlambda.rsplit('/').next().unwrap_or("");
    let mut function = match raw.module.as_deref().map(str::trim) {
        Some(m) if !m.is_empty() && !function.starts_with(&format!("{m}.")) => {
            format!("{m}.{function}")
        }
        _ => function.to_string(),
    };
    function = LAMBDA_METHOD
        .replace_all(&function, "lambda$$$name")
        .into_owned();
    function = PROXY.replace_all(&function, "$$$$$kind").into_owned();
    if function.is_empty() {
        return None;
    }
    let method = function.rsplit('.').next().unwrap_or("");
    let kind = if SYNTHETIC.is_match(method)
        || NOISE_PREFIXES.iter().any(|p| function.starts_with(p))
        || function.contains("GeneratedMethodAccessor")
        // Lambda trampolines: printed by JDK 8, hidden by later JDKs.
        || function.contains("$$Lambda")
    {
        FrameKind::Noise
    } else if LIBRARY_PREFIXES.iter().any(|p| function.starts_with(p)) {
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
