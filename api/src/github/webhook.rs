//! What a verified GitHub delivery does. Issues with a routed label start the routed playbook
//! when the actor may write to the repository, and otherwise wait for a maintainer's approval
//! (the approve label, or a `/errand approve` comment); reviews on a task's PR become review
//! decisions; comments mentioning the bot are recorded as follow-ups for the next round.
//!
//! Who may do what is always asked of GitHub's API for the exact login; nothing is trusted
//! from the payload's names (a `[bot]` suffix included).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use workflows::playbook::{InputValue, Playbook};
use workflows::task::Followup;
use workflows::{ReviewDecision, ReviewVerdict};

use super::client::{self, Client};
use super::events::{
    Issue, IssueCommentEvent, IssuesEvent, PullRequestEvent, PullRequestReviewEvent,
    is_approve_command, mentions, quoted_issue, task_of_branch, valid_repo_name,
};
use super::settings::GithubSettings;
use crate::admission::{playbook_error, playbook_task_spec, review_error};
use crate::dto::PlaybookRunRequest;
use crate::error::ApiError;
use crate::{ApiState, playbook_files, task_id, temporal, trigger};

/// What the webhook answers: what Errand did with the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookAnswer {
    /// `pong`, `duplicate`, `ignored`, `started`, `awaiting_approval`, `decision`,
    /// `followup` or `mapped`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Why, for people reading GitHub's delivery log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl WebhookAnswer {
    pub fn new(status: &str, task_id: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            status: status.to_string(),
            task_id,
            detail: Some(detail.into()),
        }
    }

    fn ignored(detail: impl Into<String>) -> Self {
        Self::new("ignored", None, detail)
    }
}

/// Context of one delivery.
pub struct Delivery<'a> {
    pub state: &'a ApiState,
    pub settings: &'a GithubSettings,
    pub github: Client,
    pub id: &'a str,
}

/// Acts on a delivery of `event`, whose JSON is `body`.
pub async fn handle(
    delivery: &Delivery<'_>,
    event: &str,
    body: &[u8],
) -> Result<WebhookAnswer, ApiError> {
    match event {
        "ping" => Ok(WebhookAnswer::new("pong", None, "webhook configured")),
        "issues" => delivery.issues(parse(body)?).await,
        "issue_comment" => delivery.issue_comment(parse(body)?).await,
        "pull_request_review" => delivery.review(parse(body)?).await,
        "pull_request" => delivery.pull_request(parse(body)?).await,
        other => Ok(WebhookAnswer::ignored(format!(
            "event {other} is not one Errand acts on"
        ))),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_payload",
            format!("the payload is not the event's JSON: {err}"),
        )
    })
}

fn repo_name(full_name: &str) -> Result<&str, ApiError> {
    if valid_repo_name(full_name) {
        Ok(full_name)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_payload",
            format!("repository.full_name {full_name:?} is not owner/name"),
        ))
    }
}

fn github_failed(err: client::Error) -> ApiError {
    tracing::warn!(error = %crate::error::chain(&err), "GitHub's API failed");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "github_unavailable",
        err.to_string(),
    )
}

