//! Per-run tokens: the worker registers one for a (task, round, playbook) before an agent run
//! and revokes it after; the agent presents it as its API key. A token names whose budget a
//! call spends and nothing else: the provider's key never leaves the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cost_guard::{CallContext, Refusal};

use super::loop_guard::Streak;

/// Tokens start with this, so that one in a log is recognisable (and redactable).
pub const TOKEN_PREFIX: &str = "errand-gw-";

/// The live tokens of a gateway. Cloning shares the registry.
#[derive(Debug, Clone, Default)]
pub struct TokenRegistry {
    runs: Arc<Mutex<HashMap<String, Run>>>,
}

#[derive(Debug)]
struct Run {
    call: CallContext,
    streak: Streak,
    calls: u64,
    refusal: Option<Refusal>,
}

/// What the gateway saw of a run, handed back when its token is revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Model calls the run asked for (forwarded or refused).
    pub calls: u64,
    /// The last call the gateway refused because a budget was spent (or the loop guard).
    pub refusal: Option<Refusal>,
}

impl TokenRegistry {
    /// A fresh token for `call`; it stays valid until revoked (or its lease is dropped).
    pub fn register(&self, call: CallContext) -> Result<TokenLease, std::io::Error> {
        let token = new_token()?;
        self.lock().insert(
            token.clone(),
            Run {
                call,
                streak: Streak::default(),
                calls: 0,
                refusal: None,
            },
        );
        Ok(TokenLease {
            registry: self.clone(),
            token: Some(token),
        })
    }

    /// Ends `token`; what the gateway saw of its run, if it was live.
    pub fn revoke(&self, token: &str) -> Option<RunSummary> {
        self.lock().remove(token).map(|run| RunSummary {
            calls: run.calls,
            refusal: run.refusal,
        })
    }

    /// Whether `token` is registered and not revoked.
    pub fn is_live(&self, token: &str) -> bool {
        self.lock().contains_key(token)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts a call of `token`'s run: whose it is, and how many identical requests in a row
    /// its body makes. None for an unknown (or revoked) token.
    pub(super) fn begin_call(&self, token: &str, body: &[u8]) -> Option<(CallContext, u32)> {
        let mut runs = self.lock();
        let run = runs.get_mut(token)?;
        run.calls += 1;
        let repeats = run.streak.observe(body);
        Some((run.call.clone(), repeats))
    }

    /// Remembers that a call of `token`'s run was refused (for the run's summary).
    pub(super) fn note_refusal(&self, token: &str, refusal: &Refusal) {
        if let Some(run) = self.lock().get_mut(token) {
            run.refusal = Some(refusal.clone());
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Run>> {
        // A panic while holding the lock leaves the map consistent (single inserts/removes).
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A registered token; revoked by `finish`, or on drop (an agent run that failed).
#[derive(Debug)]
pub struct TokenLease {
    registry: TokenRegistry,
    token: Option<String>,
}

impl TokenLease {
    pub fn token(&self) -> &str {
        self.token
            .as_deref()
            .expect("a lease holds its token until finished")
    }

    /// Revokes the token; what the gateway saw of the run.
    pub fn finish(mut self) -> RunSummary {
        let token = self.token.take().expect("finish consumes the lease");
        self.registry.revoke(&token).unwrap_or_default()
    }
}

impl Drop for TokenLease {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.registry.revoke(&token);
        }
    }
}

/// 256 random bits from the kernel, hex encoded after the prefix.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: writes at most the remaining length into our own buffer.
        let rc = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        filled += rc as usize;
    }
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + 64);
    token.push_str(TOKEN_PREFIX);
    for byte in bytes {
        token.push_str(&format!("{byte:02x}"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(task: &str) -> CallContext {
        CallContext {
            task_id: task.into(),
            round: 1,
            playbook: None,
        }
    }

    #[test]
    fn a_token_is_valid_from_registration_until_revocation() {
        let registry = TokenRegistry::default();
        let lease = registry.register(call("t1")).expect("token");
        let token = lease.token().to_owned();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 64);
        let other = registry.register(call("t2")).expect("token");
        assert_ne!(other.token(), token);
        assert_eq!(registry.begin_call(&token, b"x"), Some((call("t1"), 1)));
        assert_eq!(registry.begin_call(&token, b"x"), Some((call("t1"), 2)));
        let refusal = Refusal {
            budget: "task_dollars".into(),
            message: "spent".into(),
        };
        registry.note_refusal(&token, &refusal);
        let summary = lease.finish();
        assert_eq!(summary.calls, 2);
        assert_eq!(summary.refusal, Some(refusal));
        assert_eq!(registry.begin_call(&token, b"x"), None, "revoked");
        assert_eq!(registry.begin_call("errand-gw-guess", b"x"), None);
        drop(other);
        assert!(registry.is_empty(), "a dropped lease revokes its token");
    }
}
