//! Admission rules, as pure functions: a trigger's request becomes a [`TaskSpec`] or a 4xx that
//! names the field at fault. Nothing here does IO; the repository's reachability is checked
//! separately ([`crate::repo_check`]).

use axum::http::StatusCode;
use store::PeriodSpent;
use workflows::budget;
use workflows::cost::MicroDollars;
use workflows::playbook::{Dollars, PlaybookError, Positive, Resolved};
use workflows::policy::Policy;
use workflows::task::{DEFAULT_REVIEW_TIMEOUT_SECS, ReviewRejection};
use workflows::{AgentSpec, TaskSpec, TaskStatus};

use crate::dto::{PlaybookRunRequest, TaskRequest};
use crate::error::ApiError;

pub const DEFAULT_BASE: &str = "main";
pub const DEFAULT_MAX_ROUNDS: u32 = 3;
pub const DEFAULT_TIME_BUDGET_SECS: u64 = 600;
pub const DEFAULT_REQUESTER: &str = "anonymous";

/// Upper bounds that keep the workflow's deadline arithmetic far from overflow.
pub const MAX_ROUNDS: u32 = 100;
pub const MAX_TIME_BUDGET_SECS: u64 = 24 * 3600;
pub const MAX_REVIEW_TIMEOUT_SECS: u64 = 365 * 24 * 3600;
pub const MAX_CHECKS: usize = 100;
const MAX_REPO_LEN: usize = 2048;
const MAX_BRANCH_LEN: usize = 255;
const MAX_PLAYBOOK_NAME_LEN: usize = 64;

/// The spec of an ad-hoc task (`POST /v1/tasks`), with the defaults filled in.
pub fn task_spec(id: String, request: TaskRequest) -> Result<TaskSpec, ApiError> {
    let (max_dollars, max_tokens) =
        task_budget(request.max_dollars, request.max_tokens, None, None)?;
    let repo = repo(&request.repo)?;
    let base = base(request.base.as_deref())?;
    if request.instructions.trim().is_empty() {
        return Err(ApiError::invalid(
            "instructions",
            "instructions must not be empty",
        ));
    }
    checks(&request.checks, "checks")?;
    agent(&request.agent, "agent")?;
    let max_rounds = bounded(
        "max_rounds",
        request.max_rounds.unwrap_or(DEFAULT_MAX_ROUNDS),
        MAX_ROUNDS,
    )?;
    let time_budget_secs = bounded(
        "time_budget_secs",
        request.time_budget_secs.unwrap_or(DEFAULT_TIME_BUDGET_SECS),
        MAX_TIME_BUDGET_SECS,
    )?;
    Ok(TaskSpec {
        id,
        repo,
        base,
        instructions: request.instructions,
        checks: request.checks,
        agent: request.agent,
        max_rounds,
        time_budget_secs,
        requester: requester(request.requester.as_deref())?,
        playbook: None,
        review_timeout_secs: review_timeout(request.review_timeout_secs)?,
        policy: Policy {
            max_dollars,
            max_tokens,
            ..Policy::default()
        },
    })
}

/// The task's own cost budget: the request's dollars and tokens, which may only lower the
/// playbook's caps (`budget.dollars`, `budget.tokens`), never raise them.
pub fn task_budget(
    max_dollars: Option<f64>,
    max_tokens: Option<u64>,
    cap_dollars: Option<Dollars>,
    cap_tokens: Option<Positive<u64>>,
) -> Result<(Option<Dollars>, Option<Positive<u64>>), ApiError> {
    if let Some(d) = max_dollars
        && !(d.is_finite() && d > 0.0 && MicroDollars::from_dollars(d) > MicroDollars::ZERO)
    {
        return Err(ApiError::invalid(
            "max_dollars",
            format!("max_dollars must be an amount of at least $0.000001, not {d}"),
        ));
    }
    if max_tokens == Some(0) {
        return Err(ApiError::invalid(
            "max_tokens",
            "max_tokens must be at least 1",
        ));
    }
    let dollars = budget::lowered(cap_dollars.map(|d| d.0), max_dollars).map_err(|cap| {
        ApiError::invalid(
            "max_dollars",
            format!(
                "max_dollars may only lower the playbook's budget.dollars ({cap}), not raise it to {}",
                max_dollars.unwrap_or_default()
            ),
        )
    })?;
    let tokens = budget::lowered(cap_tokens.map(|t| t.get()), max_tokens).map_err(|cap| {
        ApiError::invalid(
            "max_tokens",
            format!(
                "max_tokens may only lower the playbook's budget.tokens ({cap}), not raise it to {}",
                max_tokens.unwrap_or_default()
            ),
        )
    })?;
    Ok((dollars.map(Dollars), tokens.map(Positive)))
}

/// A task refused because a period budget of its scope is spent: 402, naming the budget.
pub fn period_budget_spent(spent: &PeriodSpent) -> ApiError {
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        "budget_exhausted",
        format!(
            "cannot admit the task ({}): {}",
            spent.budget_name(),
            spent.message()
        ),
    )
}

