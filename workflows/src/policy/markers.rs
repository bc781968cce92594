//! What test tampering looks like, line by line, per language: skip and focus markers,
//! assertions, trivially true assertions, lint suppressions, and coverage or lint thresholds.
//!
//! These are heuristics over single lines, chosen to be specific (a false finding costs the
//! agent a round; a missed one is still in front of the reviewer).

/// The language of a file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    Go,
    Jvm,
    Ruby,
    Shell,
    CSharp,
    /// Not a language we know; only generic markers apply.
    Other,
    /// Prose and data (markdown, text, JSON, ...): no code markers.
    Text,
}

impl Language {
    pub fn of(path: &str) -> Language {
        let name = path.rsplit('/').next().unwrap_or(path);
        let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match extension.as_deref() {
            Some("rs") => Self::Rust,
            Some("py") => Self::Python,
            Some("js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" | "vue" | "svelte") => {
                Self::JavaScript
            }
            Some("go") => Self::Go,
            Some("java" | "kt" | "kts" | "scala" | "groovy") => Self::Jvm,
            Some("rb") => Self::Ruby,
            Some("sh" | "bash" | "zsh" | "bats") => Self::Shell,
            Some("cs") => Self::CSharp,
            Some(
                "md" | "markdown" | "rst" | "txt" | "adoc" | "json" | "yaml" | "yml" | "toml"
                | "ini" | "cfg" | "csv" | "lock" | "html" | "css" | "svg" | "xml",
            ) => Self::Text,
            _ => Self::Other,
        }
    }

    pub fn is_code(self) -> bool {
        self != Self::Text
    }
}

/// Whether `line` marks a test as skipped, expected to fail, or focused (which skips the
/// others). `in_test_file`: an early `exit 0` in a shell test counts too.
pub fn is_skip_marker(language: Language, line: &str, in_test_file: bool) -> bool {
    let line = line.trim();
    let any = |tokens: &[&str]| tokens.iter().any(|t| has_token(line, t));
    match language {
        Language::Rust => any(&["#[ignore"]),
        Language::Python => any(&[
            "@pytest.mark.skip",
            "@pytest.mark.xfail",
            "pytest.skip(",
            "pytest.xfail(",
            "@unittest.skip",
            "@skip(",
            ".skipTest(",
            "@unittest.expectedFailure",
            "@expectedFailure",
        ]),
        Language::JavaScript => any(&[
            ".skip(",
            "xit(",
            "xdescribe(",
            "xtest(",
            ".only(",
            "fit(",
            "fdescribe(",
            ".todo(",
        ]),
        Language::Go => any(&["t.Skip(", "t.SkipNow(", "t.Skipf(", "b.Skip("]),
        Language::Jvm => any(&["@Disabled", "@Ignore"]),
        Language::Ruby => any(&["skip ", "skip(", "xit ", "xit(", "pending ", "pending("]),
        Language::CSharp => any(&["[Ignore", "Skip ="]),
        Language::Shell => in_test_file && (line == "exit 0" || line == "exit"),
        Language::Other | Language::Text => false,
    }
}

/// Whether `line` asserts something, for counting assertions per test file.
pub fn is_assertion(language: Language, line: &str) -> bool {
    let line = line.trim();
    if line.starts_with("//") || line.starts_with('#') && language != Language::Rust {
        return false;
    }
    let any = |tokens: &[&str]| tokens.iter().any(|t| has_token(line, t));
    match language {
        Language::Rust => any(&[
            "assert!",
            "assert_eq!",
            "assert_ne!",
            "assert_matches!",
            "prop_assert",
            "debug_assert",
        ]),
        Language::Python => {
            line.starts_with("assert ") || any(&[".assert", "pytest.raises(", "assert_"])
        }
        Language::JavaScript => any(&["expect(", "assert(", "assert.", ".should"]),
        Language::Go => any(&["t.Error", "t.Fatal", "assert.", "require."]),
        Language::Jvm | Language::CSharp => any(&["assert", "Assert.", "Assertions."]),
        Language::Ruby => any(&["expect(", "expect {", "assert", ".should"]),
        Language::Shell => {
            let first = line.split_whitespace().next().unwrap_or("");
            first.starts_with("assert") || first.starts_with("check") || first.starts_with("expect")
        }
        Language::Other => any(&["assert", "expect("]),
        Language::Text => false,
    }
}

