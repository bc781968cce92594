//! `[github]` settings: where the webhook secret is, which labels route to which playbooks,
//! where each repository's remote is, and how to reach GitHub's API.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The `[github]` section. The secret itself is never in the file: only the name of the
/// environment variable that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// The environment variable holding the webhook secret.
    pub webhook_secret_env: String,
    /// The environment variable holding a token for GitHub's API (permission checks).
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
    /// The bot's login: comments mentioning `@<login>` on a task's PR become follow-ups.
    #[serde(default = "default_bot_login")]
    pub bot_login: String,
    /// The label a maintainer adds to approve an issue from someone without write access.
    #[serde(default = "default_approve_label")]
    pub approve_label: String,
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
        }
    }
}
