//! The Anthropic messages API (`POST /v1/messages`): reading usage from a response or a
//! stream, and the error shape its clients print.
//!
//! Usage: `input_tokens` excludes the cache; `cache_read_input_tokens` and
//! `cache_creation_input_tokens` are priced as cache reads and writes. A stream reports usage
//! in `message_start` and then, cumulatively, in each `message_delta` (fields it leaves out
//! keep their earlier value).

use serde_json::{Value, json};
use workflows::cost::Usage;

use super::sse::Event;

/// The `anthropic-version` sent upstream when the client sent none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// The usage of a non-streaming response (`{"type": "message", "usage": {...}}`).
pub fn usage(response: &Value) -> Option<Usage> {
    let mut usage = Usage::default();
    merge(&mut usage, response.get("usage")?).then_some(usage)
}

/// Sets each count the object carries; false when it carries none.
fn merge(usage: &mut Usage, object: &Value) -> bool {
    let mut found = false;
    let mut set = |field: &str, slot: &mut u64| {
        if let Some(count) = object.get(field).and_then(Value::as_u64) {
            *slot = count;
            found = true;
        }
    };
    set("input_tokens", &mut usage.input_tokens);
    set("output_tokens", &mut usage.output_tokens);
    set("cache_read_input_tokens", &mut usage.cache_read_tokens);
    set("cache_creation_input_tokens", &mut usage.cache_write_tokens);
    found
}

/// The usage of a stream, from `message_start` and every `message_delta`.
#[derive(Debug, Default)]
pub struct StreamUsage {
    usage: Option<Usage>,
}

impl StreamUsage {
    pub fn observe(&mut self, event: &Event) {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return;
        };
        let object = match data.get("type").and_then(Value::as_str) {
            Some("message_start") => data.pointer("/message/usage"),
            Some("message_delta") => data.get("usage"),
            _ => None,
        };
        if let Some(object) = object {
            let mut usage = self.usage.unwrap_or_default();
            if merge(&mut usage, object) {
                self.usage = Some(usage);
            }
        }
    }

    pub fn finish(self) -> Option<Usage> {
        self.usage
    }
}

/// An error as Anthropic sends it: `{"type": "error", "error": {"type", "message"}}`.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> Event {
        Event {
            name: Some(name.into()),
            data: data.into(),
        }
    }

    #[test]
    fn usage_of_a_message_with_cache() {
        let message = json!({"type": "message", "usage": {
            "input_tokens": 21, "output_tokens": 393,
            "cache_creation_input_tokens": 188086, "cache_read_input_tokens": 0
        }});
        assert_eq!(
            usage(&message),
            Some(Usage {
                input_tokens: 21,
                output_tokens: 393,
                cache_read_tokens: 0,
                cache_write_tokens: 188086
            })
        );
        assert_eq!(usage(&json!({"type": "message"})), None);
    }

    #[test]
    fn a_stream_starts_with_usage_and_deltas_replace_the_counts_they_carry() {
        let mut stream = StreamUsage::default();
        for (name, data) in [
            (
                "message_start",
                r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":100}}}"#,
            ),
            ("ping", r#"{"type": "ping"}"#),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":7}}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ] {
            stream.observe(&event(name, data));
        }
        assert_eq!(
            stream.finish(),
            Some(Usage {
                input_tokens: 25,
                output_tokens: 15,
                cache_read_tokens: 100,
                cache_write_tokens: 0
            })
        );
    }
}
