//! The OpenAI-compatible chat completions API (`POST /v1/chat/completions`): asking a stream
//! for its usage, reading usage from a response or a stream, and the error shape its clients
//! print.
//!
//! Usage: `prompt_tokens` counts cached prompt tokens too (`prompt_tokens_details.cached_tokens`),
//! so the uncached input is the difference; there is no separate charge for cache writes.

use serde_json::{Value, json};
use workflows::cost::Usage;

use super::sse::Event;

/// Makes a streaming request end with a usage chunk (`stream_options.include_usage`), without
/// which a stream reports no usage at all. Returns whether the body changed.
pub fn request_usage(body: &mut Value) -> bool {
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return false;
    }
    let Some(request) = body.as_object_mut() else {
        return false;
    };
    let options = request.entry("stream_options").or_insert_with(|| json!({}));
    if !options.is_object() {
        *options = json!({});
    }
    let options = options.as_object_mut().expect("made an object above");
    if options.get("include_usage").and_then(Value::as_bool) == Some(true) {
        return false;
    }
    options.insert("include_usage".into(), Value::Bool(true));
    true
}

/// The usage of a non-streaming response (`{"usage": {...}}`).
pub fn usage(response: &Value) -> Option<Usage> {
    usage_object(response.get("usage")?)
}

fn usage_object(usage: &Value) -> Option<Usage> {
    let prompt = usage.get("prompt_tokens")?.as_u64()?;
    let completion = usage
        .get("completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let cached = usage
        .pointer("/prompt_tokens_details/cached_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(prompt);
    Some(Usage {
        input_tokens: prompt - cached,
        output_tokens: completion,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
    })
}

/// The usage of a stream: the chunk whose `usage` is not null (the last one before
/// `data: [DONE]`; every other chunk carries `"usage": null`).
#[derive(Debug, Default)]
pub struct StreamUsage {
    usage: Option<Usage>,
}

impl StreamUsage {
    pub fn observe(&mut self, event: &Event) {
        if event.data == "[DONE]" {
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        if let Some(usage) = chunk.get("usage").and_then(usage_object) {
            self.usage = Some(usage);
        }
    }

    pub fn finish(self) -> Option<Usage> {
        self.usage
    }
}

/// An error as OpenAI sends it: `{"error": {"message", "type", "param", "code"}}`.
pub fn error_body(kind: &str, code: &str, message: &str) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_asked_for_its_usage_once() {
        let mut body = json!({"model": "m", "stream": true, "messages": []});
        assert!(request_usage(&mut body));
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert!(!request_usage(&mut body), "already asked");
        let mut other = json!({"model": "m", "stream": true, "stream_options": {"x": 1}});
        assert!(request_usage(&mut other));
        assert_eq!(
            other["stream_options"],
            json!({"x": 1, "include_usage": true})
        );
        let mut plain = json!({"model": "m"});
        assert!(!request_usage(&mut plain));
        assert!(plain.get("stream_options").is_none());
    }

    #[test]
    fn cached_prompt_tokens_are_split_from_the_input() {
        let response = json!({"usage": {
            "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}
        }});
        assert_eq!(
            usage(&response),
            Some(Usage {
                input_tokens: 86,
                output_tokens: 300,
                cache_read_tokens: 1920,
                cache_write_tokens: 0
            })
        );
        assert_eq!(usage(&json!({"usage": null})), None);
        assert_eq!(usage(&json!({"id": "x"})), None);
    }

    #[test]
    fn the_usage_chunk_of_a_stream_is_found() {
        let mut stream = StreamUsage::default();
        for data in [
            r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#,
            "[DONE]",
        ] {
            stream.observe(&Event {
                name: None,
                data: data.into(),
            });
        }
        assert_eq!(
            stream.finish(),
            Some(Usage {
                input_tokens: 9,
                output_tokens: 12,
                ..Usage::default()
            })
        );
        assert_eq!(StreamUsage::default().finish(), None);
    }
}
