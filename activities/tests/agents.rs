//! The agent adapters against fakes that speak the real formats: `claude` and `codex` are small
//! scripts that check their argv and stdin and print what the real CLIs print (the samples are
//! in the adapters' module docs, with their sources); the builtin loop runs as its own binary
//! against a fake model server that speaks the OpenAI chat completions wire format, once on
//! loopback and once inside the real sandbox through the model gateway's relay. Nothing here
//! calls a real provider.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use activities::agents::builtin::{EXIT_BUDGET, EXIT_FINISHED, EXIT_MAX_TURNS};
use activities::agents::{self, Report, RunInputs};
use activities::sandbox::{
    Exit, GATEWAY_PORT, INPUTS_MOUNT, LOG_CAP_BYTES, Limits, Sandbox, SandboxSpec,
};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use workflows::AgentSpec;
use workflows::contracts::AgentReport;
use workflows::cost::{MicroDollars, Usage};

/// No test may take longer than this, whatever goes wrong.
const TEST_BOUND: Duration = Duration::from_secs(120);

async fn bounded<F: std::future::Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

const PROMPT: &str = "# Task\n\nMake `add` in src/calc.py add.\n";

/// A workspace with a bug and its test, a prompt file, and a directory for fake programs.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("workspace");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::write(ws.join("src/calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
        std::fs::write(
            ws.join("test.sh"),
            "grep -q 'return a + b' src/calc.py && echo 'tests pass'\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("inputs")).unwrap();
        std::fs::write(dir.path().join("inputs/prompt.md"), PROMPT).unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        // A root test run's sandbox uid must read the inputs and reach the workspace.
        for path in [dir.path(), &dir.path().join("inputs")] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Self { dir }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn inputs(&self) -> PathBuf {
        self.dir.path().join("inputs")
    }

    /// Writes an executable script named `name` into the fake programs' directory.
    fn program(&self, name: &str, script: &str) {
        let path = self.dir.path().join("bin").join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs an invocation outside the sandbox the way the sandbox would: cleared environment,
    /// the workspace as working directory, the fake programs first on PATH. Returns the exit
    /// code and the combined output (stdout, then stderr).
    async fn run(
        &self,
        invocation: &agents::Invocation,
        extra_env: &[(&str, &str)],
    ) -> (i32, Vec<u8>) {
        let path = format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display());
        let prompt = self.inputs().join("prompt.md");
        let output = tokio::process::Command::new(&invocation.argv[0])
            .args(&invocation.argv[1..])
            .env_clear()
            .env("PATH", path)
            .env("ERRAND_PROMPT_FILE", &prompt)
            .envs(invocation.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra_env.iter().copied())
            .current_dir(self.workspace())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .expect("the invocation starts");
        let mut combined = output.stdout;
        combined.extend(output.stderr);
        (output.status.code().unwrap_or(-1), combined)
    }
}

fn invocation(spec: &AgentSpec) -> agents::Invocation {
    agents::invocation(spec).unwrap_or_else(|e| panic!("{e}"))
}

fn report(spec: &AgentSpec, output: &[u8]) -> AgentReport {
    agents::summarize(agents::adapter(spec).as_ref(), output)
        .unwrap_or_else(|| panic!("no report from:\n{}", String::from_utf8_lossy(output)))
}

// --- Claude Code -------------------------------------------------------------------------

