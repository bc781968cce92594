//! The GitHub reporter: writes back on the issues that started tasks. For each task the
//! webhook started from an issue (its `TaskOrigin` in the store) it comments once that the task
//! started (with the task's link), opens the task's PR once the task awaits review (head the
//! task branch, base the task's base, title the issue's, body the report), and when the task
//! ends, replaces the PR's body with the final report and comments the report on the issue.
//!
//! It follows the store only (statuses and the review request), never the workflow, and is
//! durable without state of its own, like the schedule watcher:
//!
//! - every write is recorded in the store (`github_writes`: kind and GitHub's id), and the
//!   task is marked done only once all its writes are recorded;
//! - before writing, it looks at what GitHub has: the issue's comments for the write's hidden
//!   marker (`<!-- errand:<task>:<kind> -->`, in a comment of the bot's login), the branch's
//!   PRs by `head`; so a crash between GitHub's answer and the store's record, or a failed
//!   call retried on the next pass, never writes twice;
//! - a task is claimed in the store for a while before its writes, so two API replicas never
//!   write for the same task at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use store::{GithubWriteKind, Store, StoreError, TaskOrigin, TaskRecord};
use workflows::TaskStatus;

use super::client::{self, Client, MAX_BODY_CHARS, NewPullRequest};
use super::settings::GithubSettings;

/// How often the reporter looks; a status change reaches GitHub within about this long.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// A claim on a task's write-back lasts this long (a pass takes a few calls of at most 10 s
/// each); a replica that died holding one is replaced after it.
pub const CLAIM_LEASE: Duration = Duration::from_secs(120);
/// Tasks read from the store at once; a pass reads every page.
const PAGE: u64 = 200;

/// What a write-back failed on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Github(#[from] client::Error),
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassOutcome {
    /// (task, kind, GitHub id) of each write recorded in this pass, found or created.
    pub recorded: Vec<(String, GithubWriteKind, u64)>,
    /// The tasks whose write-back is complete since this pass.
    pub done: Vec<String>,
    /// (task, error) of the tasks whose write-back failed; the next pass tries again.
    pub failed: Vec<(String, String)>,
}

pub struct Reporter {
    store: Store,
    settings: Arc<GithubSettings>,
    github: Client,
    /// This reporter's name in the store's claims.
    holder: String,
    /// The last failure logged per task, so a lasting one is logged once at warn level.
    failures: HashMap<String, String>,
}

/// Starts the reporter on the runtime when `[github]` has write-back on and a token; it runs
/// as long as the process.
pub fn spawn(store: Store, settings: Arc<GithubSettings>) -> Option<tokio::task::JoinHandle<()>> {
    if !settings.write_back {
        tracing::info!("GitHub write-back is off ([github] write_back = false)");
        return None;
    }
    let Some(token) = settings.token() else {
        tracing::warn!(
            variable = settings.token_env.as_deref().unwrap_or("(token_env unset)"),
            "no GitHub token: Errand does not comment on issues or open PRs"
        );
        return None;
    };
    if settings.public_url.is_none() {
        tracing::warn!("[github] public_url is unset: comments name tasks without a link");
    }
    let mut reporter = Reporter::new(store, settings, Some(token));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(REPORT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = reporter.pass().await {
                tracing::debug!(error = %crate::error::chain(&err), "GitHub write-back pass failed");
            }
        }
    }))
}

impl Reporter {
    pub fn new(store: Store, settings: Arc<GithubSettings>, token: Option<String>) -> Self {
        let github = Client::new(&settings.api_url, token);
        Self {
            store,
            settings,
            github,
            holder: format!("reporter-{}", uuid::Uuid::new_v4().simple()),
            failures: HashMap::new(),
        }
    }

