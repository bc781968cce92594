//! How a root worker hands host paths to a bwrap that runs as the run's unprivileged uid: each
//! path (the workspace, the inputs, the agent program, the shim, the egress socket directory,
//! the model gateway's socket)
//! is cloned as a detached mount while still root, and the child places the clones under a
//! staging directory in its own mount namespace. bwrap then binds staged paths it can reach,
//! whatever the permissions of the host directories above them.
//!
//! The workspace clone is idmapped (root on disk appears as the run's uid, so the agent may
//! edit files the host's git owns) and, when its writes are capped, becomes the lower layer of
//! an overlay whose upper layer is a size-limited tmpfs; `merge` brings those writes back.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::launch::StagedMounts;
use super::mounts::{self, TreeOptions};

/// An existing host directory, covered by a private tmpfs in each run's mount namespace.
pub const STAGE_ROOT: &str = "/run/errand-sandbox";

/// The host paths of one run.
#[derive(Debug, Clone)]
pub(super) struct HostPaths<'a> {
    pub workspace: &'a Path,
    pub inputs_dir: Option<&'a Path>,
    pub program: Option<&'a Path>,
    pub shim: Option<&'a Path>,
    pub egress_dir: Option<&'a Path>,
    pub gateway_socket: Option<&'a Path>,
}

/// Paths as bwrap sees them.
#[derive(Debug, Clone)]
pub(super) struct Sources {
    pub workspace: PathBuf,
    pub inputs_dir: Option<PathBuf>,
    pub program: Option<PathBuf>,
    pub shim: Option<PathBuf>,
    pub egress_dir: Option<PathBuf>,
    pub gateway_socket: Option<PathBuf>,
}

impl Sources {
    /// Without staging (an unprivileged worker), bwrap binds the host paths themselves.
    pub fn direct(paths: &HostPaths<'_>) -> Self {
        Self {
            workspace: paths.workspace.to_owned(),
            inputs_dir: paths.inputs_dir.map(Path::to_owned),
            program: paths.program.map(Path::to_owned),
            shim: paths.shim.map(Path::to_owned),
            egress_dir: paths.egress_dir.map(Path::to_owned),
            gateway_socket: paths.gateway_socket.map(Path::to_owned),
        }
    }
}

#[derive(Debug)]
pub(super) struct Staged {
    pub mounts: StagedMounts,
    pub sources: Sources,
    /// The tmpfs holding the overlay's upper layer, kept open by the host to merge it back.
    pub upper: Option<Arc<OwnedFd>>,
}

/// A cap on the run's workspace writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct WriteCap {
    pub bytes: u64,
    pub inodes: u64,
}

/// Prepares the detached mounts of one run (in the parent, as root).
pub(super) fn stage(
    paths: &HostPaths<'_>,
    idmap: &OwnedFd,
    owner: (u32, u32),
    cap: Option<WriteCap>,
) -> io::Result<Staged> {
    let root = Path::new(STAGE_ROOT);
    let at = |name: &str| root.join(name);
    let mut dirs = vec![at("repo")];
    let mut files = Vec::new();
    let mut placements: Vec<(Arc<OwnedFd>, PathBuf)> = Vec::new();
    let idmapped = |path: &Path| {
        mounts::clone_tree(
            path,
            TreeOptions {
                read_only: false,
                idmap: Some(idmap.as_fd()),
            },
        )
    };
    // A workspace that is itself an overlay (a task layer on a prebuilt base, see
    // `crate::workspace`) cannot be idmapped, but its layers can: the run's overlay stacks on
    // them directly (task layer over base), which shows the same tree.
    let workspace_layers = crate::workspace::overlay::layers_of(paths.workspace)?;
    let mut upper = None;
    let mut overlay = None;
    match cap {
        Some(cap) => {
            dirs.push(at("fs"));
            let lowerdir = match &workspace_layers {
                Some(layers) => {
                    let mut names = Vec::new();
                    for (i, layer) in std::iter::once(&layers.upper)
                        .chain(&layers.lower)
                        .enumerate()
                    {
                        let target = at(&format!("lower{i}"));
                        dirs.push(target.clone());
                        placements.push((Arc::new(idmapped(layer)?), target.clone()));
                        names.push(target.display().to_string());
                    }
                    names.join(":")
                }
                None => {
                    dirs.push(at("lower"));
                    placements.push((Arc::new(idmapped(paths.workspace)?), at("lower")));
                    at("lower").display().to_string()
                }
            };
            let tmpfs = Arc::new(mounts::sized_tmpfs(cap.bytes, cap.inodes, owner)?);
            placements.push((Arc::clone(&tmpfs), at("fs")));
            upper = Some(tmpfs);
            // Explicit options, whatever the kernel's defaults: no redirects, no metacopy and
            // no index, so the upper layer holds whole files and plain whiteouts only.
            let options = format!(
                "lowerdir={lowerdir},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off,xino=off",
                at("fs/upper").display(),
                at("fs/work").display(),
            );
            overlay = Some((
                cstring(&at("repo"))?,
                CString::new(options).map_err(io::Error::other)?,
            ));
        }
        None if workspace_layers.is_some() => {
            return Err(io::Error::other(
                "an overlay workspace runs only with capped writes (its layers are stacked \
                 under a size-limited upper layer)",
            ));
        }
        None => placements.push((Arc::new(idmapped(paths.workspace)?), at("repo"))),
    }
    let read_only = TreeOptions {
        read_only: true,
        idmap: None,
    };
    let mut stage_one =
        |path: Option<&Path>, name: &str, is_dir: bool| -> io::Result<Option<PathBuf>> {
            let Some(path) = path else { return Ok(None) };
            let target = at(name);
            if is_dir {
                dirs.push(target.clone());
            } else {
                files.push(target.clone());
            }
            placements.push((
                Arc::new(mounts::clone_tree(path, read_only)?),
                target.clone(),
            ));
            Ok(Some(target))
        };
    let inputs_dir = stage_one(paths.inputs_dir, "inputs", true)?;
    let program = stage_one(paths.program, "program", false)?;
    let shim = stage_one(paths.shim, "shim", false)?;
    let egress_dir = stage_one(paths.egress_dir, "egress", true)?;
    // The socket itself (not its directory), on a file mount point: nothing else of the
    // gateway's directory shows.
    let gateway_socket = stage_one(paths.gateway_socket, "gateway.sock", false)?;
    let mounts = StagedMounts {
        root: cstring(root)?,
        dirs: dirs
            .iter()
            .map(|dir| cstring(dir))
            .collect::<io::Result<_>>()?,
        files: files
            .iter()
            .map(|file| cstring(file))
            .collect::<io::Result<_>>()?,
        placements: placements
            .into_iter()
            .map(|(fd, target)| Ok((fd, cstring(&target)?)))
            .collect::<io::Result<_>>()?,
        overlay,
    };
    Ok(Staged {
        mounts,
        sources: Sources {
            workspace: at("repo"),
            inputs_dir,
            program,
            shim,
            egress_dir,
            gateway_socket,
        },
        upper,
    })
}

/// Creates the staging directory (root-owned, not a symlink) if needed.
pub(super) fn ensure_stage_root() -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let root = Path::new(STAGE_ROOT);
    match std::fs::DirBuilder::new().mode(0o755).create(root) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(root)?;
    if !meta.is_dir() || meta.uid() != 0 {
        return Err(io::Error::other(format!(
            "{STAGE_ROOT} must be a directory owned by root"
        )));
    }
    Ok(())
}

fn cstring(path: &Path) -> io::Result<CString> {
    mounts::cstring(path)
}
