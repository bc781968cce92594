//! The languages a crash can be in, and the dispatch to each one's text parser, frame rules
//! and crash-type rules. Text, plain records and Sentry events all go through the same frame
//! rules, so the three agree on a crash's frames.

mod go;
mod java;
mod javascript;
mod kernel;
mod native;
mod python;
mod rust;

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::report::{Frame, FrameKind, StackEnd};
use super::scrub::{self, re};

/// Frames normalized from each end of a stack at most.
const FRAMES_PER_END: usize = 256;

/// The language (or runtime) of a crash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    /// Java, Kotlin and the other JVM languages, Android included.
    #[serde(alias = "kotlin")]
    Java,
    Go,
    Rust,
    /// JavaScript and TypeScript, in Node or a browser.
    #[serde(alias = "node", alias = "typescript")]
    JavaScript,
    /// C and C++: sanitizer reports (ASan, UBSan, MSan, ...) and native backtraces.
    #[serde(alias = "c", alias = "cpp", alias = "c++")]
    Native,
    /// Linux kernel oopses, BUGs, WARNINGs and panics.
    #[serde(alias = "linux")]
    Kernel,
    #[default]
    Unknown,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Java => "java",
            Language::Go => "go",
            Language::Rust => "rust",
            Language::JavaScript => "javascript",
            Language::Native => "native",
            Language::Kernel => "kernel",
            Language::Unknown => "unknown",
        }
    }

    /// From a Sentry `platform`.
    pub fn from_platform(platform: &str) -> Option<Language> {
        Some(match platform.trim().to_ascii_lowercase().as_str() {
            "python" => Language::Python,
            "java" | "kotlin" | "groovy" | "scala" | "android" => Language::Java,
            "go" => Language::Go,
            "rust" => Language::Rust,
            "javascript" | "node" | "typescript" => Language::JavaScript,
            "native" | "c" | "cpp" | "cocoa" | "objc" => Language::Native,
            _ => return None,
        })
    }

    /// From a source file's extension.
    pub fn from_path(path: &str) -> Option<Language> {
        let name = scrub::basename(path.split(['?', '#']).next().unwrap_or(""));
        let (_, ext) = name.rsplit_once('.')?;
        Some(match ext.to_ascii_lowercase().as_str() {
            "py" => Language::Python,
            "java" | "kt" | "kts" | "scala" | "groovy" => Language::Java,
            "go" => Language::Go,
            "rs" => Language::Rust,
            "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" | "mts" | "cts" => Language::JavaScript,
            "c" | "cc" | "cpp" | "cxx" | "h" | "hh" | "hpp" | "m" | "mm" => Language::Native,
            _ => return None,
        })
    }
}

/// What a parser found, before its frames are normalized.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    pub language: Language,
    pub crash_type: String,
    pub message: String,
    /// Innermost first.
    pub frames: Vec<RawFrame>,
    pub significant_end: StackEnd,
}

impl Parsed {
    pub fn new(language: Language) -> Parsed {
        Parsed {
            language,
            ..Parsed::default()
        }
    }
}

/// A frame as printed or sent: the language's frame rules turn it into a [`Frame`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawFrame {
    pub function: String,
    pub module: Option<String>,
    pub file: Option<String>,
    pub in_app: Option<bool>,
}

impl RawFrame {
    pub fn new(function: &str, file: Option<&str>) -> RawFrame {
        RawFrame {
            function: function.to_string(),
            file: file.map(str::to_string),
            ..RawFrame::default()
        }
    }
}

/// Parse a raw log as `language`, if it is in that language's format.
pub(crate) fn parse(language: Language, lines: &[&str]) -> Option<Parsed> {
    match language {
        Language::Python => python::parse(lines),
        Language::Java => java::parse(lines),
        Language::Go => go::parse(lines),
        Language::Rust => rust::parse(lines),
        Language::JavaScript => javascript::parse(lines),
        Language::Native => native::parse(lines),
        Language::Kernel => kernel::parse(lines),
        Language::Unknown => None,
    }
}

/// The crash type from a structured input's type and message (`value`).
pub(crate) fn crash_type(language: Language, ty: &str, value: &str) -> String {
    match language {
        Language::Go => go::crash_type(ty, value),
        Language::Rust => rust::crash_type(ty, value),
        Language::Kernel => kernel::crash_type(ty, value),
        Language::Native => native::crash_type(ty, value),
        _ => typed(ty, value),
    }
}