/// Checks its argv, environment and stdin, then prints a stream-json session (shapes from
/// Claude Code's stream-json output, see `agents::claude_code`), a line of stderr chatter and a
/// malformed line. `$MODE` picks the ending.
const FAKE_CLAUDE: &str = r##"#!/bin/sh
want='-p --output-format stream-json --verbose --permission-mode bypassPermissions --model sonnet --max-turns 5'
if [ "$*" != "$want" ]; then echo "fake claude: bad argv: $*" >&2; exit 97; fi
if [ "$IS_SANDBOX" != 1 ]; then echo "fake claude: IS_SANDBOX not set" >&2; exit 98; fi
stdin=$(cat)
case "$stdin" in *"Make \`add\` in src/calc.py add."*) ;; *) echo "fake claude: prompt not on stdin: $stdin" >&2; exit 99;; esac
printf '%s\n' '{"type":"system","subtype":"init","cwd":"/repo","session_id":"6f1e","tools":["Bash","Edit","Read"],"mcp_servers":[],"model":"claude-sonnet-4-5-20250929","permissionMode":"bypassPermissions","apiKeySource":"ANTHROPIC_API_KEY","claude_code_version":"2.0.14","uuid":"u0"}'
printf '%s\n' '{"type":"assistant","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Reading the file first."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":4,"cache_creation_input_tokens":1200,"cache_read_input_tokens":8400,"output_tokens":7}},"parent_tool_use_id":null,"session_id":"6f1e","uuid":"u1"}'
printf '%s\n' '{"type":"assistant","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"tool_use","id":"toolu_01A","name":"Read","input":{"file_path":"/repo/src/calc.py"}}],"stop_reason":"tool_use","usage":{"input_tokens":4,"cache_creation_input_tokens":1200,"cache_read_input_tokens":8400,"output_tokens":58}},"parent_tool_use_id":null,"session_id":"6f1e","uuid":"u2"}'
printf '%s\n' '{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_01A","type":"tool_result","content":"def add(a, b):\n    return a - b\n"}]},"parent_tool_use_id":null,"session_id":"6f1e","uuid":"u3"}'
printf '%s\n' 'npm WARN config production Use `--omit=dev` instead.' >&2
printf '%s\n' '{"type":"assistant","message":{"id":"msg_02"'
if [ "$MODE" = max_turns ]; then
  printf '%s\n' '{"type":"result","subtype":"error_max_turns","is_error":true,"duration_ms":9120,"duration_api_ms":8800,"num_turns":5,"session_id":"6f1e","total_cost_usd":0.0779,"usage":{"input_tokens":20,"cache_creation_input_tokens":4380,"cache_read_input_tokens":18774,"output_tokens":964,"service_tier":"standard"},"modelUsage":{"claude-sonnet-4-5-20250929":{"inputTokens":20,"outputTokens":964,"cacheReadInputTokens":18774,"cacheCreationInputTokens":4380,"costUSD":0.0779}},"permission_denials":[],"errors":["Reached maximum number of turns (5)"],"uuid":"u5"}'
  exit 1
fi
printf '%s\n' '{"type":"result","subtype":"success","is_error":false,"duration_ms":11419,"duration_api_ms":7754,"num_turns":3,"result":"Fixed add: it subtracted.","session_id":"6f1e","total_cost_usd":0.1443,"usage":{"input_tokens":34,"cache_creation_input_tokens":7606,"cache_read_input_tokens":6498,"output_tokens":776,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard"},"modelUsage":{"claude-sonnet-4-5-20250929":{"inputTokens":34,"outputTokens":776,"cacheReadInputTokens":6498,"cacheCreationInputTokens":7606,"webSearchRequests":0,"costUSD":0.1443,"contextWindow":200000}},"permission_denials":[],"uuid":"u4"}'
"##;

fn claude_spec() -> AgentSpec {
    AgentSpec::ClaudeCode {
        model: Some("sonnet".into()),
        max_turns: Some(5),
        program: None,
    }
}

#[tokio::test]
async fn claude_code_reports_its_usage_cost_and_summary() {
    bounded(async {
        let fx = Fixture::new();
        fx.program("claude", FAKE_CLAUDE);
        let spec = claude_spec();
        let (code, output) = fx.run(&invocation(&spec), &[]).await;
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&output));
        let report = report(&spec, &output);
        assert_eq!(
            report.usage,
            Usage {
                input_tokens: 34,
                output_tokens: 776,
                cache_read_tokens: 6498,
                cache_write_tokens: 7606,
            },
            "the result's total, not the per-block repeats of the assistant messages"
        );
        assert_eq!(report.cost, Some(MicroDollars(144_300)));
        assert_eq!(report.models, ["claude-sonnet-4-5-20250929"]);
        assert_eq!(report.calls, 3);
        assert_eq!(report.summary.as_deref(), Some("Fixed add: it subtracted."));
        assert_eq!(report.stopped, None);
    })
    .await
}

