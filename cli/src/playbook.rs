//! `errand playbook list | show NAME | validate [FILE...]`: the server's playbooks (through the
//! API), and checking playbook files locally before they are shipped.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;
use workflows::playbook::Playbook;

use crate::api_client::ApiClient;

#[derive(Debug, clap::Subcommand)]
pub enum PlaybookCommand {
    /// List the playbooks the API serves (a broken one is listed with its error)
    List,
    /// Show a playbook as the API would run it now: inputs, policy, budget, review
    Show {
        name: String,
        /// Print the API's JSON (the playbook, its inputs' JSON schema and its content hash)
        #[arg(long)]
        json: bool,
    },
    /// Check playbook files (default: every .yaml in --playbooks-dir); exits 1 if any is invalid
    Validate { files: Vec<PathBuf> },
}

pub async fn run(
    api: &ApiClient,
    playbooks_dir: &Path,
    command: PlaybookCommand,
) -> anyhow::Result<()> {
    match command {
        PlaybookCommand::List => list(api).await,
        PlaybookCommand::Show { name, json } => show(api, &name, json).await,
        PlaybookCommand::Validate { files } => validate(playbooks_dir, files),
    }
}

async fn list(api: &ApiClient) -> anyhow::Result<()> {
    let list = api.get("/v1/playbooks").await?;
    println!("{:<24} DESCRIPTION", "NAME");
    for p in list.as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or("");
        match p["error"].as_str() {
            Some(error) => println!("{name:<24} INVALID: {error}"),
            None => println!("{name:<24} {}", p["description"].as_str().unwrap_or("")),
        }
    }
    Ok(())
}

async fn show(api: &ApiClient, name: &str, as_json: bool) -> anyhow::Result<()> {
    let view = api.get(&format!("/v1/playbooks/{name}")).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let p = &view["playbook"];
    let text = |v: &Value| v.as_str().unwrap_or("").trim().to_string();
    println!(
        "playbook  {}  (sha256 {})",
        text(&p["name"]),
        text(&view["content_hash"])
    );
    println!("          {}", text(&p["description"]));
    println!("outcome   {}", text(&p["outcome"]));
    println!("\ninputs");
    let required: Vec<&str> = view["inputs_schema"]["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (input, schema) in view["inputs_schema"]["properties"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let kind = match (&schema["enum"], schema["format"].as_str()) {
            (Value::Array(values), _) => format!("one of {}", join(values)),
            (_, Some("repo-path")) => "repo path".to_string(),
            _ => text(&schema["type"]),
        };
        let need = if required.contains(&input.as_str()) {
            "required".to_string()
        } else {
            match &schema["default"] {
                Value::Null => "optional".to_string(),
                default => format!("default {default}"),
            }
        };
        println!(
            "  {input:<16} {kind:<16} {need:<20} {}",
            text(&schema["description"])
        );
    }
    let b = &p["boundary"];
    println!("\nboundary");
    println!("  allowed paths     {}", join_or(&b["allowed_paths"], "-"));
    println!(
        "  forbidden paths   {}",
        join_or(&b["forbidden_paths"], "-")
    );
    println!("  ci config         {}", text(&b["ci_config"]));
    println!("  dependencies      {}", text(&b["dependencies"]));
    println!(
        "  max changed files {}",
        number_or(&b["max_changed_files"], "-")
    );
    println!(
        "  max changed lines {}",
        number_or(&b["max_changed_lines"], "-")
    );
    println!("  network           {}", join_or(&b["network"], "none"));
    let v = &p["verification"];
    println!("\nverification");
    for check in v["checks"].as_array().into_iter().flatten() {
        println!("  check             {}", text(check));
    }
    if let Some(rg) = v.get("red_green") {
        println!("  red->green        {}", compact(rg));
    }
    println!("  test paths        {}", join_or(&v["test_paths"], "-"));
    println!("postconditions      {}", compact_list(&p["postconditions"]));
    println!(
        "forbidden actions   {}",
        join_or(&p["forbidden_actions"], "none")
    );
    let budget = &p["budget"];
    println!(
        "budget              {} round(s), {}s per round",
        budget["max_rounds"], budget["time_per_round_secs"]
    );
    println!("merge               {}", compact(&p["review"]["merge"]));
    println!(
        "retry               {} attempt(s)",
        p["retry"]["max_attempts"]
    );
    if let Some(schedules) = p["schedules"].as_array() {
        for s in schedules {
            println!(
                "schedule            {} {}",
                text(&s["cron"]),
                text(&s["timezone"])
            );
        }
    }
    if p["triggers"].as_object().is_some_and(|t| !t.is_empty()) {
        println!("triggers            {}", compact(&p["triggers"]));
    }
    Ok(())
}

/// Parses each file; prints `ok` or the error (`file:line:column: field: message`).
fn validate(playbooks_dir: &Path, files: Vec<PathBuf>) -> anyhow::Result<()> {
    let files = if files.is_empty() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(playbooks_dir)
            .with_context(|| format!("cannot list {}", playbooks_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        found.sort();
        found
    } else {
        files
    };
    if files.is_empty() {
        bail!("no playbook files in {}", playbooks_dir.display());
    }
    let mut invalid = 0;
    for file in &files {
        let shown = file.display().to_string();
        let result = std::fs::read_to_string(file)
            .map_err(|e| format!("{shown}: cannot read: {e}"))
            .and_then(|content| Playbook::parse(&shown, &content).map_err(|e| e.to_string()));
        match result {
            Ok(playbook) => println!("ok       {shown} ({})", playbook.name),
            Err(error) => {
                invalid += 1;
                println!("invalid  {error}");
            }
        }
    }
    if invalid > 0 {
        bail!("{invalid} of {} playbook file(s) invalid", files.len());
    }
    Ok(())
}

fn join(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_or(value: &Value, empty: &str) -> String {
    match value.as_array() {
        Some(values) if !values.is_empty() => join(values),
        _ => empty.to_string(),
    }
}

fn number_or(value: &Value, missing: &str) -> String {
    value
        .as_u64()
        .map_or_else(|| missing.to_string(), |n| n.to_string())
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compact_list(value: &Value) -> String {
    match value.as_array() {
        Some(values) if !values.is_empty() => {
            values.iter().map(compact).collect::<Vec<_>>().join(", ")
        }
        _ => "-".to_string(),
    }
}
