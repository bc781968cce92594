//! The shipped playbooks in `playbooks/` parse, validate and resolve, each with the policy it
//! promises; and `playbooks/schema.json` is the schema the types generate. Regenerate it with
//! `UPDATE_PLAYBOOK_SCHEMA=1 cargo test -p workflows --test playbooks`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use workflows::playbook::{
    ForbiddenAction, InputValue, MergePolicy, Permission, Playbook, PlaybookError, Postcondition,
    Resolved, file_schema,
};

fn playbooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks")
}

fn load(name: &str) -> (Playbook, String) {
    let content = std::fs::read_to_string(playbooks_dir().join(format!("{name}.yaml")))
        .unwrap_or_else(|e| panic!("playbooks/{name}.yaml: {e}"));
    let playbook = Playbook::parse(&format!("playbooks/{name}.yaml"), &content)
        .unwrap_or_else(|e| panic!("{e}"));
    (playbook, content)
}

fn resolve(name: &str, inputs: &[(&str, &str)]) -> Result<Resolved, PlaybookError> {
    let (playbook, content) = load(name);
    let inputs: BTreeMap<String, InputValue> = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), InputValue::from(*v)))
        .collect();
    playbook.resolve(&content, &inputs)
}

#[test]
fn committed_schema_json_is_fresh() {
    let path = playbooks_dir().join("schema.json");
    let fresh = serde_json::to_string_pretty(&file_schema()).unwrap();
    if std::env::var_os("UPDATE_PLAYBOOK_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, format!("{fresh}\n")).expect("playbooks/schema.json is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.strip_suffix('\n').unwrap_or(&committed) == fresh,
        "playbooks/schema.json is stale or missing: regenerate it with \
         `UPDATE_PLAYBOOK_SCHEMA=1 cargo test -p workflows --test playbooks` and commit it"
    );
}

#[test]
fn every_shipped_playbook_parses_and_validates() {
    let mut names: Vec<String> = std::fs::read_dir(playbooks_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".yaml").map(str::to_string)
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dependency-bump",
            "docs-refresh",
            "fix-failing-test",
            "fix-flaky-test",
            "investigate-crash",
            "issue-to-pr"
        ]
    );
    for name in names {
        let (playbook, _) = load(&name);
        assert!(
            playbook.problems().is_empty(),
            "{name}: {:?}",
            playbook.problems()
        );
        assert_eq!(playbook.name, name);
        // Every shipped playbook forbids every kind of test tampering and CI edits.
        assert_eq!(playbook.forbidden_actions, ForbiddenAction::all(), "{name}");
        assert_eq!(playbook.boundary.ci_config, Permission::Forbid, "{name}");
    }
}

#[test]
fn fix_failing_test_proves_red_green_on_the_named_test() {
    let r = resolve("fix-failing-test", &[("test", "sh test.sh")]).unwrap();
    assert_eq!(r.checks, ["sh test.sh"]);
    assert_eq!(r.policy.red_green.unwrap().commands, ["sh test.sh"]);
    assert_eq!(r.policy.merge, MergePolicy::OnApproval);
    assert!(r.instructions.contains("`sh test.sh` fails"));
}

#[test]
fn investigate_crash_adds_a_reproduction_and_never_merges() {
    let r = resolve("investigate-crash", &[("crash", "panic: division by zero")]).unwrap();
    assert!(
        r.instructions
            .contains("<crash-report>\npanic: division by zero\n</crash-report>")
    );
    let red_green = r.policy.red_green.unwrap();
    assert_eq!(red_green.changed_tests.as_deref(), Some("sh {file}"));
    assert_eq!(r.policy.postconditions, [Postcondition::AddsTests]);
    assert_eq!(r.policy.merge, MergePolicy::Never);
    let (playbook, _) = load("investigate-crash");
    assert_eq!(playbook.triggers.crash.unwrap().input, "crash");
    // The test runner comes from an input, so it is checked once filled in.
    let err = resolve(
        "investigate-crash",
        &[("crash", "c"), ("run_test", "pytest")],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("inputs.run_test: expected a command with {file}"),
        "{err}"
    );
}

#[test]
fn dependency_bump_may_change_dependencies_only() {
    let r = resolve(
        "dependency-bump",
        &[("package", "leftpad"), ("version", "1.1.0")],
    )
    .unwrap();
    assert_eq!(r.policy.boundary.dependencies, Permission::Allow);
    assert_eq!(r.policy.boundary.ci_config, Permission::Forbid);
    assert!(r.instructions.contains("`leftpad` to version `1.1.0`"));
}

#[test]
fn fix_flaky_test_runs_the_test_many_times() {
    let r = resolve("fix-flaky-test", &[("test", "sh t.sh"), ("runs", "5")]).unwrap();
    assert!(r.checks[0].contains(r#"[ "$i" -lt 5 ]"#), "{}", r.checks[0]);
    assert_eq!(r.inputs["runs"], InputValue::Integer(5));
    let err = resolve("fix-flaky-test", &[("test", "t"), ("runs", "many")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"inputs.runs: expected an integer, got "many""#
    );
}

#[test]
fn docs_refresh_changes_docs_only_and_merges_small_changes_itself() {
    let r = resolve("docs-refresh", &[("checks", "sh check-docs.sh")]).unwrap();
    let allowed: Vec<&str> = r
        .policy
        .boundary
        .allowed_paths
        .iter()
        .map(|g| g.as_str())
        .collect();
    assert!(allowed.contains(&"docs/**") && allowed.contains(&"**/*.md"));
    let MergePolicy::AutoWhen(conditions) = &r.policy.merge else {
        panic!("docs-refresh merges automatically: {:?}", r.policy.merge);
    };
    assert_eq!(conditions.max_changed_lines.map(|m| m.get()), Some(200));
}

#[test]
fn issue_to_pr_quotes_the_issue_and_takes_github_labels() {
    let r = resolve("issue-to-pr", &[("issue", "Add a sub operation")]).unwrap();
    assert!(
        r.instructions
            .contains("<issue>\nAdd a sub operation\n</issue>")
    );
    let (playbook, _) = load("issue-to-pr");
    let github = playbook.triggers.github.unwrap();
    assert_eq!(
        (github.labels, github.input.as_deref()),
        (vec!["errand".to_string()], Some("issue"))
    );
}
