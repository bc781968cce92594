//! A consistent copy of what a run in flight has written, for a mid-run checkpoint.
//!
//! A root worker's run writes into the upper layer of an overlay (`staging.rs`), which is
//! merged into the workspace only when the run is over (`merge.rs`). To checkpoint before
//! then, the run is frozen (cgroup v2 `cgroup.freeze`), the layer is read, and the run is
//! thawed at once (a guard thaws it on every path). Reading copies the content of the taken
//! files into a host-private staging directory, so that the checkpoint commit is built from
//! that copy after the run goes on.
//!
//! The layer is untrusted content, read as root, under the same rules as the merge: every name
//! is opened relative to a directory fd with O_NOFOLLOW, symlinks are recorded as symlinks and
//! never followed, special files are skipped, and the workspace's `.git` is never read.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::cgroup::{CgroupError, Freezer};
use super::merge::{Dir, MAX_DEPTH, OPAQUE_XATTR, open_at};

/// How long a run may take to freeze before the checkpoint is given up (and the run thawed).
const FREEZE_BOUND: Duration = Duration::from_secs(5);
/// A `.gitignore` larger than this is not read ahead of the selection (it is still taken).
const GITIGNORE_CAP: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("freezing the run: {0}")]
    Freeze(#[from] CgroupError),
    #[error("reading the run's changes: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: io::Error,
    },
    #[error("reading the run's changes: {path} is nested deeper than {MAX_DEPTH} directories")]
    TooDeep { path: String },
}

/// What a checkpoint may reach of a run in flight: the upper layer its workspace writes go to
/// (root workers only) and the freezer of its cgroup (when it has a v2 one).
#[derive(Debug, Clone, Default)]
pub struct LiveWorkspace {
    pub(super) layer: Option<Arc<OwnedFd>>,
    pub(super) freezer: Option<Freezer>,
}

impl LiveWorkspace {
    /// A layer that no run writes to any more, so nothing to freeze (tests).
    #[doc(hidden)]
    pub fn of_layer(layer: Arc<OwnedFd>) -> Self {
        Self {
            layer: Some(layer),
            freezer: None,
        }
    }

    /// Whether the run's writes sit in a layer of their own (else they go to the workspace).
    pub fn has_layer(&self) -> bool {
        self.layer.is_some()
    }

    /// Whether the run can be frozen while it is read.
    pub fn can_freeze(&self) -> bool {
        self.freezer.is_some()
    }

    /// Freezes the run (when it has a freezer), runs `read` on its upper layer (None: it has
    /// none, its writes are in the workspace) and thaws the run again, also when `read` fails
    /// or panics. Blocking: call it off the async runtime.
    pub fn while_frozen<T>(
        &self,
        read: impl FnOnce(Option<&OwnedFd>) -> T,
    ) -> Result<T, SnapshotError> {
        let _frozen = self
            .freezer
            .as_ref()
            .map(|freezer| freezer.freeze(FREEZE_BOUND))
            .transpose()?;
        Ok(read(self.layer.as_deref()))
    }
}

/// One entry of the layer, as the selection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// Relative to the workspace root.
    pub path: PathBuf,
    pub kind: EntryKind,
    /// The content of a `.gitignore` file, read before the selection of its level (capped).
    pub gitignore: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A whiteout: the run deleted the entry (a whole tree, if it was a directory).
    Removed,
    /// A directory; opaque: the run deleted it and made it anew, so nothing the workspace
    /// had below it survives.
    Dir {
        opaque: bool,
    },
    File {
        executable: bool,
    },
    Symlink,
    /// A FIFO, socket or device node: never taken.
    Special,
}

/// Decides which entries are taken. It sees the layer breadth first, one depth at a time
/// (so a `.gitignore` is known before anything it governs), and answers for every entry of
/// the level; a directory that is not taken is not read below. Removals are always taken and
/// special files never, whatever it answers.
pub trait Select {
    fn select(&mut self, level: &[LayerEntry]) -> io::Result<Vec<bool>>;
}

/// Takes everything.
pub struct TakeAll;

impl Select for TakeAll {
    fn select(&mut self, level: &[LayerEntry]) -> io::Result<Vec<bool>> {
        Ok(vec![true; level.len()])
    }
}

/// What the run changed, in the order to apply it (parents before their children).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub changes: Vec<Change>,
    /// Special files left out.
    pub skipped: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: PathBuf,
    pub what: Changed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Removed,
    Dir {
        opaque: bool,
    },
    /// A regular file whose content was copied to `staged`.
    File {
        staged: PathBuf,
        executable: bool,
    },
    /// A symlink whose target was written to `staged` (the content of its git blob).
    Symlink {
        staged: PathBuf,
    },
}

