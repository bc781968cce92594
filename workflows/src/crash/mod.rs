//! Crash reports: turn a raw crash log, a plain crash record or a Sentry-style event into one
//! normalized [`CrashReport`], and [`fingerprint`] it, so that the same crash from different
//! machines, builds and runs gets the same hash and a different code path gets a different one.
//!
//! How (per language, in `languages/`): find the crash (the root cause of an exception chain,
//! the panicking goroutine, the first sanitizer or kernel report), keep its type and its frames
//! without line numbers, addresses, arguments, hashes or machine paths, and mark each frame as
//! the application's code, a library's (stdlib, runtime, third party) or noise (panic, signal,
//! sanitizer and fuzzer machinery). The fingerprint is the sha256 of the crash type and the top
//! [`FINGERPRINT_FRAMES`] application frames (library frames only when there are none; the
//! scrubbed message only when there are no frames at all).
//!
//! Pure (ARCHITECTURE.md, invariant 1): no IO, no clock, no randomness; the regular expressions
//! are built once, lazily. Crash text is untrusted data: it is only pattern-matched here, and
//! titles and messages derived from it must reach an agent as quoted material, never as
//! instructions.

mod detect;
pub mod fingerprint;
pub mod languages;
pub mod record;
pub mod report;
mod scrub;
#[cfg(test)]
mod tests;

pub use fingerprint::{FINGERPRINT_FRAMES, FINGERPRINT_VERSION, Fingerprint, fingerprint};
pub use languages::Language;
pub use record::{
    CrashInput, CrashRecord, RecordFrame, SentryEvent, SentryException, SentryFrame, Tags,
    Timestamp,
};
pub use report::{
    CrashContext, CrashInputError, CrashReport, Frame, FrameKind, MAX_TEXT_BYTES, StackEnd,
};
