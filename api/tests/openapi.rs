//! The committed `api/openapi.json` is the API's contract: it must equal the document the code
//! generates. Regenerate with `UPDATE_OPENAPI=1 cargo test -p api --test openapi`.

use std::path::Path;

#[test]
fn committed_openapi_json_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let fresh = serde_json::to_string_pretty(&api::openapi()).expect("the document serializes");
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, format!("{fresh}\n")).expect("api/openapi.json is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    // The file ends with a newline; the document is otherwise compared byte for byte.
    assert!(
        committed.strip_suffix('\n').unwrap_or(&committed) == fresh,
        "api/openapi.json is stale or missing: regenerate it with \
         `UPDATE_OPENAPI=1 cargo test -p api --test openapi` and commit it"
    );
}

#[test]
fn every_route_is_documented() {
    let doc = api::openapi();
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("get", item.get.is_some()),
            ("post", item.post.is_some()),
            ("put", item.put.is_some()),
            ("delete", item.delete.is_some()),
            ("patch", item.patch.is_some()),
        ];
        for (method, present) in methods {
            if present {
                documented.push(format!("{method} {path}"));
            }
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        [
            "delete /v1/schedules/{id}",
            "get /healthz",
            "get /metrics",
            "get /openapi.json",
            "get /readyz",
            "get /v1/budgets",
            "get /v1/cost",
            "get /v1/crashes",
            "get /v1/crashes/{fingerprint}",
            "get /v1/cron",
            "get /v1/playbooks",
            "get /v1/playbooks/{name}",
            "get /v1/playbooks/{name}/estimate",
            "get /v1/schedules",
            "get /v1/schedules/{id}",
            "get /v1/stats",
            "get /v1/tasks",
            "get /v1/tasks/{id}",
            "get /v1/tasks/{id}/cost",
            "get /v1/tasks/{id}/events",
            "get /v1/tasks/{id}/history",
            "get /v1/tasks/{id}/report",
            "post /v1/crashes",
            "post /v1/playbooks/{name}/runs",
            "post /v1/schedules",
            "post /v1/schedules/{id}/pause",
            "post /v1/schedules/{id}/resume",
            "post /v1/schedules/{id}/trigger",
            "post /v1/tasks",
            "post /v1/tasks/{id}/cancel",
            "post /v1/tasks/{id}/review",
            "post /v1/webhooks/github",
            "put /v1/budgets",
        ]
    );
}

#[test]
fn every_error_answer_has_the_error_shape() {
    let doc = serde_json::to_value(api::openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
