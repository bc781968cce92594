//! Fingerprints of real crash logs (tests/fixtures/crashes, from syzkaller and ClusterFuzz; see
//! its README for sources and licenses): files of one group in labels.json must share a
//! fingerprint, files of different groups must not.

use std::path::PathBuf;

use serde::Deserialize;
use workflows::crash::{CrashReport, Fingerprint, Language, fingerprint};

#[derive(Deserialize)]
struct Label {
    file: String,
    group: String,
    language: String,
}

struct Case {
    label: Label,
    fingerprint: Fingerprint,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crashes")
}

fn cases() -> Vec<Case> {
    let labels = std::fs::read_to_string(fixtures().join("labels.json")).expect("labels.json");
    let labels: Vec<Label> = serde_json::from_str(&labels).expect("labels.json parses");
    assert!(
        labels.len() >= 18,
        "expected the 18 labelled logs, found {}",
        labels.len()
    );
    labels
        .into_iter()
        .map(|label| {
            let bytes = std::fs::read(fixtures().join(&label.file)).expect("a labelled log");
            let report =
                CrashReport::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", label.file));
            Case {
                fingerprint: fingerprint(&report),
                label,
            }
        })
        .collect()
}

/// file -> group -> title -> hash prefix, to see at a glance what went wrong.
fn table(cases: &[Case]) -> String {
    let mut out = String::new();
    for c in cases {
        out.push_str(&format!(
            "{:<48} {:<28} {:<12} {:<80} {}\n",
            c.label.file,
            c.label.group.chars().take(28).collect::<String>(),
            c.fingerprint.language.as_str(),
            c.fingerprint.title,
            &c.fingerprint.hash[..12]
        ));
    }
    out
}

#[test]
fn same_group_same_fingerprint_different_group_different_fingerprint() {
    let cases = cases();
    let mut failures = Vec::new();
    for (i, a) in cases.iter().enumerate() {
        for b in &cases[i + 1..] {
            let same_group = a.label.group == b.label.group;
            let same_hash = a.fingerprint.hash == b.fingerprint.hash;
            if same_group && !same_hash {
                failures.push(format!(
                    "{} and {} are one crash but fingerprint differently",
                    a.label.file, b.label.file
                ));
            }
            if !same_group && same_hash {
                failures.push(format!(
                    "{} and {} are different crashes but share a fingerprint",
                    a.label.file, b.label.file
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        failures.join("\n"),
        table(&cases)
    );
}

#[test]
fn each_log_is_read_as_its_language() {
    let cases = cases();
    let expected = |label: &str| match label {
        "go" => Language::Go,
        "c (linux kernel)" => Language::Kernel,
        "c++" => Language::Native,
        "python" => Language::Python,
        "java" => Language::Java,
        "rust" => Language::Rust,
        other => panic!("unexpected language label {other}"),
    };
    let wrong: Vec<String> = cases
        .iter()
        .filter(|c| c.fingerprint.language != expected(&c.label.language))
        .map(|c| {
            format!(
                "{}: labelled {}, read as {}",
                c.label.file,
                c.label.language,
                c.fingerprint.language.as_str()
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{}\n\n{}",
        wrong.join("\n"),
        table(&cases)
    );
}

#[test]
fn titles_name_the_crash_and_its_code() {
    let cases = cases();
    // What upstream's own de-duplication keys (syzkaller titles, ClusterFuzz crash states) name.
    let expected = [
        ("gvisor-watchdog-stuck-tasks", "doAction"),
        ("syz-manager-httpPrio-index-out-of-range", "httpPrio"),
        ("go-vm-execute-index-out-of-range", "Pop"),
        ("gvisor-go-runtime-out-of-memory", "out of memory"),
        ("linux-corrupted-stack-end-wb_workfn", "wb_workfn"),
        ("linux-corrupted-stack-end-sys_socket", "sys_socket"),
        (
            "chromium-ash-WindowGrid-PositionWindows-fpe",
            "WindowGrid::PositionWindows",
        ),
        ("python-tarfile-gzip-EOFError", "EOFError"),
        (
            "java-JsonSanitizerFuzzer-gson-MalformedJsonException",
            "MalformedJsonException",
        ),
        (
            "android-systemui-SecurityControllerImpl-ConcurrentModificationException",
            "SecurityControllerImpl.fireCallbacks",
        ),
        ("rust-libra-get_available_port-panic", "get_available_port"),
        ("rust-wasmtime-spectest-unwrap-panic", "spectest"),
        ("rust-mp4parse-TryVec-reserve-oom", "TryVec"),
    ];
    let mut wrong = Vec::new();
    for (group, needle) in expected {
        let members: Vec<&Case> = cases.iter().filter(|c| c.label.group == group).collect();
        assert!(!members.is_empty(), "no fixture in group {group}");
        for c in members {
            if !c.fingerprint.title.contains(needle) {
                wrong.push(format!(
                    "{}: title {:?} does not mention {needle:?}",
                    c.label.file, c.fingerprint.title
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{}\n\n{}",
        wrong.join("\n"),
        table(&cases)
    );
}
