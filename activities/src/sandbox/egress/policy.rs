//! Which destinations a run may reach through the egress proxy, and the checks every request
//! goes through: the exact name first (before any DNS lookup, so attacker-chosen names never
//! reach a resolver), then every address the name resolves to.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A destination the agent may reach: an exact host name (no wildcards, no IP literals) and
/// port.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for HostPort {
    type Err = String;

    /// `host:port`, e.g. `index.crates.io:443`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not host:port"))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("{text:?} has no valid port"))?;
        let host =
            normalize_host(host).ok_or_else(|| format!("{text:?} has no valid host name"))?;
        Ok(HostPort { host, port })
    }
}

/// The egress allowlist of one run. Empty means nothing is reachable (but the proxy still
/// answers, and logs, every attempt).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EgressPolicy {
    pub allow: Vec<HostPort>,
    /// Operator-pinned answers for allowed names (like an /etc/hosts for the proxy): used
    /// instead of DNS, and trusted even when private, e.g. for an internal package mirror.
    #[serde(default)]
    pub pinned: BTreeMap<String, Vec<IpAddr>>,
}

/// Why a request was refused (or that it was not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allowed,
    /// The request was not a proxy request this proxy understands.
    Malformed,
    /// An IP address instead of a name.
    IpLiteral,
    NotAllowlisted,
    /// The name resolved to a loopback, private, link-local, metadata or otherwise
    /// non-public address.
    ForbiddenAddress,
    ResolutionFailed,
    ConnectFailed,
}

impl Verdict {
    /// The verdict's name, as logged (`allowed`, `not_allowlisted`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Malformed => "malformed",
            Verdict::IpLiteral => "ip_literal",
            Verdict::NotAllowlisted => "not_allowlisted",
            Verdict::ForbiddenAddress => "forbidden_address",
            Verdict::ResolutionFailed => "resolution_failed",
            Verdict::ConnectFailed => "connect_failed",
        }
    }
}

impl EgressPolicy {
    /// The policy of a playbook's `boundary.network` (`host` or `host:port`, 443 when the
    /// port is left out); None for an empty list, which means no network at all.
    pub fn from_allowlist(entries: &[String]) -> Result<Option<EgressPolicy>, String> {
        if entries.is_empty() {
            return Ok(None);
        }
        let mut allow = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let with_port = if entry.contains(':') {
                entry.clone()
            } else {
                format!("{entry}:443")
            };
            let host_port: HostPort = with_port
                .parse()
                .map_err(|reason| format!("boundary.network[{i}]: {reason}"))?;
            if host_port.host.parse::<IpAddr>().is_ok() || looks_numeric(&host_port.host) {
                return Err(format!(
                    "boundary.network[{i}]: {entry:?} is an IP address; name a host"
                ));
            }
            allow.push(host_port);
        }
        Ok(Some(EgressPolicy {
            allow,
            pinned: BTreeMap::new(),
        }))
    }

    /// The name check, made before any resolution. `host` is as the client sent it.
    pub fn check_name(&self, host: &str, port: u16) -> Result<String, Verdict> {
        let trimmed = host.trim_start_matches('[').trim_end_matches(']');
        if trimmed.parse::<IpAddr>().is_ok() || looks_numeric(trimmed) {
            return Err(Verdict::IpLiteral);
        }
        let host = normalize_host(host).ok_or(Verdict::Malformed)?;
        let allowed = self
            .allow
            .iter()
            .any(|entry| entry.host == host && entry.port == port);
        if allowed {
            Ok(host)
        } else {
            Err(Verdict::NotAllowlisted)
        }
    }

    /// Pinned addresses for an allowed name, if the operator set any.
    pub fn pinned(&self, host: &str) -> Option<&[IpAddr]> {
        self.pinned.get(host).map(Vec::as_slice)
    }

    /// Checks an allowlist entry's syntax (for configuration errors that name the entry).
    pub fn validate(&self) -> Result<(), String> {
        for entry in &self.allow {
            if normalize_host(&entry.host).as_deref() != Some(entry.host.as_str())
                || entry.port == 0
            {
                return Err(format!(
                    "egress allowlist entry {entry} is not a lowercase host name and port"
                ));
            }
        }
        for host in self.pinned.keys() {
            if !self.allow.iter().any(|entry| &entry.host == host) {
                return Err(format!("pinned host {host} is not on the egress allowlist"));
            }
        }
        Ok(())
    }
}

