//! The small typed client of GitHub's REST API that Errand needs: a user's permission on a
//! repository (the webhook), and the write-back (the reporter): an issue's comments, a
//! branch's PRs, creating both and replacing a PR's body.
//!
//! | call | endpoint |
//! |---|---|
//! | [`Client::can_write`] | `GET /repos/{owner}/{repo}/collaborators/{username}/permission` |
//! | [`Client::issue_comments`] | `GET /repos/{owner}/{repo}/issues/{number}/comments` (every page) |
//! | [`Client::create_issue_comment`] | `POST /repos/{owner}/{repo}/issues/{number}/comments` |
//! | [`Client::pull_requests_by_head`] | `GET /repos/{owner}/{repo}/pulls?head={owner}:{branch}&state=all` |
//! | [`Client::create_pull_request`] | `POST /repos/{owner}/{repo}/pulls` |
//! | [`Client::update_pull_request_body`] | `PATCH /repos/{owner}/{repo}/pulls/{number}` |

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// GitHub answers well within this, or the webhook answers 502 and GitHub may redeliver.
const TIMEOUT: Duration = Duration::from_secs(10);
/// GitHub refuses an issue comment or PR body longer than this many characters.
pub const MAX_BODY_CHARS: usize = 65536;
/// Items per page of a listing (GitHub's maximum).
const PER_PAGE: usize = 100;
/// A listing reads at most this many pages (10,000 comments); an issue with more is not one
/// Errand writes on.
const MAX_PAGES: usize = 100;

/// What a GitHub API call failed on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach GitHub's API at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Any answer but the expected one; `message` is GitHub's own (`{"message": ...}`), with
    /// the validation errors of a 422 when it names them.
    #[error("GitHub's API answered {status} for {method} {url}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: Option<String>,
    },
    #[error("GitHub's API answered {url} with a body that is not {what}")]
    Body {
        url: String,
        what: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} lists more than {MAX_PAGES} pages")]
    TooManyPages { url: String },
}

impl Error {
    /// The HTTP status GitHub answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
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

/// GitHub's error answer, the fields used.
#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// A user as GitHub embeds one (`user` of a comment or PR), the fields used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub login: String,
}

/// An issue comment, the fields used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// Null for a deleted ("ghost") account.
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// One side of a PR (`head` or `base`), the fields used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// `owner:branch`.
    #[serde(default)]
    pub label: Option<String>,
}

/// A pull request, the fields used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    pub head: PullRequestRef,
    pub base: PullRequestRef,
    #[serde(default)]
    pub user: Option<User>,
}

/// `POST /repos/{owner}/{repo}/pulls`: a PR of `head` (a branch of the same repository) into
/// `base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewPullRequest {
    pub title: String,
    pub head: String,
    pub base: String,
    pub body: String,
    /// Maintainers may push to the branch (a follow-up by hand).
    pub maintainer_can_modify: bool,
}

