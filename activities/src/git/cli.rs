//! Runs the `git` CLI on the host, isolated from host and repository configuration that could
//! run code (hooks, fsmonitor) or change behaviour (global config, inherited GIT_* variables).

use std::path::Path;
use std::process::Stdio;

/// Config every call carries; a workspace is untrusted, so nothing in it may run on the host.
const SAFE_CONFIG: &[&str] = &[
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=",
    "-c",
    "protocol.file.allow=always",
    "-c",
    "commit.gpgSign=false",
];

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The request cannot succeed as given (unreachable repository, missing branch, bad name);
    /// retrying will not help.
    #[error("{message}")]
    BadInput { message: String },
    #[error("merging {commit} into {base} conflicts in {}", files.join(", "))]
    MergeConflict {
        base: String,
        commit: String,
        files: Vec<String>,
    },
    /// The remote refused a non-forced update (it moved on, or a remote hook declined).
    #[error("push to {refname} rejected: {reason}")]
    PushRejected { refname: String, reason: String },
    #[error("git {} failed ({status}): {stderr}", args.join(" "))]
    Failed {
        args: Vec<String>,
        status: String,
        stderr: String,
    },
    #[error("cannot run git {}: {source}", args.join(" "))]
    Spawn {
        args: Vec<String>,
        source: std::io::Error,
    },
}

impl GitError {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput {
            message: message.into(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// One git invocation context: a working directory and extra config.
#[derive(Debug, Clone, Default)]
pub(crate) struct Git {
    dir: Option<std::path::PathBuf>,
    config: Vec<String>,
}

impl Git {
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            dir: Some(dir.to_owned()),
            config: Vec::new(),
        }
    }

    pub fn anywhere() -> Self {
        Self::default()
    }

    /// Sets author and committer for the commands run with this context.
    pub fn identity(mut self, name: &str, email: &str) -> Self {
        self.config
            .extend(["-c".into(), format!("user.name={name}")]);
        self.config
            .extend(["-c".into(), format!("user.email={email}")]);
        self
    }

    /// Runs `git args` and returns its output whatever the exit status.
    pub async fn output(&self, args: &[&str]) -> Result<Output, GitError> {
        let mut command =
            tokio::process::Command::from(command(self.dir.as_deref(), &self.config, args));
        command.stdin(Stdio::null()).kill_on_drop(true);
        let output = command.output().await.map_err(|source| GitError::Spawn {
            args: owned(args),
            source,
        })?;
        Ok(Output {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }

    /// Runs `git args`, which must succeed; returns stdout without the trailing newline.
    pub async fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let output = self.output(args).await?;
        if output.code == Some(0) {
            Ok(output.stdout.trim_end().to_owned())
        } else {
            Err(failed(args, &output))
        }
    }

    /// Runs a yes/no command: exit 0 is yes, exit 1 is no, anything else an error.
    pub async fn check(&self, args: &[&str]) -> Result<bool, GitError> {
        let output = self.output(args).await?;
        match output.code {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failed(args, &output)),
        }
    }

    /// The commit `rev` names, or None when it names none.
    pub async fn commit_of(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let output = self
            .output(&[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ])
            .await?;
        Ok((output.code == Some(0)).then(|| output.stdout.trim().to_owned()))
    }
}

/// `git config... args` in `dir`, isolated: the safe config first, and no inherited `GIT_*`
/// variable, system or global config, or prompt.
pub(crate) fn command(
    dir: Option<&Path>,
    config: &[String],
    args: &[&str],
) -> std::process::Command {
    let mut command = std::process::Command::new("git");
    command.args(SAFE_CONFIG).args(config).args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    // Inherited GIT_* variables could redirect git to another repository (GIT_DIR),
    // inject config (GIT_CONFIG_PARAMETERS) or override identities (GIT_AUTHOR_NAME).
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GIT_") {
            command.env_remove(name);
        }
    }
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    command
}

pub(crate) fn failed(args: &[&str], output: &Output) -> GitError {
    GitError::Failed {
        args: owned(args),
        status: output.code.map_or_else(
            || "killed by a signal".into(),
            |code| format!("exit {code}"),
        ),
        stderr: output.stderr.clone(),
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}