/// The spec of a playbook run (`POST /v1/playbooks/{name}/runs`): the playbook's resolved
/// procedure, checks, budget and policy; the request may only tighten the budget (and the
/// review timeout, when the playbook sets one).
pub fn playbook_task_spec(
    id: String,
    request: PlaybookRunRequest,
    resolved: Resolved,
) -> Result<TaskSpec, ApiError> {
    let repo = repo(&request.repo)?;
    let base = base(request.base.as_deref())?;
    let name = &resolved.playbook.name;
    let agent_spec = match (request.agent, resolved.agent) {
        (Some(requested), _) => {
            agent(&requested, "agent")?;
            requested
        }
        (None, Some(from_playbook)) => {
            agent(&from_playbook, "agent")?;
            from_playbook
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "agent",
                format!("playbook {name} names no agent: give one in the request's agent"),
            ));
        }
    };
    checks(&resolved.checks, "verification.checks")?;
    let mut policy = resolved.policy;
    (policy.max_dollars, policy.max_tokens) = task_budget(
        request.max_dollars,
        request.max_tokens,
        policy.max_dollars,
        policy.max_tokens,
    )?;
    let max_rounds = lowered(
        "max_rounds",
        request.max_rounds,
        resolved.max_rounds,
        "budget.max_rounds",
    )?;
    let time_budget_secs = lowered(
        "time_budget_secs",
        request.time_budget_secs,
        resolved.time_budget_secs,
        "budget.time_per_round_secs",
    )?;
    Ok(TaskSpec {
        id,
        repo,
        base,
        instructions: resolved.instructions,
        checks: resolved.checks,
        agent: agent_spec,
        max_rounds: bounded("max_rounds", max_rounds, MAX_ROUNDS)?,
        time_budget_secs: bounded("time_budget_secs", time_budget_secs, MAX_TIME_BUDGET_SECS)?,
        requester: requester(request.requester.as_deref())?,
        playbook: Some(resolved.playbook),
        review_timeout_secs: match resolved.review_timeout_secs {
            Some(playbook) => bounded(
                "review_timeout_secs",
                lowered(
                    "review_timeout_secs",
                    request.review_timeout_secs,
                    playbook,
                    "review.timeout_secs",
                )?,
                MAX_REVIEW_TIMEOUT_SECS,
            )?,
            None => review_timeout(request.review_timeout_secs)?,
        },
        policy,
    })
}

/// A playbook that cannot be parsed or resolved against the run's inputs, as a 422.
pub fn playbook_error(err: PlaybookError) -> ApiError {
    let message = err.to_string();
    match err {
        PlaybookError::UnknownInput(input)
        | PlaybookError::MissingInput(input)
        | PlaybookError::BadInput { input, .. } => {
            ApiError::invalid(format!("inputs.{input}"), message)
        }
        PlaybookError::Invalid { .. } | PlaybookError::Parse { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_playbook",
            message,
        ),
    }
}

/// A request value that may only lower the playbook's (`what` names the playbook's field).
pub fn lowered<T>(field: &str, requested: Option<T>, playbook: T, what: &str) -> Result<T, ApiError>
where
    T: Copy + PartialOrd + From<u8> + std::fmt::Display,
{
    match requested {
        None => Ok(playbook),
        Some(value) if value < T::from(1) => Err(ApiError::invalid(
            field,
            format!("{field} must be at least 1"),
        )),
        Some(value) if value > playbook => Err(ApiError::invalid(
            field,
            format!(
                "{field} may only lower the playbook's {what} ({playbook}), not raise it to {value}"
            ),
        )),
        Some(value) => Ok(value),
    }
}

fn bounded<T>(field: &str, value: T, max: T) -> Result<T, ApiError>
where
    T: Copy + PartialOrd + From<u8> + std::fmt::Display,
{
    if value < T::from(1) || value > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be between 1 and {max}, not {value}"),
        ));
    }
    Ok(value)
}

fn review_timeout(requested: Option<u64>) -> Result<u64, ApiError> {
    bounded(
        "review_timeout_secs",
        requested.unwrap_or(DEFAULT_REVIEW_TIMEOUT_SECS),
        MAX_REVIEW_TIMEOUT_SECS,
    )
}

fn requester(requested: Option<&str>) -> Result<String, ApiError> {
    let Some(requester) = requested else {
        return Ok(DEFAULT_REQUESTER.to_string());
    };
    let requester = requester.trim();
    if requester.is_empty() {
        return Err(ApiError::invalid(
            "requester",
            "requester must not be blank; leave it out for anonymous",
        ));
    }
    if requester.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "requester",
            "requester must not contain control characters",
        ));
    }
    Ok(requester.to_string())
}

