//! The host-side egress proxy of one run: an HTTP proxy (`CONNECT host:port` for TLS,
//! absolute URIs for plain HTTP) listening only on a Unix socket that the sandbox reaches
//! through its bridge. Each request is checked by name against the run's allowlist before any
//! resolution, then by every resolved address; the connection goes to the vetted address.
//! Every decision, allowed or not, is logged (JSON lines next to the run's log) and returned
//! with the outcome.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::task::JoinSet;

use super::policy::{EgressPolicy, Verdict, is_public};

/// Longest request head accepted (request line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Decisions kept in memory for the outcome; the file has them all.
const KEPT_DECISIONS: usize = 1000;
/// The socket's name inside the proxy's directory (the sandbox sees the directory).
pub const SOCKET_NAME: &str = crate::sandbox::profile::EGRESS_SOCKET;

/// One decision of the proxy, as logged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    /// Milliseconds since the proxy started.
    pub at_ms: u64,
    pub method: String,
    /// `host:port` as requested (or the raw target of a malformed request).
    pub target: String,
    pub verdict: Verdict,
    /// The address connected to, when allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Name resolution for the proxy (tests substitute their own).
pub trait Resolve: Send + Sync + std::fmt::Debug {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;
}

/// The system resolver (getaddrinfo, through tokio).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}

/// A running proxy; `finish` stops it and returns its decisions.
#[derive(Debug)]
pub struct EgressProxy {
    socket_dir: PathBuf,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    policy: EgressPolicy,
    resolver: Arc<dyn Resolve>,
    /// This host's own addresses: never a destination, whatever the policy says.
    local: BTreeSet<IpAddr>,
    started: Instant,
    log: Mutex<Log>,
}

#[derive(Debug)]
struct Log {
    kept: Vec<Decision>,
    file: Option<std::fs::File>,
}

/// Starts a proxy for `policy` with the system resolver; the decision log goes next to
/// `log_path`. `owner` is the uid and gid the sandbox runs as (the socket is theirs alone).
pub fn start(
    policy: EgressPolicy,
    log_path: &Path,
    owner: Option<(u32, u32)>,
) -> io::Result<EgressProxy> {
    start_with_resolver(policy, log_path, owner, Arc::new(SystemResolver))
}

pub fn start_with_resolver(
    policy: EgressPolicy,
    log_path: &Path,
    owner: Option<(u32, u32)>,
    resolver: Arc<dyn Resolve>,
) -> io::Result<EgressProxy> {
    policy
        .validate()
        .map_err(|reason| io::Error::new(io::ErrorKind::InvalidInput, reason))?;
    let socket_dir = private_dir(owner)?;
    let socket = socket_dir.join(SOCKET_NAME);
    let listener = UnixListener::bind(&socket)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&socket, Some(uid), Some(gid))?;
    }
    let file = std::fs::File::create(decision_log_path(log_path))?;
    let state = Arc::new(State {
        policy,
        resolver,
        local: local_addresses(),
        started: Instant::now(),
        log: Mutex::new(Log {
            kept: Vec::new(),
            file: Some(file),
        }),
    });
    let server = tokio::spawn(serve(listener, Arc::clone(&state)));
    Ok(EgressProxy {
        socket_dir,
        state,
        server,
    })
}

/// Where the decisions of the run logged at `log_path` are written (JSON lines).
pub fn decision_log_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("egress.jsonl")
}

impl EgressProxy {
    /// The directory holding the proxy's socket (`SOCKET_NAME`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Stops the proxy (open connections included) and returns the decisions it made.
    pub async fn finish(mut self) -> Vec<Decision> {
        self.server.abort();
        let _ = (&mut self.server).await;
        let _ = std::fs::remove_dir_all(&self.socket_dir);
        let mut log = self.state.log.lock().unwrap_or_else(|p| p.into_inner());
        log.file = None;
        std::mem::take(&mut log.kept)
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }
}

/// A fresh directory only the sandbox's uid (and root) may enter.
fn private_dir(owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::env::temp_dir().join(format!("errand-egress-{}", crate::sandbox::run_name()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
    }
    Ok(dir)
}

async fn serve(listener: UnixListener, state: Arc<State>) {
    // Connections live in the set, so aborting the server drops (closes) every one of them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(handle(stream, Arc::clone(&state)));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "egress proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// A parsed proxy request.
struct Request {
    method: String,
    host: String,
    port: u16,
    /// For plain HTTP: the head to send upstream (origin-form, Connection: close).
    forward_head: Option<Vec<u8>>,
}

async fn handle(mut client: UnixStream, state: Arc<State>) {
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(read)) => read,
        _ => return,
    };
    let request = match parse(&head) {
        Ok(request) => request,
        Err((method, target)) => {
            state.record(&method, &target, Verdict::Malformed, None);
            let _ = respond(&mut client, 400, "Bad Request").await;
            return;
        }
    };
    let target = format!("{}:{}", request.host, request.port);
    let host = match state.policy.check_name(&request.host, request.port) {
        Ok(host) => host,
        Err(verdict) => {
            state.record(&request.method, &target, verdict, None);
            let _ = respond(&mut client, 403, "Forbidden").await;
            return;
        }
    };
    let addresses = match state.vetted_addresses(&host).await {
        Ok(addresses) => addresses,
        Err(verdict) => {
            state.record(&request.method, &target, verdict, None);
            let (status, reason) = if verdict == Verdict::ForbiddenAddress {
                (403, "Forbidden")
            } else {
                (502, "Bad Gateway")
            };
            let _ = respond(&mut client, status, reason).await;
            return;
        }
    };
    let Some((mut upstream, address)) = connect_first(&addresses, request.port).await else {
        state.record(&request.method, &target, Verdict::ConnectFailed, None);
        let _ = respond(&mut client, 502, "Bad Gateway").await;
        return;
    };
    state.record(&request.method, &target, Verdict::Allowed, Some(address));
    let ready = match &request.forward_head {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
        }
        Some(forward) => upstream.write_all(forward).await,
    };
    if ready.is_err() || upstream.write_all(&rest).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