#[derive(Serialize)]
struct CommentBody<'a> {
    body: &'a str,
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

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header("user-agent", "errand");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    /// Sends; answers the response if its status is `expected`, else `Error::Status` with
    /// GitHub's message.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&impl Serialize>,
        expected: &[u16],
    ) -> Result<reqwest::Response, Error> {
        let name = method_name(&method);
        let mut request = self.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|source| Error::Unreachable {
            url: url.to_string(),
            source,
        })?;
        let status = response.status().as_u16();
        if expected.contains(&status) {
            return Ok(response);
        }
        let message = response
            .json::<ErrorAnswer>()
            .await
            .ok()
            .and_then(|answer| {
                let errors: Vec<String> = answer
                    .errors
                    .iter()
                    .map(|e| match e.get("message").and_then(|m| m.as_str()) {
                        Some(m) => m.to_string(),
                        None => e.to_string(),
                    })
                    .collect();
                match (answer.message, errors.is_empty()) {
                    (Some(m), true) => Some(m),
                    (Some(m), false) => Some(format!("{m} ({})", errors.join("; "))),
                    (None, false) => Some(errors.join("; ")),
                    (None, true) => None,
                }
            });
        Err(Error::Status {
            method: name,
            url: url.to_string(),
            status,
            message,
        })
    }

    async fn json<T: DeserializeOwned>(
        response: reqwest::Response,
        url: &str,
        what: &'static str,
    ) -> Result<T, Error> {
        response.json().await.map_err(|source| Error::Body {
            url: url.to_string(),
            what,
            source,
        })
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
        let response = self
            .send(reqwest::Method::GET, &url, None::<&()>, &[200, 404])
            .await?;
        if response.status().as_u16() == 404 {
            return Ok(false);
        }
        let answer: PermissionAnswer = Self::json(response, &url, "a permission").await?;
        let role = answer.role_name.as_deref().unwrap_or(&answer.permission);
        Ok(matches!(role, "admin" | "maintain" | "write") || answer.permission == "admin")
    }

    /// Every comment on issue (or PR) `number`, oldest first, all pages.
    pub async fn issue_comments(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Vec<IssueComment>, Error> {
        let base = format!("{}/repos/{repo}/issues/{number}/comments", self.api_url);
        self.all_pages(&base, "", "a list of issue comments").await
    }

    /// Comments on issue (or PR) `number`; answers the comment GitHub created.
    pub async fn create_issue_comment(
        &self,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<IssueComment, Error> {
        let url = format!("{}/repos/{repo}/issues/{number}/comments", self.api_url);
        let body = CommentBody {
            body: &cap(body, MAX_BODY_CHARS),
        };
        let response = self
            .send(reqwest::Method::POST, &url, Some(&body), &[201])
            .await?;
        Self::json(response, &url, "an issue comment").await
    }

    /// The PRs, open or closed, whose head is `branch` of the repository itself (GitHub's
    /// `head=owner:branch` filter: forks' branches of the same name are not listed).
    pub async fn pull_requests_by_head(
        &self,
        repo: &str,
        branch: &str,
    ) -> Result<Vec<PullRequest>, Error> {
        let owner = repo.split_once('/').map_or(repo, |(owner, _)| owner);
        let base = format!("{}/repos/{repo}/pulls", self.api_url);
        let filter = format!(
            "head={}&state=all&",
            urlencode(&format!("{owner}:{branch}"))
        );
        self.all_pages(&base, &filter, "a list of pull requests")
            .await
    }

    /// Opens a PR; answers it. GitHub answers 422 when one of the same head and base is open
    /// already, or when the branches have nothing between them.
    pub async fn create_pull_request(
        &self,
        repo: &str,
        new: &NewPullRequest,
    ) -> Result<PullRequest, Error> {
        let url = format!("{}/repos/{repo}/pulls", self.api_url);
        let mut new = new.clone();
        new.body = cap(&new.body, MAX_BODY_CHARS);
        let response = self
            .send(reqwest::Method::POST, &url, Some(&new), &[201])
            .await?;
        Self::json(response, &url, "a pull request").await
    }

    /// Replaces PR `number`'s body; answers the PR.
    pub async fn update_pull_request_body(
        &self,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<PullRequest, Error> {
        let url = format!("{}/repos/{repo}/pulls/{number}", self.api_url);
        let body = CommentBody {
            body: &cap(body, MAX_BODY_CHARS),
        };
        let response = self
            .send(reqwest::Method::PATCH, &url, Some(&body), &[200])
            .await?;
        Self::json(response, &url, "a pull request").await
    }

    /// Every page of a listing: `{base}?{filter}per_page=100&page=N` until a short page.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        base: &str,
        filter: &str,
        what: &'static str,
    ) -> Result<Vec<T>, Error> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!("{base}?{filter}per_page={PER_PAGE}&page={page}");
            let response = self
                .send(reqwest::Method::GET, &url, None::<&()>, &[200])
                .await?;
            let items: Vec<T> = Self::json(response, &url, what).await?;
            let last = items.len() < PER_PAGE;
            all.extend(items);
            if last {
                return Ok(all);
            }
        }
        Err(Error::TooManyPages {
            url: base.to_string(),
        })
    }
}

fn method_name(method: &reqwest::Method) -> &'static str {
    match *method {
        reqwest::Method::GET => "GET",
        reqwest::Method::POST => "POST",
        reqwest::Method::PATCH => "PATCH",
        reqwest::Method::PUT => "PUT",
        reqwest::Method::DELETE => "DELETE",
        _ => "request",
    }
}

/// `text` cut to at most `max` characters (Unicode scalar values, as GitHub counts), on a
/// character boundary.
pub fn cap(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_counts_characters_not_bytes() {
        assert_eq!(cap("héllo", 2), "hé");
        assert_eq!(cap("héllo", 5), "héllo");
        assert_eq!(cap("héllo", 50), "héllo");
        let long = "é".repeat(MAX_BODY_CHARS + 10);
        assert_eq!(cap(&long, MAX_BODY_CHARS).chars().count(), MAX_BODY_CHARS);
    }

    #[test]
    fn head_filters_are_escaped() {
        assert_eq!(urlencode("acme:errand/t-1"), "acme%3Aerrand%2Ft-1");
    }
}
