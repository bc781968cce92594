//! Parsing, validating and resolving whole playbooks.

use std::collections::BTreeMap;

use super::*;
use crate::policy::Policy;

const FIX: &str = "\
name: fix
description: fix a test
outcome: the test passes
inputs:
  test:
    description: the failing test
  style:
    default: minimal
procedure: Fix {{test}} with a {{style}} change.
verification:
  checks: ['sh test.sh {{test}}']
budget:
  max_rounds: 3
  time_per_round_secs: 60
";

/// Every section, for the happy path.
const FULL: &str = "\
name: full
description: everything
outcome: done
inputs:
  test:
    type: string
    description: the failing test command
  attempts:
    type: integer
    default: 2
  strict:
    type: boolean
    default: true
  level:
    type: enum
    values: [patch, minor]
    default: patch
  file:
    type: repo_path
    required: false
procedure: |
  Run {{test}} {{attempts}} times ({{strict}}, {{level}}, {{file}}).
agent:
  kind: command
  command: [scripted-agent]
boundary:
  allowed_paths: ['src/**', 'tests/**']
  forbidden_paths: ['src/generated/**']
  dependencies: allow
  max_changed_files: 10
  max_changed_lines: 300
  network: [crates.io, 'static.crates.io:443']
verification:
  setup: ['make deps']
  checks:
    - '{{test}}'
  red_green:
    commands: ['{{test}}']
    changed_tests: 'sh {file}'
  test_paths: ['tests/**']
postconditions:
  - adds_tests
  - touches: ['src/**']
forbidden_actions: [delete_tests, skip_tests]
budget:
  max_rounds: 4
  time_per_round_secs: 300
  dollars: 2.5
  tokens: 100000
review:
  merge:
    auto_when:
      paths: ['tests/**']
      max_changed_lines: 20
  timeout_secs: 3600
retry:
  max_attempts: 5
schedules:
  - cron: '0 6 * * 1'
    repo: https://example.com/r.git
    inputs:
      test: sh test.sh
triggers:
  github:
    labels: ['errand:fix']
    input: test
  crash:
    input: test
";

fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, InputValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), InputValue::from(*v)))
        .collect()
}

#[test]
fn resolves_inputs_and_defaults() {
    let pb = Playbook::parse("fix.yaml", FIX).unwrap();
    let r = pb.resolve(FIX, &inputs(&[("test", "test_add")])).unwrap();
    assert_eq!(r.instructions, "Fix test_add with a minimal change.");
    assert_eq!(r.playbook.content_hash, content_hash(FIX));
    assert_eq!(r.checks, ["sh test.sh test_add"]);
    assert_eq!(r.max_rounds, 3);
    assert_eq!(
        r.policy,
        Policy::default(),
        "no policy sections: the defaults"
    );
}

#[test]
fn every_section_parses_and_resolves_into_the_policy() {
    let pb = Playbook::parse("playbooks/full.yaml", FULL).unwrap();
    let r = pb
        .resolve(FULL, &inputs(&[("test", "sh t.sh"), ("attempts", "3")]))
        .unwrap();
    assert_eq!(r.instructions, "Run sh t.sh 3 times (true, patch, ).\n");
    assert_eq!(r.inputs["attempts"], InputValue::Integer(3));
    assert_eq!(r.review_timeout_secs, Some(3600));
    let p = &r.policy;
    assert_eq!(p.boundary.dependencies, Permission::Allow);
    assert_eq!(p.boundary.max_changed_lines, Some(Positive(300)));
    assert_eq!(p.boundary.network, ["crates.io", "static.crates.io:443"]);
    assert_eq!(
        p.forbidden_actions,
        [ForbiddenAction::DeleteTests, ForbiddenAction::SkipTests]
    );
    assert_eq!(p.red_green.as_ref().unwrap().commands, ["sh t.sh"]);
    assert_eq!(
        p.red_green.as_ref().unwrap().changed_tests.as_deref(),
        Some("sh {file}")
    );
    assert_eq!(p.setup, ["make deps"]);
    assert_eq!(p.merge.name(), "auto_when");
    assert_eq!(p.retry.max_attempts, Positive(5));
    assert_eq!(p.max_dollars, Some(Dollars(2.5)));
    assert_eq!(pb.schedules[0].timezone, "UTC");
    // The policy round-trips through a payload unchanged.
    let json = serde_json::to_value(p).unwrap();
    assert_eq!(&serde_json::from_value::<Policy>(json).unwrap(), p);
}

#[test]
fn input_errors_name_the_input() {
    let pb = Playbook::parse("fix.yaml", FIX).unwrap();
    assert_eq!(
        pb.resolve(FIX, &inputs(&[])),
        Err(PlaybookError::MissingInput("test".into()))
    );
    assert_eq!(
        pb.resolve(FIX, &inputs(&[("test", "t"), ("tset", "t")])),
        Err(PlaybookError::UnknownInput("tset".into()))
    );
    let full = Playbook::parse("full.yaml", FULL).unwrap();
    assert_eq!(
        full.resolve(FULL, &inputs(&[("test", "t"), ("level", "major")]))
            .unwrap_err()
            .to_string(),
        "inputs.level: expected one of patch, minor, got \"major\""
    );
}