impl State {
    /// The addresses `host` may be reached at: operator-pinned ones as they are, resolved
    /// ones only if every one of them is public and not this host's own.
    async fn vetted_addresses(&self, host: &str) -> Result<Vec<IpAddr>, Verdict> {
        if let Some(pinned) = self.policy.pinned(host) {
            return Ok(pinned.to_vec());
        }
        let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, self.resolver.resolve(host))
            .await
            .map_err(|_| Verdict::ResolutionFailed)?
            .map_err(|_| Verdict::ResolutionFailed)?;
        if resolved.is_empty() {
            return Err(Verdict::ResolutionFailed);
        }
        // All or nothing: a mixed answer is how DNS rebinding slips a private address in.
        if resolved
            .iter()
            .any(|addr| !is_public(*addr) || self.local.contains(addr))
        {
            return Err(Verdict::ForbiddenAddress);
        }
        Ok(resolved)
    }

    fn record(&self, method: &str, target: &str, verdict: Verdict, address: Option<SocketAddr>) {
        let decision = Decision {
            at_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            method: method.chars().take(32).collect(),
            target: target.chars().take(300).collect(),
            verdict,
            address: address.map(|addr| addr.to_string()),
        };
        tracing::info!(method = %decision.method, target = %decision.target, verdict = ?verdict, "egress decision");
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = &mut log.file
            && let Ok(mut line) = serde_json::to_vec(&decision)
        {
            use std::io::Write;
            line.push(b'\n');
            let _ = file.write_all(&line);
        }
        if log.kept.len() < KEPT_DECISIONS {
            log.kept.push(decision);
        }
    }
}

async fn connect_first(addresses: &[IpAddr], port: u16) -> Option<(TcpStream, SocketAddr)> {
    for ip in addresses {
        let addr = SocketAddr::new(*ip, port);
        if let Ok(Ok(stream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            return Some((stream, addr));
        }
    }
    None
}

/// Reads up to the end of the request head; returns it and any bytes read past it.
async fn read_head<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parses a proxy request head; on failure returns (method, target) for the log.
fn parse(head: &[u8]) -> Result<Request, (String, String)> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let malformed = || (method.to_owned(), target.to_owned());
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Err(malformed());
    }
    if method == "CONNECT" {
        let (host, port) = split_authority(target, None).ok_or_else(malformed)?;
        return Ok(Request {
            method: method.to_owned(),
            host,
            port,
            forward_head: None,
        });
    }
    // Plain HTTP only: TLS goes through CONNECT.
    let rest = target.strip_prefix("http://").ok_or_else(malformed)?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(malformed());
    }
    let (host, port) = split_authority(authority, Some(80)).ok_or_else(malformed)?;
    let mut forward = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|line| !line.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "proxy-connection" | "proxy-authorization" | "connection" | "keep-alive"
        ) {
            continue;
        }
        forward.push_str(line);
        forward.push_str("\r\n");
    }
    // One request per connection: the next one must come back through the check.
    forward.push_str("Connection: close\r\n\r\n");
    Ok(Request {
        method: method.to_owned(),
        host,
        port,
        forward_head: Some(forward.into_bytes()),
    })
}

/// `host:port` (or `host` with a default port); IPv6 literals keep their brackets so the
/// policy sees (and refuses) them as literals.
fn split_authority(authority: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    if authority.is_empty() {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(']') => {
            (host, Some(port.parse().ok()?))
        }
        _ => (authority, None),
    };
    let port = port.or(default_port)?;
    (port != 0).then(|| (host.to_owned(), port))
}

