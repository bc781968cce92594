//! One cgroup per sandboxed run, under the worker's own cgroup: memory, process count and CPU
//! limits, an OOM count for the outcome, and killing every process of the run at once.
//!
//! Hosts come in two shapes. A cgroup v2 host has one hierarchy with every controller
//! (`memory.max`, `pids.max`, `cpu.max`, `cgroup.kill`). A hybrid host (cgroup v1 controllers,
//! like the Firecracker VMs this is developed on) has one v1 hierarchy per controller, and
//! maybe a controller-less v2 mount that still offers `cgroup.kill`; the run gets a cgroup in
//! each of them.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::limits::Limits;

/// The run cgroups of this worker sit in a directory of this name under its own cgroup.
const GROUP_DIR: &str = "errand-sandbox";
/// On a pure v2 host whose own cgroup holds processes, the worker moves itself into this leaf
/// so that its cgroup may hand controllers to the run cgroups (the no-internal-process rule).
const WORKER_LEAF: &str = "errand-worker";
const CPU_PERIOD_US: u64 = 100_000;
const OPTIONAL_FILES: &[&str] = &[
    "memory.memsw.limit_in_bytes",
    "memory.swappiness",
    "memory.swap.max",
];
/// How long removing a run cgroup waits for killed processes to leave it.
const EMPTY_BOUND: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no writable cgroup hierarchy offers {controller} (checked {checked})")]
    Missing {
        controller: &'static str,
        checked: String,
    },
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }
}

/// Where this process's cgroups are, found from /proc/self/mountinfo and /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    /// The v2 directory of this process, if a cgroup2 mount exists.
    pub unified: Option<PathBuf>,
    /// Controllers enabled in the v2 hierarchy above this process (a v2 host).
    pub unified_controllers: Vec<Controller>,
    /// The v1 directory of this process per controller (a hybrid or v1 host).
    pub v1: BTreeMap<Controller, PathBuf>,
}

impl CgroupLayout {
    pub fn probe() -> io::Result<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
        let membership = std::fs::read_to_string("/proc/self/cgroup")?;
        let mut layout = Self::parse(&mountinfo, &membership);
        if let Some(dir) = &layout.unified {
            let available = std::fs::read_to_string(dir.join("cgroup.controllers"))
                .or_else(|_| std::fs::read_to_string(root_of(dir).join("cgroup.controllers")))
                .unwrap_or_default();
            layout.unified_controllers = Controller::ALL
                .into_iter()
                .filter(|c| available.split_whitespace().any(|name| name == c.name()))
                .collect();
        }
        Ok(layout)
    }

    /// Pure part of `probe`, for tests.
    pub fn parse(mountinfo: &str, membership: &str) -> Self {
        // hierarchy-id:controllers:path; v2 is "0::path".
        let mut v1_paths: BTreeMap<String, String> = BTreeMap::new();
        let mut unified_path = None;
        for line in membership.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if id == "0" && controllers.is_empty() {
                unified_path = Some(path.to_owned());
            } else {
                for controller in controllers.split(',') {
                    v1_paths.insert(controller.to_owned(), path.to_owned());
                }
            }
        }
        let mut unified = None;
        let mut v1 = BTreeMap::new();
        for line in mountinfo.lines() {
            let Some(mount) = Mount::parse(line) else {
                continue;
            };
            if mount.fstype == "cgroup2" {
                if let Some(path) = &unified_path {
                    unified = mount.dir_of(path);
                }
            } else if mount.fstype == "cgroup" {
                for controller in Controller::ALL {
                    let listed = mount
                        .super_options
                        .split(',')
                        .any(|option| option == controller.name());
                    if let (true, Some(path)) = (listed, v1_paths.get(controller.name()))
                        && let Some(dir) = mount.dir_of(path)
                    {
                        v1.insert(controller, dir);
                    }
                }
            }
        }
        Self {
            unified,
            unified_controllers: Vec::new(),
            v1,
        }
    }

    /// Which hierarchy serves each controller: v2 when enabled there, else v1.
    fn plan(&self) -> Result<Plan, CgroupError> {
        let mut v1 = BTreeMap::new();
        let mut v2 = Vec::new();
        for controller in Controller::ALL {
            if self.unified.is_some() && self.unified_controllers.contains(&controller) {
                v2.push(controller);
            } else if let Some(dir) = self.v1.get(&controller) {
                v1.insert(controller, dir.clone());
            } else {
                return Err(CgroupError::Missing {
                    controller: controller.name(),
                    checked: format!("{self:?}"),
                });
            }
        }
        Ok(Plan {
            unified: self.unified.clone(),
            v2,
            v1,
        })
    }

    /// A short description for `errand doctor`.
    pub fn describe(&self) -> String {
        let v2 = match &self.unified {
            Some(dir) => format!(
                "v2 at {} with [{}]",
                dir.display(),
                self.unified_controllers
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            None => "no v2 mount".into(),
        };
        let v1: Vec<String> = self
            .v1
            .iter()
            .map(|(c, dir)| format!("{}={}", c.name(), dir.display()))
            .collect();
        format!("{v2}; v1: [{}]", v1.join(" "))
    }
}

