//! The normalized crash report, and how each input becomes one: a raw log
//! ([`CrashReport::from_text`]), a plain record or a Sentry event ([`CrashReport::from_input`]).

use serde::{Deserialize, Serialize};

use super::detect;
use super::languages::{self, Language, Parsed, RawFrame};
use super::record::{
    CrashInput, CrashRecord, RecordFrame, SentryEvent, SentryException, SentryFrame, Tags,
    Timestamp,
};
use super::scrub;

/// The largest crash text accepted (a raw log, or a record's message plus stacktrace).
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Frames kept per report: the fingerprint needs only the top few, and this bounds the work.
const MAX_FRAMES: usize = 512;

/// A crash, normalized: what identifies it (language, type, frames) and, apart, where it
/// happened (the context, never part of a fingerprint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashReport {
    pub language: Language,
    /// An exception class, a panic kind, a sanitizer error or a kernel oops kind, without
    /// run-specific values (`java.util.ConcurrentModificationException`,
    /// `runtime error: index out of range`, `FPE`). Empty when unknown.
    pub crash_type: String,
    /// The first line of the crash's message, scrubbed (see `scrub::message`) and bounded.
    pub message: String,
    /// Innermost (the crash site) first.
    pub frames: Vec<Frame>,
    /// Which end of the stack identifies the crash.
    #[serde(default)]
    pub significant_end: StackEnd,
    #[serde(default)]
    pub context: CrashContext,
}

/// One stack frame, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The qualified function name the fingerprint hashes (`views.handler`,
    /// `com.example.Foo.bar`, `github.com/x/y.(*T).M`, `crate::m::f`, `ns::Class::Method`).
    pub function: String,
    /// The source file without line or machine-specific prefix (its last components), for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub kind: FrameKind,
}

/// Whose code a frame is, which decides whether it identifies the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// The application's code: these frames identify a crash.
    App,
    /// Standard library, runtime or third-party code: used only when no frame is the app's.
    Library,
    /// Machinery that reports the crash rather than causes it (panic and signal handling,
    /// sanitizers, fuzzing harnesses, synthetic accessors): never used.
    Noise,
}

/// The end of the stack that identifies a crash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackEnd {
    /// The innermost frames: where it crashed. Almost always.
    #[default]
    Top,
    /// The outermost frames: what the task was doing. For stack exhaustion in the kernel,
    /// where the top is wherever the stack happened to run out.
    Entry,
}

/// Where and when a crash happened: carried along, never fingerprinted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrashContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// Why an input is not a crash report (a 4xx for the API).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrashInputError {
    #[error("the crash report is empty")]
    Empty,
    #[error("the crash text is {size} bytes; at most {limit} are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("not a crash record or Sentry event: {0}")]
    Json(String),
}

impl CrashReport {
    /// A raw crash log in any supported language (detected). Blank text is an error; text in
    /// no known format is a report of its first line, so anything non-blank gets a fingerprint.
    pub fn from_text(text: &str) -> Result<CrashReport, CrashInputError> {
        check_size(text.len())?;
        if text.trim().is_empty() {
            return Err(CrashInputError::Empty);
        }
        Ok(assemble(
            detect::parse_text(text, None),
            CrashContext::default(),
        ))
    }

    /// Raw bytes (invalid UTF-8 is replaced, so binary garbage never fails on encoding).
    pub fn from_bytes(bytes: &[u8]) -> Result<CrashReport, CrashInputError> {
        check_size(bytes.len())?;
        CrashReport::from_text(&String::from_utf8_lossy(bytes))
    }

    /// A request body: a plain record or a Sentry event.
    pub fn from_json(body: &[u8]) -> Result<CrashReport, CrashInputError> {
        CrashReport::from_input(&CrashInput::from_json(body)?)
    }

    pub fn from_input(input: &CrashInput) -> Result<CrashReport, CrashInputError> {
        match input {
            CrashInput::Record(record) => CrashReport::from_record(record),
            CrashInput::Sentry(event) => CrashReport::from_sentry(event),
        }
    }

    pub fn from_record(record: &CrashRecord) -> Result<CrashReport, CrashInputError> {
        let stacktrace = record.stacktrace.as_deref().unwrap_or("").trim();
        let message = record.message.as_deref().unwrap_or("").trim();
        check_size(stacktrace.len() + message.len())?;
        if stacktrace.is_empty() && message.is_empty() && record.frames.is_empty() {
            return Err(CrashInputError::Empty);
        }
        let hint = record
            .language
            .filter(|l| *l != Language::Unknown)
            .or_else(|| languages::infer(record.frames.iter().filter_map(|f| f.file.as_deref())));
        let mut parsed = if stacktrace.is_empty() {
            Parsed::new(hint.unwrap_or_default())
        } else {
            detect::parse_text(stacktrace, hint)
        };
        if !record.frames.is_empty() {
            parsed.frames = record
                .frames
                .iter()
                .take(MAX_FRAMES)
                .map(RawFrame::from)
                .collect();
            if parsed.language == Language::Unknown {
                parsed.language = hint.unwrap_or_default();
            }
        }
        if parsed.crash_type.is_empty() && !message.is_empty() {
            parsed.crash_type = languages::crash_type(parsed.language, "", message);
        }
        if !message.is_empty()
            && (parsed.message.is_empty() || parsed.language == Language::Unknown)
        {
            parsed.message = scrub::message(message);
        }
        let context = CrashContext {
            service: record.service.clone(),
            environment: record.environment.clone(),
            release: record.release.clone(),
            timestamp: record.timestamp.clone(),
            tags: record.tags.clone(),
            platform: None,
        };
        Ok(assemble(parsed, context))
    }

