//! Reading files back from an untrusted workspace on the host (reports, artifacts): only
//! regular files, only beneath the workspace, never through a symlink, never blocking on a
//! FIFO, and never more than a cap. Everything the host reads from a workspace goes through
//! here.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum HostReadError {
    #[error("{path}: not a relative path inside the workspace")]
    OutsideRoot { path: PathBuf },
    #[error("{path}: refused, the path goes through a symlink")]
    Symlink { path: PathBuf },
    #[error("{path}: refused, not a regular file")]
    NotRegular { path: PathBuf },
    #[error("{path}: refused, larger than {cap} bytes")]
    TooLarge { path: PathBuf, cap: u64 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The contents of `relative` under `root`, at most `cap` bytes.
pub fn read_bytes(root: &Path, relative: &Path, cap: u64) -> Result<Vec<u8>, HostReadError> {
    let shown = root.join(relative);
    let io_err = |source: io::Error| HostReadError::Io {
        path: shown.clone(),
        source,
    };
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
        || relative.as_os_str().is_empty()
    {
        return Err(HostReadError::OutsideRoot { path: shown });
    }
    let root_fd = open_at(
        libc::AT_FDCWD,
        root,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
    .map_err(io_err)?;
    let file = match open_beneath(&root_fd, relative) {
        Ok(fd) => File::from(fd),
        Err(err) if matches!(err.raw_os_error(), Some(libc::ELOOP | libc::EXDEV)) => {
            return Err(HostReadError::Symlink { path: shown });
        }
        Err(err) if err.raw_os_error() == Some(libc::ENXIO) => {
            // A FIFO without a writer, opened non-blocking for reading, or a socket.
            return Err(HostReadError::NotRegular { path: shown });
        }
        Err(err) => return Err(io_err(err)),
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.file_type().is_file() {
        return Err(HostReadError::NotRegular { path: shown });
    }
    if meta.len() > cap {
        return Err(HostReadError::TooLarge { path: shown, cap });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte more than the cap tells a file that grew since fstat from one that did not.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > cap {
        return Err(HostReadError::TooLarge { path: shown, cap });
    }
    Ok(bytes)
}

/// Like `read_bytes`, decoded as UTF-8 (invalid sequences replaced).
pub fn read_text(root: &Path, relative: &Path, cap: u64) -> Result<String, HostReadError> {
    read_bytes(root, relative, cap).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Opens `relative` beneath `root` with openat2, refusing symlinks anywhere on the way; on a
/// kernel without openat2, walks the components with O_NOFOLLOW instead.
fn open_beneath(root: &OwnedFd, relative: &Path) -> io::Result<OwnedFd> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it changes nothing for files.
    let flags =
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    let path = cstring(relative)?;
    let how = OpenHow {
        flags: flags as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid dirfd, path and open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &raw const how,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel just gave us this fd.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let mut components: Vec<&Path> = relative
        .components()
        .map(|c| Path::new(c.as_os_str()))
        .collect();
    let last = components
        .pop()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    let mut dir = open_at(
        root.as_raw_fd(),
        Path::new("."),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )?;
    for component in components {
        dir = open_at(
            dir.as_raw_fd(),
            component,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )?;
    }
    open_at(dir.as_raw_fd(), last, flags)
}

/// `struct open_how` of openat2(2) (libc's is non-exhaustive, so it cannot be built here).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn open_at(dir: RawFd, path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = cstring(path)?;
    // SAFETY: valid dirfd and path; the fd is owned right away.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("sub");
        std::fs::write(dir.path().join("sub/report.md"), "# report\n").expect("report");
        dir
    }

    #[test]
    fn reads_a_regular_file() {
        let ws = workspace();
        let text = read_text(ws.path(), Path::new("sub/report.md"), 1024).expect("read");
        assert_eq!(text, "# report\n");
    }

    #[test]
    fn refuses_symlinks_anywhere_on_the_path() {
        let ws = workspace();
        std::os::unix::fs::symlink("/etc/passwd", ws.path().join("passwd")).expect("symlink");
        std::os::unix::fs::symlink("/etc", ws.path().join("etc")).expect("dir symlink");
        std::os::unix::fs::symlink("sub/report.md", ws.path().join("relative")).expect("relative");
        for path in ["passwd", "etc/passwd", "relative"] {
            let result = read_bytes(ws.path(), Path::new(path), 1 << 20);
            assert!(
                matches!(result, Err(HostReadError::Symlink { .. })),
                "{path}: {result:?}"
            );
        }
    }

    #[test]
    fn refuses_paths_that_leave_the_workspace() {
        let ws = workspace();
        for path in ["../x", "/etc/passwd", "sub/../../x", ""] {
            let result = read_bytes(ws.path(), Path::new(path), 1 << 20);
            assert!(
                matches!(result, Err(HostReadError::OutsideRoot { .. })),
                "{path}: {result:?}"
            );
        }
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let ws = workspace();
        let fifo = cstring(&ws.path().join("fifo")).expect("path");
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let result = read_bytes(ws.path(), Path::new("fifo"), 1 << 20);
        assert!(
            matches!(result, Err(HostReadError::NotRegular { .. })),
            "{result:?}"
        );
        let result = read_bytes(ws.path(), Path::new("sub"), 1 << 20);
        assert!(
            matches!(result, Err(HostReadError::NotRegular { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn refuses_an_oversized_file() {
        let ws = workspace();
        std::fs::write(ws.path().join("big"), vec![b'x'; 4096]).expect("big");
        let result = read_bytes(ws.path(), Path::new("big"), 4095);
        assert!(
            matches!(result, Err(HostReadError::TooLarge { cap: 4095, .. })),
            "{result:?}"
        );
        assert_eq!(
            read_bytes(ws.path(), Path::new("big"), 4096)
                .expect("fits")
                .len(),
            4096
        );
    }
}
