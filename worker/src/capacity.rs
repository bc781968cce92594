//! What one worker host takes on: the name of the task queue only it polls, and how many
//! sandboxes it runs at once when the configuration does not say.

use std::time::{SystemTime, UNIX_EPOCH};

/// Memory a sandboxed agent or check is assumed to need, for the default slot count.
const GIB_PER_RUN: u64 = 2;

/// `errand-worker-<host>-<unique>`: unique per process, so a restarted worker never inherits
/// the tasks of the one before (they re-provision from their checkpoints instead of waiting on
/// a workspace that may be gone).
pub fn own_queue_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("errand-worker-{host}-{}-{nanos:08x}", std::process::id())
}

/// min(cores, memory in GiB / 2), at least 1.
pub fn default_max_runs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let by_memory = total_memory_gib().map_or(cores, |gib| (gib / GIB_PER_RUN) as usize);
    runs_for(cores, by_memory)
}

fn runs_for(cores: usize, by_memory: usize) -> usize {
    cores.min(by_memory).max(1)
}

fn total_memory_gib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total_kib(&meminfo).map(|kib| kib / (1024 * 1024))
}

fn parse_mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_scarcer_resource_and_never_reach_zero() {
        assert_eq!(runs_for(8, 3), 3);
        assert_eq!(runs_for(2, 16), 2);
        assert_eq!(runs_for(4, 0), 1);
    }

    #[test]
    fn reads_mem_total() {
        let meminfo = "MemTotal:        8052196 kB\nMemFree:  1 kB\n";
        assert_eq!(parse_mem_total_kib(meminfo), Some(8052196));
        assert_eq!(parse_mem_total_kib("nothing"), None);
    }

    #[test]
    fn queue_names_are_per_process() {
        let name = own_queue_name();
        assert!(name.starts_with("errand-worker-"), "{name}");
        assert!(name.contains(&std::process::id().to_string()), "{name}");
    }
}
