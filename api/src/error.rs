//! The one error type of the API: each variant of the HTTP contract renders itself as
//! `{"error": {"code", "message", "field"?}}` with its status.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error response has this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: e.g. `invalid_field`, `not_found`, `self_review`.
    pub code: String,
    /// What was wrong, for people.
    pub message: String,
    /// The request field, parameter or header at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error answer: status, code, message and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422: a well-formed request whose field has a value we cannot take.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
    }

    /// 400: a query parameter, path segment or header that cannot be read.
    pub fn bad_parameter(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 500, for failures of our own; the details go to the log, not to the client.
    pub fn internal(context: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %chain(err), "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context}; see the server log"),
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

impl From<store::StoreError> for ApiError {
    fn from(err: store::StoreError) -> Self {
        ApiError::internal("the task store failed", &err)
    }
}

/// An error and its causes, outermost first, for the log.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Serde's messages, without axum's preamble, with the field they are about.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => {
                let message = strip_preamble(&text);
                let field = serde_field(message);
                let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message);
                match field {
                    Some(field) => err.with_field(field),
                    None => err,
                }
            }
            JsonRejection::JsonSyntaxError(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                strip_preamble(&text),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body with content-type application/json",
            ),
            other => ApiError::new(other.status(), "unreadable_body", text),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let text = rejection.body_text();
        let message = strip_preamble(&text);
        let err = ApiError::new(StatusCode::BAD_REQUEST, "invalid_parameter", message);
        match serde_field(message) {
            Some(field) => err.with_field(field),
            None => err,
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            strip_preamble(&rejection.body_text()),
        )
    }
}

/// axum prefixes serde's message with what it was doing ("Failed to deserialize ...: ").
fn strip_preamble(text: &str) -> &str {
    const PREAMBLES: [&str; 3] = [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
        "Failed to deserialize query string: ",
    ];
    PREAMBLES
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text)
}

/// The field a serde message is about: its path (`agent.command: ...`), and the field the
/// message names (`missing field `x``, `unknown field `x``) under that path.
pub fn serde_field(message: &str) -> Option<String> {
    let (path, rest) = match message.split_once(": ") {
        Some((path, rest)) if is_path(path) => (Some(path), rest),
        _ => (None, message),
    };
    let named = |prefix: &str| {
        rest.strip_prefix(prefix)
            .and_then(|r| r.split_once('`'))
            .map(|(name, _)| name)
    };
    let name = named("missing field `").or_else(|| named("unknown field `"));
    match (path, name) {
        // An unknown field of a struct is in the path already; of a tagged enum it is not.
        (Some(path), Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            Some(path.to_string())
        }
        (Some(path), Some(name)) => Some(format!("{path}.{name}")),
        (Some(path), None) => Some(path.to_string()),
        (None, Some(name)) => Some(name.to_string()),
        (None, None) => None,
    }
}

/// serde_path_to_error renders paths like `agent.command[0]` or `inputs.test`; `.` is the root.
fn is_path(candidate: &str) -> bool {
    candidate != "."
        && !candidate.is_empty()
        && candidate
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '?'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_from_serde_messages() {
        let cases = [
            (
                "unknown field `foo`, expected one of `repo`, `base` at line 1 column 7",
                Some("foo"),
            ),
            ("missing field `repo` at line 1 column 2", Some("repo")),
            (
                "agent: unknown variant `shell`, expected `command` at line 1 column 30",
                Some("agent"),
            ),
            (
                "agent.cmd: unknown field `cmd`, expected `command`",
                Some("agent.cmd"),
            ),
            (
                "priority: unknown field `priority`, expected one of `repo`",
                Some("priority"),
            ),
            (
                "agent: missing field `command` at line 1 column 40",
                Some("agent.command"),
            ),
            (
                "agent: unknown field `env`, expected `command` at line 1 column 52",
                Some("agent.env"),
            ),
            (
                "inputs.test: invalid type: integer `3`, expected a string",
                Some("inputs.test"),
            ),
            (
                "checks[1]: invalid type: null, expected a string",
                Some("checks[1]"),
            ),
            ("expected value at line 1 column 1", None),
        ];
        for (message, want) in cases {
            assert_eq!(serde_field(message).as_deref(), want, "{message}");
        }
    }
}