#[tokio::test]
async fn claude_code_at_its_turn_limit_exits_1_and_says_why() {
    bounded(async {
        let fx = Fixture::new();
        fx.program("claude", FAKE_CLAUDE);
        let spec = claude_spec();
        let (code, output) = fx.run(&invocation(&spec), &[("MODE", "max_turns")]).await;
        assert_eq!(code, 1, "the CLI's exit code is the run's");
        let report = report(&spec, &output);
        assert_eq!(
            report.stopped.as_deref(),
            Some("error_max_turns: Reached maximum number of turns (5)")
        );
        assert_eq!(report.summary, None);
        assert_eq!(report.cost, Some(MicroDollars(77_900)));
        assert_eq!(report.usage.output_tokens, 964);
    })
    .await
}

// --- Codex -------------------------------------------------------------------------------

/// Checks its argv and that the prompt and the round's feedback arrive on stdin, then prints
/// the sample session of openai/codex `docs/exec.md` (JSON output mode) over two turns.
const FAKE_CODEX: &str = r##"#!/bin/sh
want='exec --json --sandbox danger-full-access --skip-git-repo-check --model gpt-5-codex -'
if [ "$*" != "$want" ]; then echo "fake codex: bad argv: $*" >&2; exit 97; fi
stdin=$(cat)
case "$stdin" in *"src/calc.py add."*"# Feedback on the previous round"*"test.sh failed"*) ;; *) echo "fake codex: prompt and feedback not on stdin: $stdin" >&2; exit 99;; esac
printf '%s\n' '{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}'
printf '%s\n' '{"type":"turn.started"}'
printf '%s\n' '{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Searching for README files**"}}'
printf '%s\n' '{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"","status":"in_progress"}}'
printf '%s\n' '{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"src\ntest.sh\n","exit_code":0,"status":"completed"}}'
printf '%s\n' '{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}'
printf '%s\n' 'Reading prompt from stdin...' >&2
printf '%s\n' '{"type":"turn.completed","usage":"not an object"}'
printf '%s\n' '{"type":"turn.started"}'
printf '%s\n' '{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Fixed `add` in src/calc.py."}}'
printf '%s\n' '{"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":400,"output_tokens":50}}'
exit "${EXIT:-0}"
"##;

#[tokio::test]
async fn codex_sums_its_turns_and_reads_the_feedback_after_the_prompt() {
    bounded(async {
        let fx = Fixture::new();
        fx.program("codex", FAKE_CODEX);
        std::fs::write(fx.inputs().join("feedback.md"), "test.sh failed\n").unwrap();
        let feedback = fx.inputs().join("feedback.md");
        let spec = AgentSpec::Codex {
            model: Some("gpt-5-codex".into()),
            program: None,
        };
        let feedback = feedback.display().to_string();
        let env = [("ERRAND_FEEDBACK_FILE", feedback.as_str()), ("EXIT", "3")];
        let (code, output) = fx.run(&invocation(&spec), &env).await;
        assert_eq!(code, 3, "{}", String::from_utf8_lossy(&output));
        let report = report(&spec, &output);
        assert_eq!(
            report.usage,
            Usage {
                input_tokens: (24763 - 24448) + (1000 - 400),
                output_tokens: 122 + 50,
                cache_read_tokens: 24448 + 400,
                cache_write_tokens: 0,
            }
        );
        assert_eq!(
            report.calls, 2,
            "the malformed turn.completed is not a call"
        );
        assert_eq!(report.cost, None, "codex reports no dollars");
        assert_eq!(report.models, ["gpt-5-codex"]);
        assert_eq!(
            report.summary.as_deref(),
            Some("Fixed `add` in src/calc.py.")
        );
    })
    .await
}

#[test]
fn codex_failures_are_its_stop_reason() {
    let codex = agents::adapter(&AgentSpec::Codex {
        model: None,
        program: None,
    });
    let output = b"{\"type\":\"turn.failed\",\"error\":{\"message\":\"stream disconnected before completion\"}}\n";
    let report = agents::summarize(codex.as_ref(), output).unwrap();
    assert_eq!(
        report.stopped.as_deref(),
        Some("turn.failed: stream disconnected before completion")
    );
}