/// Lowercase, without a trailing dot; None unless it is a plausible DNS name.
fn normalize_host(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    valid.then_some(host)
}

/// Names made only of digits and dots or hex (`2130706433`, `0x7f.1`) are addresses to
/// many resolvers; refuse them like literals.
fn looks_numeric(host: &str) -> bool {
    host.split('.').all(|label| {
        let label = label.to_ascii_lowercase();
        let digits = label.strip_prefix("0x").unwrap_or(&label);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_hexdigit())
            && (label.starts_with("0x") || label.chars().all(|c| c.is_ascii_digit()))
    })
}

/// Whether a resolved address may be connected to: globally routable unicast only. Loopback,
/// private (RFC 1918, ULA), link-local (cloud metadata at 169.254.169.254), CGNAT, multicast,
/// documentation and reserved ranges are all refused.
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64 (embeds IPv4)
        || first == 0x2002) // 6to4 (embeds IPv4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_playbook_allowlist_becomes_a_policy_with_port_443_by_default() {
        assert_eq!(EgressPolicy::from_allowlist(&[]), Ok(None));
        let policy = EgressPolicy::from_allowlist(&[
            "Index.Crates.io".to_string(),
            "proxy.golang.org:8443".to_string(),
        ])
        .unwrap()
        .unwrap();
        let allow: Vec<String> = policy.allow.iter().map(ToString::to_string).collect();
        assert_eq!(allow, ["index.crates.io:443", "proxy.golang.org:8443"]);
        for (bad, why) in [
            ("10.0.0.1", "IP address"),
            ("pypi.org:0", "no valid port"),
            ("a b", "no valid host"),
            ("*.github.com", "no valid host"),
        ] {
            let err = EgressPolicy::from_allowlist(&["ok.example".into(), bad.into()]).unwrap_err();
            assert!(err.starts_with("boundary.network[1]: "), "{err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    fn policy() -> EgressPolicy {
        EgressPolicy {
            allow: vec![
                "registry.test:443".parse().expect("entry"),
                "Index.Crates.IO.:443".parse().expect("entry"),
            ],
            pinned: BTreeMap::new(),
        }
    }

    #[test]
    fn exact_names_and_ports_only() {
        let policy = policy();
        let cases: &[(&str, u16, Result<&str, Verdict>)] = &[
            ("registry.test", 443, Ok("registry.test")),
            ("REGISTRY.test.", 443, Ok("registry.test")),
            ("index.crates.io", 443, Ok("index.crates.io")),
            ("registry.test", 80, Err(Verdict::NotAllowlisted)),
            ("evil.registry.test", 443, Err(Verdict::NotAllowlisted)),
            ("registry.test.evil", 443, Err(Verdict::NotAllowlisted)),
            ("127.0.0.1", 443, Err(Verdict::IpLiteral)),
            ("169.254.169.254", 80, Err(Verdict::IpLiteral)),
            ("[::1]", 443, Err(Verdict::IpLiteral)),
            ("2130706433", 443, Err(Verdict::IpLiteral)),
            ("0x7f.1", 443, Err(Verdict::IpLiteral)),
            ("bad_name", 443, Err(Verdict::Malformed)),
            ("", 443, Err(Verdict::Malformed)),
        ];
        for (host, port, expected) in cases {
            assert_eq!(
                policy.check_name(host, *port).as_deref().map_err(|v| *v),
                *expected,
                "{host}:{port}"
            );
        }
    }

    #[test]
    fn only_public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn entries_parse_and_validate() {
        assert!("no-port".parse::<HostPort>().is_err());
        assert!("host:0".parse::<HostPort>().is_err());
        assert!("host:99999".parse::<HostPort>().is_err());
        assert_eq!(policy().validate(), Ok(()));
        let mut pinned = policy();
        pinned.pinned.insert(
            "elsewhere.test".into(),
            vec!["10.0.0.1".parse().expect("ip")],
        );
        assert!(pinned.validate().is_err());
    }
}