/// Whether `line` asserts something trivially true (`assert!(true)`, `assert True`).
pub fn is_trivial_assertion(line: &str) -> bool {
    let squeezed: String = line
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let squeezed = squeezed.trim_end_matches(';');
    const TRIVIAL: &[&str] = &[
        "assert!(true)",
        "assert(true)",
        "asserttrue(true)",
        "assert_eq!(true,true)",
        "assert_eq!(1,1)",
        "expect(true).tobe(true)",
        "expect(true).tobetruthy()",
        "assert.ok(true)",
        "self.asserttrue(true)",
    ];
    TRIVIAL.iter().any(|t| squeezed.contains(t)) || matches!(squeezed, "asserttrue" | "assert1")
}

/// Whether `line` switches off a linter or type checker for some code.
pub fn is_lint_suppression(language: Language, line: &str) -> bool {
    if !language.is_code() {
        return false;
    }
    const TOKENS: &[&str] = &[
        "#[allow(",
        "#![allow(",
        "# noqa",
        "#noqa",
        "# type: ignore",
        "# pylint: disable",
        "eslint-disable",
        "@ts-ignore",
        "@ts-nocheck",
        "@ts-expect-error",
        "//nolint",
        "// nolint",
        "@SuppressWarnings",
        "rubocop:disable",
        "shellcheck disable",
        "#pragma warning disable",
    ];
    TOKENS.iter().any(|t| line.contains(t))
}

/// Which way a threshold loosens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loosens {
    /// A minimum (coverage): lowering it loosens.
    WhenLowered,
    /// A maximum (warnings, complexity): raising it loosens.
    WhenRaised,
}

const MINIMUM_KEYS: &[&str] = &[
    "fail_under",
    "cov_fail_under",
    "min_coverage",
    "minimum_coverage",
    "coverage_threshold",
    "fail_under_line",
    "fail_under_branch",
];
/// Jest/nyc/c8 `coverageThreshold` keys; only read in their configuration files.
const COVERAGE_KEYS: &[&str] = &["lines", "branches", "functions", "statements"];
const COVERAGE_FILES: &[&str] = &[
    "jest.config",
    "vitest.config",
    ".nycrc",
    ".c8rc",
    "package.json",
    "codecov",
    "karma.conf",
];
const MAXIMUM_KEYS: &[&str] = &[
    "max_warnings",
    "max_complexity",
    "max_line_length",
    "max_args",
    "max_params",
    "max_statements",
    "max_depth",
    "max_lines",
    "too_many_lines_threshold",
    "too_many_arguments_threshold",
    "cognitive_complexity_threshold",
    "type_complexity_threshold",
];

/// A threshold setting on `line` of file `path`: its key, value and which way it loosens.
/// Reads `key = 80`, `key: 80`, `"key": 80,`, and `--key=80` or `--key 80` anywhere on a line.
pub fn threshold(path: &str, line: &str) -> Option<(String, f64, Loosens)> {
    let text = line.trim().trim_end_matches(',');
    let text = text.split(" #").next().unwrap_or(text);
    let words: Vec<&str> = text.split_whitespace().collect();
    let options = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.starts_with("--"))
        .map(|(i, w)| match w.split_once('=') {
            Some((key, value)) => (key, value),
            None => (*w, words.get(i + 1).copied().unwrap_or("")),
        });
    let setting = text.split_once(['=', ':']);
    setting
        .into_iter()
        .chain(options)
        .find_map(|(key, value)| classify(path, key, value))
}

fn classify(path: &str, key: &str, value: &str) -> Option<(String, f64, Loosens)> {
    let key: String = key
        .trim()
        .trim_matches(['"', '\''])
        .trim_start_matches('-')
        .to_ascii_lowercase()
        .replace('-', "_");
    let key = key.rsplit([' ', '.']).next().unwrap_or(&key).to_string();
    let value: f64 = value
        .trim()
        .trim_matches(['"', '\'', ','])
        .trim_end_matches('%')
        .parse()
        .ok()?;
    let name = path.rsplit('/').next().unwrap_or(path);
    let loosens = if MINIMUM_KEYS.contains(&key.as_str()) {
        Loosens::WhenLowered
    } else if MAXIMUM_KEYS.contains(&key.as_str()) {
        Loosens::WhenRaised
    } else if COVERAGE_KEYS.contains(&key.as_str())
        && COVERAGE_FILES.iter().any(|f| name.starts_with(f))
    {
        Loosens::WhenLowered
    } else {
        return None;
    };
    Some((key, value, loosens))
}