// --- the command protocol and its bounds -------------------------------------------------

#[test]
fn command_agents_report_with_errand_lines() {
    let spec = AgentSpec::Command {
        command: vec!["./agent".into()],
    };
    let output = br#"starting
{"errand":"progress","message":"reading src/calc.py"}
{"errand":"usage","model":"local-7b","input_tokens":100,"output_tokens":20,"cost_usd":0.0015}
{"errand":"usage","model":"local-7b","input_tokens":50,"output_tokens":5,"cache_read_tokens":30,"future_field":true}
{"errand":"summary","text":"fixed add"}
done
"#;
    let report = report(&spec, output);
    assert_eq!(
        report.usage,
        Usage {
            input_tokens: 150,
            output_tokens: 25,
            cache_read_tokens: 30,
            cache_write_tokens: 0,
        }
    );
    assert_eq!(report.cost, Some(MicroDollars(1500)));
    assert_eq!(report.calls, 2);
    assert_eq!(report.models, ["local-7b"]);
    assert_eq!(report.summary.as_deref(), Some("fixed add"));
    assert_eq!(
        agents::summarize(
            agents::adapter(&spec).as_ref(),
            b"no events\n{\"errand\":\"progress\",\"message\":\"x\"}\n"
        ),
        None,
        "progress alone is no report"
    );
}

#[test]
fn hostile_output_has_a_bounded_effect() {
    let adapter = agents::adapter(&AgentSpec::Command {
        command: vec!["./agent".into()],
    });
    let mut output = Vec::new();
    for i in 0..10_000 {
        output.extend(format!("{{\"errand\":\"usage\",\"input_tokens\":-{}}}\n", i + 1).as_bytes());
        output.extend(b"{\"errand\":\"usage\",\"input_tokens\":\n\xff\xfe not utf-8 {\"errand\"\n");
    }
    // An event hidden at the end of an over-long line is not read.
    output.extend(vec![b' '; activities::agents::MAX_EVENT_LINE_BYTES]);
    output.extend(b"{\"errand\":\"usage\",\"input_tokens\":1000000}\n");
    for _ in 0..2 {
        output.extend(
            b"{\"errand\":\"usage\",\"output_tokens\":18446744073709551615,\"cost_usd\":-5}\n",
        );
    }
    output.extend(b"{\"errand\":\"usage\",\"cost_usd\":\"a lot\"}\n");
    for i in 0..50 {
        output.extend(format!("{{\"errand\":\"usage\",\"model\":\"m{i}\"}}\n").as_bytes());
    }
    let summary = format!(
        "{{\"errand\":\"summary\",\"text\":\"{}\"}}\n",
        "é".repeat(10_000)
    );
    output.extend(summary.as_bytes());
    let mut folded = Report::default();
    folded.read(adapter.as_ref(), &output);
    assert_eq!(folded.skipped_lines, 1);
    let report = folded.finish().unwrap();
    assert_eq!(
        report.usage.input_tokens, 0,
        "negative and hidden counts are not read"
    );
    assert_eq!(report.usage.output_tokens, u64::MAX, "sums saturate");
    assert_eq!(report.cost, None, "nonsense dollars are not read");
    assert_eq!(report.calls, 53);
    assert_eq!(report.models.len(), 8, "a few models at most");
    let summary = report.summary.unwrap();
    assert!(summary.len() <= workflows::contracts::OUTPUT_TAIL_BYTES);
    assert!(summary.starts_with("éé"));
}

#[test]
fn the_claude_invocation_hands_over_the_prompt_on_stdin() {
    let invocation = invocation(&claude_spec());
    let argv = invocation.argv.join(" ");
    assert!(argv.starts_with("sh -c "), "{argv}");
    assert!(argv.contains("$ERRAND_PROMPT_FILE"));
    assert!(argv.ends_with(
        "errand-agent claude -p --output-format stream-json --verbose --permission-mode \
         bypassPermissions --model sonnet --max-turns 5"
    ));
    let bad = AgentSpec::ClaudeCode {
        model: None,
        max_turns: None,
        program: Some("/home/me/claude".into()),
    };
    let err = agents::invocation(&bad).unwrap_err().to_string();
    assert!(
        err.starts_with("agent.program: expected a name on the sandbox's PATH"),
        "{err}"
    );
    let adapter = agents::adapter(&claude_spec());
    assert!(adapter.command(&RunInputs::default()).is_ok());
}