    /// One look at every task not done: what it needs written is written, at most once.
    /// A task that fails is left for the next pass; only reading the list fails the pass.
    pub async fn pass(&mut self) -> Result<PassOutcome, StoreError> {
        let mut outcome = PassOutcome::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .pending_task_origins(after.as_deref(), PAGE)
                .await?;
            let last_page = (page.len() as u64) < PAGE;
            after = page.last().map(|origin| origin.task_id.clone());
            for origin in page {
                self.visit(&origin, &mut outcome).await;
            }
            if last_page {
                return Ok(outcome);
            }
        }
    }

    /// Claims the task and writes what it needs, if it needs anything: a task with nothing
    /// to write (awaiting review with its PR open) costs two reads and no write.
    async fn visit(&mut self, origin: &TaskOrigin, outcome: &mut PassOutcome) {
        let task_id = origin.task_id.clone();
        match self.due(&task_id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => return self.failed(&task_id, &err, outcome),
        }
        match self
            .store
            .claim_task_origin(&task_id, &self.holder, CLAIM_LEASE)
            .await
        {
            Ok(true) => {}
            // Another replica writes for it now, or it was done meanwhile.
            Ok(false) => return,
            Err(err) => return self.failed(&task_id, &err.into(), outcome),
        }
        let result = self.follow(origin, outcome).await;
        let released = self.store.release_task_origin(&task_id, &self.holder).await;
        match result.and_then(|done| released.map(|_| done).map_err(Error::from)) {
            Ok(done) => {
                self.failures.remove(&task_id);
                if done {
                    tracing::info!(task_id = %task_id, repo = %origin.repo, issue = origin.issue_number, "GitHub write-back complete");
                    outcome.done.push(task_id);
                }
            }
            Err(err) => self.failed(&task_id, &err, outcome),
        }
    }

    fn failed(&mut self, task_id: &str, err: &Error, outcome: &mut PassOutcome) {
        let message = crate::error::chain(err);
        if self.failures.get(task_id) != Some(&message) {
            tracing::warn!(task_id = %task_id, error = %message, "GitHub write-back failed; retrying on the next pass");
        } else {
            tracing::debug!(task_id = %task_id, error = %message, "GitHub write-back failed again");
        }
        self.failures.insert(task_id.to_string(), message.clone());
        outcome.failed.push((task_id.to_string(), message));
    }

    /// Whether the task needs a write (or, ended, to be marked done), from the store alone.
    async fn due(&self, task_id: &str) -> Result<bool, Error> {
        let Some(record) = self.store.task(task_id).await? else {
            return Ok(false);
        };
        let writes: Vec<GithubWriteKind> = self
            .store
            .github_writes(task_id)
            .await?
            .into_iter()
            .map(|w| w.kind)
            .collect();
        let status = record.task.status;
        Ok(!writes.contains(&GithubWriteKind::Acknowledgement)
            || (wants_pr(&record) && !writes.contains(&GithubWriteKind::PullRequest))
            || status.is_final())
    }

    /// Writes what the task needs now; true once everything is written and the origin done.
    async fn follow(&self, origin: &TaskOrigin, outcome: &mut PassOutcome) -> Result<bool, Error> {
        let task_id = origin.task_id.as_str();
        let Some(record) = self.store.task(task_id).await? else {
            return Ok(false);
        };
        let mut writes: BTreeMap<GithubWriteKind, u64> = self
            .store
            .github_writes(task_id)
            .await?
            .into_iter()
            .map(|w| (w.kind, w.github_id))
            .collect();

        if !writes.contains_key(&GithubWriteKind::Acknowledgement) {
            let body = self.acknowledgement(origin);
            let id = self
                .comment_once(origin, GithubWriteKind::Acknowledgement, &body)
                .await?;
            self.record(
                task_id,
                GithubWriteKind::Acknowledgement,
                id,
                &mut writes,
                outcome,
            )
            .await?;
        }

        let status = record.task.status;
        if wants_pr(&record) && !writes.contains_key(&GithubWriteKind::PullRequest) {
            let number = self.open_pull_request(origin, &record).await?;
            self.record(
                task_id,
                GithubWriteKind::PullRequest,
                number,
                &mut writes,
                outcome,
            )
            .await?;
            if status.is_final() {
                // Opened with the final report already.
                self.record(
                    task_id,
                    GithubWriteKind::PullRequestBody,
                    number,
                    &mut writes,
                    outcome,
                )
                .await?;
            }
        }

        if !status.is_final() {
            return Ok(false);
        }
        if let Some(&number) = writes.get(&GithubWriteKind::PullRequest)
            && !writes.contains_key(&GithubWriteKind::PullRequestBody)
        {
            // Replacing a body is idempotent: no look-up needed.
            let body = self.pull_request_body(origin, &record);
            self.github
                .update_pull_request_body(&origin.repo, number, &body)
                .await?;
            self.record(
                task_id,
                GithubWriteKind::PullRequestBody,
                number,
                &mut writes,
                outcome,
            )
            .await?;
        }
        if !writes.contains_key(&GithubWriteKind::FinalReport) {
            let body = self.final_report(&record);
            let id = self
                .comment_once(origin, GithubWriteKind::FinalReport, &body)
                .await?;
            self.record(
                task_id,
                GithubWriteKind::FinalReport,
                id,
                &mut writes,
                outcome,
            )
            .await?;
        }
        self.store.finish_task_origin(task_id).await?;
        Ok(true)
    }

    async fn record(
        &self,
        task_id: &str,
        kind: GithubWriteKind,
        id: u64,
        writes: &mut BTreeMap<GithubWriteKind, u64>,
        outcome: &mut PassOutcome,
    ) -> Result<(), Error> {
        self.store.record_github_write(task_id, kind, id).await?;
        writes.insert(kind, id);
        outcome.recorded.push((task_id.to_string(), kind, id));
        Ok(())
    }

    /// The id of the issue comment of this kind: the one GitHub has (a write whose record
    /// was lost), else a new one.
    async fn comment_once(
        &self,
        origin: &TaskOrigin,
        kind: GithubWriteKind,
        body: &str,
    ) -> Result<u64, Error> {
        let marker = marker(&origin.task_id, kind);
        let existing = self
            .github
            .issue_comments(&origin.repo, origin.issue_number)
            .await?
            .into_iter()
            .find(|comment| {
                comment.body.as_deref().is_some_and(|b| b.contains(&marker))
                    && comment
                        .user
                        .as_ref()
                        .is_some_and(|user| self.is_bot(&user.login))
            });
        if let Some(comment) = existing {
            tracing::info!(task_id = %origin.task_id, kind = kind.as_str(), comment = comment.id, "found the comment on GitHub; recording it");
            return Ok(comment.id);
        }
        let comment = self
            .github
            .create_issue_comment(&origin.repo, origin.issue_number, body)
            .await?;
        tracing::info!(task_id = %origin.task_id, kind = kind.as_str(), comment = comment.id, repo = %origin.repo, issue = origin.issue_number, "commented on the issue");
        Ok(comment.id)
    }

    /// The number of the task branch's PR: the one GitHub has (any state), else a new one.
    async fn open_pull_request(
        &self,
        origin: &TaskOrigin,
        record: &TaskRecord,
    ) -> Result<u64, Error> {
        let task = &record.task;
        let branch = record
            .review
            .as_ref()
            .map_or(task.branch.as_str(), |review| review.branch.as_str());
        let find = async || -> Result<Option<u64>, Error> {
            Ok(self
                .github
                .pull_requests_by_head(&origin.repo, branch)
                .await?
                .into_iter()
                .find(|pr| pr.head.ref_name == branch)
                .map(|pr| pr.number))
        };
        let number = match find().await? {
            Some(number) => number,
            None => {
                let new = NewPullRequest {
                    title: client::cap(&origin.issue_title, 256),
                    head: branch.to_string(),
                    base: task.base.clone(),
                    body: self.pull_request_body(origin, record),
                    maintainer_can_modify: true,
                };
                match self.github.create_pull_request(&origin.repo, &new).await {
                    Ok(pr) => {
                        tracing::info!(task_id = %task.id, repo = %origin.repo, pr = pr.number, "opened the task's PR");
                        pr.number
                    }
                    // Opened meanwhile (by a person, or a create whose answer was lost).
                    Err(err) if err.status() == Some(422) => match find().await? {
                        Some(number) => number,
                        None => return Err(err.into()),
                    },
                    Err(err) => return Err(err.into()),
                }
            }
        };
        self.store
            .map_pull_request(&origin.repo, number, &task.id)
            .await?;
        Ok(number)
    }

    fn is_bot(&self, login: &str) -> bool {
        let bot = self.settings.bot_login.as_str();
        login.eq_ignore_ascii_case(bot)
            || login
                .strip_suffix("[bot]")
                .is_some_and(|name| name.eq_ignore_ascii_case(bot))
    }

    fn task_ref(&self, task_id: &str) -> String {
        match self.settings.task_link(task_id) {
            Some(link) => format!("[`{task_id}`]({link})"),
            None => format!("`{task_id}`"),
        }
    }

    fn acknowledgement(&self, origin: &TaskOrigin) -> String {
        let body = format!(
            "Errand started task {} (playbook `{}`) for this issue. It will comment here with \
             its report when the task ends{}.",
            self.task_ref(&origin.task_id),
            origin.playbook,
            if self.settings.public_url.is_some() {
                "; follow it at the link"
            } else {
                ""
            },
        );
        with_marker(&body, "", &origin.task_id, GithubWriteKind::Acknowledgement)
    }

    /// The PR's body: the report of the review request while the review is open, the final
    /// report once the task ended.
    fn pull_request_body(&self, origin: &TaskOrigin, record: &TaskRecord) -> String {
        let report = if record.task.status.is_final() {
            final_text(record)
        } else {
            record
                .review
                .as_ref()
                .map(|review| review.body.clone())
                .unwrap_or_default()
        };
        let head = format!(
            "Opened by Errand for #{}: task {}.\n\n",
            origin.issue_number,
            self.task_ref(&origin.task_id)
        );
        with_marker(
            &head,
            &report,
            &origin.task_id,
            GithubWriteKind::PullRequest,
        )
    }

    fn final_report(&self, record: &TaskRecord) -> String {
        let task = &record.task;
        let head = format!(
            "Errand's task {} ended **{}**{}.\n\n",
            self.task_ref(&task.id),
            task.status,
            task.reason
                .as_deref()
                .map(|r| format!(": {}", client::cap(r, 500)))
                .unwrap_or_default(),
        );
        with_marker(
            &head,
            &final_text(record),
            &task.id,
            GithubWriteKind::FinalReport,
        )
    }
}

