//! The client subcommands: `run`, `tasks`, `show`, `review`, `cancel`.

use anyhow::Context;
use serde_json::{Value, json};

use crate::api_client::ApiClient;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Git URL or path of the repository
    #[arg(long)]
    pub repo: String,
    /// Base branch
    #[arg(long, default_value = "main")]
    pub base: String,
    /// Run this playbook (see playbooks/) instead of ad-hoc instructions
    #[arg(long, conflicts_with = "instructions")]
    pub playbook: Option<String>,
    /// A playbook input, NAME=VALUE (repeatable)
    #[arg(long = "input", value_name = "NAME=VALUE", requires = "playbook")]
    pub inputs: Vec<String>,
    /// What the agent should do (ad-hoc task)
    #[arg(long, required_unless_present = "playbook")]
    pub instructions: Option<String>,
    /// A check command that must exit 0 (repeatable; ad-hoc task)
    #[arg(long = "check", value_name = "COMMAND")]
    pub checks: Vec<String>,
    /// Maximum number of rounds
    #[arg(long)]
    pub max_rounds: Option<u32>,
    /// Time budget of one agent run, in seconds
    #[arg(long)]
    pub time_budget_secs: Option<u64>,
    /// Who asks (they cannot approve their own task)
    #[arg(long, env = "USER", default_value = "anonymous")]
    pub requester: String,
    /// Same key, same task: retries never start a second one
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Most dollars the task may spend (at most the playbook's budget.dollars)
    #[arg(long)]
    pub max_dollars: Option<f64>,
    /// Most model tokens the task may use (at most the playbook's budget.tokens)
    #[arg(long)]
    pub max_tokens: Option<u64>,
    /// Print the budget, the cost estimate and the period budgets the run would have; start
    /// nothing
    #[arg(long, conflicts_with = "watch")]
    pub dry_run: bool,
    /// Follow the task until it reaches review or ends
    #[arg(long)]
    pub watch: bool,
    /// The agent program and its arguments (the `command` adapter)
    #[arg(last = true, value_name = "AGENT")]
    pub agent: Vec<String>,
}

pub async fn run(api: &ApiClient, args: RunArgs) -> anyhow::Result<()> {
    if args.dry_run {
        return crate::dry_run::dry_run(api, &args).await;
    }
    let agent = (!args.agent.is_empty()).then(|| json!({"kind": "command", "command": args.agent}));
    let (path, mut body) = match &args.playbook {
        Some(name) => {
            let mut inputs = serde_json::Map::new();
            for pair in &args.inputs {
                let (k, v) = pair
                    .split_once('=')
                    .with_context(|| format!("--input {pair:?}: expected NAME=VALUE"))?;
                inputs.insert(k.to_string(), Value::String(v.to_string()));
            }
            (
                format!("/v1/playbooks/{name}/runs"),
                json!({"repo": args.repo, "base": args.base, "inputs": inputs}),
            )
        }
        None => (
            "/v1/tasks".to_string(),
            json!({"repo": args.repo, "base": args.base, "instructions": args.instructions, "checks": args.checks}),
        ),
    };
    body["requester"] = json!(args.requester);
    if let Some(agent) = agent {
        body["agent"] = agent;
    }
    if let Some(n) = args.max_rounds {
        body["max_rounds"] = json!(n);
    }
    if let Some(n) = args.time_budget_secs {
        body["time_budget_secs"] = json!(n);
    }
    if let Some(d) = args.max_dollars {
        body["max_dollars"] = json!(d);
    }
    if let Some(n) = args.max_tokens {
        body["max_tokens"] = json!(n);
    }
    let answer = api
        .post(&path, &body, args.idempotency_key.as_deref())
        .await?;
    let id = answer["id"]
        .as_str()
        .context("the API answered without a task id")?
        .to_string();
    println!("task {id} {}", answer["status"].as_str().unwrap_or(""));
    if args.watch {
        let task = watch(api, &id, |s| s == "awaiting_review").await?;
        print_task(&task);
    }
    Ok(())
}

/// Shows the task's events and progress until `stop` holds or the task is final, then
/// returns the task as it is then.
pub async fn watch(
    api: &ApiClient,
    id: &str,
    stop: impl Fn(&str) -> bool,
) -> anyhow::Result<Value> {
    crate::follow::stream(api, id, true, stop).await?;
    api.get(&format!("/v1/tasks/{id}")).await
}

pub async fn tasks(api: &ApiClient, status: Option<String>) -> anyhow::Result<()> {
    let path = match status {
        Some(s) => format!("/v1/tasks?status={s}"),
        None => "/v1/tasks".to_string(),
    };
    let list = api.get(&path).await?;
    let tasks = list
        .as_array()
        .or_else(|| list["tasks"].as_array())
        .cloned()
        .unwrap_or_default();
    println!("{:<24} {:<16} {:>5}  REPO", "ID", "STATUS", "ROUND");
    for t in tasks {
        println!(
            "{:<24} {:<16} {:>5}  {}",
            t["id"].as_str().unwrap_or(""),
            t["status"].as_str().unwrap_or(""),
            t["round"],
            t["repo"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn show(api: &ApiClient, id: &str, as_json: bool) -> anyhow::Result<()> {
    let task = api.get(&format!("/v1/tasks/{id}")).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&task)?);
    } else {
        print_task(&task);
    }
    Ok(())
}

pub fn print_task(task: &Value) {
    println!("task    {}", task["id"].as_str().unwrap_or(""));
    println!(
        "status  {} (round {})",
        task["status"].as_str().unwrap_or(""),
        task["round"]
    );
    println!("branch  {}", task["branch"].as_str().unwrap_or(""));
    if let Some(reason) = task["reason"].as_str() {
        println!("reason  {reason}");
    }
    for round in task["rounds"].as_array().into_iter().flatten() {
        let checks = round["checks"].as_array().cloned().unwrap_or_default();
        let passed = checks.iter().filter(|c| c["passed"] == json!(true)).count();
        println!(
            "round {}: checks {passed}/{} passed",
            round["round"],
            checks.len()
        );
    }
    if let Some(ui) = task["temporal_ui"].as_str() {
        println!("history {ui}");
    }
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Verdict {
    /// Approve: the branch is merged into the base branch
    #[arg(long)]
    pub approve: bool,
    /// Ask for another round, with this comment as feedback
    #[arg(long, value_name = "COMMENT")]
    pub request_changes: Option<String>,
    /// Reject: the task is closed (the branch stays)
    #[arg(long)]
    pub reject: bool,
}

pub async fn review(
    api: &ApiClient,
    id: &str,
    verdict: Verdict,
    reviewer: &str,
    comment: Option<String>,
) -> anyhow::Result<()> {
    let (decision, comment) = match verdict {
        Verdict { approve: true, .. } => ("approve", comment),
        Verdict {
            request_changes: Some(c),
            ..
        } => ("request_changes", Some(c)),
        _ => ("reject", comment),
    };
    let body = json!({"decision": decision, "reviewer": reviewer, "comment": comment});
    let answer = api
        .post(&format!("/v1/tasks/{id}/review"), &body, None)
        .await?;
    println!(
        "task {id}: {decision} recorded; status {}",
        answer["status"].as_str().unwrap_or("")
    );
    Ok(())
}

pub async fn cancel(api: &ApiClient, id: &str) -> anyhow::Result<()> {
    let answer = api
        .post(&format!("/v1/tasks/{id}/cancel"), &json!({}), None)
        .await?;
    println!(
        "task {id}: cancel requested; status {}",
        answer["status"].as_str().unwrap_or("")
    );
    Ok(())
}