/// Reads the upper layer of `layer` (the tmpfs the host holds, with `upper/` in it) into
/// `staging`, an empty host-private directory; `select` picks what is taken. The run must be
/// frozen or over (see [`LiveWorkspace::while_frozen`]).
pub fn read_layer(
    layer: &OwnedFd,
    staging: &Path,
    select: &mut dyn Select,
) -> Result<Snapshot, SnapshotError> {
    let upper = super::running::upper_dir(layer).map_err(|err| SnapshotError::Io {
        op: "open",
        path: "<upper layer>".into(),
        source: io::Error::other(err.to_string()),
    })?;
    read_upper(&upper, staging, select)
}

/// Like [`read_layer`], from the `upper/` directory itself.
pub fn read_upper(
    upper: &OwnedFd,
    staging: &Path,
    select: &mut dyn Select,
) -> Result<Snapshot, SnapshotError> {
    let root = Dir::dup(upper).map_err(|e| io_err("open", Path::new(""), e))?;
    let mut reader = Reader {
        staging: staging.to_owned(),
        staged: 0,
        snapshot: Snapshot::default(),
    };
    // Breadth first: one level of (directory, its path) pairs at a time.
    let mut level: Vec<(Dir, PathBuf)> = vec![(root, PathBuf::new())];
    let mut depth = 0;
    while !level.is_empty() {
        if depth > MAX_DEPTH {
            return Err(SnapshotError::TooDeep {
                path: level[0].1.display().to_string(),
            });
        }
        let mut entries = Vec::new();
        // Which directory of `level` each entry is in, and its name there.
        let mut homes = Vec::new();
        for (index, (dir, rel)) in level.iter().enumerate() {
            let mut names = dir.names().map_err(|e| io_err("list", rel, e))?;
            names.sort();
            for name in names {
                // The host's git internals are never part of a checkpoint.
                if depth == 0 && name == ".git" {
                    continue;
                }
                let path = rel.join(&name);
                let cname = c_name(&name, &path)?;
                let entry = reader.entry(dir, &cname, path)?;
                entries.push(entry);
                homes.push((index, cname));
            }
        }
        let chosen = select
            .select(&entries)
            .map_err(|e| io_err("select", Path::new(""), e))?;
        let mut next = Vec::new();
        for ((entry, (index, cname)), take) in entries.into_iter().zip(homes).zip(chosen) {
            let dir = &level[index].0;
            let take = match entry.kind {
                EntryKind::Removed => true,
                EntryKind::Special => {
                    reader.snapshot.skipped += 1;
                    false
                }
                _ => take,
            };
            if !take {
                continue;
            }
            let what = match entry.kind {
                EntryKind::Removed => Changed::Removed,
                EntryKind::Dir { opaque } => {
                    let child = dir
                        .open_dir(&cname)
                        .map_err(|e| io_err("open", &entry.path, e))?;
                    next.push((child, entry.path.clone()));
                    Changed::Dir { opaque }
                }
                EntryKind::File { executable } => Changed::File {
                    staged: reader.copy_file(dir, &cname, &entry.path)?,
                    executable,
                },
                EntryKind::Symlink => {
                    let target = dir
                        .read_link(&cname)
                        .map_err(|e| io_err("readlink", &entry.path, e))?;
                    Changed::Symlink {
                        staged: reader.stage(&entry.path, |file| {
                            io::Write::write_all(file, target.as_bytes())
                        })?,
                    }
                }
                EntryKind::Special => unreachable!("never taken"),
            };
            reader.snapshot.changes.push(Change {
                path: entry.path,
                what,
            });
        }
        level = next;
        depth += 1;
    }
    Ok(reader.snapshot)
}

struct Reader {
    staging: PathBuf,
    staged: u64,
    snapshot: Snapshot,
}

impl Reader {
    fn entry(
        &mut self,
        dir: &Dir,
        name: &CString,
        path: PathBuf,
    ) -> Result<LayerEntry, SnapshotError> {
        let stat = dir.stat(name).map_err(|e| io_err("stat", &path, e))?;
        let kind = match stat.st_mode & libc::S_IFMT {
            libc::S_IFCHR if stat.st_rdev == 0 => EntryKind::Removed,
            libc::S_IFDIR => {
                let child = dir.open_dir(name).map_err(|e| io_err("open", &path, e))?;
                EntryKind::Dir {
                    opaque: child.xattr(OPAQUE_XATTR).is_some_and(|value| value == b"y"),
                }
            }
            // git records only the owner's execute bit.
            libc::S_IFREG => EntryKind::File {
                executable: stat.st_mode & libc::S_IXUSR != 0,
            },
            libc::S_IFLNK => EntryKind::Symlink,
            _ => EntryKind::Special,
        };
        let gitignore = match kind {
            EntryKind::File { .. }
                if name.as_bytes() == b".gitignore"
                    && u64::try_from(stat.st_size).is_ok_and(|size| size <= GITIGNORE_CAP) =>
            {
                let mut content = Vec::new();
                let mut file = open_regular(dir, name).map_err(|e| io_err("open", &path, e))?;
                io::Read::read_to_end(&mut io::Read::take(&mut file, GITIGNORE_CAP), &mut content)
                    .map_err(|e| io_err("read", &path, e))?;
                Some(content)
            }
            _ => None,
        };
        Ok(LayerEntry {
            path,
            kind,
            gitignore,
        })
    }