/// A PR while the review gate is open; after it only for `approved` (a person merges the
/// branch). A merged, closed or stopped task gets no new PR.
fn wants_pr(record: &TaskRecord) -> bool {
    let status = record.task.status;
    record.review.is_some() && (!status.is_final() || status == TaskStatus::Approved)
}

/// The final report from the store, or what is known without one.
fn final_text(record: &TaskRecord) -> String {
    match &record.task.report {
        Some(report) if !report.trim().is_empty() => report.clone(),
        _ => format!("The task ended {} without a report.", record.task.status),
    }
}

/// The hidden marker of a write: how the reporter recognises its own comment on GitHub.
pub fn marker(task_id: &str, kind: GithubWriteKind) -> String {
    format!("<!-- errand:{task_id}:{} -->", kind.as_str())
}

const TRUNCATED: &str = "\n\n… (truncated to fit GitHub's limit; the full report is in Errand)";

/// `head`, then `report` cut so that the whole, with the marker, stays within GitHub's
/// 65536 characters, then the marker.
pub fn with_marker(head: &str, report: &str, task_id: &str, kind: GithubWriteKind) -> String {
    let marker = format!("\n\n{}", marker(task_id, kind));
    let fixed = head.chars().count() + marker.chars().count();
    let room = MAX_BODY_CHARS.saturating_sub(fixed);
    let report = if report.chars().count() <= room {
        report.to_string()
    } else {
        let keep = room.saturating_sub(TRUNCATED.chars().count());
        format!("{}{TRUNCATED}", client::cap(report, keep))
    };
    let head = client::cap(head, MAX_BODY_CHARS.saturating_sub(marker.chars().count()));
    format!("{head}{report}{marker}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_their_marker_within_githubs_limit() {
        let report = "é".repeat(100_000);
        let body = with_marker("head\n\n", &report, "t-1", GithubWriteKind::FinalReport);
        assert_eq!(body.chars().count(), MAX_BODY_CHARS);
        assert!(body.starts_with("head\n\n"));
        assert!(body.ends_with("<!-- errand:t-1:final_report -->"));
        assert!(body.contains("truncated"));

        let short = with_marker("head ", "report", "t-1", GithubWriteKind::Acknowledgement);
        assert_eq!(short, "head report\n\n<!-- errand:t-1:acknowledgement -->");
    }
}
