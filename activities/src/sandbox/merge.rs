//! Brings a run's writes back into the workspace. The run wrote into the upper layer of an
//! overlay (a size-limited tmpfs); afterwards the host applies that layer to the workspace:
//! new and changed files are copied, whiteouts delete, opaque directories replace.
//!
//! The layer is untrusted content, and this runs as root: every name is opened relative to a
//! directory fd with O_NOFOLLOW, symlinks are recreated as symlinks and never followed, special
//! files are skipped, set-id bits are dropped, and the workspace's own `.git` is never touched.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Deeper trees are refused rather than walked: each level holds two open fds.
pub(super) const MAX_DEPTH: usize = 128;
/// Name of the temporary entry a file is written under before it is renamed into place.
const TEMP_NAME: &CStr = c".errand-merge-7d3f0b.tmp";
pub(super) const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";
/// At most this many skipped paths are named in the report (the count is exact).
const SKIPPED_NAMED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("applying the run's changes: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("applying the run's changes: {path} is nested deeper than {MAX_DEPTH} directories")]
    TooDeep { path: PathBuf },
}

/// What the merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub files_written: u64,
    pub bytes_written: u64,
    pub entries_removed: u64,
    /// FIFOs, sockets and device nodes are not carried over.
    pub skipped: u64,
    pub skipped_paths: Vec<String>,
}

/// Applies the overlay upper layer `upper` (a directory fd) to `workspace`.
pub fn apply(upper: &OwnedFd, workspace: &Path) -> Result<MergeReport, MergeError> {
    let mut merge = Merge {
        report: MergeReport::default(),
        workspace: workspace.to_owned(),
    };
    let lower = Dir::open_path(workspace).map_err(|source| MergeError::Io {
        op: "open",
        path: workspace.to_owned(),
        source,
    })?;
    let upper = Dir::dup(upper).map_err(|source| MergeError::Io {
        op: "open",
        path: "<upper layer>".into(),
        source,
    })?;
    merge.dir(&upper, &lower, Path::new(""), 0)?;
    Ok(merge.report)
}

struct Merge {
    report: MergeReport,
    workspace: PathBuf,
}

impl Merge {
    fn dir(
        &mut self,
        upper: &Dir,
        lower: &Dir,
        rel: &Path,
        depth: usize,
    ) -> Result<(), MergeError> {
        if depth > MAX_DEPTH {
            return Err(MergeError::TooDeep {
                path: self.workspace.join(rel),
            });
        }
        for name in upper.names().map_err(|e| self.err("list", rel, e))? {
            let child = rel.join(&name);
            // The host's git internals stay as provisioned, whatever the layer holds.
            if depth == 0 && name == ".git" {
                continue;
            }
            let cname = CString::new(name.as_bytes())
                .map_err(|e| self.err("name", &child, io::Error::other(e)))?;
            let stat = upper
                .stat(&cname)
                .map_err(|e| self.err("stat", &child, e))?;
            match stat.st_mode & libc::S_IFMT {
                libc::S_IFCHR if stat.st_rdev == 0 => {
                    // A whiteout: the run deleted this entry.
                    if lower
                        .remove(&cname, MAX_DEPTH - depth)
                        .map_err(|e| self.err("remove", &child, e))?
                    {
                        self.report.entries_removed += 1;
                    }
                }
                libc::S_IFDIR => self.subdir(upper, lower, &cname, &child, stat.st_mode, depth)?,
                libc::S_IFREG => self.file(upper, lower, &cname, &child, &stat, depth)?,
                libc::S_IFLNK => {
                    let target = upper
                        .read_link(&cname)
                        .map_err(|e| self.err("readlink", &child, e))?;
                    lower
                        .replace_with(
                            &cname,
                            |dir| dir.symlink(&target, TEMP_NAME),
                            MAX_DEPTH - depth,
                        )
                        .map_err(|e| self.err("symlink", &child, e))?;
                    self.report.files_written += 1;
                }
                _ => {
                    self.report.skipped += 1;
                    if self.report.skipped_paths.len() < SKIPPED_NAMED {
                        self.report.skipped_paths.push(child.display().to_string());
                    }
                }
            }
        }
        Ok(())
    }