fn checks(checks: &[String], field: &str) -> Result<(), ApiError> {
    if checks.is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} needs at least one command"),
        ));
    }
    if checks.len() > MAX_CHECKS {
        return Err(ApiError::invalid(
            field,
            format!(
                "{field} has {} commands; at most {MAX_CHECKS}",
                checks.len()
            ),
        ));
    }
    if let Some(i) = checks.iter().position(|c| c.trim().is_empty()) {
        return Err(ApiError::invalid(
            format!("{field}[{i}]"),
            format!("{field}[{i}] must not be blank"),
        ));
    }
    Ok(())
}

fn agent(agent: &AgentSpec, field: &str) -> Result<(), ApiError> {
    if let AgentSpec::Command { command } = agent {
        return match command.first() {
            None => Err(ApiError::invalid(
                format!("{field}.command"),
                format!("{field}.command needs at least the program to run"),
            )),
            Some(program) if program.trim().is_empty() => Err(ApiError::invalid(
                format!("{field}.command[0]"),
                format!("{field}.command[0] must name a program"),
            )),
            Some(_) => Ok(()),
        };
    }
    // The other adapters' settings are checked by the same rules as a playbook's.
    match agent.problems().into_iter().next() {
        Some((name, message)) => Err(ApiError::invalid(
            format!("{field}.{name}"),
            format!("{field}.{name}: {message}"),
        )),
        None => Ok(()),
    }
}

/// The repository as given, trimmed; it must not look like an option to git.
pub fn repo(repo: &str) -> Result<String, ApiError> {
    let repo = repo.trim();
    let invalid = |message: &str| ApiError::invalid("repo", message);
    if repo.is_empty() {
        return Err(invalid("repo must not be empty"));
    }
    if repo.len() > MAX_REPO_LEN {
        return Err(invalid("repo is longer than 2048 bytes"));
    }
    if repo.starts_with('-') {
        return Err(invalid("repo must not start with '-'"));
    }
    if repo.chars().any(char::is_control) {
        return Err(invalid("repo must not contain control characters"));
    }
    Ok(repo.to_string())
}

/// The base branch, `main` when absent; it must be a valid branch name.
pub fn base(base: Option<&str>) -> Result<String, ApiError> {
    let Some(base) = base else {
        return Ok(DEFAULT_BASE.to_string());
    };
    let base = base.trim();
    check_branch_name(base)
        .map_err(|why| ApiError::invalid("base", format!("base {base:?} {why}")))?;
    Ok(base.to_string())
}

/// git's rules for a branch name (`git check-ref-format --branch`), as the reason it breaks
/// one. Also keeps the name free of the glob characters `git ls-remote` would expand.
pub fn check_branch_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > MAX_BRANCH_LEN {
        return Err("is longer than 255 bytes");
    }
    if name == "@" {
        return Err("is not a branch name");
    }
    if name.starts_with('-') {
        return Err("must not start with '-'");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("must not start or end with '/' or contain '//'");
    }
    if name.ends_with('.') {
        return Err("must not end with '.'");
    }
    if name.contains("..") || name.contains("@{") {
        return Err("must not contain '..' or '@{'");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return Err("must not contain spaces, control characters or any of ~ ^ : ? * [ \\");
    }
    if name
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return Err("must not have a part starting with '.' or ending with '.lock'");
    }
    Ok(())
}

/// `[a-z0-9-]+`: a playbook's name is also its file name, so nothing else may reach the path.
pub fn check_playbook_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_PLAYBOOK_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_parameter(
            "name",
            format!("playbook name {name:?} is not valid: expected 1 to 64 of a-z, 0-9 and '-'"),
        ))
    }
}

/// A `status` filter: one of the task statuses, by its snake_case name.
pub fn parse_status(status: &str) -> Result<TaskStatus, ApiError> {
    TaskStatus::parse(status).ok_or_else(|| {
        let known: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_parameter(
            "status",
            format!(
                "unknown status {status:?}: expected one of {}",
                known.join(", ")
            ),
        )
    })
}

pub const DEFAULT_LIST_LIMIT: u64 = 50;
pub const MAX_LIST_LIMIT: u64 = 500;

/// A listing's `limit`: 50 when absent, a whole number from 1 to 500 otherwise.
pub fn list_limit(limit: Option<&str>) -> Result<u64, ApiError> {
    let Some(text) = limit else {
        return Ok(DEFAULT_LIST_LIMIT);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_parameter(
            "limit",
            format!("limit must be a whole number from 1 to {MAX_LIST_LIMIT}, not {text:?}"),
        )),
    }
}

/// The HTTP answer to a decision the gate's rules refuse.
pub fn review_error(err: ReviewRejection) -> ApiError {
    let message = err.to_string();
    match err {
        ReviewRejection::NotAwaitingReview(status) => ApiError::new(
            StatusCode::CONFLICT,
            "not_awaiting_review",
            format!("task is not awaiting review: it is {status}"),
        ),
        ReviewRejection::SelfReview(_) => {
            ApiError::new(StatusCode::FORBIDDEN, "self_review", message).with_field("reviewer")
        }
        ReviewRejection::NoReviewer => ApiError::invalid("reviewer", message),
        ReviewRejection::NoComment => ApiError::invalid("comment", message),
    }
}
