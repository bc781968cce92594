//! A playbook's boundary: where the agent may change files, and how much. Evaluated against the
//! diff of each round by [`crate::policy::boundary`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalars::{Glob, Positive, globs};

/// Continuous-integration configuration: forbidden unless `boundary.ci_config: allow`, since a
/// change there can switch off the very checks that judge the agent.
pub const CI_CONFIG_PATHS: &[&str] = &[
    ".github/workflows/**",
    ".github/actions/**",
    ".gitlab-ci.yml",
    ".gitlab-ci/**",
    ".circleci/**",
    ".travis.yml",
    "**/Jenkinsfile",
    "azure-pipelines.yml",
    ".azure-pipelines/**",
    ".buildkite/**",
    "bitbucket-pipelines.yml",
    ".drone.yml",
    ".woodpecker.yml",
    ".woodpecker/**",
    "appveyor.yml",
    ".appveyor.yml",
    ".ci/**",
];

/// Dependency manifests and lockfiles: they change only with `boundary.dependencies: allow`.
pub const DEPENDENCY_PATHS: &[&str] = &[
    "**/Cargo.toml",
    "**/Cargo.lock",
    "**/package.json",
    "**/package-lock.json",
    "**/npm-shrinkwrap.json",
    "**/yarn.lock",
    "**/pnpm-lock.yaml",
    "**/bun.lockb",
    "**/pyproject.toml",
    "**/requirements*.txt",
    "**/requirements*.lock",
    "**/setup.py",
    "**/Pipfile",
    "**/Pipfile.lock",
    "**/poetry.lock",
    "**/uv.lock",
    "**/pdm.lock",
    "**/go.mod",
    "**/go.sum",
    "**/Gemfile",
    "**/Gemfile.lock",
    "**/*.gemspec",
    "**/composer.json",
    "**/composer.lock",
    "**/mix.exs",
    "**/mix.lock",
    "**/pubspec.yaml",
    "**/pubspec.lock",
    "**/build.gradle",
    "**/build.gradle.kts",
    "**/gradle.lockfile",
    "**/pom.xml",
    "**/packages.lock.json",
    "**/*.csproj",
    "**/flake.nix",
    "**/flake.lock",
];

/// Whether something is allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    #[default]
    Forbid,
    Allow,
}

/// Where the agent may change files, and how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Boundary {
    /// Every changed path must match one of these (default: everything, `**`).
    pub allowed_paths: Vec<Glob>,
    /// No changed path may match one of these; CI configuration is forbidden on top of them
    /// unless `ci_config: allow`.
    pub forbidden_paths: Vec<Glob>,
    /// Whether CI configuration (`.github/workflows/**`, `.gitlab-ci.yml`, ...) may change.
    pub ci_config: Permission,
    /// Whether dependency manifests and lockfiles may change.
    pub dependencies: Permission,
    /// At most this many files changed against the base (a rename counts once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_changed_files: Option<Positive<u32>>,
    /// At most this many lines added plus removed against the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_changed_lines: Option<Positive<u32>>,
    /// Hosts the agent may reach through the egress proxy: exact names, `host` or
    /// `host:port` (443 when left out); no wildcards, no IP addresses. Empty: no network.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
}

impl Default for Boundary {
    fn default() -> Self {
        Boundary {
            allowed_paths: globs(&["**"]),
            forbidden_paths: Vec::new(),
            ci_config: Permission::Forbid,
            dependencies: Permission::Forbid,
            max_changed_files: None,
            max_changed_lines: None,
            network: Vec::new(),
        }
    }
}

impl Boundary {
    /// Problems serde cannot see, as (field under `boundary`, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.allowed_paths.is_empty() {
            problems.push((
                "allowed_paths".into(),
                "expected at least one glob (`**` allows every path)".into(),
            ));
        }
        for (i, host) in self.network.iter().enumerate() {
            let valid = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
            if !valid {
                problems.push((
                    format!("network[{i}]"),
                    format!("expected an exact host name, optionally with :port, got {host:?}"),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_globs_are_valid() {
        for pattern in CI_CONFIG_PATHS.iter().chain(DEPENDENCY_PATHS) {
            assert!(Glob::new(pattern).is_ok(), "{pattern}");
        }
    }

    #[test]
    fn an_empty_boundary_allows_everything_but_ci_and_dependencies() {
        let b: Boundary = yaml_serde::from_str("{}").unwrap();
        assert_eq!(b, Boundary::default());
        assert_eq!(b.allowed_paths, globs(&["**"]));
        let bad: Boundary = yaml_serde::from_str("allowed_paths: []\nnetwork: ['a b']").unwrap();
        let fields: Vec<String> = bad.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, ["allowed_paths", "network[0]"]);
    }
}
