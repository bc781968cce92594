//! `errand run --dry-run`: what a run would be, without starting it: the playbook's budget (as
//! lowered by the flags), its cost estimate from past tasks, and the period budgets it would
//! run under with what their windows have spent.

use serde_json::Value;

use crate::api_client::ApiClient;
use crate::commands::RunArgs;

pub async fn dry_run(api: &ApiClient, args: &RunArgs) -> anyhow::Result<()> {
    let playbook = match &args.playbook {
        Some(name) => {
            let view = api.get(&format!("/v1/playbooks/{name}")).await?;
            let estimate = api.get(&format!("/v1/playbooks/{name}/estimate")).await?;
            print_playbook(name, &view, args);
            println!(
                "estimate  {}",
                estimate["summary"].as_str().unwrap_or("none")
            );
            Some(name.as_str())
        }
        None => {
            println!("ad-hoc task: no playbook, so no budget cap and no estimate");
            print_task_budget(args.max_dollars, args.max_tokens);
            None
        }
    };
    let budgets = api.get("/v1/budgets").await?;
    let applicable: Vec<&Value> = budgets["budgets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["scope"] == "global" || (playbook.is_some() && b["playbook"].as_str() == playbook))
        .collect();
    if applicable.is_empty() {
        println!("period budgets: none apply");
    } else {
        println!("period budgets:");
    }
    for b in applicable {
        let whose = match b["playbook"].as_str() {
            Some(name) => format!("playbook {name}"),
            None => "global".to_string(),
        };
        let mut limits = Vec::new();
        if let Some(d) = b["dollars"].as_str() {
            limits.push(format!("{} of {d}", money(b["spent_micro_dollars"].as_i64().unwrap_or(0))));
        }
        if let Some(t) = b["tokens"].as_u64() {
            limits.push(format!("{} of {t} tokens", b["spent_tokens"].as_u64().unwrap_or(0)));
        }
        let state = if b["exhausted"] == true {
            "SPENT: the run would be refused"
        } else {
            "ok"
        };
        println!(
            "  {whose} {} ({} to {}): {} spent; {state}",
            b["period"].as_str().unwrap_or("?"),
            b["window_start"].as_str().unwrap_or("?"),
            b["window_end"].as_str().unwrap_or("?"),
            limits.join(", ")
        );
    }
    println!("dry run: nothing was started");
    Ok(())
}

fn print_playbook(name: &str, view: &Value, args: &RunArgs) {
    let budget = &view["playbook"]["budget"];
    println!(
        "playbook  {name} (sha256 {})",
        view["content_hash"].as_str().unwrap_or("?")
    );
    let rounds = args.max_rounds.map(Value::from).unwrap_or(budget["max_rounds"].clone());
    let secs = args
        .time_budget_secs
        .map(Value::from)
        .unwrap_or(budget["time_per_round_secs"].clone());
    println!("rounds    at most {rounds}, {secs} s per agent run");
    let dollars = args.max_dollars.or(budget["dollars"].as_f64());
    let tokens = args.max_tokens.or(budget["tokens"].as_u64());
    print_task_budget(dollars, tokens);
}

fn print_task_budget(dollars: Option<f64>, tokens: Option<u64>) {
    let mut limits = Vec::new();
    if let Some(d) = dollars {
        limits.push(format!("${d}"));
    }
    if let Some(t) = tokens {
        limits.push(format!("{t} model tokens"));
    }
    if limits.is_empty() {
        println!("budget    no task cost budget");
    } else {
        println!("budget    {} for the task", limits.join(", "));
    }
}

/// Micro-dollars as `$1.234567`, every digit kept.
fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}${}.{:06}", abs / 1_000_000, abs % 1_000_000)
}
