//! The host uid a run executes as. A root worker never runs the agent as root: each concurrent
//! run borrows its own uid from a range that owns nothing on the host, so RLIMIT_NPROC (which
//! the kernel ignores for uid 0, and counts per uid) bounds exactly that run, and an escape from
//! the user namespace would land on an unprivileged, otherwise unused uid.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// First uid (and gid) of the range; far above login users and the usual subuid ranges.
pub const SANDBOX_ID_BASE: u32 = 2_100_000_000;
/// How many runs may hold a uid at once in one worker process.
pub const SANDBOX_ID_SLOTS: u32 = 256;

/// Hands out run ids; a slot returns to the pool when its `RunIdentity` drops.
#[derive(Debug, Clone, Default)]
pub struct IdentityPool {
    taken: Arc<Mutex<BTreeSet<u32>>>,
}

#[derive(Debug)]
pub struct RunIdentity {
    pub uid: u32,
    pub gid: u32,
    slot: u32,
    taken: Arc<Mutex<BTreeSet<u32>>>,
}

impl IdentityPool {
    /// The pool of this process: every `Sandbox` in it draws from the same slots, so two
    /// concurrent runs never share a uid (and so never share an RLIMIT_NPROC count).
    pub fn process_wide() -> IdentityPool {
        static POOL: std::sync::OnceLock<IdentityPool> = std::sync::OnceLock::new();
        POOL.get_or_init(IdentityPool::default).clone()
    }

    /// The lowest free slot, or None when `SANDBOX_ID_SLOTS` runs are already going.
    pub fn acquire(&self) -> Option<RunIdentity> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let slot = (0..SANDBOX_ID_SLOTS).find(|slot| !taken.contains(slot))?;
        taken.insert(slot);
        Some(RunIdentity {
            uid: SANDBOX_ID_BASE + slot,
            gid: SANDBOX_ID_BASE + slot,
            slot,
            taken: Arc::clone(&self.taken),
        })
    }
}

impl Drop for RunIdentity {
    fn drop(&mut self) {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        taken.remove(&self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_and_reused() {
        let pool = IdentityPool::default();
        let a = pool.acquire().expect("a");
        let b = pool.acquire().expect("b");
        assert_ne!(a.uid, b.uid);
        assert!(a.uid >= SANDBOX_ID_BASE && a.uid != 0);
        let freed = a.uid;
        drop(a);
        assert_eq!(pool.acquire().expect("c").uid, freed);
    }
}