impl Delivery<'_> {
    async fn can_write(&self, repo: &str, login: &str) -> Result<bool, ApiError> {
        self.github
            .can_write(repo, login)
            .await
            .map_err(github_failed)
    }

    /// The playbook the issue's labels route to (the first routed label, by name).
    fn routed(&self, issue: &Issue) -> Option<(&str, &str)> {
        issue.labels.iter().find_map(|label| {
            self.settings
                .routes
                .get_key_value(&label.name)
                .map(|(l, p)| (l.as_str(), p.as_str()))
        })
    }

    async fn issues(&self, event: IssuesEvent) -> Result<WebhookAnswer, ApiError> {
        let repo = repo_name(&event.repository.full_name)?;
        if event.issue.pull_request.is_some() {
            return Ok(WebhookAnswer::ignored("a pull request, not an issue"));
        }
        let added = event.label.as_ref().map(|l| l.name.as_str());
        match (event.action.as_str(), added) {
            ("labeled", Some(label)) if label == self.settings.approve_label => {
                self.approval(
                    repo,
                    &event.issue,
                    &event.sender.login,
                    &event.repository.clone_url,
                )
                .await
            }
            ("labeled", Some(label)) if self.settings.routes.contains_key(label) => {
                let playbook = self.settings.routes[label].clone();
                self.request(repo, &event, &playbook).await
            }
            ("opened", _) => match self.routed(&event.issue) {
                Some((_, playbook)) => {
                    let playbook = playbook.to_string();
                    self.request(repo, &event, &playbook).await
                }
                None => Ok(WebhookAnswer::ignored("no routed label on the issue")),
            },
            _ => Ok(WebhookAnswer::ignored(format!(
                "issues.{} with no routed or approval label",
                event.action
            ))),
        }
    }

    /// A routed label on an issue: the run starts if the actor may write, else it waits.
    async fn request(
        &self,
        repo: &str,
        event: &IssuesEvent,
        playbook: &str,
    ) -> Result<WebhookAnswer, ApiError> {
        let actor = &event.sender.login;
        if !self.can_write(repo, actor).await? {
            return Ok(WebhookAnswer::new(
                "awaiting_approval",
                None,
                format!(
                    "{actor} cannot write to {repo}: a maintainer approves with the label {} or a comment /errand approve",
                    self.settings.approve_label
                ),
            ));
        }
        self.start(repo, &event.issue, playbook, &event.repository.clone_url)
            .await
    }

    /// A maintainer's approval (label or command) starts the issue's routed playbook.
    async fn approval(
        &self,
        repo: &str,
        issue: &Issue,
        approver: &str,
        clone_url: &Option<String>,
    ) -> Result<WebhookAnswer, ApiError> {
        let Some((_, playbook)) = self.routed(issue) else {
            return Ok(WebhookAnswer::ignored(
                "approved, but no routed label on the issue",
            ));
        };
        let playbook = playbook.to_string();
        if !self.can_write(repo, approver).await? {
            return Ok(WebhookAnswer::ignored(format!(
                "{approver} cannot write to {repo}, so cannot approve"
            )));
        }
        self.start(repo, issue, &playbook, clone_url).await
    }

    /// Starts the routed playbook on the issue, once: the task id is derived from the
    /// repository, issue and playbook, so a repeat names the same task.
    async fn start(
        &self,
        repo: &str,
        issue: &Issue,
        playbook: &str,
        clone_url: &Option<String>,
    ) -> Result<WebhookAnswer, ApiError> {
        let dir = &self.state.playbooks_dir;
        let content = playbook_files::read(dir, playbook).await?;
        let parsed = Playbook::parse(&playbook_files::file_name(playbook), &content)
            .map_err(playbook_error)?;
        let Some(input) = parsed
            .triggers
            .github
            .as_ref()
            .and_then(|g| g.input.clone())
        else {
            return Ok(WebhookAnswer::ignored(format!(
                "playbook {playbook} names no triggers.github.input to receive the issue"
            )));
        };
        let inputs = BTreeMap::from([(input, InputValue::String(quoted_issue(repo, issue)))]);
        let resolved = parsed.resolve(&content, &inputs).map_err(playbook_error)?;
        let remote = self
            .settings
            .repos
            .get(repo)
            .cloned()
            .or_else(|| clone_url.clone())
            .ok_or_else(|| ApiError::invalid("repository", format!("no remote for {repo}")))?;
        let id =
            task_id::from_idempotency_key(&format!("github:{repo}#{}:{playbook}", issue.number));
        let request = PlaybookRunRequest {
            repo: remote,
            base: None,
            inputs,
            // The issue's author asked, whoever approved: they cannot approve the result.
            requester: Some(issue.user.login.clone()),
            agent: None,
            max_rounds: None,
            time_budget_secs: None,
            review_timeout_secs: None,
            max_dollars: None,
            max_tokens: None,
        };
        let spec = playbook_task_spec(id.clone(), request, resolved)?;
        trigger::admit_and_start(self.state, spec).await?;
        // Where the reporter writes back (`github::reporter`). Recorded after the start and
        // before the delivery: a failure here answers 5xx and GitHub's redelivery records it.
        let origin = store::TaskOrigin {
            task_id: id.clone(),
            repo: repo.to_string(),
            issue_number: issue.number,
            issue_title: issue.title.clone(),
            playbook: playbook.to_string(),
        };
        self.store().record_task_origin(&origin).await?;
        tracing::info!(task_id = %id, %repo, issue = issue.number, playbook, "GitHub issue started a task");
        Ok(WebhookAnswer::new(
            "started",
            Some(id),
            format!("{playbook} on {repo}#{}", issue.number),
        ))
    }

    async fn issue_comment(&self, event: IssueCommentEvent) -> Result<WebhookAnswer, ApiError> {
        let repo = repo_name(&event.repository.full_name)?;
        if event.action != "created" {
            return Ok(WebhookAnswer::ignored("only new comments are read"));
        }
        let author = &event.comment.user.login;
        if event.issue.pull_request.is_none() {
            if is_approve_command(&event.comment.body) {
                return self
                    .approval(repo, &event.issue, author, &event.repository.clone_url)
                    .await;
            }
            return Ok(WebhookAnswer::ignored("a comment without a command"));
        }
        let Some(task_id) = self
            .store()
            .pull_request_task(repo, event.issue.number)
            .await?
        else {
            return Ok(WebhookAnswer::ignored(
                "not a pull request of an Errand task",
            ));
        };
        self.followup(repo, &task_id, author, &event.comment.body)
            .await
    }

    /// A comment for the task's next round, if it asks the bot and its author may write.
    async fn followup(
        &self,
        repo: &str,
        task_id: &str,
        author: &str,
        body: &str,
    ) -> Result<WebhookAnswer, ApiError> {
        if !mentions(body, &self.settings.bot_login) {
            return Ok(WebhookAnswer::ignored(
                "the comment does not mention the bot",
            ));
        }
        if !self.can_write(repo, author).await? {
            return Ok(WebhookAnswer::ignored(format!(
                "{author} cannot write to {repo}; their comment is not a follow-up"
            )));
        }
        let followup = store::Followup {
            task_id: task_id.to_string(),
            delivery_id: self.id.to_string(),
            author: author.to_string(),
            body: body.to_string(),
        };
        self.store().record_followup(&followup).await?;
        // Delivered on every attempt (a redelivery after a failed signal must reach the task);
        // the delivery id as request id makes a repeat a no-op for Temporal.
        let message = Followup {
            author: followup.author,
            body: followup.body,
            source: Some(format!("GitHub comment on {repo}")),
        };
        let detail = if temporal::followup(&self.state.client, task_id, message, self.id).await? {
            "delivered to the task's next round"
        } else {
            "recorded; the task has ended and takes no more rounds"
        };
        Ok(WebhookAnswer::new(
            "followup",
            Some(task_id.to_string()),
            detail,
        ))
    }

    async fn pull_request(&self, event: PullRequestEvent) -> Result<WebhookAnswer, ApiError> {
        let repo = repo_name(&event.repository.full_name)?;
        let Some(task_id) = task_of_branch(&event.pull_request.head.ref_name) else {
            return Ok(WebhookAnswer::ignored("not a task branch"));
        };
        if self.store().task(task_id).await?.is_none() {
            return Ok(WebhookAnswer::ignored(format!("no task {task_id}")));
        }
        self.store()
            .map_pull_request(repo, event.pull_request.number, task_id)
            .await?;
        Ok(WebhookAnswer::new(
            "mapped",
            Some(task_id.to_string()),
            format!("{repo}#{} is the task's PR", event.pull_request.number),
        ))
    }

    async fn review(&self, event: PullRequestReviewEvent) -> Result<WebhookAnswer, ApiError> {
        let repo = repo_name(&event.repository.full_name)?;
        if event.action != "submitted" {
            return Ok(WebhookAnswer::ignored("only submitted reviews are read"));
        }
        let pr = &event.pull_request;
        let task_id = match task_of_branch(&pr.head.ref_name) {
            Some(id) => Some(id.to_string()),
            None => self.store().pull_request_task(repo, pr.number).await?,
        };
        let Some(task_id) = task_id else {
            return Ok(WebhookAnswer::ignored(
                "not a pull request of an Errand task",
            ));
        };
        let reviewer = &event.review.user.login;
        let body = event.review.body.clone().filter(|b| !b.trim().is_empty());
        let verdict = match event.review.state.to_ascii_lowercase().as_str() {
            "approved" => ReviewVerdict::Approve,
            "changes_requested" => ReviewVerdict::RequestChanges,
            _ => {
                return match body {
                    Some(body) => self.followup(repo, &task_id, reviewer, &body).await,
                    None => Ok(WebhookAnswer::ignored("a review without a verdict")),
                };
            }
        };
        // GitHub lets anyone review a public PR; only writers decide.
        if !self.can_write(repo, reviewer).await? {
            return Ok(WebhookAnswer::ignored(format!(
                "{reviewer} cannot write to {repo}; their review decides nothing"
            )));
        }
        let comment = match verdict {
            ReviewVerdict::RequestChanges => Some(body.unwrap_or_else(|| {
                format!("{reviewer} requested changes on GitHub without a comment")
            })),
            _ => body,
        };
        let decision = ReviewDecision {
            decision: verdict,
            reviewer: reviewer.clone(),
            comment,
        };
        self.decide(&task_id, decision).await
    }

    /// The same path as `POST /v1/tasks/{id}/review`: the gate's rules against the stored
    /// task, then the workflow's update. A decision the gate cannot take is answered, not
    /// retried: GitHub would only redeliver the same refusal.
    async fn decide(
        &self,
        task_id: &str,
        decision: ReviewDecision,
    ) -> Result<WebhookAnswer, ApiError> {
        let Some(record) = self.store().task(task_id).await? else {
            return Ok(WebhookAnswer::ignored(format!("no task {task_id}")));
        };
        let verdict = decision.decision.as_str();
        if let Err(rejection) = decision.check(record.task.status, &record.task.requester) {
            let err = review_error(rejection);
            return Ok(WebhookAnswer::new(
                "ignored",
                Some(task_id.to_string()),
                err.message,
            ));
        }
        match temporal::review(&self.state.client, task_id, decision).await {
            Ok(_) => Ok(WebhookAnswer::new(
                "decision",
                Some(task_id.to_string()),
                verdict,
            )),
            Err(err) if err.status.is_client_error() => Ok(WebhookAnswer::new(
                "ignored",
                Some(task_id.to_string()),
                err.message,
            )),
            Err(err) => Err(err),
        }
    }

    fn store(&self) -> &store::Store {
        &self.state.store
    }
}
