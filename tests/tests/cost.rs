//! Cost budgets end to end: `errand up` with its model gateway in front of a fake
//! OpenAI-compatible server, an agent (a script in the sandbox) that calls the model through
//! the gateway until it is refused, and the task that ends `incomplete` with `cost_budget`,
//! its work pushed and the refusal in its ledger and report.

use std::time::Duration;

use serde_json::json;
use tests::{Errand, Remote, UpOptions, agent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const RUN: Duration = Duration::from_secs(120);

/// A chat-completions server that answers every request with 1000 prompt and 10 completion
/// tokens of usage; returns its base URL.
async fn fake_model_server() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the head, then as much body as it announces.
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let body = json!({
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": "fake-model",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "try again"}}],
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010},
                })
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok(format!("http://{addr}/v1"))
}

#[tokio::test]
async fn a_spent_budget_ends_the_task_incomplete_with_its_work_pushed() -> anyhow::Result<()> {
    let model = fake_model_server().await?;
    let config = tempfile::Builder::new().suffix(".toml").tempfile()?;
    std::fs::write(
        config.path(),
        format!(
            r#"
[gateway]
[gateway.openai]
base_url = "{model}"
key_env = "ERRAND_TEST_FAKE_OPENAI_KEY"
[gateway.prices.default]
input = 1000000
output = 1000000
"#
        ),
    )?;
    let errand = Errand::up_with(UpOptions {
        env: vec![
            ("ERRAND_CONFIG".into(), config.path().display().to_string()),
            ("ERRAND_TEST_FAKE_OPENAI_KEY".into(), "sk-test-not-a-key".into()),
        ],
        ..Default::default()
    })
    .await?;
    let remote = Remote::calculator()?;
    // Work first, then model calls until one is refused (the first costs $0.00101, over the
    // task's $0.001 budget, so the second is refused with 402).
    let script = agent(
        errand.data_dir.path(),
        "spender.sh",
        r#"echo "half done" > NOTES.md
for i in 1 2 3; do
  code=$(curl -s -o answer.json -w '%{http_code}' -H "Authorization: Bearer $OPENAI_API_KEY" \
    -H 'content-type: application/json' \
    -d '{"model":"fake-model","messages":[{"role":"user","content":"fix it"}]}' \
    "$OPENAI_BASE_URL/chat/completions")
  echo "call $i: $code"
  if [ "$code" = 402 ]; then cat answer.json; rm -f answer.json; exit 0; fi
done
rm -f answer.json"#,
    )?;
    let task = json!({
        "repo": remote.path().display().to_string(),
        "instructions": "Make `sh test.sh` pass.",
        "checks": ["sh test.sh"],
        "agent": {"kind": "command", "command": [script]},
        "max_rounds": 3,
        "time_budget_secs": 60,
        "requester": "alice",
        "max_dollars": 0.001,
    });
    let id = errand.post_ok("/v1/tasks", task, None).await?["id"]
        .as_str()
        .unwrap()
        .to_string();
    let task = errand.wait_for_status(&id, "incomplete", RUN).await?;
    let reason = task["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("cost_budget: "), "{task}");
    assert!(reason.contains("task_dollars"), "{reason}");
    assert_eq!(task["round"], 1, "the round stopped: no second round: {task}");
    assert_eq!(
        remote.show(&format!("errand/{id}"), "NOTES.md")?.trim(),
        "half done",
        "the work in progress is pushed"
    );

    let (status, cost) = errand
        .call("GET", &format!("/v1/tasks/{id}/cost"), None, None)
        .await?;
    assert_eq!(status, 200, "{cost}");
    let entries = cost["entries"].as_array().unwrap();
    let models: Vec<_> = entries.iter().filter(|e| e["kind"] == "model").collect();
    assert_eq!(models.len(), 2, "one priced call, one refused: {cost}");
    assert_eq!(models[0]["micro_dollars"], 1010);
    assert_eq!(models[1]["refused"]["budget"], "task_dollars");
    assert!(
        entries.iter().any(|e| e["kind"] == "sandbox" && e["step"] == "agent"),
        "the agent's sandbox time is an entry: {cost}"
    );
    assert_eq!(cost["totals"]["refusals"], 1);
    assert_eq!(cost["totals"]["micro_dollars"], 1010, "sandbox time is free by default");

    let report = task["report"].as_str().unwrap_or_default();
    assert!(report.contains("## Cost"), "{report}");
    assert!(
        report.contains("A model call was refused (`task_dollars`)"),
        "{report}"
    );
    errand.check_replay(&id, "cost-budget-refusal").await
}
