//! Plain records and Sentry events: parsing, and agreement with the equivalent raw text.

use serde_json::{Value, json};

use super::fp;
use crate::crash::{CrashInput, CrashInputError, CrashReport, Fingerprint, Language, fingerprint};

fn from_json(value: Value) -> Fingerprint {
    let report = CrashReport::from_json(value.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{e}: {value}"));
    fingerprint(&report)
}

const PYTHON: &str = r#"Traceback (most recent call last):
  File "/srv/app/app/main.py", line 40, in <module>
  File "/srv/app/app/orders.py", line 12, in run
  File "/srv/app/app/pricing.py", line 88, in compute
  File "/usr/lib/python3.11/json/decoder.py", line 355, in raw_decode
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
"#;

#[test]
fn python_text_sentry_event_and_record_agree() {
    let text = fp(PYTHON);
    let frame = |module: &str, function: &str, path: &str, in_app: bool| json!({"function": function, "module": module, "filename": path, "abs_path": format!("/opt/app/{path}"), "lineno": 7, "in_app": in_app, "vars": {"x": 1}});
    let sentry = from_json(json!({
        "event_id": "fc6d8c0c43fc4630ad850ee518f1b9d0",
        "platform": "python",
        "release": "shop@2.0.1",
        "environment": "production",
        "timestamp": 1714557600.25,
        "tags": [["server", "web-3"], ["region", "eu"]],
        "contexts": {"os": {"name": "Linux"}},
        "sdk": {"name": "sentry.python", "version": "2.3.1"},
        "exception": {"values": [{
            "type": "JSONDecodeError",
            "module": "json.decoder",
            "value": "Expecting value: line 1 column 1 (char 0)",
            "mechanism": {"type": "excepthook", "handled": false},
            "stacktrace": {"frames": [
                frame("app.main", "<module>", "app/main.py", true),
                frame("app.orders", "run", "app/orders.py", true),
                frame("app.pricing", "compute", "app/pricing.py", true),
                frame("json.decoder", "JSONDecoder.raw_decode", "json/decoder.py", false),
            ]}
        }]}
    }));
    let record = from_json(json!({
        "service": "shop-api",
        "environment": "staging",
        "release": "2.0.2",
        "message": "json.decoder.JSONDecodeError: Expecting value",
        "frames": [
            {"function": "raw_decode", "file": "/usr/lib/python3.12/json/decoder.py", "line": 353},
            {"function": "compute", "file": "app/pricing.py", "line": 90},
            {"function": "run", "module": "app.orders", "line": 12},
            {"function": "<module>", "file": "app/main.py", "in_app": true}
        ],
        "timestamp": "2024-05-01T10:00:00Z",
        "tags": {"pod": "shop-api-7d9f", "attempt": 2}
    }));
    assert_eq!(
        text.frames,
        ["pricing.compute", "orders.run", "main.<module>"]
    );
    assert_eq!(sentry.hash, text.hash, "sentry {sentry:?} vs text {text:?}");
    assert_eq!(record.hash, text.hash, "record {record:?} vs text {text:?}");
}

#[test]
fn java_sentry_chain_counts_its_root_cause_like_text() {
    let text = fp("java.lang.IllegalStateException: load failed
\tat com.shop.Service.load(Service.java:20)
Caused by: java.sql.SQLException: refused
\tat com.shop.db.Pool.acquire(Pool.java:41)
\tat com.shop.Service.load(Service.java:18)
");
    let frame = |module: &str, function: &str| json!({"module": module, "function": function, "in_app": true});
    let sentry = from_json(json!({
        "platform": "java",
        "exception": {"values": [
            {"type": "SQLException", "module": "java.sql", "value": "refused",
             "stacktrace": {"frames": [frame("com.shop.Service", "load"), frame("com.shop.db.Pool", "acquire")]}},
            {"type": "IllegalStateException", "module": "java.lang", "value": "load failed",
             "stacktrace": {"frames": [frame("com.shop.Service", "load")]}}
        ]}
    }));
    assert_eq!(text.crash_type, "java.sql.SQLException");
    assert_eq!(sentry.hash, text.hash, "sentry {sentry:?} vs text {text:?}");
}

#[test]
fn sentry_exception_ids_find_the_deepest_cause() {
    let exception = |ty: &str, id: u64, parent: Option<u64>| {
        json!({"type": ty, "value": "x", "mechanism": {"exception_id": id, "parent_id": parent},
               "stacktrace": {"frames": [{"function": "handler", "module": "app.views", "in_app": true}]}})
    };
    let event = json!({"platform": "python", "exception": {"values": [
        exception("AppError", 0, None), exception("OSError", 1, Some(0)), exception("TimeoutError", 2, Some(1))
    ]}});
    assert_eq!(from_json(event).crash_type, "TimeoutError");
}

#[test]
fn go_rust_and_javascript_events_agree_with_their_text() {
    let go_text = fp(
        "panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:\nmain.(*Cart).Item(0xc0, 0x5)\n\t/app/cart.go:42 +0x1d\nmain.main()\n\t/app/main.go:9 +0x25\n",
    );
    let go_event = from_json(json!({"platform": "go", "exception": [{
    "type": "runtime.boundsError", "value": "runtime error: index out of range [7] with length 2",
    "stacktrace": {"frames": [
        {"function": "main", "module": "main", "abs_path": "/build/main.go", "in_app": true},
        {"function": "(*Cart).Item", "module": "main", "abs_path": "/build/cart.go", "in_app": true}
    ]}}]}));
    assert_eq!(
        go_event.hash, go_text.hash,
        "go {go_event:?} vs {go_text:?}"
    );

    let rust_text = fp(
        "thread 'main' panicked at src/lib.rs:3:5:\ncalled `Option::unwrap()` on a `None` value\nstack backtrace:\n   0: rust_begin_unwind\n   1: core::option::unwrap_failed\n   2: shop::parse\n             at ./src/lib.rs:3:5\n   3: shop::main\n",
    );
    let rust_event = from_json(json!({"platform": "native", "exception": {"values": [{
    "type": "panic", "value": "called `Option::unwrap()` on a `None` value",
    "stacktrace": {"frames": [
        {"function": "shop::main", "filename": "src/main.rs"},
        {"function": "shop::parse", "filename": "src/lib.rs"},
        {"function": "core::option::unwrap_failed", "filename": "/rustc/abc/library/core/src/option.rs"}
    ]}}]}}));
    assert_eq!(rust_event.language, Language::Rust);
    assert_eq!(
        rust_event.hash, rust_text.hash,
        "rust {rust_event:?} vs {rust_text:?}"
    );

    let js_text = fp(
        "TypeError: x is undefined\n    at getUser (/app/src/users.js:14:22)\n    at Object.handler (/app/src/routes.js:8:18)\n    at Layer.handle (/app/node_modules/express/lib/router/layer.js:95:5)\n",
    );
    let js_event = from_json(json!({"platform": "node", "exception": {"values": [{
    "type": "TypeError", "value": "Cannot read properties of undefined",
    "stacktrace": {"frames": [
        {"function": "Layer.handle", "filename": "/srv/node_modules/express/lib/router/layer.js", "in_app": false},
        {"function": "Object.handler", "filename": "app:///src/routes.js", "in_app": true},
        {"function": "getUser", "filename": "app:///src/users.js", "in_app": true}
    ]}}]}}));
    assert_eq!(
        js_event.hash, js_text.hash,
        "js {js_event:?} vs {js_text:?}"
    );
}

#[test]
fn a_record_with_a_stacktrace_is_its_text_and_context_never_counts() {
    let record = |service: &str, release: &str| {
        json!({"service": service, "release": release, "environment": "prod", "timestamp": "2024-05-01T10:00:00Z",
               "message": "JSONDecodeError", "stacktrace": PYTHON, "tags": {"host": service}})
    };
    assert_eq!(from_json(record("api", "1.0")).hash, fp(PYTHON).hash);
    assert_eq!(from_json(record("worker", "2.5")).hash, fp(PYTHON).hash);
    let report = CrashReport::from_json(record("api", "1.0").to_string().as_bytes()).unwrap();
    assert_eq!(report.context.service.as_deref(), Some("api"));
    assert_eq!(
        report.context.tags.0.get("host").map(String::as_str),
        Some("api")
    );
}

#[test]
fn message_only_inputs_fingerprint_their_scrubbed_message() {
    let a = from_json(
        json!({"message": "ValueError: bad order id 123 from 10.0.0.7 at 2024-05-01T10:00:00Z"}),
    );
    let b = from_json(
        json!({"message": "ValueError: bad order id 98765 from 10.0.0.9 at 2024-06-02T11:11:11Z"}),
    );
    assert_eq!(a.hash, b.hash);
    assert_eq!(a.crash_type, "ValueError");
    let c = from_json(json!({"message": "ValueError: missing order"}));
    assert_ne!(a.hash, c.hash);
    let sentry =
        from_json(json!({"event_id": "0", "message": {"formatted": "disk full on /var/lib/x"}}));
    assert!(sentry.title.contains("disk full"), "{sentry:?}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let err = |body: &str| CrashReport::from_json(body.as_bytes()).unwrap_err();
    assert!(
        matches!(err("{\"message\": \"x\", \"stack_trace\": \"y\"}"), CrashInputError::Json(m) if m.contains("unknown field"))
    );
    assert!(matches!(err("[1, 2]"), CrashInputError::Json(_)));
    assert!(matches!(err("{not json"), CrashInputError::Json(_)));
    assert!(matches!(
        err("{\"tags\": 5, \"message\": \"x\"}"),
        CrashInputError::Json(_)
    ));
    assert_eq!(err("{}"), CrashInputError::Empty);
    assert_eq!(
        err("{\"service\": \"api\", \"message\": \"  \"}"),
        CrashInputError::Empty
    );
    assert_eq!(
        err("{\"event_id\": \"1\", \"exception\": {\"values\": []}}"),
        CrashInputError::Empty
    );
}

#[test]
fn inputs_round_trip_through_serde() {
    let body = json!({"platform": "python", "tags": {"a": "b"}, "exception": {"values": [{"type": "E", "value": "v"}]}});
    let input: CrashInput = serde_json::from_value(body).unwrap();
    assert!(matches!(input, CrashInput::Sentry(_)));
    let again: CrashInput = serde_json::from_value(serde_json::to_value(&input).unwrap()).unwrap();
    assert_eq!(again, input);
    let report = CrashReport::from_input(&input).unwrap();
    let stored: CrashReport =
        serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
    assert_eq!(stored, report);
}
