//! From a received crash to what the workflow is signalled with: the service it belongs to,
//! its group id, and the occurrence (bounded text). Pure: the API calls it per request.

use std::fmt::Write;

use sha2::{Digest, Sha256};

use crate::crash::{CrashInput, CrashReport, SentryEvent};
use crate::crash_contracts::Occurrence;

/// The crash text an occurrence carries (and an investigation quotes), at most.
pub const EXCERPT_BYTES: usize = 8 * 1024;
/// A service name, a release, an environment or a host, at most.
pub const MAX_NAME_CHARS: usize = 200;
/// The service of crashes that do not say.
pub const UNKNOWN_SERVICE: &str = "unknown";

const HOST_TAGS: [&str; 4] = ["server_name", "host", "hostname", "machine"];

/// Why a crash's service cannot name a group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service {0:?} must be 1 to 200 characters without control characters")]
pub struct BadService(pub String);

/// The service a crash belongs to: the one the request names, else the crash's own (`service`
/// of a record, the `service` tag), else `unknown`.
pub fn service_of(report: &CrashReport, requested: Option<&str>) -> Result<String, BadService> {
    let context = &report.context;
    let service = requested
        .or(context.service.as_deref())
        .or(context.tags.0.get("service").map(String::as_str))
        .map(str::trim)
        .unwrap_or(UNKNOWN_SERVICE);
    if service.is_empty()
        || service.chars().count() > MAX_NAME_CHARS
        || service.chars().any(char::is_control)
    {
        return Err(BadService(service.to_string()));
    }
    Ok(service.to_string())
}

/// The group (and workflow) id of a fingerprint within a service: readable, and unique even
/// when two service names slug alike.
pub fn group_id(service: &str, fingerprint_hash: &str) -> String {
    let slug: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let slug = slug.trim_matches('-');
    let digest = hex::encode(Sha256::digest(format!("{service}\n{fingerprint_hash}")));
    if slug.is_empty() {
        format!("crash-{}", &digest[..16])
    } else {
        format!("crash-{slug}-{}", &digest[..16])
    }
}

/// The occurrence of a crash received at `received_at_ms` (the API's clock).
pub fn occurrence(input: &CrashInput, report: &CrashReport, received_at_ms: i64) -> Occurrence {
    let context = &report.context;
    let host = HOST_TAGS
        .iter()
        .find_map(|tag| context.tags.0.get(*tag))
        .map(|h| bounded(h, MAX_NAME_CHARS));
    Occurrence {
        received_at_ms,
        release: context.release.as_deref().map(|r| bounded(r, MAX_NAME_CHARS)),
        environment: context
            .environment
            .as_deref()
            .map(|e| bounded(e, MAX_NAME_CHARS)),
        host,
        message: report.message.clone(),
        excerpt: excerpt(input),
        batch: None,
    }
}

/// The crash as it was sent, as text: a record's message and stack trace (or frames), a
/// Sentry event's exception chain with its frames (innermost first). Bounded.
pub fn excerpt(input: &CrashInput) -> String {
    let mut text = String::new();
    match input {
        CrashInput::Record(record) => {
            if let Some(message) = &record.message {
                let _ = writeln!(text, "{}", message.trim_end());
            }
            if let Some(stacktrace) = &record.stacktrace {
                let _ = writeln!(text, "{}", stacktrace.trim_end());
            }
            if record.stacktrace.is_none() {
                for frame in &record.frames {
                    let function = frame.function.as_deref().unwrap_or("?");
                    let module = frame.module.as_deref().map(|m| format!("{m}.")).unwrap_or_default();
                    let _ = write!(text, "  at {module}{function}");
                    if let Some(file) = &frame.file {
                        let line = frame.line.map(|l| format!(":{l}")).unwrap_or_default();
                        let _ = write!(text, " ({file}{line})");
                    }
                    text.push('\n');
                }
            }
        }
        CrashInput::Sentry(event) => sentry_text(event, &mut text),
    }
    bounded(&text, EXCERPT_BYTES)
}

