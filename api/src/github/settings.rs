//! `[github]` settings: where the webhook secret is, which labels route to which playbooks,
//! where each repository's remote is, how to reach GitHub's API, and how tasks started from
//! issues are reported back (the API's public URL for task links, write-back on or off).

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `[github]` section. The secret itself is never in the file: only the name of the
/// environment variable that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// The environment variable holding the webhook secret.
    pub webhook_secret_env: String,
    /// The environment variable holding a token for GitHub's API: permission checks, and the
    /// write-back (issue comments, PRs: it needs `issues` and `pull_requests` write access).
    #[serde(default)]
    pub token_env: Option<String>,
    /// GitHub's REST API (a GitHub Enterprise server or a test double elsewhere).
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Issue label -> playbook name.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
    /// `owner/name` -> the remote URL tasks clone and push (default: GitHub's clone URL).
    #[serde(default)]
    pub repos: BTreeMap<String, String>,
    /// The bot's login: comments mentioning `@<login>` on a task's PR become follow-ups, and
    /// the write-back recognises its own earlier comments as those of `<login>` (or
    /// `<login>[bot]`, a GitHub App's): set it to the login the token writes as.
    #[serde(default = "default_bot_login")]
    pub bot_login: String,
    /// The label a maintainer adds to approve an issue from someone without write access.
    #[serde(default = "default_approve_label")]
    pub approve_label: String,
    /// The API's URL as people reach it (`https://errand.example.com`): the task links in
    /// the comments Errand writes. Unset: comments name the task without a link.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Comment on the issues that start tasks (acknowledgement, final report) and open each
    /// task's PR. Needs `token_env`; false: GitHub only triggers.
    #[serde(default = "default_write_back")]
    pub write_back: bool,
}

pub const DEFAULT_API_URL: &str = "https://api.github.com";

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

fn default_bot_login() -> String {
    "errand".to_string()
}

fn default_approve_label() -> String {
    "errand:approved".to_string()
}

fn default_write_back() -> bool {
    true
}

impl GithubSettings {
    /// Settings with the defaults, for the given secret variable (tests, mostly).
    pub fn new(webhook_secret_env: impl Into<String>) -> Self {
        Self {
            webhook_secret_env: webhook_secret_env.into(),
            token_env: None,
            api_url: default_api_url(),
            routes: BTreeMap::new(),
            repos: BTreeMap::new(),
            bot_login: default_bot_login(),
            approve_label: default_approve_label(),
            public_url: None,
            write_back: default_write_back(),
        }
    }

    /// The link to a task in the comments Errand writes, if the public URL is set.
    pub fn task_link(&self, task_id: &str) -> Option<String> {
        self.public_url
            .as_deref()
            .map(|url| format!("{}/v1/tasks/{task_id}", url.trim_end_matches('/')))
    }

    /// The token for GitHub's API, read from `token_env` now.
    pub fn token(&self) -> Option<String> {
        self.token_env
            .as_deref()
            .and_then(|name| std::env::var(name).ok())
            .filter(|token| !token.is_empty())
    }
}
