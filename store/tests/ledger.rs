//! The cost ledger and period budgets against real databases: every scenario runs on SQLite and
//! on PostgreSQL.

#[macro_use]
mod databases;

use chrono::{DateTime, Utc};
use store::{
    BudgetScope, CostGroup, EntryKind, LedgerEntry, PeriodBudget,
    SandboxTime, SpendScope, Store, StoreError,
};
use workflows::budget::{Budget, Exhausted, Period, Spent};
use workflows::contracts::FinishRequest;
use workflows::cost::{BudgetRefusal, MicroDollars, Usage};
use workflows::task::PlaybookRef;
use workflows::{AgentSpec, TaskSpec, TaskStatus};

on_both_backends!(
    entries_read_back_with_consistent_totals,
    spend_is_summed_within_half_open_windows,
    costs_group_by_playbook_day_and_trigger,
    finished_tasks_give_the_estimate_sample,
    budgets_round_trip_and_refuse_when_spent,
);

async fn connect(url: &str) -> Store {
    Store::connect(url).await.expect("connect and migrate")
}

fn spec(id: &str, playbook: Option<&str>) -> TaskSpec {
    TaskSpec {
        id: id.to_string(),
        repo: "/srv/git/app.git".to_string(),
        base: "main".to_string(),
        instructions: "Fix it.".to_string(),
        checks: vec!["sh test.sh".to_string()],
        agent: AgentSpec::Command {
            command: vec!["agent".to_string()],
        },
        max_rounds: 3,
        time_budget_secs: 600,
        requester: "alice".to_string(),
        playbook: playbook.map(|name| PlaybookRef {
            name: name.to_string(),
            content_hash: "ab12".to_string(),
        }),
        review_timeout_secs: 3600,
        policy: Default::default(),
    }
}

fn model_call(task: &str, playbook: Option<&str>, round: u32, micros: i64) -> LedgerEntry {
    LedgerEntry {
        task_id: task.to_string(),
        round,
        step: "agent".to_string(),
        kind: EntryKind::Model,
        model: Some("claude-x".to_string()),
        usage: Usage {
            input_tokens: 1000,
            output_tokens: 200,
            cache_read_tokens: 30,
            cache_write_tokens: 4,
        },
        sandbox: None,
        cost: MicroDollars(micros),
        refused: None,
        playbook: playbook.map(str::to_string),
        trigger: Some("api".to_string()),
    }
}

fn sandbox_run(task: &str, round: u32, step: &str, wall_ms: u64, micros: i64) -> LedgerEntry {
    LedgerEntry {
        step: step.to_string(),
        kind: EntryKind::Sandbox,
        model: None,
        usage: Usage::default(),
        sandbox: Some(SandboxTime {
            wall_ms,
            cpu_ms: None,
        }),
        ..model_call(task, None, round, micros)
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

async fn entries_read_back_with_consistent_totals(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("t1", Some("fix"))).await.unwrap();
    let refused = LedgerEntry {
        usage: Usage::default(),
        cost: MicroDollars::ZERO,
        refused: Some(BudgetRefusal {
            budget: "task_dollars".to_string(),
            message: "the task's $0.020000 budget is spent".to_string(),
        }),
        ..model_call("t1", Some("fix"), 2, 0)
    };
    let written = [
        model_call("t1", Some("fix"), 1, 12_345),
        sandbox_run("t1", 1, "agent", 2_500, 25),
        LedgerEntry {
            sandbox: Some(SandboxTime {
                wall_ms: 700,
                cpu_ms: Some(650),
            }),
            ..sandbox_run("t1", 1, "checks", 0, 7)
        },
        model_call("t1", Some("fix"), 2, 8_000),
        refused.clone(),
    ];
    let mut ids = Vec::new();
    for entry in &written {
        ids.push(store.record_ledger_entry(entry).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let rows = store.task_ledger("t1").await.unwrap();
    let read: Vec<LedgerEntry> = rows.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(read, written);

    let totals = store.task_cost("t1", None).await.unwrap();
    assert_eq!(totals.micro_dollars, MicroDollars(12_345 + 25 + 7 + 8_000));
    assert_eq!(totals.tokens(), 2 * 1234);
    assert_eq!(totals.usage.input_tokens, 2000);
    assert_eq!(totals.sandbox_wall_ms, 3_200);
    assert_eq!(totals.sandbox_cpu_ms, 650);
    assert_eq!(
        (totals.model_calls, totals.refusals, totals.entries),
        (2, 1, 5)
    );
    let round2 = store.task_cost("t1", Some(2)).await.unwrap();
    assert_eq!(round2.micro_dollars, MicroDollars(8_000));
    assert_eq!((round2.entries, round2.refusals), (2, 1));
    assert_eq!(
        store.task_cost("nobody", None).await.unwrap().entries,
        0,
        "no entries, no cost"
    );

    let err = store
        .record_ledger_entry(&model_call("ghost", None, 1, 5))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownTask { task_id } if task_id == "ghost"),
        "{err:?}"
    );
}

async fn spend_is_summed_within_half_open_windows(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("a", Some("fix"))).await.unwrap();
    store.admit(&spec("b", Some("docs"))).await.unwrap();
    store.admit(&spec("c", None)).await.unwrap();
    let at = [
        ("a", Some("fix"), 100, "2026-11-20T23:59:59Z"),
        ("a", Some("fix"), 200, "2026-11-21T00:00:00Z"),
        ("b", Some("docs"), 400, "2026-11-21T12:00:00Z"),
        ("c", None, 800, "2026-11-21T23:59:59.999999Z"),
        ("a", Some("fix"), 1600, "2026-11-22T00:00:00Z"),
    ];
    for (task, playbook, micros, when) in at {
        store
            .record_ledger_entry_at(&model_call(task, playbook, 1, micros), time(when))
            .await
            .unwrap();
    }
    let (from, to) = (time("2026-11-21T00:00:00Z"), time("2026-11-22T00:00:00Z"));
    let spent = |micros, calls: u64| Spent {
        micro_dollars: MicroDollars(micros),
        tokens: calls * 1234,
    };
    assert_eq!(
        store
            .spent_within(SpendScope::Global, from, to)
            .await
            .unwrap(),
        spent(200 + 400 + 800, 3)
    );
    assert_eq!(
        store
            .spent_within(SpendScope::Playbook("fix"), from, to)
            .await
            .unwrap(),
        spent(200, 1)
    );
    assert_eq!(
        store
            .spent_within(SpendScope::Playbook("none"), from, to)
            .await
            .unwrap(),
        Spent::default()
    );

    // The window of a period budget is the one that contains the instant.
    let daily = PeriodBudget {
        scope: BudgetScope::Playbook("fix".to_string()),
        period: Period::Day,
        budget: Budget::default(),
    };
    let (window, in_window) = store
        .spent_in_window(&daily, time("2026-11-22T08:00:00Z"))
        .await
        .unwrap();
    assert_eq!(window.from, time("2026-11-22T00:00:00Z").timestamp());
    assert_eq!(in_window, spent(1600, 1));
    let monthly = PeriodBudget {
        scope: BudgetScope::Global,
        period: Period::Month,
        ..daily
    };
    let (_, in_month) = store
        .spent_in_window(&monthly, time("2026-11-30T08:00:00Z"))
        .await
        .unwrap();
    assert_eq!(in_month, spent(100 + 200 + 400 + 800 + 1600, 5));
}

