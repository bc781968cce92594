//! A small client of the REST API, used by the client subcommands and the demo.

use anyhow::{Context, bail};
use serde_json::Value;

pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .with_context(|| self.unreachable())?;
        Self::answer(response).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.with_context(|| self.unreachable())?;
        Self::answer(response).await
    }

    /// A GET whose body is read as it arrives (server-sent events), with extra headers; an
    /// error answer becomes the API's error message.
    pub async fn get_streaming(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.with_context(|| self.unreachable())?;
        if response.status().is_success() {
            return Ok(response);
        }
        Self::answer(response).await?;
        bail!("the API answered without a body")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self) -> String {
        format!(
            "cannot reach the Errand API at {} (is `errand up` running? see --api)",
            self.base
        )
    }

    /// The JSON body of a success, or the API's error message.
    async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        match body["error"]["message"].as_str() {
            Some(message) => bail!("{status}: {message}"),
            None => bail!("{status}: {body}"),
        }
    }
}
