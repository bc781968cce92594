//! Detached mounts the launcher prepares on the host before bwrap starts (the new mount API:
//! `open_tree`, `mount_setattr`, `fsopen`/`fsmount`). They exist only as file descriptors:
//! nothing appears in the host's mount table, and closing the fd frees them, so a crashed
//! worker leaks no mount.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A user namespace that maps id 0 to `(uid, gid)` and nothing else, used only as the id
/// mapping of an idmapped mount: files owned by root on disk appear owned by `uid` through it,
/// and files `uid` creates through it are stored as root.
pub(super) fn idmap_namespace(uid: u32, gid: u32) -> io::Result<OwnedFd> {
    let (ready_reader, ready_writer) = std::io::pipe()?;
    let (ready_r, ready_w) = (ready_reader.as_raw_fd(), ready_writer.as_raw_fd());
    // SAFETY: the child only makes raw syscalls (close, unshare, write, pause, _exit) and
    // touches no memory the other threads could hold locks on.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: as above; the child never returns into Rust code. It waits to be killed
        // rather than for a pipe to close: a helper forked at the same moment by another
        // thread would hold a copy of that pipe and keep it open.
        unsafe {
            libc::close(ready_r);
            let unshared: u8 = u8::from(libc::unshare(libc::CLONE_NEWUSER) == 0);
            libc::write(ready_w, (&raw const unshared).cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    drop(ready_writer);
    let result = map_and_open(pid, uid, gid, ready_reader);
    // The namespace lives on through our fd; the helper has nothing left to do.
    // SAFETY: signals and reaps our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    result
}

fn map_and_open(
    pid: libc::pid_t,
    uid: u32,
    gid: u32,
    mut ready: std::io::PipeReader,
) -> io::Result<OwnedFd> {
    use std::io::Read;
    let mut unshared = [0u8];
    ready.read_exact(&mut unshared)?;
    if unshared[0] != 1 {
        return Err(io::Error::other(
            "unshare(CLONE_NEWUSER) failed in the helper",
        ));
    }
    let proc = Path::new("/proc").join(pid.to_string());
    std::fs::write(proc.join("uid_map"), format!("0 {uid} 1\n"))?;
    std::fs::write(proc.join("gid_map"), format!("0 {gid} 1\n"))?;
    let ns = std::fs::File::open(proc.join("ns/user"))?;
    Ok(ns.into())
}

/// How a cloned tree is mounted.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TreeOptions<'a> {
    pub read_only: bool,
    pub idmap: Option<BorrowedFd<'a>>,
}

/// A detached bind mount of `path` (a directory or a file), nosuid and nodev.
pub(super) fn clone_tree(path: &Path, options: TreeOptions<'_>) -> io::Result<OwnedFd> {
    let path = cstring(path)?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    // SAFETY: a valid NUL-terminated path; the returned fd is owned below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
        )
    };
    let tree = owned_fd(fd)?;
    let mut attr_set = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    if options.read_only {
        attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    let mut userns_fd = 0;
    if let Some(ns) = options.idmap {
        attr_set |= libc::MOUNT_ATTR_IDMAP;
        userns_fd = ns.as_raw_fd() as u64;
    }
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd,
    };
    set_mount_attr(&tree, &attr)?;
    Ok(tree)
}

fn set_mount_attr(tree: &OwnedFd, attr: &libc::mount_attr) -> io::Result<()> {
    let empty = c"";
    // SAFETY: attr points to a live mount_attr of the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            std::ptr::from_ref(attr),
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A detached tmpfs of at most `bytes` and `inodes`, holding `upper/` (owned by `owner`, the
/// overlay's upper layer) and `work/` (overlayfs's scratch directory).
pub(super) fn sized_tmpfs(bytes: u64, inodes: u64, owner: (u32, u32)) -> io::Result<OwnedFd> {
    // SAFETY: a static NUL-terminated name; the returned fd is owned below.
    let fs = owned_fd(unsafe {
        libc::syscall(
            libc::SYS_fsopen,
            c"tmpfs".as_ptr(),
            libc::FSOPEN_CLOEXEC as libc::c_uint,
        )
    })?;
    fs_set(&fs, c"size", &bytes.to_string())?;
    fs_set(&fs, c"nr_inodes", &inodes.to_string())?;
    fs_set(&fs, c"mode", "0755")?;
    // SAFETY: a command without key or value.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let attrs = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    // SAFETY: fs is a configured filesystem context.
    let mount = owned_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC as libc::c_uint,
            attrs as libc::c_uint,
        )
    })?;
    mkdir_at(mount.as_raw_fd(), c"upper", 0o755)?;
    mkdir_at(mount.as_raw_fd(), c"work", 0o700)?;
    // SAFETY: a path relative to our own fresh mount.
    if unsafe { libc::fchownat(mount.as_raw_fd(), c"upper".as_ptr(), owner.0, owner.1, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(mount)
}

fn fs_set(fs: &OwnedFd, key: &std::ffi::CStr, value: &str) -> io::Result<()> {
    let value = CString::new(value).map_err(io::Error::other)?;
    // SAFETY: NUL-terminated key and value that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn mkdir_at(dir: RawFd, name: &std::ffi::CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a NUL-terminated name relative to an open directory.
    if unsafe { libc::mkdirat(dir, name.as_ptr(), mode) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn owned_fd(rc: libc::c_long) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(rc).map_err(io::Error::other)?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}
