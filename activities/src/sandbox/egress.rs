//! Network egress for a sandbox that may reach an allowlist: the policy, and the host-side
//! HTTP proxy on a Unix socket that enforces it and logs every decision.

mod policy;
mod proxy;

pub use policy::{EgressPolicy, HostPort, Verdict, is_public};
pub use proxy::{
    Decision, EgressProxy, Resolve, SystemResolver, decision_log_path, start, start_with_resolver,
};
