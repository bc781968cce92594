//! Sets of path globs, compiled once per evaluation.

use globset::{GlobSet, GlobSetBuilder};

use crate::playbook::Glob;
use crate::playbook::scalars::globs;

pub struct PathSet {
    set: GlobSet,
    patterns: Vec<String>,
}

impl PathSet {
    pub fn new(globs: &[Glob]) -> PathSet {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            builder.add(glob.matcher());
        }
        PathSet {
            // Every glob compiled on its own already, so the set does too.
            set: builder.build().unwrap_or_else(|_| GlobSet::empty()),
            patterns: globs.iter().map(|g| g.as_str().to_string()).collect(),
        }
    }

    /// A set of built-in patterns (tested to be valid globs).
    pub fn of(patterns: &[&str]) -> PathSet {
        PathSet::new(&globs(patterns))
    }

    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    /// Whether the set matches every path (it holds `**`).
    pub fn matches_everything(&self) -> bool {
        self.patterns.iter().any(|p| p == "**")
    }

    /// The patterns, for messages: `docs/**, **/*.md`.
    pub fn describe(&self) -> String {
        self.patterns.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_match_any_of_their_globs() {
        let docs = PathSet::of(&["docs/**", "**/*.md"]);
        assert!(docs.is_match("docs/guide/x.txt"));
        assert!(docs.is_match("README.md"));
        assert!(!docs.is_match("src/main.rs"));
        assert_eq!(docs.describe(), "docs/**, **/*.md");
        assert!(PathSet::of(&["**"]).matches_everything());
    }
}