/// The top of the hierarchy `dir` belongs to (for reading cgroup.controllers at the root).
fn root_of(dir: &Path) -> PathBuf {
    dir.ancestors()
        .filter(|ancestor| ancestor.join("cgroup.controllers").exists())
        .last()
        .map_or_else(|| dir.to_owned(), Path::to_owned)
}

struct Mount<'a> {
    root: &'a str,
    mount_point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> Mount<'a> {
    /// A mountinfo line: id parent major:minor root mount-point options [optional...] - fstype
    /// source super-options.
    fn parse(line: &'a str) -> Option<Self> {
        let (before, after) = line.split_once(" - ")?;
        let mut left = before.split(' ');
        let root = left.nth(3)?;
        let mount_point = left.next()?;
        let mut right = after.split(' ');
        let fstype = right.next()?;
        let super_options = right.nth(1).unwrap_or("");
        Some(Self {
            root,
            mount_point,
            fstype,
            super_options,
        })
    }

    /// The directory of cgroup `path` under this mount, if the mount shows it.
    fn dir_of(&self, path: &str) -> Option<PathBuf> {
        let relative = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root)?
        };
        let relative = relative.trim_start_matches('/');
        Some(Path::new(self.mount_point).join(relative))
    }
}

struct Plan {
    unified: Option<PathBuf>,
    v2: Vec<Controller>,
    v1: BTreeMap<Controller, PathBuf>,
}

