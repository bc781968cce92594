//! Checks a `SandboxSpec` against the host before anything starts: canonical paths, a `.git`
//! that is not a symlink, valid argv and environment, sane limits. Anything surprising is
//! refused rather than guessed at.

use std::path::{Path, PathBuf};

use super::profile::ResolvedSpec;
use super::{SandboxError, SandboxSpec};

/// Checks the spec against the host; anything surprising is refused rather than guessed at.
pub(super) fn resolve(spec: &SandboxSpec) -> Result<ResolvedSpec, SandboxError> {
    let invalid = |field, reason: String| SandboxError::InvalidSpec { field, reason };
    let workspace = spec
        .workspace
        .canonicalize()
        .map_err(|err| invalid("workspace", format!("{}: {err}", spec.workspace.display())))?;
    if workspace == Path::new("/") {
        return Err(invalid(
            "workspace",
            "the host root cannot be a workspace".into(),
        ));
    }
    if !workspace.is_dir() {
        return Err(invalid(
            "workspace",
            format!("{} is not a directory", workspace.display()),
        ));
    }
    let git = workspace.join(".git");
    let protect_git = match std::fs::symlink_metadata(&git) {
        // A symlinked .git would make bwrap bind wherever it points, host paths included.
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(invalid(
                "workspace",
                format!("{} is a symlink", git.display()),
            ));
        }
        Ok(_) => true,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
        Err(err) => return Err(invalid("workspace", format!("{}: {err}", git.display()))),
    };
    let inputs_dir = match &spec.inputs_dir {
        Some(dir) if dir.is_dir() => Some(
            dir.canonicalize()
                .map_err(|err| invalid("inputs_dir", format!("{}: {err}", dir.display())))?,
        ),
        Some(dir) => {
            return Err(invalid(
                "inputs_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        None => None,
    };
    let program = match spec.argv.first() {
        None => return Err(invalid("argv", "empty".into())),
        Some(program) => program_outside_usr(program),
    };
    if let Some(arg) = spec.argv.iter().find(|arg| arg.contains('\0')) {
        return Err(invalid("argv", format!("{arg:?} contains a NUL byte")));
    }
    for (name, value) in &spec.env {
        if !is_env_name(name) {
            return Err(invalid("env", format!("{name:?} is not a variable name")));
        }
        if value.contains('\0') {
            return Err(invalid(
                "env",
                format!("the value of {name} contains a NUL byte"),
            ));
        }
    }
    spec.limits
        .validate()
        .map_err(|reason| invalid("limits", reason))?;
    Ok(ResolvedSpec {
        workspace,
        protect_git,
        inputs_dir,
        program,
        argv: spec.argv.clone(),
        env: spec.env.clone(),
    })
}

/// The host file to bind for an absolute `argv[0]` that /usr does not already provide.
fn program_outside_usr(program: &str) -> Option<PathBuf> {
    let path = Path::new(program);
    if !path.is_absolute() {
        return None;
    }
    let real = path.canonicalize().ok().filter(|real| real.is_file())?;
    (!real.starts_with("/usr")).then_some(real)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

pub(super) fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Limits;
    use std::time::Duration;

    #[test]
    fn env_names() {
        for good in ["A", "_x", "PATH", "a_1"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A=B", "A B", "É"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    fn spec_in(workspace: &Path) -> SandboxSpec {
        SandboxSpec {
            workspace: workspace.to_owned(),
            inputs_dir: None,
            argv: vec!["true".into()],
            env: vec![],
            timeout: Duration::from_secs(1),
            log_path: workspace.join("log"),
            limits: Limits::default(),
            network: None,
            model_gateway: None,
        }
    }

    #[test]
    fn resolve_refuses_bad_specs() {
        let dir = tempfile::tempdir().expect("tempdir");
        type Change = Box<dyn Fn(&mut SandboxSpec)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "workspace",
                Box::new(|spec| spec.workspace = "/nonexistent/errand".into()),
            ),
            ("workspace", Box::new(|spec| spec.workspace = "/".into())),
            ("argv", Box::new(|spec| spec.argv.clear())),
            ("argv", Box::new(|spec| spec.argv.push("a\0b".into()))),
            (
                "env",
                Box::new(|spec| spec.env.push(("A=B".into(), "x".into()))),
            ),
            (
                "inputs_dir",
                Box::new(|spec| spec.inputs_dir = Some("/nonexistent/in".into())),
            ),
            ("limits", Box::new(|spec| spec.limits.processes = 0)),
        ];
        for (field, change) in cases {
            let mut spec = spec_in(dir.path());
            change(&mut spec);
            match resolve(&spec) {
                Err(SandboxError::InvalidSpec { field: got, .. }) => assert_eq!(got, field),
                other => panic!("expected invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn resolve_refuses_a_symlinked_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/root", dir.path().join(".git")).expect("symlink");
        assert!(matches!(
            resolve(&spec_in(dir.path())),
            Err(SandboxError::InvalidSpec { .. })
        ));
    }

    #[test]
    fn programs_in_usr_are_not_rebound() {
        assert_eq!(program_outside_usr("/usr/bin/env"), None);
        assert_eq!(program_outside_usr("sh"), None);
        assert_eq!(program_outside_usr("/nonexistent/agent"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = dir.path().join("agent");
        std::fs::write(&agent, "#!/bin/sh\n").expect("write");
        assert_eq!(
            program_outside_usr(agent.to_str().expect("utf-8")),
            agent.canonicalize().ok()
        );
    }
}