    fn subdir(
        &mut self,
        upper: &Dir,
        lower: &Dir,
        name: &CStr,
        rel: &Path,
        mode: libc::mode_t,
        depth: usize,
    ) -> Result<(), MergeError> {
        let upper_child = upper.open_dir(name).map_err(|e| self.err("open", rel, e))?;
        // An opaque directory was deleted and recreated by the run: nothing below it survives.
        let opaque = upper_child
            .xattr(OPAQUE_XATTR)
            .is_some_and(|value| value == b"y");
        let existing = if opaque {
            None
        } else {
            lower.open_dir(name).ok()
        };
        let lower_child = match existing {
            Some(dir) => dir,
            None => {
                lower
                    .remove(name, MAX_DEPTH - depth)
                    .map_err(|e| self.err("remove", rel, e))?;
                lower.mkdir(name).map_err(|e| self.err("mkdir", rel, e))?;
                lower.open_dir(name).map_err(|e| self.err("open", rel, e))?
            }
        };
        lower_child
            .chmod(sanitize(mode))
            .map_err(|e| self.err("chmod", rel, e))?;
        self.dir(&upper_child, &lower_child, rel, depth + 1)
    }

    fn file(
        &mut self,
        upper: &Dir,
        lower: &Dir,
        name: &CStr,
        rel: &Path,
        stat: &libc::stat,
        depth: usize,
    ) -> Result<(), MergeError> {
        let mut source = upper
            .open_file(name)
            .map_err(|e| self.err("open", rel, e))?;
        let mut copied = 0;
        lower
            .replace_with(
                name,
                |dir| {
                    let mut target = dir.create(TEMP_NAME)?;
                    copied = io::copy(&mut source, &mut target)?;
                    fchmod(&target, sanitize(stat.st_mode))?;
                    // Keep the mtime: build tools compare it to decide what to rebuild.
                    set_times(&target, stat)
                },
                MAX_DEPTH - depth,
            )
            .map_err(|e| self.err("write", rel, e))?;
        self.report.files_written += 1;
        self.report.bytes_written += copied;
        Ok(())
    }

    fn err(&self, op: &'static str, rel: &Path, source: io::Error) -> MergeError {
        MergeError::Io {
            op,
            path: self.workspace.join(rel),
            source,
        }
    }
}

/// Permission bits only: a set-uid file written by the run must not become a set-uid root
/// file on the host.
fn sanitize(mode: libc::mode_t) -> libc::mode_t {
    mode & 0o777
}

/// An open directory; every operation is relative to it and follows no symlink.
pub(super) struct Dir(OwnedFd);

impl Dir {
    fn open_path(path: &Path) -> io::Result<Dir> {
        let path = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
        open_at(libc::AT_FDCWD, &path, libc::O_RDONLY | libc::O_DIRECTORY).map(Dir)
    }

    pub(super) fn dup(fd: &OwnedFd) -> io::Result<Dir> {
        open_at(fd.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY).map(Dir)
    }

    pub(super) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub(super) fn names(&self) -> io::Result<Vec<OsString>> {
        // Listing through the fd's /proc link reads this very directory, not a path.
        let link = format!("/proc/self/fd/{}", self.raw());
        std::fs::read_dir(link)?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect()
    }