// --- the builtin loop --------------------------------------------------------------------

/// A fake OpenAI-compatible endpoint answering from a script, one answer per request, and
/// keeping every request (headers and body) for the test to inspect.
#[derive(Clone)]
struct FakeModel {
    script: Arc<Vec<(StatusCode, Value)>>,
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl FakeModel {
    fn new(script: Vec<(StatusCode, Value)>) -> Self {
        Self {
            script: Arc::new(script),
            requests: Arc::default(),
        }
    }

    fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(answer))
            .with_state(self.clone())
    }

    /// Serves on a loopback port; returns the base URL.
    async fn serve_tcp(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://127.0.0.1:{port}/v1")
    }

    /// Serves on a Unix socket, as the model gateway does.
    async fn serve_unix(&self, socket: &Path) {
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        // The sandbox's own uid connects to it (root test runs give each run its own uid).
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
    }

    fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

async fn answer(
    State(model): State<FakeModel>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut requests = model.requests.lock().unwrap();
    requests.push((headers, body));
    match model.script.get(requests.len() - 1) {
        Some((status, body)) => (*status, Json(body.clone())),
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "the fake's script is exhausted"}})),
        ),
    }
}

/// A chat completion asking for one tool call, as OpenAI sends it.
fn tool_call(turn: u64, name: &str, arguments: Value) -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({
            "id": format!("chatcmpl-{turn}"),
            "object": "chat.completion",
            "created": 1_700_000_000 + turn,
            "model": "gpt-4.1-2025-04-14",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": format!("call_{turn}"),
                        "type": "function",
                        "function": {"name": name, "arguments": arguments.to_string()},
                    }],
                    "refusal": null,
                    "annotations": [],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            }],
            "usage": {
                "prompt_tokens": 100 * turn,
                "completion_tokens": 10,
                "total_tokens": 100 * turn + 10,
                "prompt_tokens_details": {"cached_tokens": 50, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_test",
        }),
    )
}

/// List, read, fix, test, finish.
fn fixing_conversation() -> Vec<(StatusCode, Value)> {
    vec![
        tool_call(1, "list_files", json!({})),
        tool_call(2, "read_file", json!({"path": "src/calc.py"})),
        tool_call(
            3,
            "write_file",
            json!({"path": "src/calc.py", "content": "def add(a, b):\n    return a + b\n"}),
        ),
        tool_call(4, "run", json!({"command": "sh test.sh"})),
        tool_call(
            5,
            "finish",
            json!({"summary": "add subtracted; it adds now"}),
        ),
    ]
}

/// Asserts what the loop sent along the fixing conversation: the tools, the prompt, and each
/// tool's answer in the next request.
fn check_fixing_requests(requests: &[(HeaderMap, Value)]) {
    assert_eq!(requests.len(), 5);
    let (headers, first) = &requests[0];
    assert_eq!(headers["authorization"], "Bearer task-token-1");
    assert_eq!(first["model"], "gpt-4.1");
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "list_files",
            "read_file",
            "write_file",
            "search",
            "run",
            "finish"
        ]
    );
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(first["messages"][1]["content"], PROMPT);
    let tool_answer = |i: usize| {
        let messages = requests[i].1["messages"].as_array().unwrap();
        let last = messages.last().unwrap();
        assert_eq!(last["role"], "tool");
        assert_eq!(last["tool_call_id"], format!("call_{i}"));
        let previous = &messages[messages.len() - 2];
        assert_eq!(previous["role"], "assistant");
        assert_eq!(previous["tool_calls"][0]["id"], format!("call_{i}"));
        last["content"].as_str().unwrap().to_string()
    };
    let listing = tool_answer(1);
    assert!(
        listing.contains("src/calc.py") && listing.contains("test.sh"),
        "{listing}"
    );
    assert!(!listing.contains(".git"));
    assert!(tool_answer(2).contains("return a - b"));
    assert!(tool_answer(3).starts_with("wrote "));
    let test_run = tool_answer(4);
    assert!(
        test_run.starts_with("exit code 0") && test_run.contains("tests pass"),
        "{test_run}"
    );
}

