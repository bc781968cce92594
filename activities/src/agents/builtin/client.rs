//! A small client of the OpenAI chat completions API with tool calling, non-streaming.
//!
//! Wire format (OpenAI API reference, "Create chat completion", `POST /v1/chat/completions`):
//! the request carries `model`, `messages` and `tools` (`{"type":"function","function":
//! {"name","description","parameters"}}`); the response's `choices[0].message` has `content`
//! (a string or null) and `tool_calls` (`[{"id","type":"function","function":{"name",
//! "arguments"}}]`, the arguments a JSON string), `finish_reason` is `tool_calls` or `stop`, and
//! `usage` is `{"prompt_tokens","completion_tokens","total_tokens","prompt_tokens_details":
//! {"cached_tokens"}}` where the prompt tokens include the cached ones. A tool's answer goes
//! back as `{"role":"tool","tool_call_id","content"}`. Errors are `{"error":{"message",...}}`.

use std::time::Duration;

use serde_json::{Value, json};
use workflows::cost::Usage;

/// A response body larger than this is not read (a completion is far smaller).
const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// How much of an error body goes into a message.
const MAX_ERROR_BODY_BYTES: usize = 1024;
/// Attempts of one call when the endpoint is unreachable, overloaded (429) or failing (5xx).
const ATTEMPTS: u32 = 3;
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// HTTP 402 from the gateway: a budget is spent.
    #[error("the gateway refused the model call: {message}")]
    Refused {
        budget: Option<String>,
        message: String,
    },
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: {}", chain(.source))]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: unreadable response: {reason}")]
    Malformed { url: String, reason: String },
    #[error("invalid OPENAI_BASE_URL {url:?}: {reason}")]
    BadBaseUrl { url: String, reason: String },
}

impl ChatError {
    fn retryable(&self) -> bool {
        match self {
            ChatError::Transport { .. } => true,
            ChatError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// An error with its causes (reqwest's own message alone says only "error sending request").
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it (it may not be valid JSON).
    pub arguments: String,
}

/// One answer of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    /// The model that answered, as the response names it.
    pub model: Option<String>,
}

impl Completion {
    /// The assistant message to append to the conversation.
    pub fn message(&self) -> Value {
        let mut message = json!({"role": "assistant", "content": self.content});
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
        }
        message
    }
}

pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    api_key: Option<String>,
}