/// Normalize frames (innermost first): canonical names and kinds, the caller's explicit
/// `in_app` deciding between app and library (never un-marking noise), consecutive duplicates
/// (recursion, inlined wrappers) collapsed.
pub(crate) fn normalize_frames(language: Language, raw: &[RawFrame]) -> Vec<Frame> {
    // Both ends of a huge stack (deep recursion) are all a fingerprint can use.
    let kept = if raw.len() > 2 * FRAMES_PER_END {
        [&raw[..FRAMES_PER_END], &raw[raw.len() - FRAMES_PER_END..]].concat()
    } else {
        raw.to_vec()
    };
    let mut frames: Vec<Frame> = kept
        .iter()
        .filter_map(|r| {
            let mut frame = frame(language, r)?;
            if let Some(in_app) = r.in_app
                && frame.kind != FrameKind::Noise
            {
                frame.kind = if in_app {
                    FrameKind::App
                } else {
                    FrameKind::Library
                };
            }
            frame.function = scrub::bounded(&frame.function, 300);
            Some(frame)
        })
        .collect();
    if language == Language::Go {
        go::mark_panic_machinery(&mut frames);
    }
    frames.dedup_by(|a, b| a.function == b.function);
    frames
}

fn frame(language: Language, raw: &RawFrame) -> Option<Frame> {
    match language {
        Language::Python => python::frame(raw),
        Language::Java => java::frame(raw),
        Language::Go => go::frame(raw),
        Language::Rust => rust::frame(raw),
        Language::JavaScript => javascript::frame(raw),
        Language::Native => native::frame(raw),
        Language::Kernel => kernel::frame(raw),
        Language::Unknown => generic_frame(raw),
    }
}

/// A frame in no known language: its module and function as given.
fn generic_frame(raw: &RawFrame) -> Option<Frame> {
    let function = strip_trailing_args(raw.function.trim());
    let file = raw.file.as_deref().and_then(scrub::display_path);
    let function = match raw.module.as_deref().map(str::trim) {
        Some(m)
            if !m.is_empty() && !function.is_empty() && !function.starts_with(&format!("{m}.")) =>
        {
            format!("{m}.{function}")
        }
        _ if function.is_empty() => file.clone()?,
        _ => function.to_string(),
    };
    Some(Frame {
        function,
        file,
        kind: FrameKind::App,
    })
}

/// The language of structured frames: the platform's, refined by the frames' files (Sentry's
/// `native` covers Rust too).
pub(crate) fn refine(platform: Option<Language>, frames: &[RawFrame]) -> Language {
    let from_files = infer(frames.iter().filter_map(|f| f.file.as_deref()));
    match platform {
        Some(Language::Native) if from_files == Some(Language::Rust) => Language::Rust,
        Some(Language::Native) if frames.iter().any(|f| rust::looks_rust(&f.function)) => {
            Language::Rust
        }
        Some(language) => language,
        None => from_files.unwrap_or_default(),
    }
}

/// The most common language among source files.
pub(crate) fn infer<'a>(files: impl Iterator<Item = &'a str>) -> Option<Language> {
    let mut counts: Vec<(Language, usize)> = Vec::new();
    for language in files.filter_map(Language::from_path) {
        match counts.iter_mut().find(|(l, _)| *l == language) {
            Some((_, n)) => *n += 1,
            None => counts.push((language, 1)),
        }
    }
    // Ties go to the first seen (max_by_key keeps the last maximum, so compare reversed).
    counts
        .into_iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map(|(l, _)| l)
}

/// `Type: message` (qualified or not, Node's `Error [CODE]` too).
static TYPE_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:Uncaught\s+)?(?P<type>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*(?: \[[A-Z0-9_]+\])?)(?::\s?(?P<msg>.*))?$",
    )
});

/// The type given, or the type prefix of the message.
pub(crate) fn typed(ty: &str, value: &str) -> String {
    let ty = ty.trim();
    if !ty.is_empty() {
        return scrub::bounded(ty, 200);
    }
    type_prefix(value)
        .map(|(t, _)| t.to_string())
        .unwrap_or_default()
}

/// `("ValueError", "bad input")` from `ValueError: bad input`; a lone capitalised word also
/// counts as a type (`KeyboardInterrupt`), a lone lowercase word does not.
pub(crate) fn type_prefix(text: &str) -> Option<(&str, &str)> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let caps = TYPE_PREFIX.captures(line)?;
    let ty = caps.name("type")?.as_str();
    let msg = caps.name("msg").map_or("", |m| m.as_str());
    if caps.name("msg").is_none() && !ty.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    Some((ty, msg))
}

/// `f` without its trailing parenthesised argument list (`pkg.F(0xc0, ...)`, `ns::f(int) `);
/// `(*T)` receivers and `(anonymous namespace)` inside the name are kept.
pub(crate) fn strip_trailing_args(f: &str) -> &str {
    let f = f.trim_end();
    if !f.ends_with(')') {
        return f;
    }
    let mut depth = 0usize;
    for (i, c) in f.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return if i == 0 { f } else { f[..i].trim_end() };
                }
            }
            _ => {}
        }
    }
    f
}
