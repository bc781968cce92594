//! What one sandboxed run may consume: memory, processes and CPU (through its cgroup), how much
//! it may write (a size-limited filesystem under the workspace, sized tmpfs for /tmp and
//! $HOME), and per-process rlimits as a second line.

/// Resource limits of one run. `Default` is sized for a real build and test suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// cgroup memory limit (RAM and the run's tmpfs pages), no swap.
    pub memory_bytes: u64,
    /// cgroup `pids.max` (threads count). Also RLIMIT_NPROC for the run's own uid.
    pub processes: u32,
    /// CPU bandwidth in thousandths of a core (`2000` = two cores).
    pub cpu_millicores: u32,
    /// How much the run may add to or change in the workspace: the size of the filesystem that
    /// holds its writes. `None` only where the operator accepts an uncapped workspace.
    pub workspace_write_bytes: Option<u64>,
    /// How many files and directories the run may create or change in the workspace.
    pub workspace_write_inodes: u64,
    pub tmp_bytes: u64,
    pub home_bytes: u64,
    /// RLIMIT_FSIZE: no single file larger than this (the writer gets SIGXFSZ/EFBIG).
    pub file_bytes: u64,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 4 << 30,
            processes: 1024,
            cpu_millicores: 2000,
            workspace_write_bytes: Some(2 << 30),
            workspace_write_inodes: 262_144,
            tmp_bytes: 1 << 30,
            home_bytes: 256 << 20,
            file_bytes: 1 << 30,
            open_files: 4096,
        }
    }
}

impl Limits {
    /// Rejects limits that would make every run fail or that the kernel would refuse.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(&str, bool); 7] = [
            ("memory_bytes", self.memory_bytes >= 16 << 20),
            ("processes", self.processes >= 8),
            ("cpu_millicores", self.cpu_millicores >= 10),
            (
                "workspace_write_bytes",
                self.workspace_write_bytes
                    .is_none_or(|bytes| bytes >= 1 << 20),
            ),
            ("workspace_write_inodes", self.workspace_write_inodes >= 64),
            (
                "tmp_bytes",
                self.tmp_bytes >= 1 << 20 && self.home_bytes >= 1 << 20,
            ),
            (
                "open_files",
                self.open_files >= 64 && self.file_bytes >= 1 << 20,
            ),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((field, _)) => Err(format!("{field} is too small to run anything")),
            None => Ok(()),
        }
    }

    /// The rlimits set on bwrap (inherited by everything in the sandbox). `nproc` is only set
    /// when the run has a uid of its own: for uid 0 the kernel ignores RLIMIT_NPROC, and for a
    /// shared uid it would count other runs' processes.
    pub(super) fn rlimits(&self, own_uid: bool) -> Vec<(Rlimit, u64)> {
        let mut limits = vec![
            (Rlimit::Core, 0),
            (Rlimit::FileSize, self.file_bytes),
            (Rlimit::OpenFiles, self.open_files),
        ];
        if own_uid {
            limits.push((Rlimit::Processes, u64::from(self.processes)));
        }
        limits
    }

    /// The second line when no cgroup is writable (an unprivileged worker without delegated
    /// cgroups): per-process caps on the process count and on heap and other private memory.
    /// RLIMIT_AS is avoided on purpose: runtimes that reserve large address ranges (JVMs, Go,
    /// sanitizers) break under it.
    pub(super) fn fallback_rlimits(&self) -> Vec<(Rlimit, u64)> {
        vec![
            (Rlimit::Processes, u64::from(self.processes)),
            (Rlimit::Data, self.memory_bytes),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rlimit {
    Core,
    FileSize,
    OpenFiles,
    Processes,
    Data,
}

impl Rlimit {
    pub(super) fn resource(self) -> libc::__rlimit_resource_t {
        match self {
            Rlimit::Core => libc::RLIMIT_CORE,
            Rlimit::FileSize => libc::RLIMIT_FSIZE,
            Rlimit::OpenFiles => libc::RLIMIT_NOFILE,
            Rlimit::Processes => libc::RLIMIT_NPROC,
            Rlimit::Data => libc::RLIMIT_DATA,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_small_limits_are_not() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let tiny = Limits {
            processes: 1,
            ..Limits::default()
        };
        assert!(tiny.validate().expect_err("invalid").contains("processes"));
        let uncapped = Limits {
            workspace_write_bytes: None,
            ..Limits::default()
        };
        assert_eq!(uncapped.validate(), Ok(()));
    }

    #[test]
    fn nproc_only_with_an_own_uid() {
        let limits = Limits::default();
        let has_nproc = |own| {
            limits
                .rlimits(own)
                .iter()
                .any(|(limit, _)| *limit == Rlimit::Processes)
        };
        assert!(has_nproc(true));
        assert!(!has_nproc(false));
        assert!(limits.rlimits(false).contains(&(Rlimit::Core, 0)));
    }
}
