//! Where a worker keeps task files on its host: workspaces, agent inputs and logs.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The task's git checkout (an overlay mount point when it stacks on a base).
    pub fn workspace(&self, task_id: &str) -> PathBuf {
        self.root.join("workspaces").join(task_id)
    }

    /// Prebuilt base checkouts, per repository and commit (`workspace::base`).
    pub fn bases(&self) -> PathBuf {
        self.root.join("bases")
    }

    /// Bare mirrors, one per repository, that clone workspaces start from
    /// (`workspace::mirror`).
    pub fn mirrors(&self) -> PathBuf {
        self.root.join("mirrors")
    }

    /// The task's overlay layers when its workspace is an overlay on a base: `upper/`,
    /// `work/` and `lower` (the base it stacks on), kept beside, not inside, the workspace.
    pub fn overlay(&self, task_id: &str) -> PathBuf {
        self.root.join("overlays").join(task_id)
    }

    /// Files of one round: `inputs/` (mounted read-only in the sandbox) and logs.
    pub fn round(&self, task_id: &str, round: u32) -> PathBuf {
        self.root
            .join("tasks")
            .join(task_id)
            .join(format!("round-{round}"))
    }
}
