//! Scrubbing what differs between runs and machines out of crash text, for every language:
//! log-line prefixes (wall-clock and kernel timestamps, logcat headers) and, in messages,
//! timestamps, ids, addresses, numbers and machine paths.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Characters kept of a scrubbed message: enough to tell messages apart, bounded for titles.
pub(crate) const MESSAGE_CHARS: usize = 200;
/// Characters of a line scrubbed at most: bounds the work per report.
const SCAN_CHARS: usize = 4096;

/// A built-in pattern; they are all tested, so failing to compile is a programming error.
pub(crate) fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid built-in pattern")
}

/// Prefixes that loggers put in front of each line: printk levels, kernel clocks and caller ids
/// (`[  335.97] [ T123]`), ISO timestamps, and Android logcat headers (threadtime and brief).
/// Each takes one separating space at most, so the indentation of what follows survives.
static LINE_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^(?:<\d>",
        r"|\[\s*\d+\.\d+\]\s?",
        r"|\[\s*[CT]\d+\]\s?",
        r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\s",
        r"|\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+\d+\s+[VDIWEFA]\s+[^:]*?:\s",
        r"|[VDIWEFA]/[^(:]+\(\s*\d+\):\s",
        r")+",
    ))
});
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
        r"|\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b",
    ))
});
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
});
/// Absolute, drive and relative paths of at least three components (`a/b/c`, `/tmp/x/y`).
static PATH: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:[A-Za-z]:|[\w.@+~-]+)?(?:[/\\][\w.@+~-]+){2,}[/\\]?"));
static HEX: LazyLock<Regex> = LazyLock::new(|| re(r"\b0[xX][0-9a-fA-F]+\b"));
static HEX_ID: LazyLock<Regex> = LazyLock::new(|| re(r"\b[0-9a-fA-F]{8,}\b"));
static IP: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"\d+(?:\.\d+)*"));

/// `line` without the logger's prefixes.
pub(crate) fn strip_line_prefix(line: &str) -> &str {
    match LINE_PREFIX.find(line) {
        Some(m) => &line[m.end()..],
        None => line,
    }
}

/// The first non-blank line of `text`, one line, with run- and machine-specific values replaced
/// by placeholders (`<ts>`, `<uuid>`, `<path>/name`, `<hex>`, `<id>`, `<ip>`, `<n>`), bounded.
pub(crate) fn message(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let line: String = line
        .chars()
        .take(SCAN_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let s = TIMESTAMP.replace_all(&line, "<ts>");
    let s = UUID.replace_all(&s, "<uuid>");
    let s = PATH.replace_all(&s, |c: &Captures| format!("<path>/{}", basename(&c[0])));
    let s = HEX.replace_all(&s, "<hex>");
    let s = HEX_ID.replace_all(&s, |c: &Captures| {
        if is_hex_id(&c[0]) {
            "<id>".to_string()
        } else {
            c[0].to_string()
        }
    });
    let s = IP.replace_all(&s, "<ip>");
    let s = NUMBER.replace_all(&s, "<n>");
    bounded(&collapse(&s), MESSAGE_CHARS)
}

/// `text` with addresses, ids and numbers removed altogether: for crash types, which must not
/// depend on sizes, counts or indices (`index out of range [5]`).
pub(crate) fn strip_numbers(text: &str) -> String {
    let s = HEX.replace_all(text, "");
    let s = HEX_ID.replace_all(&s, |c: &Captures| {
        if is_hex_id(&c[0]) {
            String::new()
        } else {
            c[0].to_string()
        }
    });
    let s = NUMBER.replace_all(&s, "");
    collapse(&s)
        .trim_matches(|c: char| c == ':' || c == ',' || c == ' ')
        .to_string()
}

/// A hash or id (`1ffff1100885126e`): hex digits mixing decimal digits and letters; all-letter
/// runs are words (`deadface`), all-digit runs are numbers.
fn is_hex_id(run: &str) -> bool {
    run.bytes().any(|b| b.is_ascii_digit()) && run.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Runs of whitespace as one space, trimmed.
pub(crate) fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `chars` characters of `text`.
pub(crate) fn bounded(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// A source path for display: no URL scheme or host, no query, and only its last three
/// components, which drops home, temp, checkout and build-machine prefixes by construction.
pub(crate) fn display_path(path: &str) -> Option<String> {
    let mut p = path.trim();
    if let Some((scheme, rest)) = p.split_once("://") {
        p = if scheme.starts_with("http") {
            rest.find('/').map_or("", |i| &rest[i..])
        } else {
            rest
        };
    }
    let p = p.split(['?', '#']).next().unwrap_or("").replace('\\', "/");
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    let keep = parts.len().saturating_sub(3);
    let shown = parts[keep..].join("/");
    (!shown.is_empty()).then(|| bounded(&shown, 160))
}

/// The last component of a path.
pub(crate) fn basename(path: &str) -> &str {
    path.trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(path)
}

/// A module name from a source path: the file name without its extension or the content hashes
/// bundlers add (`main.3f2a1b9c.js`, `index-BdXk3F9a.js`); a package's `__init__.py` is the
/// package directory.
pub(crate) fn stem(path: &str) -> String {
    let p = path
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .replace('\\', "/");
    let mut parts = p.rsplit('/').filter(|s| !s.is_empty());
    let mut base = parts.next().unwrap_or("");
    if base.starts_with("__init__.") {
        base = parts.next().unwrap_or(base);
    }
    let name = match base.rsplit_once('.') {
        Some((name, ext))
            if !name.is_empty()
                && ext.len() <= 5
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            name
        }
        _ => base,
    };
    let name = match name.rsplit_once('-') {
        Some((head, tail)) if !head.is_empty() && looks_like_bundle_hash(tail) => head,
        _ => name,
    };
    name.split('.')
        .filter(|seg| !looks_like_hex_hash(seg))
        .collect::<Vec<_>>()
        .join(".")
}

fn looks_like_hex_hash(seg: &str) -> bool {
    seg.len() >= 6
        && seg.chars().all(|c| c.is_ascii_hexdigit())
        && seg.chars().any(|c| c.is_ascii_digit())
}

/// Vite and Rollup hashes: eight base64url characters, mixed case or with digits.
fn looks_like_bundle_hash(seg: &str) -> bool {
    seg.len() == 8
        && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && seg.chars().any(|c| c.is_ascii_digit())
        && seg.chars().any(|c| c.is_ascii_alphabetic())
}
