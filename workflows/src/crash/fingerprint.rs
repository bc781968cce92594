//! The fingerprint of a crash: the sha256 of a canonical string of its type and significant
//! frames, and a human title. Changing what goes into the canonical string regroups every
//! crash (the hash names a `CrashInvestigation` workflow), so it is versioned.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::languages::Language;
use super::report::{CrashReport, Frame, FrameKind, StackEnd};
use super::scrub;

/// Part of every canonical string; bump it when normalization changes what a hash means.
pub const FINGERPRINT_VERSION: &str = "errand-crash-v1";
/// Frames that identify a crash: enough to tell code paths apart, few enough that a crash
/// reached from a slightly different caller still groups.
pub const FINGERPRINT_FRAMES: usize = 3;

/// What identifies a crash group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// sha256, lowercase hex, of the canonical string.
    pub hash: String,
    /// `ConcurrentModificationException in SecurityControllerImpl.fireCallbacks`. Derived from
    /// untrusted text: quote it, never follow it.
    pub title: String,
    pub language: Language,
    pub crash_type: String,
    /// The frames hashed, in the order hashed.
    pub frames: Vec<String>,
}

/// Fingerprint a normalized report. The language, message and context are not hashed (the
/// message only when there are no frames at all), so one crash sent as a raw log, a record or
/// a Sentry event, from any machine or release, gets one hash.
pub fn fingerprint(report: &CrashReport) -> Fingerprint {
    let frames: Vec<String> = significant_frames(report)
        .into_iter()
        .map(|f| f.function.clone())
        .collect();
    let mut canonical = format!("{FINGERPRINT_VERSION}\ntype={}\n", report.crash_type);
    for frame in &frames {
        canonical.push_str(&format!("frame={frame}\n"));
    }
    if frames.is_empty() {
        canonical.push_str(&format!("message={}\n", report.message));
    }
    Fingerprint {
        hash: hex::encode(Sha256::digest(canonical.as_bytes())),
        title: title(report, &frames),
        language: report.language,
        crash_type: report.crash_type.clone(),
        frames,
    }
}

/// The app's frames from the significant end; the library's when the app has none.
fn significant_frames(report: &CrashReport) -> Vec<&Frame> {
    let pick = |kind: FrameKind| -> Vec<&Frame> {
        let of_kind = |f: &&Frame| f.kind == kind;
        match report.significant_end {
            StackEnd::Top => report
                .frames
                .iter()
                .filter(of_kind)
                .take(FINGERPRINT_FRAMES)
                .collect(),
            StackEnd::Entry => report
                .frames
                .iter()
                .rev()
                .filter(of_kind)
                .take(FINGERPRINT_FRAMES)
                .collect(),
        }
    };
    let app = pick(FrameKind::App);
    if app.is_empty() {
        pick(FrameKind::Library)
    } else {
        app
    }
}

fn title(report: &CrashReport, frames: &[String]) -> String {
    let what = if !report.crash_type.is_empty() {
        short_type(&report.crash_type)
    } else if !report.message.is_empty() {
        scrub::bounded(&report.message, 100)
    } else {
        "crash".to_string()
    };
    let title = match frames.first() {
        Some(frame) => format!("{what} in {}", short_frame(report.language, frame)),
        None => what,
    };
    scrub::bounded(&title, 200)
}

/// A qualified exception class by its simple name; other types as they are.
fn short_type(ty: &str) -> String {
    let qualified =
        ty.contains('.') && ty.chars().all(|c| c.is_alphanumeric() || "._$".contains(c));
    let short = if qualified {
        ty.rsplit('.').next().unwrap_or(ty)
    } else {
        ty
    };
    scrub::bounded(short, 100)
}

/// A frame without its package path: `SecurityControllerImpl.fireCallbacks`,
/// `watchdog.(*Watchdog).doAction`, `oracles::spectest`.
fn short_frame(language: Language, frame: &str) -> String {
    let short = match language {
        Language::Java => last_parts(frame, "."),
        Language::Go => frame.rsplit('/').next().unwrap_or(frame).to_string(),
        Language::Rust | Language::Native => last_parts(frame, "::"),
        _ => frame.to_string(),
    };
    scrub::bounded(&short, 100)
}

/// The last two `sep`-separated parts, splitting only outside `<...>` and `(...)`.
fn last_parts(name: &str, sep: &str) -> String {
    let mut cuts = Vec::new();
    let mut depth = 0i32;
    for (i, c) in name.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            _ if depth == 0 && name[i..].starts_with(sep) => cuts.push(i),
            _ => {}
        }
    }
    match cuts.len() {
        0 | 1 => name.to_string(),
        n => name[cuts[n - 2] + sep.len()..].to_string(),
    }
}