fn builtin_spec(max_turns: u32) -> AgentSpec {
    AgentSpec::Builtin {
        model: "gpt-4.1".into(),
        max_turns,
    }
}

/// The loop's own binary as the adapter starts it.
fn builtin_invocation(max_turns: u32) -> agents::Invocation {
    let program = agents::AgentLoopProgram::standalone(env!("CARGO_BIN_EXE_errand-agent-loop"));
    agents::adapter(&builtin_spec(max_turns))
        .command(&RunInputs {
            agent_loop: Some(program),
        })
        .unwrap()
}

async fn run_loop(fx: &Fixture, base_url: &str, max_turns: u32) -> (i32, Vec<u8>) {
    let env = [
        ("OPENAI_BASE_URL", base_url),
        ("OPENAI_API_KEY", "task-token-1"),
    ];
    fx.run(&builtin_invocation(max_turns), &env).await
}

#[tokio::test]
async fn the_builtin_loop_fixes_the_workspace_and_reports_its_usage() {
    bounded(async {
        let fx = Fixture::new();
        std::fs::create_dir(fx.workspace().join(".git")).unwrap();
        let model = FakeModel::new(fixing_conversation());
        let base_url = model.serve_tcp().await;
        let (code, output) = run_loop(&fx, &base_url, 10).await;
        assert_eq!(code, EXIT_FINISHED, "{}", String::from_utf8_lossy(&output));
        assert_eq!(
            std::fs::read_to_string(fx.workspace().join("src/calc.py")).unwrap(),
            "def add(a, b):\n    return a + b\n"
        );
        check_fixing_requests(&model.requests());
        let report = report(&builtin_spec(10), &output);
        assert_eq!(
            report.usage,
            Usage {
                input_tokens: (100 + 200 + 300 + 400 + 500) - 5 * 50,
                output_tokens: 50,
                cache_read_tokens: 250,
                cache_write_tokens: 0,
            }
        );
        assert_eq!(report.calls, 5);
        assert_eq!(report.models, ["gpt-4.1-2025-04-14"]);
        assert_eq!(
            report.summary.as_deref(),
            Some("add subtracted; it adds now")
        );
        assert_eq!(report.stopped, None);
    })
    .await
}

#[tokio::test]
async fn a_budget_refusal_ends_the_loop_with_the_refusal() {
    bounded(async {
        let fx = Fixture::new();
        let refusal = json!({"error": {
            "message": "task budget of $1.00 is spent ($1.02 used)",
            "type": "budget_exhausted",
            "param": null,
            "code": "task_dollars",
        }});
        let model = FakeModel::new(vec![
            tool_call(1, "list_files", json!({})),
            (StatusCode::PAYMENT_REQUIRED, refusal),
            tool_call(3, "finish", json!({"summary": "never asked"})),
        ]);
        let base_url = model.serve_tcp().await;
        let (code, output) = run_loop(&fx, &base_url, 10).await;
        assert_eq!(code, EXIT_BUDGET, "{}", String::from_utf8_lossy(&output));
        assert_eq!(model.requests().len(), 2, "a refused call is not retried");
        let report = report(&builtin_spec(10), &output);
        assert_eq!(
            report.stopped.as_deref(),
            Some("budget task_dollars: task budget of $1.00 is spent ($1.02 used)")
        );
        assert_eq!(report.calls, 1, "the refused call used nothing");
        let text = String::from_utf8_lossy(&output);
        assert!(
            text.contains(
                "errand agent-loop: stopped: the gateway refused the model call (budget spent): \
                 task budget of $1.00 is spent"
            ),
            "{text}"
        );
    })
    .await
}

