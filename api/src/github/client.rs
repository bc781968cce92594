//! The small typed client of GitHub's REST API the webhook needs: a user's permission on a
//! repository (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`).

use std::time::Duration;

use serde::Deserialize;

/// GitHub answers well within this, or the webhook answers 502 and GitHub may redeliver.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What a GitHub API call failed on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach GitHub's API at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GitHub's API answered {status} for {url}")]
    Status { url: String, status: u16 },
    #[error("GitHub's API answered {url} with a body that is not a permission")]
    Body {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// `GET .../collaborators/{username}/permission`, the fields used.
#[derive(Debug, Clone, Deserialize)]
struct PermissionAnswer {
    /// `admin`, `write`, `read` or `none` (the legacy levels).
    permission: String,
    /// `admin`, `maintain`, `write`, `triage`, `read` (or a custom role's name).
    #[serde(default)]
    role_name: Option<String>,
}

pub struct Client {
    api_url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(api_url: &str, token: Option<String>) -> Self {
        Self {
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .expect("a client with a timeout builds"),
        }
    }

    /// Whether `username` may write to `owner/repo` (admin, maintain or write). A user who is
    /// not a collaborator (404) may not. The login is taken exactly as GitHub sent it: a
    /// `[bot]` suffix grants nothing and is never stripped.
    pub async fn can_write(&self, repo: &str, username: &str) -> Result<bool, Error> {
        let url = format!(
            "{}/repos/{}/collaborators/{}/permission",
            self.api_url,
            repo,
            urlencode(username)
        );
        let mut request = self
            .http
            .get(&url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "errand");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|source| Error::Unreachable {
            url: url.clone(),
            source,
        })?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(false),
            status => return Err(Error::Status { url, status }),
        }
        let answer: PermissionAnswer = response
            .json()
            .await
            .map_err(|source| Error::Body { url, source })?;
        let role = answer.role_name.as_deref().unwrap_or(&answer.permission);
        Ok(matches!(role, "admin" | "maintain" | "write") || answer.permission == "admin")
    }
}

/// Logins are `[A-Za-z0-9-]` plus `[bot]`; anything else is escaped rather than trusted.
fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
