//! Which language a raw crash log is in. Each language's parser recognises only its own format;
//! they are tried from the most specific markers to the most generic, so that a language-level
//! crash (a Java exception, a Python traceback, a Go or Rust panic) wins over the sanitizer or
//! libFuzzer report that often follows it in the same log.

use super::languages::{self, Language, Parsed};
use super::scrub;

const ORDER: [Language; 7] = [
    Language::Java,
    Language::Python,
    Language::Go,
    Language::Rust,
    Language::JavaScript,
    Language::Kernel,
    Language::Native,
];

/// Parse `text`, trying `hint`'s format first. Text in no known format is kept as its first
/// line, so every non-blank input still gets a (message) fingerprint.
pub(crate) fn parse_text(text: &str, hint: Option<Language>) -> Parsed {
    let lines: Vec<&str> = text.lines().map(scrub::strip_line_prefix).collect();
    let hinted = hint.filter(|h| ORDER.contains(h));
    let order = hinted
        .into_iter()
        .chain(ORDER.into_iter().filter(|l| Some(*l) != hinted));
    for language in order {
        if let Some(parsed) = languages::parse(language, &lines) {
            return parsed;
        }
    }
    let mut parsed = Parsed::new(hint.unwrap_or_default());
    let first = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or("");
    parsed.crash_type = languages::crash_type(parsed.language, "", first);
    parsed.message = scrub::message(first);
    parsed
}
