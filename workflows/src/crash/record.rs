//! What `POST /v1/crashes` accepts: Errand's plain crash record, or a Sentry-style event
//! (the subset of Sentry's event payload that identifies a crash). [`CrashInput`] tells them
//! apart; [`CrashReport`](super::CrashReport) normalizes either.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::languages::Language;
use super::report::CrashInputError;

/// A plain crash record. Unknown fields are refused: it is Errand's own format, so a typo
/// (`stack_trace`) should be a clear 4xx rather than a silently empty crash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The error message, e.g. `ValueError: bad input`; its type prefix is used when neither the
    /// stacktrace nor the frames name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The stack trace as the runtime printed it (any supported language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<String>,
    /// Structured frames, **innermost (the crash site) first**, as most runtimes print them.
    /// When given, they are used instead of the frames of `stacktrace`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<RecordFrame>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// Optional hint; otherwise the language is detected from the stacktrace or frame files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
}

/// One frame of a plain record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The module, package or class (`app.views`, `com.example.Foo`, `github.com/x/y`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Accepted for completeness; line numbers never count in a fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Whether this is the application's code; decided by language rules when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
}

/// A Sentry-style event. Unknown fields are ignored, unlike [`CrashRecord`]: SDKs send many
/// more (`contexts`, `breadcrumbs`, `sdk`, `user`, ...) and add new ones over time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentryEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `python`, `java`, `go`, `javascript`, `node`, `native`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<SentryExceptions>,
    /// For events without an exception: the message is all there is to fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<SentryMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logentry: Option<SentryMessage>,
}

/// `exception` as `{"values": [...]}`, or the older bare list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SentryExceptions {
    Values { values: Vec<SentryException> },
    List(Vec<SentryException>),
}

impl SentryExceptions {
    /// The chain, oldest (the root cause) first, as Sentry's protocol orders it.
    pub fn values(&self) -> &[SentryException] {
        match self {
            SentryExceptions::Values { values } | SentryExceptions::List(values) => values,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentryException {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The module of the type (`java.util`, `requests.exceptions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<SentryStacktrace>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<SentryMechanism>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentryStacktrace {
    /// Oldest (outermost) first; the last frame raised the exception.
    #[serde(default)]
    pub frames: Vec<SentryFrame>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentryFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
}

/// Newer SDKs link chained exceptions (and exception groups) by ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentryMechanism {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<u64>,
}

/// A Sentry message: a string, or `{"formatted"|"message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SentryMessage {
    Text(String),
    Object {
        #[serde(default)]
        formatted: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
}

impl SentryMessage {
    pub fn text(&self) -> &str {
        match self {
            SentryMessage::Text(text) => text,
            SentryMessage::Object { formatted, message } => {
                formatted.as_deref().or(message.as_deref()).unwrap_or("")
            }
        }
    }
}

/// When the crash happened: RFC 3339 text or Unix seconds, as sent (never part of a fingerprint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Seconds(f64),
    Text(String),
}

/// Free-form tags. Accepted as an object or as Sentry's list of `[key, value]` pairs; scalar
/// values become strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Tags(pub BTreeMap<String, String>);

impl Tags {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs: Vec<(String, Value)> = match Value::deserialize(deserializer)? {
            Value::Null => Vec::new(),
            Value::Object(map) => map.into_iter().collect(),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Array(pair) if pair.len() == 2 => match &pair[0] {
                        Value::String(key) => Ok((key.clone(), pair[1].clone())),
                        _ => Err("a tag key must be a string"),
                    },
                    _ => Err("tags as a list must hold [key, value] pairs"),
                })
                .collect::<Result<_, _>>()
                .map_err(serde::de::Error::custom)?,
            _ => {
                return Err(serde::de::Error::custom(
                    "tags must be an object or a list of pairs",
                ));
            }
        };
        let tags = pairs
            .into_iter()
            .filter_map(|(key, value)| match value {
                Value::Null => None,
                Value::String(text) => Some((key, text)),
                other => Some((key, other.to_string())),
            })
            .collect();
        Ok(Tags(tags))
    }
}

/// Either input of `POST /v1/crashes`. A JSON object with Sentry's markers (`exception`,
/// `event_id`, `platform`, `logentry`, `sdk`) is a Sentry event; anything else must be a
/// [`CrashRecord`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CrashInput {
    Record(CrashRecord),
    Sentry(SentryEvent),
}

const SENTRY_MARKERS: [&str; 5] = ["exception", "event_id", "platform", "logentry", "sdk"];

impl CrashInput {
    /// Parse a request body.
    pub fn from_json(body: &[u8]) -> Result<CrashInput, CrashInputError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| CrashInputError::Json(e.to_string()))?;
        CrashInput::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<CrashInput, CrashInputError> {
        let Value::Object(map) = &value else {
            return Err(CrashInputError::Json(
                "a crash must be a JSON object".into(),
            ));
        };
        let json_error = |e: serde_json::Error| CrashInputError::Json(e.to_string());
        if SENTRY_MARKERS.iter().any(|key| map.contains_key(*key)) {
            serde_json::from_value(value)
                .map(CrashInput::Sentry)
                .map_err(json_error)
        } else {
            serde_json::from_value(value)
                .map(CrashInput::Record)
                .map_err(json_error)
        }
    }
}

impl<'de> Deserialize<'de> for CrashInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CrashInput::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