async fn respond(client: &mut UnixStream, status: u16, reason: &str) -> io::Result<()> {
    let body = format!("errand egress proxy: {reason}\n");
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

/// This host's interface addresses.
fn local_addresses() -> BTreeSet<IpAddr> {
    let mut addresses = BTreeSet::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, which is walked read-only and freed once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return addresses;
        }
        let mut entry = list;
        while !entry.is_null() {
            let addr = (*entry).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        addresses
                            .insert(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        addresses.insert(IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            entry = (*entry).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_and_absolute_uris() {
        let connect =
            parse(b"CONNECT registry.test:443 HTTP/1.1\r\nHost: registry.test:443\r\n\r\n")
                .unwrap_or_else(|_| panic!("connect"));
        assert_eq!(
            (connect.method.as_str(), connect.host.as_str(), connect.port),
            ("CONNECT", "registry.test", 443)
        );
        assert!(connect.forward_head.is_none());

        let get = parse(b"GET http://registry.test:8080/a/b?c HTTP/1.1\r\nHost: registry.test\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n")
            .unwrap_or_else(|_| panic!("get"));
        assert_eq!((get.host.as_str(), get.port), ("registry.test", 8080));
        let head = String::from_utf8(get.forward_head.expect("head")).expect("utf-8");
        assert_eq!(
            head,
            "GET /a/b?c HTTP/1.1\r\nHost: registry.test\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );

        let default_port =
            parse(b"GET http://example.test HTTP/1.0\r\n\r\n").unwrap_or_else(|_| panic!("get"));
        assert_eq!(default_port.port, 80);

        for bad in [
            &b"GET /origin-form HTTP/1.1\r\n\r\n"[..],
            b"GET https://registry.test/ HTTP/1.1\r\n\r\n",
            b"CONNECT registry.test HTTP/1.1\r\n\r\n",
            b"GET http://user@registry.test/ HTTP/1.1\r\n\r\n",
            b"GET http://registry.test/ SPDY/3\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ipv6_literals_keep_their_brackets() {
        assert_eq!(
            split_authority("[::1]:443", None),
            Some(("[::1]".into(), 443))
        );
        assert_eq!(
            split_authority("[::1]", Some(80)),
            Some(("[::1]".into(), 80))
        );
        assert_eq!(split_authority("host:0", None), None);
    }

    /// A resolver that answers from a table and counts every question.
    #[derive(Debug, Default)]
    struct TableResolver {
        answers: std::collections::BTreeMap<String, Vec<IpAddr>>,
        asked: Mutex<Vec<String>>,
    }

    impl Resolve for TableResolver {
        fn resolve<'a>(
            &'a self,
            host: &'a str,
        ) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>> {
            self.asked.lock().expect("lock").push(host.to_owned());
            let answer = self
                .answers
                .get(host)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"));
            Box::pin(async move { answer })
        }
    }

    async fn status_of(proxy: &EgressProxy, request: &str) -> String {
        let mut stream = UnixStream::connect(proxy.socket_dir().join(SOCKET_NAME))
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn names_are_checked_before_any_lookup_and_answers_after() {
        let log_dir = tempfile::tempdir().expect("tempdir");
        let resolver = Arc::new(TableResolver {
            answers: [
                (
                    "internal.test".to_owned(),
                    vec![IpAddr::from([10, 0, 0, 7])],
                ),
                (
                    "rebind.test".to_owned(),
                    vec![
                        IpAddr::from([93, 184, 215, 14]),
                        IpAddr::from([169, 254, 169, 254]),
                    ],
                ),
            ]
            .into_iter()
            .collect(),
            asked: Mutex::new(Vec::new()),
        });
        let policy = EgressPolicy {
            allow: ["internal.test:443", "rebind.test:443", "gone.test:443"]
                .iter()
                .map(|entry| entry.parse().expect("entry"))
                .collect(),
            pinned: Default::default(),
        };
        let proxy = start_with_resolver(
            policy,
            &log_dir.path().join("run.log"),
            None,
            resolver.clone(),
        )
        .expect("proxy");
        let connect = |target: &str| format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        assert_eq!(
            status_of(&proxy, &connect("exfil-secret-data.evil.test:443")).await,
            "HTTP/1.1 403 Forbidden"
        );
        assert_eq!(
            status_of(&proxy, &connect("internal.test:443")).await,
            "HTTP/1.1 403 Forbidden"
        );
        assert_eq!(
            status_of(&proxy, &connect("rebind.test:443")).await,
            "HTTP/1.1 403 Forbidden"
        );
        assert_eq!(
            status_of(&proxy, &connect("gone.test:443")).await,
            "HTTP/1.1 502 Bad Gateway"
        );
        assert_eq!(
            status_of(&proxy, "BREW /pot HTCPCP/1.0\r\n\r\n").await,
            "HTTP/1.1 400 Bad Request"
        );
        // The name outside the allowlist never reached a resolver (no DNS exfiltration).
        assert_eq!(
            *resolver.asked.lock().expect("lock"),
            ["internal.test", "rebind.test", "gone.test"]
        );
        let decisions = proxy.finish().await;
        let verdicts: Vec<Verdict> = decisions.iter().map(|d| d.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::NotAllowlisted,
                Verdict::ForbiddenAddress,
                Verdict::ForbiddenAddress,
                Verdict::ResolutionFailed,
                Verdict::Malformed
            ]
        );
        let logged = std::fs::read_to_string(decision_log_path(&log_dir.path().join("run.log")))
            .expect("log");
        assert_eq!(logged.lines().count(), 5);
    }

    #[test]
    fn knows_its_loopback() {
        assert!(local_addresses().contains(&IpAddr::from([127, 0, 0, 1])));
    }
}
