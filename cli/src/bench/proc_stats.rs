//! What a process costs, read from /proc: its CPU time (its own, and its reaped children's),
//! its resident memory, and its children; the density and throughput figures sample these.

use std::time::{Duration, Instant};

use anyhow::Context;

/// Linux reports CPU times in USER_HZ ticks, which is 100 on every architecture it supports
/// for userspace (sysconf(_SC_CLK_TCK) answers 100): no need for libc here.
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    /// utime + stime of the process itself (all its threads).
    pub own_ticks: u64,
    /// cutime + cstime: children it has waited for (sandboxes, git), once they ended.
    pub children_ticks: u64,
    pub rss_bytes: u64,
}

impl Sample {
    pub fn of(pid: u32) -> anyhow::Result<Sample> {
        let at = Instant::now();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("cannot read /proc/{pid}/stat (did the process exit?)"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("cannot read /proc/{pid}/status"))?;
        let (own_ticks, children_ticks) =
            parse_cpu_ticks(&stat).with_context(|| format!("unexpected /proc/{pid}/stat"))?;
        let rss_bytes = parse_rss_bytes(&status).unwrap_or(0);
        Ok(Sample {
            at,
            own_ticks,
            children_ticks,
            rss_bytes,
        })
    }
}

/// CPU use between two samples, in percent of one core.
pub fn own_cpu_percent(from: &Sample, to: &Sample) -> f64 {
    percent_of_core(to.own_ticks.saturating_sub(from.own_ticks), to.at - from.at)
}

/// CPU seconds of the process itself between two samples.
pub fn own_cpu_secs(from: &Sample, to: &Sample) -> f64 {
    to.own_ticks.saturating_sub(from.own_ticks) as f64 / TICKS_PER_SEC
}

/// CPU seconds of the reaped children between two samples.
pub fn children_cpu_secs(from: &Sample, to: &Sample) -> f64 {
    to.children_ticks.saturating_sub(from.children_ticks) as f64 / TICKS_PER_SEC
}

fn percent_of_core(ticks: u64, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    ticks as f64 / TICKS_PER_SEC / wall.as_secs_f64() * 100.0
}

/// (utime + stime, cutime + cstime) from the text of /proc/PID/stat. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last ')'.
fn parse_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) .. cstime (17) are indices 11..=14.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((field(11)? + field(12)?, field(13)? + field(14)?))
}

/// VmRSS from the text of /proc/PID/status, in bytes.
fn parse_rss_bytes(status: &str) -> Option<u64> {
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// The direct children of `pid` (every thread's list: a child belongs to the thread that
/// forked it).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut found: Vec<u32> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// The first child of `pid` whose command name is `name`.
pub fn child_named(pid: u32, name: &str) -> Option<u32> {
    children(pid).into_iter().find(|child| {
        std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|comm| comm.trim() == name)
    })
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1_048_576.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (errand (x) y) S 1 4242 4242 0 -1 4194560 9 0 0 0 \
                    120 30 7 3 20 0 12 0 100 1000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some((150, 10)));
        assert_eq!(parse_cpu_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn rss_is_read_in_bytes() {
        let status = "Name:\terrand\nVmPeak:\t  900 kB\nVmRSS:\t  2048 kB\nThreads:\t9\n";
        assert_eq!(parse_rss_bytes(status), Some(2048 * 1024));
        assert_eq!(parse_rss_bytes("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_percent_is_of_one_core() {
        assert_eq!(percent_of_core(50, Duration::from_secs(1)), 50.0);
        assert_eq!(percent_of_core(300, Duration::from_secs(2)), 150.0);
        assert_eq!(percent_of_core(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let sample = Sample::of(std::process::id()).expect("sample");
        assert!(sample.rss_bytes > 0);
    }
}
