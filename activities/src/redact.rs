//! Masking secrets in agent and check output before it leaves the worker (events, heartbeats,
//! payloads and the report are read by people who must not see the worker's credentials).
//!
//! Two rules: the values of the worker's own environment variables whose names look secret
//! (`TOKEN`, `KEY`, `SECRET`, `PASSWORD`, ...), and well-known token shapes (`ghp_...`,
//! `sk-...`, ...) wherever they come from.

use std::borrow::Cow;
use std::sync::OnceLock;

/// What a masked secret reads as.
pub const MASK: &str = "[redacted]";

/// Parts of an environment variable name that mark its value as a secret.
const SECRET_NAME_PARTS: [&str; 6] = ["TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// Shorter values are too likely to be ordinary words or numbers to mask everywhere.
const MIN_SECRET_VALUE_CHARS: usize = 8;

/// Token prefixes and how many token characters must follow for the shape to count.
const TOKEN_SHAPES: [(&str, usize); 12] = [
    ("ghp_", 20),
    ("gho_", 20),
    ("ghu_", 20),
    ("ghs_", 20),
    ("ghr_", 20),
    ("github_pat_", 20),
    ("glpat-", 20),
    ("sk-", 20),
    ("xoxb-", 10),
    ("xoxp-", 10),
    ("AKIA", 16),
    ("AIza", 30),
];

/// Masks known secret values and token shapes in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    values: Vec<String>,
}

impl Redactor {
    /// Masks these values (those shorter than 8 characters are ignored) and token shapes.
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_SECRET_VALUE_CHARS)
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Redactor { values }
    }

    /// From `(name, value)` pairs: the values of secret-looking names.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Redactor {
        Redactor::new(
            vars.into_iter()
                .filter(|(name, _)| looks_secret(name))
                .map(|(_, value)| value),
        )
    }

    /// Like [`Redactor::redact`], for a piece cut out of a longer text: a word cut at a cut
    /// edge is dropped first, since a secret cut in two matches no rule.
    pub fn redact_cut(&self, text: &str, cut_front: bool, cut_back: bool) -> String {
        let mut piece = text;
        if cut_front {
            piece = piece
                .find(char::is_whitespace)
                .map_or("", |at| &piece[at..]);
        }
        if cut_back {
            piece = piece
                .rfind(char::is_whitespace)
                .map_or("", |at| &piece[..at]);
        }
        self.redact(piece).into_owned()
    }

    /// The text with every secret replaced by [`MASK`]; borrowed when there was none.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), MASK));
            }
        }
        match mask_token_shapes(&out) {
            Some(masked) => Cow::Owned(masked),
            None => out,
        }
    }
}

/// The redactor of this worker process: its environment, read once.
pub fn worker_redactor() -> &'static Redactor {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    REDACTOR.get_or_init(|| {
        Redactor::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    })
}

fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The text with token shapes masked, or None if it has none.
fn mask_token_shapes(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let starts_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_token_char(c));
        let token_len = starts_word
            .then(|| {
                TOKEN_SHAPES.iter().find_map(|(prefix, min_tail)| {
                    let tail = rest.strip_prefix(prefix)?;
                    let tail_len = tail.find(|c| !is_token_char(c)).unwrap_or(tail.len());
                    (tail_len >= *min_tail).then_some(prefix.len() + tail_len)
                })
            })
            .flatten();
        match token_len {
            Some(len) => {
                out.push_str(&text[copied..at]);
                out.push_str(MASK);
                at += len;
                copied = at;
            }
            None => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Redactor {
        Redactor::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn values_of_secret_looking_variables_are_masked() {
        let redactor = vars(&[
            ("GITHUB_TOKEN", "s3cr3t-value-1234"),
            ("api_key", "another-long-value"),
            ("DB_PASSWORD", "hunter2hunter2"),
            ("HOME", "/home/worker-user"),
            ("SHORT_SECRET", "abc"),
        ]);
        let cases = [
            ("token=s3cr3t-value-1234!", "token=[redacted]!"),
            ("k another-long-value k", "k [redacted] k"),
            ("pw:hunter2hunter2", "pw:[redacted]"),
            ("home is /home/worker-user", "home is /home/worker-user"),
            (
                "abc stays: too short to mask safely",
                "abc stays: too short to mask safely",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redactor.redact(text), want, "{text}");
        }
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let redactor = Redactor::new(["abcdefgh".to_string(), "abcdefgh-and-more".to_string()]);
        assert_eq!(redactor.redact("x abcdefgh-and-more y"), "x [redacted] y");
    }

    #[test]
    fn token_shapes_are_masked_wherever_they_come_from() {
        let redactor = Redactor::default();
        let ghp = format!("ghp_{}", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
        let cases = [
            (
                format!("using {ghp} now"),
                "using [redacted] now".to_string(),
            ),
            (ghp.clone(), MASK.to_string()),
            (
                "key sk-proj-abcdefghijklmnopqrstuvwx.".to_string(),
                "key [redacted].".to_string(),
            ),
            (
                "AKIAIOSFODNN7EXAMPLE and AKIA".to_string(),
                "[redacted] and AKIA".to_string(),
            ),
            // Too short, or inside a longer word: not a token.
            ("sk-short ghp_x".to_string(), "sk-short ghp_x".to_string()),
            (
                "task-sk-abcdefghijklmnopqrstuvwxyz".to_string(),
                "task-sk-abcdefghijklmnopqrstuvwxyz".to_string(),
            ),
            (
                "héllo wörld, no tokens".to_string(),
                "héllo wörld, no tokens".to_string(),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redactor.redact(&text), want, "{text}");
        }
    }

    #[test]
    fn words_cut_at_an_edge_are_dropped() {
        let redactor = Redactor::default();
        assert_eq!(
            redactor.redact_cut("ret-value rest of it", true, false),
            " rest of it"
        );
        assert_eq!(
            redactor.redact_cut("start of ghp_AB", false, true),
            "start of"
        );
        assert_eq!(redactor.redact_cut("oneword", true, true), "");
        assert_eq!(
            redactor.redact_cut("whole line", false, false),
            "whole line"
        );
    }

    #[test]
    fn clean_text_is_borrowed() {
        let redactor = vars(&[("TOKEN", "long-enough-secret")]);
        assert!(matches!(redactor.redact("nothing here"), Cow::Borrowed(_)));
    }
}
