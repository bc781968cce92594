//! Forwarding to the configured upstream: the request goes out with the real key injected here,
//! on the host (`Authorization: Bearer` for OpenAI-compatible APIs, `x-api-key` and
//! `anthropic-version` for Anthropic), and never with anything the agent sent as credentials.

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use super::Flavor;
use super::anthropic;

/// A provider endpoint and its key.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    /// OpenAI-compatible: up to and including the version, as `OPENAI_BASE_URL` is written
    /// (`https://api.openai.com/v1`); Anthropic: the host (`https://api.anthropic.com`).
    pub base_url: String,
    pub api_key: String,
}

impl fmt::Debug for Upstream {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// Request headers of the agent that go upstream (everything else, credentials included, is
/// dropped).
const FORWARDED_REQUEST: &[&str] = &["accept", "anthropic-beta"];
/// Response headers of the upstream that reach the agent.
pub(super) const FORWARDED_RESPONSE: &[&str] = &[
    "content-type",
    "cache-control",
    "retry-after",
    "x-request-id",
    "request-id",
];

/// A model call upstream did not answer.
#[derive(Debug, thiserror::Error)]
#[error("upstream {url}: {source}")]
pub struct UpstreamError {
    url: String,
    source: reqwest::Error,
}

#[derive(Debug)]
pub(super) struct Upstreams {
    client: reqwest::Client,
    openai: Option<Upstream>,
    anthropic: Option<Upstream>,
}

impl Upstreams {
    pub fn new(
        openai: Option<Upstream>,
        anthropic: Option<Upstream>,
    ) -> Result<Self, reqwest::Error> {
        // No overall timeout: a stream may rightly last minutes. A silent upstream is cut off.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(600))
            .build()?;
        Ok(Self {
            client,
            openai,
            anthropic,
        })
    }

    pub fn get(&self, flavor: Flavor) -> Option<&Upstream> {
        match flavor {
            Flavor::OpenAi => self.openai.as_ref(),
            Flavor::Anthropic => self.anthropic.as_ref(),
        }
    }

    /// Sends `body` to `flavor`'s upstream (which must be configured).
    pub async fn send(
        &self,
        flavor: Flavor,
        upstream: &Upstream,
        body: Vec<u8>,
        agent_headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let base = upstream.base_url.trim_end_matches('/');
        let url = match flavor {
            Flavor::OpenAi => format!("{base}/chat/completions"),
            Flavor::Anthropic => format!("{base}/v1/messages"),
        };
        let mut headers = HeaderMap::new();
        for name in FORWARDED_REQUEST {
            if let Some(value) = agent_headers.get(*name) {
                headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let key = |value: String| {
            let mut value = HeaderValue::try_from(value).map_err(|_| ()).ok();
            if let Some(value) = &mut value {
                value.set_sensitive(true);
            }
            value
        };
        match flavor {
            Flavor::OpenAi => {
                if let Some(value) = key(format!("Bearer {}", upstream.api_key)) {
                    headers.insert(header::AUTHORIZATION, value);
                }
            }
            Flavor::Anthropic => {
                if let Some(value) = key(upstream.api_key.clone()) {
                    headers.insert("x-api-key", value);
                }
                let version = agent_headers
                    .get("anthropic-version")
                    .cloned()
                    .unwrap_or_else(|| HeaderValue::from_static(anthropic::DEFAULT_VERSION));
                headers.insert("anthropic-version", version);
            }
        }
        self.client
            .post(&url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|source| UpstreamError { url, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let upstream = Upstream {
            base_url: "https://api.example".into(),
            api_key: "sk-secret".into(),
        };
        let printed = format!("{upstream:?}");
        assert!(printed.contains("api.example") && !printed.contains("sk-secret"));
    }
}