/// Each bad variation of a valid playbook, and the error it must give.
#[test]
fn errors_name_file_line_column_field_and_expectation() {
    let cases = [
        (
            FIX.replace("max_rounds: 3", "max_rounds: three"),
            r#"fix.yaml:13:15: budget.max_rounds: expected a positive integer, got "three""#,
        ),
        (
            FIX.replace("max_rounds: 3", "max_rounds: 0"),
            "fix.yaml:13:15: budget.max_rounds: expected a positive integer, got 0",
        ),
        (
            FIX.replace("max_rounds: 3", "max_rounds: 500"),
            "fix.yaml:13:3: budget.max_rounds: expected at most 100 rounds, got 500",
        ),
        (
            FIX.replace("outcome:", "outcomes:"),
            "fix.yaml:3:1: unknown field `outcomes`, expected one of",
        ),
        (
            FIX.replace("name: fix", "name: fixed"),
            r#"fix.yaml:1:1: name: expected "fix", the file's name, got "fixed""#,
        ),
        (
            FIX.replace("{{style}} change", "{{styl}} change"),
            "fix.yaml:9:1: procedure: unknown input {{styl}}: declared inputs are style, test",
        ),
        (
            FIX.replace("'sh test.sh {{test}}'", "'sh test.sh {{tst}}'"),
            "fix.yaml:11:3: verification.checks[0]: unknown input {{tst}}",
        ),
        (
            FIX.replace(
                "  checks: ['sh test.sh {{test}}']",
                "  checks:\n    - make\n    - ' '",
            ),
            "fix.yaml:13:5: verification.checks[1]: expected a command, got a blank line",
        ),
        (
            FIX.replace(
                "    default: minimal",
                "    default: minimal\n    type: integer",
            ),
            r#"fix.yaml:8:5: inputs.style.default: expected an integer, got "minimal""#,
        ),
        (
            FIX.replace("    default: minimal", "    type: enum"),
            "fix.yaml:7:3: inputs.style.values: expected the allowed values of an enum input",
        ),
        (
            FIX.replace("    default: minimal", "    type: text"),
            "fix.yaml:8:11: inputs.style.type: unknown variant `text`, expected one of",
        ),
        (
            format!("{FIX}boundary:\n  allowed_paths: ['src/[oops']\n"),
            r#"fix.yaml:16:19: boundary.allowed_paths[0]: invalid glob "src/[oops""#,
        ),
        (
            format!("{FIX}boundary:\n  max_changed_files: -1\n"),
            "fix.yaml:16:22: boundary.max_changed_files: expected a positive integer, got -1",
        ),
        (
            format!("{FIX}forbidden_actions: [skip_test]\n"),
            "fix.yaml:15:21: forbidden_actions[0]: unknown variant `skip_test`, expected one of",
        ),
        (
            format!("{FIX}review:\n  merge: sometimes\n"),
            r#"fix.yaml:16:10: review.merge: expected never, on_approval or auto_when: {...}, got "sometimes""#,
        ),
        (
            format!("{FIX}schedules:\n  - cron: '0 6 * *'\n    repo: r\n"),
            "fix.yaml:16:11: schedules[0].cron: expected 5 cron fields",
        ),
        (
            format!("{FIX}schedules:\n  - cron: '@daily'\n    repo: r\n"),
            "fix.yaml:16:3: schedules[0].inputs: expected a value for the required input test",
        ),
        (
            format!("{FIX}triggers:\n  crash:\n    input: crash\n"),
            r#"fix.yaml:17:5: triggers.crash.input: expected a declared input, got "crash""#,
        ),
        (
            format!("{FIX}agent:\n  kind: builtin\n  model: m\n  max_turns: 0\n"),
            "fix.yaml:18:3: agent.max_turns: expected 1 to 1000, got 0",
        ),
        (
            format!("{FIX}agent:\n  kind: claude_code\n  program: /opt/claude\n"),
            r#"fix.yaml:17:3: agent.program: expected a name on the sandbox's PATH or an absolute path under /usr, got "/opt/claude""#,
        ),
        (
            format!("{FIX}agent:\n  kind: cursor\n"),
            "fix.yaml:16:9: agent.kind: unknown variant `cursor`",
        ),
        (
            format!("{FIX}verification2: {{}}\n"),
            "fix.yaml:15:1: unknown field `verification2`",
        ),
        (
            "name: [".to_string(),
            "fix.yaml:1:7: name: invalid type: sequence, expected a string",
        ),
        (
            "name: fix\n  bad: [indent".to_string(),
            "fix.yaml:2:6: mapping values are not allowed",
        ),
        ("".to_string(), "fix.yaml:1:1: missing field `name`"),
    ];
    for (content, want) in cases {
        let err = Playbook::parse("fix.yaml", &content)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(want),
            "want {want}\n got {err}\nin\n{content}"
        );
    }
}

#[test]
fn a_playbook_chooses_its_agent_adapter() {
    let with_agent = |agent: &str| format!("{FIX}agent:\n{agent}");
    let cases = [
        (
            "  kind: claude_code\n  model: sonnet\n  max_turns: 30\n",
            AgentSpec::ClaudeCode {
                model: Some("sonnet".into()),
                max_turns: Some(30),
                program: None,
            },
        ),
        (
            "  kind: codex\n",
            AgentSpec::Codex {
                model: None,
                program: None,
            },
        ),
        (
            "  kind: builtin\n  model: gpt-4.1\n",
            AgentSpec::Builtin {
                model: "gpt-4.1".into(),
                max_turns: crate::task::DEFAULT_MAX_TURNS,
            },
        ),
    ];
    for (agent, want) in cases {
        let content = with_agent(agent);
        let pb = Playbook::parse("fix.yaml", &content).unwrap_or_else(|e| panic!("{e}"));
        let r = pb.resolve(&content, &inputs(&[("test", "t")])).unwrap();
        assert_eq!(r.agent, Some(want));
    }
}