async fn costs_group_by_playbook_day_and_trigger(url: &str) {
    let store = connect(url).await;
    store.admit(&spec("a", Some("fix"))).await.unwrap();
    store.admit(&spec("c", None)).await.unwrap();
    let cron = LedgerEntry {
        trigger: Some("cron".to_string()),
        ..model_call("a", Some("fix"), 2, 40)
    };
    let entries = [
        (model_call("a", Some("fix"), 1, 10), "2026-11-20T10:00:00Z"),
        (cron, "2026-11-21T10:00:00Z"),
        (model_call("c", None, 1, 5), "2026-11-21T11:00:00Z"),
        // Outside [from, to).
        (model_call("c", None, 1, 1000), "2026-11-22T00:00:00Z"),
    ];
    for (entry, when) in &entries {
        store
            .record_ledger_entry_at(entry, time(when))
            .await
            .unwrap();
    }
    let (from, to) = (time("2026-11-20T00:00:00Z"), time("2026-11-22T00:00:00Z"));
    let grouped = |group| {
        let store = store.clone();
        async move {
            store
                .cost_grouped(group, from, to)
                .await
                .unwrap()
                .into_iter()
                .map(|(key, totals)| (key, totals.micro_dollars.0, totals.entries))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        grouped(CostGroup::Playbook).await,
        vec![("ad-hoc".to_string(), 5, 1), ("fix".to_string(), 50, 2)]
    );
    assert_eq!(
        grouped(CostGroup::Day).await,
        vec![
            ("2026-11-20".to_string(), 10, 1),
            ("2026-11-21".to_string(), 45, 2)
        ]
    );
    assert_eq!(
        grouped(CostGroup::Trigger).await,
        vec![("api".to_string(), 15, 2), ("cron".to_string(), 40, 1)]
    );

    // Metrics sum over all time, by playbook and model.
    let sums = store.ledger_sums().await.unwrap();
    assert_eq!(sums.len(), 2, "{sums:?}");
    let fix = sums
        .iter()
        .find(|s| s.playbook.as_deref() == Some("fix"))
        .unwrap();
    assert_eq!(
        (fix.micro_dollars, fix.entries, fix.usage.input_tokens),
        (MicroDollars(50), 2, 2000)
    );
    assert_eq!(fix.model.as_deref(), Some("claude-x"));
    assert_eq!(fix.kind, Some(EntryKind::Model));
    let ad_hoc = sums.iter().find(|s| s.playbook.is_none()).unwrap();
    assert_eq!(ad_hoc.micro_dollars, MicroDollars(1005));
}

async fn finished_tasks_give_the_estimate_sample(url: &str) {
    let store = connect(url).await;
    let tasks = [
        ("t1", Some("fix"), Some(TaskStatus::Merged), &[100, 50][..]),
        ("t2", Some("fix"), Some(TaskStatus::Incomplete), &[300][..]),
        // Running: not a sample yet.
        ("t3", Some("fix"), None, &[7][..]),
        // Finished without entries (before the ledger): left out, not free.
        ("t4", Some("fix"), Some(TaskStatus::Closed), &[][..]),
        ("t5", Some("docs"), Some(TaskStatus::Merged), &[9][..]),
    ];
    for (id, playbook, status, costs) in tasks {
        store.admit(&spec(id, playbook)).await.unwrap();
        for &micros in costs {
            store
                .record_ledger_entry(&model_call(id, playbook, 1, micros))
                .await
                .unwrap();
        }
        if let Some(status) = status {
            store.finish(&finished(id, status)).await.unwrap();
        }
    }
    assert_eq!(
        store.finished_task_costs("fix").await.unwrap(),
        vec![MicroDollars(150), MicroDollars(300)]
    );
    assert_eq!(
        store.finished_task_costs("docs").await.unwrap(),
        vec![MicroDollars(9)]
    );
    assert!(store.finished_task_costs("new").await.unwrap().is_empty());
}

fn finished(id: &str, status: TaskStatus) -> FinishRequest {
    FinishRequest {
        task_id: id.to_string(),
        status,
        round: 1,
        reason: None,
        report: "# done".to_string(),
        workspace: None,
    }
}

async fn budgets_round_trip_and_refuse_when_spent(url: &str) {
    let store = connect(url).await;
    assert!(store.budgets().await.unwrap().is_empty());
    let budgets = vec![
        PeriodBudget {
            scope: BudgetScope::Playbook("fix".to_string()),
            period: "sprint:2026-11-02:14".parse().unwrap(),
            budget: Budget {
                dollars: Some(MicroDollars(1_000)),
                tokens: None,
            },
        },
        PeriodBudget {
            scope: BudgetScope::Global,
            period: Period::Month,
            budget: Budget {
                dollars: Some(MicroDollars(5_000)),
                tokens: Some(1_000_000),
            },
        },
        PeriodBudget {
            scope: BudgetScope::Playbook("docs".to_string()),
            period: Period::Day,
            budget: Budget {
                dollars: None,
                tokens: Some(2_000),
            },
        },
    ];
    store.replace_budgets(&budgets).await.unwrap();
    let read: Vec<PeriodBudget> = store
        .budgets()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.budget)
        .collect();
    // Global first, then by playbook.
    assert_eq!(
        read,
        vec![budgets[1].clone(), budgets[2].clone(), budgets[0].clone()]
    );
    assert_eq!(store.budgets_for(Some("fix")).await.unwrap().len(), 2);
    assert_eq!(store.budgets_for(None).await.unwrap(), vec![budgets[1].clone()]);

    store.admit(&spec("a", Some("fix"))).await.unwrap();
    store.admit(&spec("d", Some("docs"))).await.unwrap();
    let now = time("2026-11-21T12:00:00Z");
    assert_eq!(store.spent_period_budget(Some("fix"), now).await.unwrap(), None);
    store
        .record_ledger_entry_at(&model_call("a", Some("fix"), 1, 999), now)
        .await
        .unwrap();
    assert_eq!(store.spent_period_budget(Some("fix"), now).await.unwrap(), None);
    store
        .record_ledger_entry_at(&model_call("a", Some("fix"), 1, 1), now)
        .await
        .unwrap();
    let spent = store
        .spent_period_budget(Some("fix"), now)
        .await
        .unwrap()
        .expect("the sprint budget is spent");
    assert_eq!(spent.budget, budgets[0]);
    assert_eq!(
        spent.exhausted,
        Exhausted::Dollars {
            limit: MicroDollars(1_000),
            spent: MicroDollars(1_000)
        }
    );
    assert_eq!(spent.budget_name(), "playbook_period");
    assert_eq!(
        spent.message(),
        "playbook fix's sprint:2026-11-02:14 budget is spent: $0.001000 spent of a $0.001000 \
         budget (window 2026-11-16 to 2026-11-30)"
    );
    // The next sprint starts afresh; other playbooks are not affected.
    assert_eq!(
        store
            .spent_period_budget(Some("fix"), time("2026-11-30T00:00:00Z"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.spent_period_budget(Some("docs"), now).await.unwrap(), None);
    // Tokens of docs: 2 calls of 1234 tokens pass its 2000-token day budget.
    for _ in 0..2 {
        store
            .record_ledger_entry_at(&model_call("d", Some("docs"), 1, 0), now)
            .await
            .unwrap();
    }
    let docs = store
        .spent_period_budget(Some("docs"), now)
        .await
        .unwrap()
        .expect("the docs day budget is spent");
    assert!(matches!(docs.exhausted, Exhausted::Tokens { limit: 2000, spent: 2468 }));

    // Replacing with nothing removes every budget.
    store.replace_budgets(&[]).await.unwrap();
    assert!(store.budgets().await.unwrap().is_empty());
    assert_eq!(store.spent_period_budget(Some("docs"), now).await.unwrap(), None);
}