/// The files and values that apply `limits`, per hierarchy: (controller or None for v2,
/// file, value). Pure, so every value is unit tested.
fn limit_writes(
    v2: &[Controller],
    v1: &[Controller],
    limits: &Limits,
) -> Vec<(Option<Controller>, &'static str, String)> {
    let quota = u64::from(limits.cpu_millicores) * CPU_PERIOD_US / 1000;
    let mut writes = Vec::new();
    for controller in v2 {
        match controller {
            Controller::Memory => {
                writes.push((None, "memory.max", limits.memory_bytes.to_string()));
                writes.push((None, "memory.swap.max", "0".to_owned()));
            }
            Controller::Pids => writes.push((None, "pids.max", limits.processes.to_string())),
            Controller::Cpu => writes.push((None, "cpu.max", format!("{quota} {CPU_PERIOD_US}"))),
        }
    }
    for controller in v1 {
        let c = Some(*controller);
        match controller {
            Controller::Memory => {
                writes.push((c, "memory.limit_in_bytes", limits.memory_bytes.to_string()));
                // Present only with swap accounting; equal to the RAM limit means no swap.
                writes.push((
                    c,
                    "memory.memsw.limit_in_bytes",
                    limits.memory_bytes.to_string(),
                ));
                // Without swap accounting, at least keep the run's pages out of swap.
                writes.push((c, "memory.swappiness", "0".to_owned()));
            }
            Controller::Pids => writes.push((c, "pids.max", limits.processes.to_string())),
            Controller::Cpu => {
                writes.push((c, "cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                writes.push((c, "cpu.cfs_quota_us", quota.to_string()));
            }
        }
    }
    writes
}

/// The cgroup(s) of one run. `remove` (or drop) kills what is left and deletes them.
#[derive(Debug)]
pub struct RunCgroup {
    /// The v2 directory (limits when v2 has the controllers, and cgroup.kill).
    unified: Option<PathBuf>,
    v1: BTreeMap<Controller, PathBuf>,
    removed: bool,
}

impl RunCgroup {
    /// Creates the run's cgroups with `limits` applied. Any failure is an error: a run never
    /// starts with a limit silently missing.
    pub fn create(layout: &CgroupLayout, name: &str, limits: &Limits) -> Result<Self, CgroupError> {
        let plan = layout.plan()?;
        let mut run = RunCgroup {
            unified: None,
            v1: BTreeMap::new(),
            removed: false,
        };
        if let Some(own) = &plan.unified {
            let group = own.join(GROUP_DIR);
            if !plan.v2.is_empty() {
                enable_controllers(own, &group, &plan.v2)?;
            } else {
                create_dir(&group)?;
            }
            let dir = group.join(name);
            create_dir(&dir)?;
            run.unified = Some(dir);
        }
        for (controller, own) in &plan.v1 {
            let group = own.join(GROUP_DIR);
            create_dir(&group)?;
            let dir = group.join(name);
            create_dir(&dir)?;
            run.v1.insert(*controller, dir);
        }
        let v1: Vec<Controller> = plan.v1.keys().copied().collect();
        for (controller, file, value) in limit_writes(&plan.v2, &v1, limits) {
            let dir = match controller {
                None => run.unified.as_ref(),
                Some(c) => run.v1.get(&c),
            };
            let Some(dir) = dir else { continue };
            let path = dir.join(file);
            // Files some hosts lack (no swap accounting, no swap): those limits are moot there.
            if OPTIONAL_FILES.contains(&file) && !path.exists() {
                continue;
            }
            std::fs::write(&path, &value).map_err(io_error(&path))?;
        }
        Ok(run)
    }

    /// `cgroup.procs` of every hierarchy, opened for the child to write "0" into.
    pub fn procs_files(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.dirs()
            .map(|dir| {
                let path = dir.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(io_error(&path))
            })
            .collect()
    }

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.unified.iter().chain(self.v1.values())
    }

    /// Kills every process of the run, however it was started (setsid, double fork).
    pub fn kill(&self) {
        if let Some(dir) = &self.unified {
            let kill = dir.join("cgroup.kill");
            if std::fs::write(&kill, "1").is_ok() {
                return;
            }
        }
        // No cgroup.kill (a v1-only host or a kernel before 5.14): signal what is listed.
        for dir in self.dirs() {
            for pid in pids_in(dir) {
                // SAFETY: a plain syscall; a pid that exited meanwhile only gets ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// What freezes and thaws the run's processes: its cgroup v2 directory (the freezer is
    /// part of every v2 cgroup, also on a hybrid host's controller-less v2 mount). None
    /// without a v2 hierarchy.
    pub fn freezer(&self) -> Option<Freezer> {
        self.unified.clone().map(|dir| Freezer { dir })
    }

    /// OOM kills inside the run's memory cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let (dir, file) = match (self.v1.get(&Controller::Memory), &self.unified) {
            (Some(dir), _) => (dir, "memory.oom_control"),
            (None, Some(dir)) => (dir, "memory.events"),
            (None, None) => return 0,
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|text| keyed_value(&text, "oom_kill"))
            .unwrap_or(0)
    }

    /// Whether any process is still in the run's cgroups.
    pub fn is_populated(&self) -> bool {
        self.dirs().any(|dir| !pids_in(dir).is_empty())
    }

    /// Kills what is left, waits (bounded) for the cgroups to empty and removes them.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        self.remove_dirs()
    }

    fn remove_dirs(&self) -> Result<(), CgroupError> {
        let started = Instant::now();
        while self.is_populated() {
            self.kill();
            if started.elapsed() > EMPTY_BOUND {
                break;
            }
            // Processes of a finished run leave within a millisecond or two.
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut first_error = None;
        for dir in self.dirs() {
            if let Err(err) = std::fs::remove_dir(dir)
                && err.kind() != io::ErrorKind::NotFound
            {
                first_error.get_or_insert(CgroupError::Io {
                    path: dir.clone(),
                    source: err,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        if !self.removed
            && let Err(err) = self.remove_dirs()
        {
            tracing::warn!(error = %err, "removing a run cgroup failed");
        }
    }
}

/// Freezes a run's processes (cgroup v2 `cgroup.freeze`) so that what they wrote can be read
/// as one consistent state, and thaws them again.
#[derive(Debug, Clone)]
pub struct Freezer {
    dir: PathBuf,
}

/// A frozen run: thawed when dropped, whatever happened while it was frozen.
#[derive(Debug)]
#[must_use = "the run thaws when this is dropped"]
pub struct Frozen<'a> {
    freezer: &'a Freezer,
}

impl Freezer {
    /// Freezes the run and waits until the kernel reports every process of it frozen (`frozen
    /// 1` in `cgroup.events`), at most `bound`. On any error the run is thawed before this
    /// returns.
    pub fn freeze(&self, bound: Duration) -> Result<Frozen<'_>, CgroupError> {
        // The guard first: a failed or partial freeze is undone too.
        let frozen = Frozen { freezer: self };
        let control = self.dir.join("cgroup.freeze");
        std::fs::write(&control, "1").map_err(io_error(&control))?;
        let events = self.dir.join("cgroup.events");
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&events).map_err(io_error(&events))?;
            if keyed_value(&text, "frozen") == Some(1) {
                return Ok(frozen);
            }
            if started.elapsed() > bound {
                return Err(CgroupError::Io {
                    path: events,
                    source: io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the run was not frozen within {bound:?}"),
                    ),
                });
            }
            // Runnable processes freeze at once; one in an uninterruptible wait takes longer.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        let control = self.dir.join("cgroup.freeze");
        std::fs::write(&control, "0").map_err(io_error(&control))
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        if let Err(err) = self.freezer.thaw() {
            // Gone with the run (its cgroup was removed) is the only expected failure.
            tracing::warn!(error = %err, "thawing a run failed");
        }
    }
}

/// Removes run cgroups whose worker process is gone (their names start with `run-<pid>-`),
/// killing anything still in them. Best effort: what cannot be removed is left.
pub fn sweep_stale(layout: &CgroupLayout) {
    sweep(layout, |pid| {
        !Path::new("/proc").join(pid.to_string()).exists()
    });
}

/// Kills and removes every run cgroup of worker `pid`: what its watchdog does once the worker
/// died, for runs whose bwrap had not yet armed its own parent-death signal.
pub fn sweep_runs_of(layout: &CgroupLayout, pid: u32) {
    sweep(layout, |owner| owner == pid);
}

fn sweep(layout: &CgroupLayout, select: impl Fn(u32) -> bool) {
    // Gather each run's directories across the hierarchies, so the kill goes through the v2
    // one (cgroup.kill) where there is one.
    let mut runs: BTreeMap<String, RunCgroup> = BTreeMap::new();
    let hierarchies = layout
        .unified
        .iter()
        .map(|own| (None, own))
        .chain(layout.v1.iter().map(|(c, own)| (Some(*c), own)));
    for (controller, own) in hierarchies {
        let Ok(entries) = std::fs::read_dir(own.join(GROUP_DIR)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let owner = name
                .strip_prefix("run-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if !owner.is_some_and(&select) {
                continue;
            }
            let run = runs.entry(name).or_insert_with(|| RunCgroup {
                unified: None,
                v1: BTreeMap::new(),
                removed: false,
            });
            match controller {
                None => run.unified = Some(entry.path()),
                Some(c) => {
                    run.v1.insert(c, entry.path());
                }
            }
        }
    }
    for run in runs.into_values() {
        if let Err(err) = run.remove() {
            tracing::warn!(error = %err, "removing an orphaned run cgroup failed");
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => Err(io_error(dir)(err)),
        _ => Ok(()),
    }
}

/// Makes `controllers` available to children of `group` (under `own`, this process's cgroup).
fn enable_controllers(
    own: &Path,
    group: &Path,
    controllers: &[Controller],
) -> Result<(), CgroupError> {
    let enable: String = controllers
        .iter()
        .map(|c| format!("+{} ", c.name()))
        .collect();
    let enable = enable.trim_end();
    let own_control = own.join("cgroup.subtree_control");
    if let Err(err) = std::fs::write(&own_control, enable) {
        // EBUSY: our cgroup holds processes (us); move into a leaf of our own and retry.
        if err.raw_os_error() != Some(libc::EBUSY) {
            return Err(io_error(&own_control)(err));
        }
        let leaf = own.join(WORKER_LEAF);
        create_dir(&leaf)?;
        for pid in pids_in(own) {
            let procs = leaf.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).map_err(io_error(&procs))?;
        }
        std::fs::write(&own_control, enable).map_err(io_error(&own_control))?;
    }
    create_dir(group)?;
    let group_control = group.join("cgroup.subtree_control");
    std::fs::write(&group_control, enable).map_err(io_error(&group_control))
}

fn pids_in(dir: &Path) -> Vec<libc::pid_t> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// The value of `key` in a "key value" per line file (memory.events, memory.oom_control).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_MEMBERSHIP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
1:cpu:/
0::/
";

    #[test]
    fn parses_a_hybrid_host() {
        let layout = CgroupLayout::parse(HYBRID_MOUNTINFO, HYBRID_MEMBERSHIP);
        assert_eq!(layout.unified, Some("/sys/fs/cgroup/unified".into()));
        assert_eq!(
            layout.v1.get(&Controller::Memory),
            Some(&PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(
            layout.v1.get(&Controller::Pids),
            Some(&PathBuf::from("/sys/fs/cgroup/pids"))
        );
        let plan = layout.plan().expect("plan");
        assert!(plan.v2.is_empty());
        assert_eq!(plan.v1.len(), 3);
    }

    #[test]
    fn parses_a_v2_host_in_a_container() {
        // A container sees its own cgroup as the mount's root.
        let mountinfo = "50 40 0:30 /system.slice/x.scope /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let membership = "0::/system.slice/x.scope/worker\n";
        let mut layout = CgroupLayout::parse(mountinfo, membership);
        assert_eq!(layout.unified, Some("/sys/fs/cgroup/worker".into()));
        assert!(layout.v1.is_empty());
        assert!(matches!(layout.plan(), Err(CgroupError::Missing { .. })));
        layout.unified_controllers = Controller::ALL.to_vec();
        let plan = layout.plan().expect("plan");
        assert_eq!(plan.v2, Controller::ALL.to_vec());
    }

    #[test]
    fn limit_values() {
        let limits = Limits {
            memory_bytes: 256 << 20,
            processes: 64,
            cpu_millicores: 1500,
            ..Limits::default()
        };
        let v2 = limit_writes(&Controller::ALL, &[], &limits);
        let get = |writes: &[(Option<Controller>, &str, String)], file: &str| {
            writes
                .iter()
                .find(|(_, f, _)| *f == file)
                .map(|(_, _, v)| v.clone())
        };
        assert_eq!(get(&v2, "memory.max").as_deref(), Some("268435456"));
        assert_eq!(get(&v2, "memory.swap.max").as_deref(), Some("0"));
        assert_eq!(get(&v2, "pids.max").as_deref(), Some("64"));
        assert_eq!(get(&v2, "cpu.max").as_deref(), Some("150000 100000"));
        let v1 = limit_writes(&[], &Controller::ALL, &limits);
        assert_eq!(
            get(&v1, "memory.limit_in_bytes").as_deref(),
            Some("268435456")
        );
        assert_eq!(get(&v1, "cpu.cfs_quota_us").as_deref(), Some("150000"));
        assert_eq!(get(&v1, "cpu.cfs_period_us").as_deref(), Some("100000"));
    }

    #[test]
    fn keyed_values() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(v1, "oom_kill"), Some(3));
        let v2 = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(v2, "oom_kill"), Some(1));
        assert_eq!(keyed_value(v2, "missing"), None);
    }
}