    /// Copies the regular file `name` of `dir` into the staging directory.
    fn copy_file(
        &mut self,
        dir: &Dir,
        name: &CString,
        path: &Path,
    ) -> Result<PathBuf, SnapshotError> {
        let mut source = open_regular(dir, name).map_err(|e| io_err("open", path, e))?;
        self.stage(path, |target| io::copy(&mut source, target).map(drop))
    }

    /// A new file in the staging directory, filled by `fill`.
    fn stage(
        &mut self,
        path: &Path,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<PathBuf, SnapshotError> {
        self.staged += 1;
        let staged = self.staging.join(self.staged.to_string());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged)
            .map_err(|e| io_err("stage", path, e))?;
        fill(&mut file).map_err(|e| io_err("copy", path, e))?;
        Ok(staged)
    }
}

/// Opens `name` for reading only if it is a regular file: no symlink is followed and a FIFO
/// that took the place of a file cannot block the open.
fn open_regular(dir: &Dir, name: &CString) -> io::Result<File> {
    let fd = open_at(dir.raw(), name, libc::O_RDONLY | libc::O_NONBLOCK)?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    // Reads of a regular file ignore O_NONBLOCK; clear it anyway for plain semantics.
    // SAFETY: a valid fd and plain flags.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, 0) };
    Ok(file)
}

fn c_name(name: &OsString, path: &Path) -> Result<CString, SnapshotError> {
    CString::new(name.as_bytes()).map_err(|e| io_err("name", path, io::Error::other(e)))
}

fn io_err(op: &'static str, path: &Path, source: io::Error) -> SnapshotError {
    SnapshotError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    pub(crate) fn whiteout(path: &Path) {
        let path = CString::new(path.as_os_str().as_bytes()).expect("path");
        // SAFETY: a valid path; a 0/0 character device is how overlayfs marks a deletion.
        let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, 0) };
        assert_eq!(rc, 0, "mknod needs root: {}", io::Error::last_os_error());
    }

    struct SkipBuild;

    impl Select for SkipBuild {
        fn select(&mut self, level: &[LayerEntry]) -> io::Result<Vec<bool>> {
            Ok(level
                .iter()
                .map(|entry| entry.path != Path::new("build"))
                .collect())
        }
    }

    #[test]
    fn reads_files_links_whiteouts_and_skips_what_is_not_selected() {
        let root = tempfile::tempdir().expect("tempdir");
        let (upper, staging) = (root.path().join("upper"), root.path().join("staging"));
        std::fs::create_dir(&upper).expect("upper");
        std::fs::create_dir(&staging).expect("staging");
        std::fs::create_dir_all(upper.join("src/deep")).expect("src");
        std::fs::write(upper.join("src/deep/a.rs"), "fn a() {}").expect("a");
        std::fs::write(upper.join("run.sh"), "#!/bin/sh").expect("run");
        std::fs::set_permissions(upper.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::os::unix::fs::symlink("/etc/shadow", upper.join("link")).expect("link");
        std::fs::write(upper.join(".gitignore"), "build/\n").expect("ignore");
        whiteout(&upper.join("gone"));
        std::fs::create_dir(upper.join("build")).expect("build");
        std::fs::write(upper.join("build/out"), "x").expect("out");
        std::fs::create_dir(upper.join(".git")).expect(".git");
        std::fs::write(upper.join(".git/config"), "planted").expect("planted");
        let fifo = CString::new(upper.join("fifo").as_os_str().as_bytes()).expect("fifo");
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let fd: OwnedFd = File::open(&upper).expect("open").into();
        let snapshot = read_upper(&fd, &staging, &mut SkipBuild).expect("read");
        let paths: Vec<_> = snapshot
            .changes
            .iter()
            .map(|change| change.path.display().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                ".gitignore",
                "gone",
                "link",
                "run.sh",
                "src",
                "src/deep",
                "src/deep/a.rs"
            ]
        );
        assert_eq!(snapshot.skipped, 1, "the FIFO");
        let find = |path: &str| {
            snapshot
                .changes
                .iter()
                .find(|change| change.path == Path::new(path))
                .map(|change| change.what.clone())
                .expect(path)
        };
        assert_eq!(find("gone"), Changed::Removed);
        let Changed::Symlink { staged } = find("link") else {
            panic!("a symlink")
        };
        assert_eq!(std::fs::read(staged).expect("target"), b"/etc/shadow");
        let Changed::File { staged, executable } = find("run.sh") else {
            panic!("a file")
        };
        assert!(executable);
        assert_eq!(std::fs::read(staged).expect("run"), b"#!/bin/sh");
        let Changed::File { executable, .. } = find("src/deep/a.rs") else {
            panic!("a file")
        };
        assert!(!executable);
    }
}