impl ChatClient {
    /// A client of `base_url` (which ends before `/chat/completions`, e.g. `.../v1`).
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, ChatError> {
        let bad = |reason: &str| ChatError::BadBaseUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(base_url).map_err(|err| bad(&err.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("expected an http or https URL"));
        }
        let mut builder = reqwest::Client::builder().timeout(timeout);
        // The gateway listens on the sandbox's loopback; a proxy from the environment (the
        // egress proxy's http_proxy) must not carry those calls.
        let loopback = matches!(
            parsed.host_str(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        );
        if loopback {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|source| ChatError::Transport {
            url: base_url.to_string(),
            source,
        })?;
        Ok(Self {
            http,
            url: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key,
        })
    }

    /// Asks the model for its next step, retrying a call that failed for a passing reason.
    pub async fn complete(
        &self,
        model: &str,
        messages: &[Value],
        tools: &Value,
    ) -> Result<Completion, ChatError> {
        let body = json!({
            "model": model,
            "messages": messages,
            "tools": tools,
            "tool_choice": "auto",
        });
        let mut attempt = 1;
        loop {
            match self.call(&body).await {
                Err(err) if err.retryable() && attempt < ATTEMPTS => {
                    // Backing off between attempts of a failed call, not synchronising anything.
                    tokio::time::sleep(RETRY_AFTER * attempt).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn call(&self, body: &Value) -> Result<Completion, ChatError> {
        let transport = |source| ChatError::Transport {
            url: self.url.clone(),
            source,
        };
        let mut request = self.http.post(&self.url).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ChatError::Malformed {
                    url: self.url.clone(),
                    reason: format!("body larger than {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status == 402 {
            return Err(refusal(parsed.as_ref(), &bytes));
        }
        if !(200..300).contains(&status) {
            return Err(ChatError::Status {
                url: self.url.clone(),
                status,
                body: error_text(parsed.as_ref(), &bytes),
            });
        }
        let malformed = |reason: &str| ChatError::Malformed {
            url: self.url.clone(),
            reason: reason.to_string(),
        };
        let parsed = parsed.ok_or_else(|| malformed("not JSON"))?;
        completion(&parsed).map_err(|reason| malformed(&reason))
    }
}

/// The gateway's refusal: `{"error":{"message","code"}}` as OpenAI clients expect, or the
/// plain `{"budget","message"}`; the raw text when it is neither.
fn refusal(body: Option<&Value>, bytes: &[u8]) -> ChatError {
    let text = |pointer: &str| {
        body.and_then(|b| b.pointer(pointer))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ChatError::Refused {
        budget: text("/budget").or_else(|| text("/error/code")),
        message: text("/message")
            .or_else(|| text("/error/message"))
            .unwrap_or_else(|| raw(bytes)),
    }
}

fn error_text(body: Option<&Value>, bytes: &[u8]) -> String {
    body.and_then(|b| b.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(|m| super::super::report::cut(m, MAX_ERROR_BODY_BYTES))
        .unwrap_or_else(|| raw(bytes))
}

fn raw(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    super::super::report::cut(text.trim(), MAX_ERROR_BODY_BYTES)
}

fn completion(body: &Value) -> Result<Completion, String> {
    let message = body
        .pointer("/choices/0/message")
        .ok_or("no choices[0].message")?;
    let content = message
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_string);
    let tool_calls = match message.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(calls)) => calls
            .iter()
            .map(|call| {
                let text = |pointer: &str| call.pointer(pointer).and_then(Value::as_str);
                Ok(ToolCall {
                    id: text("/id").ok_or("a tool call without an id")?.to_string(),
                    name: text("/function/name")
                        .ok_or("a tool call without a function name")?
                        .to_string(),
                    arguments: text("/function/arguments").unwrap_or("{}").to_string(),
                })
            })
            .collect::<Result<_, &str>>()?,
        Some(_) => return Err("tool_calls is not a list".into()),
    };
    let usage = body.get("usage").filter(|u| u.is_object()).map(|usage| {
        let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        let prompt = count("/prompt_tokens");
        let cached = count("/prompt_tokens_details/cached_tokens").min(prompt);
        Usage {
            input_tokens: prompt - cached,
            output_tokens: count("/completion_tokens"),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    });
    Ok(Completion {
        content,
        tool_calls,
        usage,
        model: body
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tool_calling_completion() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m-1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}}]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
                "prompt_tokens_details": {"cached_tokens": 60}}
        });
        let c = completion(&body).unwrap();
        assert_eq!(c.content, None);
        assert_eq!(c.tool_calls[0].name, "read_file");
        assert_eq!(
            c.usage,
            Some(Usage {
                input_tokens: 40,
                output_tokens: 7,
                cache_read_tokens: 60,
                cache_write_tokens: 0
            })
        );
        assert_eq!(
            c.message()["tool_calls"][0]["function"]["arguments"],
            "{\"path\":\"a\"}"
        );
        assert!(completion(&json!({"choices": []})).is_err());
    }

    #[test]
    fn a_refusal_names_its_budget_in_either_shape() {
        let openai = json!({"error": {"message": "task budget $1 spent", "type": "budget_exhausted", "code": "task_dollars"}});
        let plain = json!({"budget": "task_tokens", "message": "task tokens spent"});
        for (body, budget, message) in [
            (openai, "task_dollars", "task budget $1 spent"),
            (plain, "task_tokens", "task tokens spent"),
        ] {
            let ChatError::Refused {
                budget: b,
                message: m,
            } = refusal(Some(&body), b"")
            else {
                panic!("not a refusal");
            };
            assert_eq!((b.as_deref(), m.as_str()), (Some(budget), message));
        }
        let ChatError::Refused { message, .. } = refusal(None, b"no budget left") else {
            panic!("not a refusal");
        };
        assert_eq!(message, "no budget left");
    }
}