fn sentry_text(event: &SentryEvent, text: &mut String) {
    let values = event.exception.as_ref().map_or(&[][..], |e| e.values());
    // Sentry orders the chain oldest first; print the newest first, as runtimes do.
    for exception in values.iter().rev() {
        let ty = exception.ty.as_deref().unwrap_or("Error");
        let _ = writeln!(text, "{ty}: {}", exception.value.as_deref().unwrap_or(""));
        let frames = exception.stacktrace.as_ref().map_or(&[][..], |s| &s.frames[..]);
        for frame in frames.iter().rev() {
            let function = frame.function.as_deref().unwrap_or("?");
            let module = frame.module.as_deref().map(|m| format!("{m}.")).unwrap_or_default();
            let _ = write!(text, "  at {module}{function}");
            if let Some(file) = frame.filename.as_deref().or(frame.abs_path.as_deref()) {
                let line = frame.lineno.map(|l| format!(":{l}")).unwrap_or_default();
                let _ = write!(text, " ({file}{line})");
            }
            text.push('\n');
        }
    }
    if values.is_empty()
        && let Some(message) = event.message.as_ref().or(event.logentry.as_ref())
    {
        let _ = writeln!(text, "{}", message.text());
    }
}

/// At most `max` bytes, cut at a character boundary.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: &str) -> (CrashInput, CrashReport) {
        let input = CrashInput::from_json(json.as_bytes()).unwrap();
        let report = CrashReport::from_input(&input).unwrap();
        (input, report)
    }

    #[test]
    fn service_comes_from_the_request_the_record_or_a_tag() {
        let (_, record) = report(r#"{"service":"billing","message":"ValueError: x"}"#);
        assert_eq!(service_of(&record, None).unwrap(), "billing");
        assert_eq!(service_of(&record, Some("web")).unwrap(), "web");
        let (_, sentry) = report(
            r#"{"event_id":"1","tags":{"service":"api"},"exception":{"values":[{"type":"E","value":"v"}]}}"#,
        );
        assert_eq!(service_of(&sentry, None).unwrap(), "api");
        let (_, bare) = report(r#"{"message":"ValueError: x"}"#);
        assert_eq!(service_of(&bare, None).unwrap(), UNKNOWN_SERVICE);
        assert!(service_of(&bare, Some("a\nb")).is_err());
        assert!(service_of(&bare, Some(" ")).is_err());
    }

    #[test]
    fn group_ids_are_readable_and_distinct() {
        let a = group_id("Billing API", "ff00");
        assert!(a.starts_with("crash-billing-api-"), "{a}");
        assert_ne!(group_id("billing.api", "ff00"), group_id("billing-api", "ff00"));
        assert_ne!(group_id("billing", "ff00"), group_id("billing", "ff01"));
        assert_eq!(group_id("billing", "ff00"), group_id("billing", "ff00"));
        assert!(group_id("ünïcode", "ff").starts_with("crash-"));
    }

    #[test]
    fn excerpts_keep_the_trace_and_are_bounded() {
        let (input, report) = report(
            r#"{"event_id":"1","release":"1.2","tags":[["server_name","box-7"]],
                "exception":{"values":[{"type":"KeyError","value":"'id'","stacktrace":{"frames":[
                  {"function":"main","module":"app","filename":"app.py","lineno":3},
                  {"function":"load","module":"app.db","filename":"db.py","lineno":42}]}}]}}"#,
        );
        let occurrence = occurrence(&input, &report, 7);
        assert_eq!(occurrence.host.as_deref(), Some("box-7"));
        assert_eq!(occurrence.release.as_deref(), Some("1.2"));
        assert_eq!(
            occurrence.excerpt,
            "KeyError: 'id'\n  at app.db.load (db.py:42)\n  at app.main (app.py:3)\n"
        );
        let long = format!(r#"{{"message":"E: {}"}}"#, "é".repeat(10_000));
        let (input, _) = self::report(&long);
        let text = excerpt(&input);
        assert!(text.len() <= EXCERPT_BYTES && text.len() > EXCERPT_BYTES - 4);
    }
}