    /// A Sentry event: the root cause of its exception chain, or its message when it has none.
    pub fn from_sentry(event: &SentryEvent) -> Result<CrashReport, CrashInputError> {
        let context = CrashContext {
            service: None,
            environment: event.environment.clone(),
            release: event.release.clone(),
            timestamp: event.timestamp.clone(),
            tags: event.tags.clone(),
            platform: event.platform.clone(),
        };
        let platform = event.platform.as_deref().and_then(Language::from_platform);
        let values = event.exception.as_ref().map_or(&[][..], |e| e.values());
        let Some(root) = root_exception(values) else {
            let text = event
                .message
                .as_ref()
                .or(event.logentry.as_ref())
                .map_or("", |m| m.text());
            check_size(text.len())?;
            if text.trim().is_empty() {
                return Err(CrashInputError::Empty);
            }
            let mut parsed = Parsed::new(platform.unwrap_or_default());
            parsed.message = scrub::message(text);
            return Ok(assemble(parsed, context));
        };
        // The root may carry no frames of its own (some SDKs put them on the outer exception).
        let frames: &[SentryFrame] = std::iter::once(root)
            .chain(values.iter())
            .filter_map(|e| e.stacktrace.as_ref())
            .map(|s| s.frames.as_slice())
            .find(|frames| !frames.is_empty())
            .unwrap_or(&[]);
        let raw: Vec<RawFrame> = frames
            .iter()
            .rev()
            .take(MAX_FRAMES)
            .map(RawFrame::from)
            .collect();
        let language = languages::refine(platform, &raw);
        let value = root.value.as_deref().unwrap_or("");
        let ty = qualified_type(root.module.as_deref(), root.ty.as_deref().unwrap_or(""));
        let mut parsed = Parsed::new(language);
        parsed.crash_type = languages::crash_type(language, &ty, value);
        parsed.message = scrub::message(value);
        parsed.frames = raw;
        Ok(assemble(parsed, context))
    }
}

fn check_size(size: usize) -> Result<(), CrashInputError> {
    if size > MAX_TEXT_BYTES {
        return Err(CrashInputError::TooLarge {
            size,
            limit: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

fn assemble(parsed: Parsed, context: CrashContext) -> CrashReport {
    let frames = languages::normalize_frames(parsed.language, &parsed.frames);
    CrashReport {
        language: parsed.language,
        crash_type: parsed.crash_type,
        message: parsed.message,
        frames,
        significant_end: parsed.significant_end,
        context,
    }
}

/// The root cause of a Sentry exception chain: the first value (the protocol orders them oldest
/// first), or, when newer SDKs link them by ids, the deepest one along `parent_id`.
fn root_exception(values: &[SentryException]) -> Option<&SentryException> {
    let id = |e: &SentryException| e.mechanism.as_ref().and_then(|m| m.exception_id);
    let parent = |e: &SentryException| e.mechanism.as_ref().and_then(|m| m.parent_id);
    if values.iter().all(|e| id(e).is_none()) {
        return values.first();
    }
    let depth = |start: &SentryException| {
        let mut current = start;
        let mut depth = 0;
        while let Some(p) = parent(current) {
            match values.iter().find(|e| id(e) == Some(p)) {
                Some(next) if depth < values.len() => {
                    current = next;
                    depth += 1;
                }
                _ => break,
            }
        }
        depth
    };
    // Ties go to the earliest value (max_by_key keeps the last maximum, so compare reversed).
    values.iter().rev().max_by_key(|e| depth(e))
}

/// Sentry splits `requests.exceptions.ConnectionError` into module and type; raw traces print
/// the qualified name (except for builtins), so join them the same way.
fn qualified_type(module: Option<&str>, ty: &str) -> String {
    match module.map(str::trim) {
        Some(m)
            if !m.is_empty()
                && !ty.contains('.')
                && !["builtins", "exceptions", "__builtin__", "__main__"].contains(&m) =>
        {
            format!("{m}.{ty}")
        }
        _ => ty.trim().to_string(),
    }
}

impl From<&RecordFrame> for RawFrame {
    fn from(frame: &RecordFrame) -> RawFrame {
        RawFrame {
            function: frame.function.clone().unwrap_or_default(),
            module: frame.module.clone(),
            file: frame.file.clone(),
            in_app: frame.in_app,
        }
    }
}

impl From<&SentryFrame> for RawFrame {
    fn from(frame: &SentryFrame) -> RawFrame {
        RawFrame {
            function: frame.function.clone().unwrap_or_default(),
            module: frame.module.clone(),
            // abs_path tells stdlib and dependencies apart better than the relative filename.
            file: frame.abs_path.clone().or_else(|| frame.filename.clone()),
            in_app: frame.in_app,
        }
    }
}