/// Whether `token` occurs in `line` as a token: when it starts with a word character, the
/// character before it must not be one (`xit(` is not found in `exit(`).
fn has_token(line: &str, token: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let starts_with_word = token.chars().next().is_some_and(word);
    line.match_indices(token)
        .any(|(at, _)| !starts_with_word || !line[..at].chars().next_back().is_some_and(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_extensions() {
        assert_eq!(Language::of("src/lib.rs"), Language::Rust);
        assert_eq!(Language::of("web/a.test.tsx"), Language::JavaScript);
        assert_eq!(Language::of("test.sh"), Language::Shell);
        assert_eq!(Language::of("docs/a.md"), Language::Text);
        assert_eq!(Language::of("Makefile"), Language::Other);
    }

    #[test]
    fn skip_markers_per_language() {
        use Language::*;
        let cases = [
            (Rust, "    #[ignore]", false, true),
            (Rust, "    #[ignore = \"flaky\"]", false, true),
            (Rust, "let v = it.skip(1);", false, false),
            (Python, "@pytest.mark.skip(reason='later')", false, true),
            (Python, "@pytest.mark.xfail", false, true),
            (Python, "@unittest.skipIf(True, 'x')", false, true),
            (JavaScript, "it.skip('adds', () => {", false, true),
            (JavaScript, "describe.only('x', () => {", false, true),
            (JavaScript, "xit('adds', () => {", false, true),
            (JavaScript, "process.exit(1)", false, false),
            (JavaScript, "const profit(x) {", false, false),
            (Go, "\tt.Skip(\"flaky\")", false, true),
            (Jvm, "@Disabled", false, true),
            (Shell, "exit 0", true, true),
            (Shell, "exit 0", false, false),
            (Shell, "exit $fail", true, false),
            (Text, "#[ignore] is how Rust skips a test", false, false),
        ];
        for (language, line, in_test, want) in cases {
            assert_eq!(
                is_skip_marker(language, line, in_test),
                want,
                "{language:?} {line}"
            );
        }
    }

    #[test]
    fn assertions_per_language() {
        use Language::*;
        let cases = [
            (Rust, "assert_eq!(add(2, 3), 5);", true),
            (Rust, "let x = 3;", false),
            (Python, "assert add(2, 3) == 5", true),
            (Python, "self.assertEqual(add(2, 3), 5)", true),
            (Python, "# assert later", false),
            (JavaScript, "expect(add(2, 3)).toBe(5);", true),
            (Go, "t.Errorf(\"got %d\", got)", true),
            (Shell, "check add 2 3 5", true),
            (Shell, "got=$(sh calc.sh add 2 3)", false),
            (Text, "assert that docs are nice", false),
        ];
        for (language, line, want) in cases {
            assert_eq!(is_assertion(language, line), want, "{language:?} {line}");
        }
        assert!(is_trivial_assertion("    assert!(true);"));
        assert!(is_trivial_assertion("assert True"));
        assert!(is_trivial_assertion("expect(true).toBe(true)"));
        assert!(!is_trivial_assertion("assert!(ok);"));
    }

    #[test]
    fn thresholds_and_their_direction() {
        let cases = [
            (
                "pyproject.toml",
                "fail_under = 90",
                Some(("fail_under", 90.0, Loosens::WhenLowered)),
            ),
            (
                "setup.cfg",
                "addopts = --cov-fail-under=85 -q",
                Some(("cov_fail_under", 85.0, Loosens::WhenLowered)),
            ),
            (
                "Makefile",
                "\tpytest --cov-fail-under 70",
                Some(("cov_fail_under", 70.0, Loosens::WhenLowered)),
            ),
            (
                "tox.ini",
                "--cov-fail-under=85",
                Some(("cov_fail_under", 85.0, Loosens::WhenLowered)),
            ),
            (
                "jest.config.js",
                "    lines: 80,",
                Some(("lines", 80.0, Loosens::WhenLowered)),
            ),
            ("src/app.js", "    lines: 80,", None),
            (
                ".eslintrc.json",
                "\"max-warnings\": 0,",
                Some(("max_warnings", 0.0, Loosens::WhenRaised)),
            ),
            (
                "clippy.toml",
                "too-many-lines-threshold = 100",
                Some(("too_many_lines_threshold", 100.0, Loosens::WhenRaised)),
            ),
            ("a.toml", "name = \"x\"", None),
        ];
        for (path, line, want) in cases {
            let got = threshold(path, line);
            let want = want.map(|(k, v, l)| (k.to_string(), v, l));
            assert_eq!(got, want, "{path}: {line}");
        }
        assert!(is_lint_suppression(Language::Rust, "#[allow(clippy::all)]"));
        assert!(is_lint_suppression(
            Language::Python,
            "x = f()  # noqa: E501"
        ));
        assert!(!is_lint_suppression(
            Language::Text,
            "use # noqa to silence flake8"
        ));
    }
}