#[tokio::test]
async fn the_turn_limit_stops_the_loop() {
    bounded(async {
        let fx = Fixture::new();
        let model = FakeModel::new(
            (1..=5)
                .map(|t| tool_call(t, "list_files", json!({})))
                .collect(),
        );
        let base_url = model.serve_tcp().await;
        let (code, output) = run_loop(&fx, &base_url, 2).await;
        assert_eq!(code, EXIT_MAX_TURNS, "{}", String::from_utf8_lossy(&output));
        assert_eq!(model.requests().len(), 2);
        let report = report(&builtin_spec(2), &output);
        assert_eq!(
            report.stopped.as_deref(),
            Some("max_turns: 2 turn(s) used without a finish")
        );
        assert_eq!(report.calls, 2);
    })
    .await
}

#[tokio::test]
async fn without_the_gateway_the_loop_refuses_to_start() {
    bounded(async {
        let fx = Fixture::new();
        let (code, output) = fx.run(&builtin_invocation(3), &[]).await;
        assert_eq!(code, activities::agents::builtin::EXIT_USAGE);
        let text = String::from_utf8_lossy(&output);
        assert!(text.contains("OPENAI_BASE_URL is not set"), "{text}");
    })
    .await
}

#[tokio::test]
async fn the_builtin_loop_runs_in_the_sandbox_through_the_gateway_relay() {
    bounded(async {
        let sandbox = Sandbox::detect()
            .await
            .expect("bwrap must work on the test host");
        let fx = Fixture::new();
        let socket_dir = fx.dir.path().join("gateway");
        std::fs::create_dir(&socket_dir).unwrap();
        let socket = socket_dir.join("gateway.sock");
        let model = FakeModel::new(fixing_conversation());
        model.serve_unix(&socket).await;
        let invocation = builtin_invocation(10);
        let mut env = vec![
            (
                "ERRAND_PROMPT_FILE".to_string(),
                format!("{INPUTS_MOUNT}/prompt.md"),
            ),
            (
                "OPENAI_BASE_URL".to_string(),
                format!("http://127.0.0.1:{GATEWAY_PORT}/v1"),
            ),
            ("OPENAI_API_KEY".to_string(), "task-token-1".to_string()),
        ];
        env.extend(invocation.env.clone());
        let log = fx.dir.path().join("agent.log");
        let spec = SandboxSpec {
            workspace: fx.workspace(),
            inputs_dir: Some(fx.inputs()),
            argv: invocation.argv.clone(),
            env,
            timeout: Duration::from_secs(60),
            log_path: log.clone(),
            // An unprivileged test run cannot cap the workspace (such a run would be refused).
            limits: Limits {
                // SAFETY: a plain syscall.
                workspace_write_bytes: if unsafe { libc::geteuid() } == 0 {
                    Limits::default().workspace_write_bytes
                } else {
                    None
                },
                ..Limits::default()
            },
            network: None,
            model_gateway: Some(socket.clone()),
        };
        let outcome = sandbox
            .spawn(&spec)
            .expect("the sandbox starts")
            .wait(std::future::pending())
            .await
            .expect("the sandbox ends");
        let output = std::fs::read(&log).unwrap();
        assert_eq!(
            outcome.exit,
            Exit::Code(EXIT_FINISHED),
            "{}",
            String::from_utf8_lossy(&output)
        );
        assert_eq!(
            std::fs::read_to_string(fx.workspace().join("src/calc.py")).unwrap(),
            "def add(a, b):\n    return a + b\n",
            "the fix is merged back into the workspace"
        );
        check_fixing_requests(&model.requests());
        // As run_agent reads it: from the log, without following symlinks.
        let report = agents::report_from_log(
            &builtin_spec(10),
            fx.dir.path(),
            "agent.log",
            outcome.output_bytes,
            &outcome.output_tail,
        )
        .await
        .expect("a report");
        assert_eq!(report.calls, 5);
        assert_eq!(report.usage.input_tokens, 1250);
        assert_eq!(
            report.summary.as_deref(),
            Some("add subtracted; it adds now")
        );
        assert!(LOG_CAP_BYTES > output.len() as u64);
    })
    .await
}