    pub(super) fn stat(&self, name: &CStr) -> io::Result<libc::stat> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: a valid dirfd, name and out pointer.
        let rc = unsafe {
            libc::fstatat(
                self.raw(),
                name.as_ptr(),
                stat.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatat filled it.
        Ok(unsafe { stat.assume_init() })
    }

    pub(super) fn open_dir(&self, name: &CStr) -> io::Result<Dir> {
        open_at(self.raw(), name, libc::O_RDONLY | libc::O_DIRECTORY).map(Dir)
    }

    fn open_file(&self, name: &CStr) -> io::Result<File> {
        open_at(self.raw(), name, libc::O_RDONLY).map(File::from)
    }

    fn create(&self, name: &CStr) -> io::Result<File> {
        // SAFETY: a valid dirfd and name; the fd is owned right away.
        let fd = unsafe {
            libc::openat(
                self.raw(),
                name.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            )
        };
        owned(fd).map(File::from)
    }

    fn mkdir(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: a valid dirfd and name.
        check(unsafe { libc::mkdirat(self.raw(), name.as_ptr(), 0o755) })
    }

    fn symlink(&self, target: &OsStr, name: &CStr) -> io::Result<()> {
        let target = CString::new(target.as_bytes()).map_err(io::Error::other)?;
        // SAFETY: valid strings and dirfd.
        check(unsafe { libc::symlinkat(target.as_ptr(), self.raw(), name.as_ptr()) })
    }

    pub(super) fn read_link(&self, name: &CStr) -> io::Result<OsString> {
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: the buffer is as long as we say.
        let len = unsafe {
            libc::readlinkat(
                self.raw(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(len as usize);
        Ok(OsString::from_vec(buf))
    }

    fn chmod(&self, mode: libc::mode_t) -> io::Result<()> {
        // SAFETY: a valid fd.
        check(unsafe { libc::fchmod(self.raw(), mode) })
    }

    pub(super) fn xattr(&self, name: &CStr) -> Option<Vec<u8>> {
        let mut buf = [0u8; 16];
        // SAFETY: the buffer is as long as we say.
        let len = unsafe {
            libc::fgetxattr(
                self.raw(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        (len >= 0).then(|| buf[..len as usize].to_vec())
    }

    /// Writes the new entry under the temporary name with `make`, then renames it over `name`
    /// (first removing a directory there, which rename cannot replace).
    fn replace_with(
        &self,
        name: &CStr,
        make: impl FnOnce(&Dir) -> io::Result<()>,
        depth_left: usize,
    ) -> io::Result<()> {
        self.remove(TEMP_NAME, 0)?;
        if let Err(err) = make(self) {
            let _ = self.remove(TEMP_NAME, 0);
            return Err(err);
        }
        if self
            .stat(name)
            .is_ok_and(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFDIR)
        {
            self.remove(name, depth_left)?;
        }
        // SAFETY: valid dirfds and names.
        check(unsafe { libc::renameat(self.raw(), TEMP_NAME.as_ptr(), self.raw(), name.as_ptr()) })
    }

    /// Removes `name` (a whole tree if it is a directory, never following symlinks). Returns
    /// whether there was anything to remove.
    fn remove(&self, name: &CStr, depth_left: usize) -> io::Result<bool> {
        let stat = match self.stat(name) {
            Ok(stat) => stat,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        };
        if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
            if depth_left == 0 {
                return Err(io::Error::other("directory tree too deep to remove"));
            }
            let dir = self.open_dir(name)?;
            for child in dir.names()? {
                let child = CString::new(child.into_vec()).map_err(io::Error::other)?;
                dir.remove(&child, depth_left - 1)?;
            }
            // SAFETY: valid dirfd and name.
            check(unsafe { libc::unlinkat(self.raw(), name.as_ptr(), libc::AT_REMOVEDIR) })?;
        } else {
            // SAFETY: valid dirfd and name.
            check(unsafe { libc::unlinkat(self.raw(), name.as_ptr(), 0) })?;
        }
        Ok(true)
    }
}

pub(super) fn open_at(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: a valid dirfd and name; the fd is owned right away.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    owned(fd)
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fchmod(file: &File, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a valid fd.
    check(unsafe { libc::fchmod(file.as_raw_fd(), mode) })
}

fn set_times(file: &File, stat: &libc::stat) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: stat.st_atime,
            tv_nsec: stat.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: stat.st_mtime,
            tv_nsec: stat.st_mtime_nsec,
        },
    ];
    // SAFETY: a valid fd and two timespecs.
    check(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn upper_fd(dir: &Path) -> OwnedFd {
        File::open(dir).expect("open upper").into()
    }

    fn whiteout(path: &Path) {
        let path = CString::new(path.as_os_str().as_bytes()).expect("path");
        // SAFETY: a valid path; a 0/0 character device is how overlayfs marks a deletion.
        let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o600, 0) };
        assert_eq!(rc, 0, "mknod needs root: {}", io::Error::last_os_error());
    }

    #[test]
    fn applies_files_links_deletions_and_opaque_dirs() {
        let root = tempfile::tempdir().expect("tempdir");
        let (upper, ws) = (root.path().join("upper"), root.path().join("ws"));
        for dir in [&upper, &ws] {
            std::fs::create_dir(dir).expect("dir");
        }
        std::fs::write(ws.join("kept"), "kept").expect("kept");
        std::fs::write(ws.join("changed"), "old").expect("changed");
        std::fs::write(ws.join("deleted"), "bye").expect("deleted");
        std::fs::create_dir_all(ws.join("replaced/deep")).expect("replaced");
        std::fs::write(ws.join("replaced/deep/old"), "old").expect("old");
        std::fs::create_dir(ws.join(".git")).expect(".git");

        std::fs::write(upper.join("changed"), "new").expect("changed");
        std::fs::set_permissions(
            upper.join("changed"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .expect("suid");
        std::fs::create_dir_all(upper.join("added/sub")).expect("added");
        std::fs::write(upper.join("added/sub/file"), "added").expect("added file");
        std::os::unix::fs::symlink("/etc/passwd", upper.join("link")).expect("symlink");
        whiteout(&upper.join("deleted"));
        std::fs::create_dir(upper.join("replaced")).expect("opaque dir");
        let opaque = CString::new(upper.join("replaced").as_os_str().as_bytes()).expect("path");
        // SAFETY: valid strings; root may set trusted.* attributes.
        let rc = unsafe {
            libc::setxattr(
                opaque.as_ptr(),
                OPAQUE_XATTR.as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        std::fs::write(upper.join("replaced/fresh"), "fresh").expect("fresh");
        std::fs::create_dir(upper.join(".git")).expect("upper .git");
        std::fs::write(upper.join(".git/config"), "[core]\nhooksPath=/tmp").expect("planted");
        let fifo = CString::new(upper.join("fifo").as_os_str().as_bytes()).expect("path");
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

        let report = apply(&upper_fd(&upper), &ws).expect("merge");

        assert_eq!(
            std::fs::read_to_string(ws.join("kept")).expect("kept"),
            "kept"
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("changed")).expect("changed"),
            "new"
        );
        assert_eq!(
            std::fs::metadata(ws.join("changed")).expect("meta").mode() & 0o7777,
            0o755
        );
        assert_eq!(
            std::fs::read_to_string(ws.join("added/sub/file")).expect("added"),
            "added"
        );
        assert_eq!(
            std::fs::read_link(ws.join("link")).expect("link"),
            Path::new("/etc/passwd")
        );
        assert!(!ws.join("deleted").exists());
        assert!(!ws.join("replaced/deep").exists());
        assert_eq!(
            std::fs::read_to_string(ws.join("replaced/fresh")).expect("fresh"),
            "fresh"
        );
        assert!(
            !ws.join(".git/config").exists(),
            "the host .git must not be touched"
        );
        assert!(!ws.join("fifo").exists());
        assert_eq!(report.skipped, 1);
        assert_eq!(report.entries_removed, 1);
        assert!(!ws.join(TEMP_NAME.to_str().expect("utf-8")).exists());
    }

    #[test]
    fn never_follows_a_symlink_in_the_workspace() {
        let root = tempfile::tempdir().expect("tempdir");
        let (upper, ws, outside) = (
            root.path().join("upper"),
            root.path().join("ws"),
            root.path().join("outside"),
        );
        for dir in [&upper, &ws, &outside] {
            std::fs::create_dir(dir).expect("dir");
        }
        // The workspace has a symlink where the layer has a directory with a file in it.
        std::os::unix::fs::symlink(&outside, ws.join("escape")).expect("symlink");
        std::fs::create_dir(upper.join("escape")).expect("dir");
        std::fs::write(upper.join("escape/planted"), "x").expect("file");
        apply(&upper_fd(&upper), &ws).expect("merge");
        assert!(!outside.join("planted").exists());
        assert!(ws.join("escape").is_dir() && !ws.join("escape").is_symlink());
        assert!(ws.join("escape/planted").exists());
    }
}
