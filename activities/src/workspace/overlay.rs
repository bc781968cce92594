//! The per-task copy-on-write layer: a kernel overlayfs mount whose lower layer is a prebuilt
//! base checkout and whose upper layer holds only what the task changed. Mounting takes
//! milliseconds whatever the repository's size (notes/workspaces.md), which a clone cannot.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// The directories of one overlay mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// Read-only layers, topmost first (for a task workspace: its base checkout only).
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// Mounts `layers` at `target` (an existing empty directory).
///
/// Explicit options, whatever the kernel's defaults: without redirects, metacopy and index
/// the upper layer holds whole files and plain whiteouts only, so the sandbox can stack its
/// own overlay on these same layers (an overlay mount cannot be idmapped, its layers can).
pub fn mount(layers: &Layers, target: &Path) -> io::Result<()> {
    let lower = layers
        .lower
        .iter()
        .map(|dir| checked(dir))
        .collect::<io::Result<Vec<_>>>()?
        .join(":");
    let options = format!(
        "lowerdir={lower},upperdir={},workdir={},redirect_dir=off,metacopy=off,index=off,xino=off",
        checked(&layers.upper)?,
        checked(&layers.work)?,
    );
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options.as_str()),
    )
    .map_err(io::Error::from)
}

/// Unmounts `target`; if something still holds it (a process's cwd), detaches it lazily so
/// its directories can be removed now.
pub fn unmount(target: &Path) -> io::Result<()> {
    match nix::mount::umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            nix::mount::umount2(target, MntFlags::MNT_DETACH).map_err(io::Error::from)
        }
        Err(err) => Err(err.into()),
    }
}

/// Whether an overlay is mounted exactly at `target` in this mount namespace.
pub fn is_mounted(target: &Path) -> io::Result<bool> {
    Ok(mount_at(target)?.is_some())
}

/// The layers of the overlay mounted exactly at `target`, if one is (read from
/// /proc/self/mountinfo, the kernel's own record of the mount options).
pub fn layers_of(target: &Path) -> io::Result<Option<Layers>> {
    let Some(options) = mount_at(target)? else {
        return Ok(None);
    };
    let mut lower = Vec::new();
    let (mut upper, mut work) = (None, None);
    for option in split_unescaped(&options, ',') {
        if let Some(dirs) = option.strip_prefix("lowerdir=") {
            lower.extend(
                split_unescaped(dirs, ':')
                    .into_iter()
                    .map(|d| PathBuf::from(unescape(&d))),
            );
        } else if let Some(dir) = option.strip_prefix("upperdir=") {
            upper = Some(PathBuf::from(unescape(dir)));
        } else if let Some(dir) = option.strip_prefix("workdir=") {
            work = Some(PathBuf::from(unescape(dir)));
        }
    }
    match (lower.is_empty(), upper, work) {
        (false, Some(upper), Some(work)) => Ok(Some(Layers { lower, upper, work })),
        _ => Err(io::Error::other(format!(
            "the overlay at {} has no lower, upper and work directories",
            target.display()
        ))),
    }
}

/// Unmounts every overlay mounted at or below `dir` (e.g. a data directory about to be
/// removed: removing through a mount deletes from the task's layer, and the mount would leak).
pub fn unmount_all_under(dir: &Path) -> io::Result<()> {
    let dir = std::fs::canonicalize(dir)?;
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    // Innermost last in mountinfo: unmount in reverse.
    for line in table.lines().rev() {
        let Some((head, tail)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = head.split(' ').nth(4).map(decode_octal) else {
            continue;
        };
        if tail.starts_with("overlay ") && Path::new(&point).starts_with(&dir) {
            unmount(Path::new(&point))?;
        }
    }
    Ok(())
}

/// The super options of the overlay mounted at `target`, the last such mount winning (the
/// one visible there).
fn mount_at(target: &Path) -> io::Result<Option<String>> {
    let target = match std::fs::canonicalize(target) {
        Ok(path) => path,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut found = None;
    for line in table.lines() {
        // "id parent major:minor root mount-point options [optional...] - fstype source super"
        let Some((head, tail)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = head.split(' ').nth(4) else {
            continue;
        };
        if Path::new(&decode_octal(point)) != target {
            continue;
        }
        let mut tail = tail.splitn(3, ' ');
        let fstype = tail.next().unwrap_or_default();
        let _source = tail.next();
        let options = tail.next().unwrap_or_default();
        found = (fstype == "overlay").then(|| decode_octal(options));
    }
    Ok(found)
}

/// Paths go into a comma- and colon-separated option string unescaped; refuse the ones that
/// would be read differently.
fn checked(path: &Path) -> io::Result<String> {
    let text = path
        .to_str()
        .filter(|text| !text.contains([',', ':', '\\', '\n']))
        .ok_or_else(|| io::Error::other(format!("unusable overlay path {}", path.display())))?;
    Ok(text.to_owned())
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn decode_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value =
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits at `separator` unless a backslash escapes it (overlayfs escapes `,` and `:` in
/// layer paths that way).
fn split_unescaped(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in text.chars() {
        let last = parts.last_mut().expect("never empty");
        if escaped {
            last.push(c);
            escaped = false;
        } else if c == '\\' {
            last.push(c);
            escaped = true;
        } else if c == separator {
            parts.push(String::new());
        } else {
            last.push(c);
        }
    }
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut escaped = false;
    for c in text.chars() {
        if !escaped && c == '\\' {
            escaped = true;
        } else {
            out.push(c);
            escaped = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_read_back() {
        assert_eq!(decode_octal(r"/a\040b"), "/a b");
        assert_eq!(split_unescaped(r"a\:b:c", ':'), vec![r"a\:b", "c"]);
        assert_eq!(unescape(r"a\:b"), "a:b");
        assert!(checked(Path::new("/x,y")).is_err());
    }
}
