//! `errand schedules list | show ID | pause ID | resume ID | trigger ID | delete ID`: the
//! API's cron schedules.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::api_client::ApiClient;

#[derive(Debug, clap::Subcommand)]
pub enum SchedulesCommand {
    /// List the schedules: cron, state, next run
    List,
    /// Show a schedule: next runs, recent runs and their tasks' outcomes
    Show {
        id: String,
        /// Print the API's JSON
        #[arg(long)]
        json: bool,
    },
    /// Pause a schedule
    Pause { id: String },
    /// Resume a schedule (failures towards its auto-pause are counted afresh)
    Resume { id: String },
    /// Fire a schedule now
    Trigger { id: String },
    /// Delete a schedule (tasks it started run on)
    Delete { id: String },
}

pub async fn run(api: &ApiClient, base: &str, command: SchedulesCommand) -> anyhow::Result<()> {
    match command {
        SchedulesCommand::List => list(api).await,
        SchedulesCommand::Show { id, json } => show(api, &id, json).await,
        SchedulesCommand::Pause { id } => act(api, &id, "pause", "paused").await,
        SchedulesCommand::Resume { id } => act(api, &id, "resume", "resumed").await,
        SchedulesCommand::Trigger { id } => act(api, &id, "trigger", "triggered").await,
        SchedulesCommand::Delete { id } => delete(base, &id).await,
    }
}

async fn list(api: &ApiClient) -> anyhow::Result<()> {
    let list = api.get("/v1/schedules").await?;
    println!(
        "{:<28} {:<16} {:<14} {:<8} NEXT RUN",
        "ID", "CRON", "ZONE", "STATE"
    );
    for s in list.as_array().into_iter().flatten() {
        println!(
            "{:<28} {:<16} {:<14} {:<8} {}",
            text(&s["id"]),
            text(&s["cron"]),
            text(&s["timezone"]),
            state(s),
            text(&s["next_runs"][0]),
        );
    }
    Ok(())
}

async fn show(api: &ApiClient, id: &str, as_json: bool) -> anyhow::Result<()> {
    let s = api.get(&format!("/v1/schedules/{id}")).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("schedule   {}", text(&s["id"]));
    println!("playbook   {}", text(&s["playbook"]));
    println!("cron       {} ({})", text(&s["cron"]), text(&s["timezone"]));
    println!("repo       {}", text(&s["repo"]));
    println!("state      {}", state(&s));
    if let Some(note) = s["note"].as_str() {
        println!("note       {note}");
    }
    if let Some(n) = s["pause_after_failures"].as_u64() {
        println!(
            "failures   {} in a row (pauses at {n})",
            s["consecutive_failures"]
        );
    }
    println!(
        "fires      {} (skipped while busy: {})",
        s["fires"], s["overlap_skipped"]
    );
    println!("next runs");
    for t in s["next_runs"].as_array().into_iter().flatten().take(5) {
        println!("  {}", text(t));
    }
    println!("recent runs");
    for r in s["recent_runs"].as_array().into_iter().flatten() {
        let status = r["status"].as_str().unwrap_or("starting");
        let reason = r["reason"]
            .as_str()
            .map(|r| format!("  ({r})"))
            .unwrap_or_default();
        println!(
            "  {}  {}  {status}{reason}",
            text(&r["fired_at"]),
            text(&r["task_id"])
        );
    }
    Ok(())
}

async fn act(api: &ApiClient, id: &str, action: &str, done: &str) -> anyhow::Result<()> {
    api.post(&format!("/v1/schedules/{id}/{action}"), &json!({}), None)
        .await?;
    println!("schedule {id} {done}");
    Ok(())
}

/// The API client has no DELETE; this is its one use.
async fn delete(base: &str, id: &str) -> anyhow::Result<()> {
    let url = format!("{}/v1/schedules/{id}", base.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .delete(&url)
        .send()
        .await
        .with_context(|| format!("cannot reach the Errand API at {base}"))?;
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match body["error"]["message"].as_str() {
            Some(message) => bail!("{status}: {message}"),
            None => bail!("{status}: {body}"),
        }
    }
    println!("schedule {id} deleted");
    Ok(())
}

fn state(s: &Value) -> &'static str {
    if s["paused"].as_bool() == Some(true) {
        "paused"
    } else {
        "active"
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}
