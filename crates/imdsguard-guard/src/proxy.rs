//! The guard in front of the metadata service: every request attributed to its process, decided
//! by the policy, recorded in the audit log, and forwarded or refused.
//!
//! Each connection is attributed once, from its socket ([`crate::attrib`]), before any of its
//! requests is read. Each request is classified with the endpoint catalog (provider and what the
//! path hands out), decided ([`crate::policy`]), and in `enforce` mode refused with the status
//! the service itself would give (401 for a missing IMDSv2 token, 403 otherwise) and a short body
//! naming the rule; in `monitor` mode it passes, and the audit log says what enforcing would
//! have done. IMDSv2 token replies leave with the policy's hop limit as their IP TTL, as the
//! service sends them. The audit log never holds tokens, credentials or response bodies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use imdsguard_target::Kind;
use serde::Serialize;

use crate::attrib::{Attribution, Attributor};
use crate::audit::AuditLog;
use crate::policy::{Decision, Facts, Mode, Policy};
use crate::GuardError;

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where it listens (the redirect sends IPv4 to 127.0.0.1, IPv6 to ::1).
    pub listen: Vec<SocketAddr>,
    /// The metadata service it forwards to.
    pub upstream: SocketAddr,
    /// The policy file (hot-reloaded); `None`: monitor everything.
    pub policy: Option<PathBuf>,
    /// `--mode`, over the policy file's own.
    pub mode: Option<Mode>,
    /// The audit log (JSON lines).
    pub audit_log: PathBuf,
    /// Rotate the audit log past this size.
    pub audit_max_bytes: u64,
    /// The socket mark of its own connections to the service, which the redirect lets pass.
    pub mark: u32,
    /// Threads serving connections (attribution runs on threads of its own). One serves tens of
    /// thousands of requests a second; more add throughput on many cores and tail latency on
    /// few.
    pub threads: usize,
    /// Keep this redirect in place: installed before listening when missing, checked every few
    /// seconds and restored when removed or changed.
    pub keep_redirect: Option<(crate::install::Redirect, crate::install::Backend)>,
}

/// How often a kept redirect is checked.
const REDIRECT_CHECK: Duration = Duration::from_secs(3);

/// Checks the redirect until the process ends, restoring it when it is gone or changed.
fn keep_redirect(r: crate::install::Redirect, backend: crate::install::Backend) {
    loop {
        std::thread::sleep(REDIRECT_CHECK);
        if crate::install::intact(&r, backend) {
            continue;
        }
        match crate::install::install(&r, backend) {
            Ok(_) => eprintln!(
                "imdsguard proxy: the redirect was missing or changed in {}; restored",
                backend.name()
            ),
            Err(e) => eprintln!(
                "imdsguard proxy: the redirect is not in place and could not be restored: {e}"
            ),
        }
    }
}

/// The largest request body forwarded (metadata requests have none).
const MAX_REQUEST_BODY: usize = 64 * 1024;
/// The largest response relayed (user-data is at most 16 KiB on AWS).
const MAX_RESPONSE_BODY: usize = 4 * 1024 * 1024;
/// How long the service may take to accept a connection, then to answer.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(2);
const UPSTREAM_ANSWER: Duration = Duration::from_secs(10);
/// How often the policy file is checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

struct Shared {
    config: ProxyConfig,
    policy: RwLock<Arc<Policy>>,
    attributor: Attributor,
    /// Lines for the audit log's writer; full, it makes requests wait rather than lose records.
    audit: tokio::sync::mpsc::Sender<Vec<u8>>,
    connections: AtomicU64,
    pool: Pool,
    /// This machine's name, in every record.
    host: String,
    /// Each process's request budget under the policy's `rate_limit`.
    buckets: Mutex<std::collections::HashMap<Caller, Bucket>>,
    /// Connections being served; past `MAX_CONNECTIONS`, new ones wait to be accepted.
    slots: Arc<tokio::sync::Semaphore>,
}

/// The most connections served at once: a flood of clients (or slow ones holding connections
/// open) makes the next wait in the kernel's queue instead of exhausting the proxy.
const MAX_CONNECTIONS: usize = 4096;

/// Whom a rate limit counts: the process, or the client address when no process was named.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Caller {
    Pid(u32, Option<String>),
    Address(std::net::IpAddr),
}

/// A token bucket: `rate` requests a second, bursts of `rate`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Shared {
    /// Whether `who` may make one more request under `rate` a second.
    fn within_rate(&self, who: Caller, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 65_536 {
            buckets.retain(|_, b| now.duration_since(b.at).as_secs() < 60);
        }
        let b = buckets.entry(who).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Records waiting for the writer, at most.
const AUDIT_QUEUE: usize = 65_536;

/// How long the audit log's writer gathers records after a write: under load it then wakes
/// about once a millisecond instead of once a request, and a record reaches the file (and
/// `watch`) at most this much later.
const AUDIT_GATHER: Duration = Duration::from_millis(1);

/// Writes audit lines as they come, flushing whenever none is waiting: every record is in the
/// file (for `watch` to read) as soon as the burst it came in has been written.
fn audit_writer(mut log: AuditLog, mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = rx.blocking_recv() {
        let mut result = log.write_line(&line);
        while let Ok(more) = rx.try_recv() {
            result = result.and_then(|()| log.write_line(&more));
        }
        if let Err(e) = result.and_then(|()| log.flush()) {
            eprintln!("imdsguard proxy: {e}");
        }
        std::thread::sleep(AUDIT_GATHER);
    }
}

/// Idle connections to the service, reused across clients: most clients open one connection
/// per request, and the service answers faster on one it already has.
#[derive(Default)]
struct Pool {
    idle: Mutex<std::collections::HashMap<SocketAddr, Vec<Sender>>>,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// The most idle connections kept per address.
const POOL_MAX: usize = 64;

impl Pool {
    async fn take(&self, to: SocketAddr) -> Option<Sender> {
        loop {
            let mut s = self
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&to)?
                .pop()?;
            if !s.is_closed() && s.ready().await.is_ok() {
                return Some(s);
            }
        }
    }

    fn give_back(&self, to: SocketAddr, s: Sender) {
        if s.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(to).or_default();
        if list.len() < POOL_MAX {
            list.push(s);
        }
    }
}

impl Shared {
    fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn mode(&self, p: &Policy) -> Mode {
        self.config.mode.unwrap_or(p.mode)
    }
}

/// One audit record: who, what, and what was decided. No tokens, credentials or bodies.
#[derive(Debug, Serialize)]
struct Record<'a> {
    time: String,
    host: &'a str,
    connection: u64,
    client: String,
    destination: String,
    attributed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    unattributed: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<&'a crate::attrib::Process>,
    method: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    kind: &'static str,
    token: bool,
    /// The request's header names (never their values).
    headers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    forwarded: Vec<&'static str>,
    mode: &'static str,
    decision: &'static str,
    rule: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    why: &'a str,
    status: u16,
    ms: f64,
}

/// Runs the proxy until interrupted; `on_ready` gets the bound addresses once it listens.
pub fn run(
    config: ProxyConfig,
    on_ready: impl FnOnce(&[SocketAddr], &Policy),
) -> Result<(), GuardError> {
    let policy = match &config.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::monitor_all(),
    };
    // The redirect goes in before the proxy listens: until it does, redirected connections are
    // refused, never let through.
    if let Some((r, backend)) = &config.keep_redirect {
        if !crate::install::intact(r, *backend) {
            crate::install::install(r, *backend)?;
        }
        let (r, backend) = (r.clone(), *backend);
        std::thread::Builder::new()
            .name("keep-redirect".to_owned())
            .spawn(move || keep_redirect(r, backend))
            .map_err(GuardError::Runtime)?;
    }
    let keep = config.keep_redirect.clone();
    let policy_path = config.policy.clone();
    let audit = AuditLog::open(&config.audit_log, config.audit_max_bytes)?;
    let (audit_tx, audit_rx) = tokio::sync::mpsc::channel(AUDIT_QUEUE);
    let writer = std::thread::Builder::new()
        .name("audit-log".to_owned())
        .spawn(move || audit_writer(audit, audit_rx))
        .map_err(GuardError::Runtime)?;
    // One thread: everything on this one (no hand-over between a worker and the I/O driver).
    let mut builder = if config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(config.threads);
        b
    };
    let rt = builder.enable_all().build().map_err(GuardError::Runtime)?;
    let result = rt.block_on(async move {
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for &addr in &config.listen {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| GuardError::Bind { addr, source })?;
            bound.push(l.local_addr().unwrap_or(addr));
            listeners.push(l);
        }
        // SIGTERM is caught before the proxy says it listens: one sent right after (a service
        // manager stopping it at once) must stop it as any other, removing a fail-open redirect,
        // not kill it with the redirect left in place.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(GuardError::Runtime)?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(GuardError::Runtime)?;
        on_ready(&bound, &policy);
        let shared = Arc::new(Shared {
            config,
            policy: RwLock::new(Arc::new(policy)),
            attributor: Attributor::default(),
            audit: audit_tx,
            connections: AtomicU64::new(0),
            pool: Pool::default(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
            buckets: Mutex::new(std::collections::HashMap::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
        });
        for l in listeners {
            tokio::spawn(serve(l, Arc::clone(&shared)));
        }
        tokio::select! {
            _ = reload(Arc::clone(&shared)) => {}
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        Ok(())
    });
    // The tasks (and with them every sender to the writer) go with the runtime; the writer then
    // writes what is left and ends.
    drop(rt);
    let _ = writer.join();
    // Stopped on purpose with a policy that fails open: the redirect goes with the proxy.
    if let (Some((_, backend)), Some(path)) = (&keep, &policy_path) {
        if Policy::load(path).is_ok_and(|p| p.fail == crate::policy::Fail::Open) {
            match crate::install::uninstall(*backend) {
                Ok(_) => eprintln!("imdsguard proxy: fail = \"open\": the redirect is removed"),
                Err(e) => {
                    eprintln!("imdsguard proxy: fail = \"open\", but the redirect stays: {e}")
                }
            }
        }
    }
    result
}

/// Re-reads the policy file when it changes; a bad file is reported and the old policy kept.
async fn reload(shared: Arc<Shared>) {
    let Some(path) = shared.config.policy.clone() else {
        return std::future::pending().await;
    };
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match Policy::load(&path) {
            Ok(p) => {
                eprintln!(
                    "imdsguard proxy: policy reloaded from {} ({} rules)",
                    path.display(),
                    p.rules.len()
                );
                *shared.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
            }
            Err(e) => {
                eprintln!("imdsguard proxy: policy not reloaded, the previous one stays: {e}")
            }
        }
    }
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok(slot) = Arc::clone(&shared.slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _slot = slot;
            let local = match stream.local_addr() {
                Ok(a) => a,
                Err(_) => return,
            };
            let id = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
            // Where the client meant to go, when the redirect brought it here.
            let original = original_destination(&stream, local);
            let target = original.filter(|d| crate::install::is_guarded(d.ip()));
            // Attribution reads /proc: off the async threads. The client is waiting for its
            // answer, so its socket and process are still there.
            let who = {
                let shared = Arc::clone(&shared);
                let theirs = original.unwrap_or(local);
                // Command lines are masked here, once per connection; each request masks only
                // the secrets it carries.
                let masked = |a: Attribution| match a {
                    Attribution::Process(p) => {
                        Attribution::Process(Arc::new(crate::redact::process(&p)))
                    }
                    other => other,
                };
                // A client seen lately, on a descriptor number it had: found here in a few
                // system calls. Anything that needs a search goes to a blocking thread.
                match shared.attributor.attribute_quick(peer, theirs) {
                    Some(a) => masked(a),
                    None => tokio::task::spawn_blocking(move || {
                        masked(shared.attributor.attribute(peer, theirs))
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Attribution::Unattributed(format!("attribution failed: {e}"))
                    }),
                }
            };
            let who = Arc::new(who);
            let Ok(raw) = crate::mock::second_handle(&stream) else {
                return;
            };
            let raw = Arc::new(raw);
            let ttl_changed = Arc::new(AtomicBool::new(false));
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                let who = Arc::clone(&who);
                let raw = Arc::clone(&raw);
                let ttl_changed = Arc::clone(&ttl_changed);
                async move {
                    let started = Instant::now();
                    let (resp, hop) = handle(&shared, req, &who, id, peer, target, started).await;
                    if let Some(h) = hop {
                        crate::mock::set_hops(&raw, u32::from(h));
                        ttl_changed.store(true, Ordering::Relaxed);
                    } else if ttl_changed.swap(false, Ordering::Relaxed) {
                        crate::mock::set_hops(&raw, crate::mock::DEFAULT_TTL);
                    }
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = http1::Builder::new()
                .header_read_timeout(Duration::from_secs(10))
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The catalog's reading of a request path: provider and what it hands out.
fn classify(path: &str) -> (Option<String>, Kind) {
    let host = if path.starts_with("/v2/credentials") {
        "169.254.170.2"
    } else if path.starts_with("/v1/credentials") {
        "169.254.170.23"
    } else {
        "169.254.169.254"
    };
    let url = format!("http://{host}{path}");
    match imdsguard_target::builtin().find(&url).into_iter().next() {
        Some(t) => (t.provider_id().map(str::to_owned), t.kind),
        None => (None, Kind::Other),
    }
}

const FORWARDING_HEADERS: [&str; 3] = ["X-Forwarded-For", "Via", "Forwarded"];

/// Headers that belong to one hop, not passed on.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn handle(
    shared: &Shared,
    req: hyper::Request<hyper::body::Incoming>,
    who: &Attribution,
    connection: u64,
    peer: SocketAddr,
    target: Option<SocketAddr>,
    started: Instant,
) -> (hyper::Response<Full<Bytes>>, Option<u8>) {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let (provider, kind) = classify(&path);
    let headers = req.headers();
    let token = headers.contains_key("x-aws-ec2-metadata-token");
    let header_names: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
    // Secrets this request carries, to be kept out of the log wherever they appear (a client's
    // command line often holds its token).
    let secrets: Vec<String> = [
        "x-aws-ec2-metadata-token",
        "authorization",
        "x-amz-security-token",
    ]
    .into_iter()
    .filter_map(|h| headers.get(h))
    .filter_map(|v| v.to_str().ok())
    .map(|v| v.trim().to_owned())
    .filter(|v| v.len() >= 8)
    .collect();
    let forwarded: Vec<&'static str> = FORWARDING_HEADERS
        .into_iter()
        .filter(|h| headers.contains_key(*h))
        .collect();
    let facts = Facts {
        method: &method,
        path: &path,
        provider: provider.as_deref(),
        kind,
        token,
        forwarded: forwarded.clone(),
    };
    let policy = shared.policy();
    let mode = shared.mode(&policy);
    let mut decision = policy.decide(&facts, who);
    if let Some(rate) = policy.rate_limit {
        let (caller, whom) = match who {
            Attribution::Process(p) => (Caller::Pid(p.pid, p.exe.clone()), "this process"),
            Attribution::Unattributed(_) => (Caller::Address(peer.ip()), "this client address"),
        };
        if decision.allow && !shared.within_rate(caller, rate, started) {
            decision = Decision::deny(
                429,
                "rate-limit",
                format!("more than {rate} requests a second from {whom}"),
            );
        }
    }
    let (resp, status) = if !decision.allow && mode == Mode::Enforce {
        refuse(&decision)
    } else {
        forward(
            &shared.pool,
            target.unwrap_or(shared.config.upstream),
            shared.config.mark,
            req,
        )
        .await
    };
    let hop =
        (kind == Kind::Token && method == "PUT" && status == 200).then_some(policy.token_hop_limit);
    let redacted;
    let (attributed, unattributed, process) = match who {
        Attribution::Process(p) => {
            redacted = crate::redact::request(p, &secrets);
            (true, None, Some(&*redacted))
        }
        Attribution::Unattributed(why) => (false, Some(why.as_str()), None),
    };
    let record = Record {
        time: jiff::Timestamp::now().to_string(),
        host: &shared.host,
        connection,
        client: peer.to_string(),
        destination: target.unwrap_or(shared.config.upstream).to_string(),
        attributed,
        unattributed,
        process,
        method: &method,
        path: &path,
        provider: provider.as_deref(),
        kind: kind.as_str(),
        token,
        headers: header_names,
        forwarded,
        mode: mode.as_str(),
        decision: if decision.allow { "allow" } else { "deny" },
        rule: &decision.rule,
        why: &decision.why,
        status,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    match serde_json::to_vec(&record) {
        Ok(mut line) => {
            line.push(b'\n');
            if shared.audit.send(line).await.is_err() {
                eprintln!("imdsguard proxy: the audit log's writer stopped");
            }
        }
        Err(e) => eprintln!("imdsguard proxy: audit record: {e}"),
    }
    (resp, hop)
}

fn text_response(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

fn refuse(d: &Decision) -> (hyper::Response<Full<Bytes>>, u16) {
    let body = format!(
        "imdsguard: refused by policy rule {:?}: {}\n",
        d.rule, d.why
    );
    (text_response(d.status, body), d.status)
}

async fn forward(
    pool: &Pool,
    upstream: SocketAddr,
    mark: u32,
    req: hyper::Request<hyper::body::Incoming>,
) -> (hyper::Response<Full<Bytes>>, u16) {
    let bad_gateway = |why: String| {
        (
            text_response(
                502,
                format!("imdsguard: the metadata service at {upstream} {why}\n"),
            ),
            502,
        )
    };
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return (
                text_response(413, "imdsguard: request body too large\n".to_owned()),
                413,
            )
        }
    };
    let mut send = match pool.take(upstream).await {
        Some(s) => s,
        None => {
            let stream = match tokio::time::timeout(
                UPSTREAM_CONNECT,
                connect_marked(upstream, mark),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return bad_gateway(format!("refused the connection ({e})")),
                Err(_) => return bad_gateway("did not accept the connection in time".to_owned()),
            };
            let (send, conn) =
                match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                    Ok(x) => x,
                    Err(e) => return bad_gateway(format!("failed the handshake ({e})")),
                };
            tokio::spawn(conn);
            send
        }
    };
    let mut out = hyper::Request::builder().method(parts.method).uri(
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    );
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            out = out.header(k, v);
        }
    }
    let Ok(out) = out.body(Full::new(body)) else {
        return bad_gateway("could not be asked (malformed request)".to_owned());
    };
    let resp = match tokio::time::timeout(UPSTREAM_ANSWER, send.send_request(out)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return bad_gateway(format!("failed ({e})")),
        Err(_) => return bad_gateway("did not answer in time".to_owned()),
    };
    let (parts, body) = resp.into_parts();
    let body = match Limited::new(body, MAX_RESPONSE_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return bad_gateway("sent an answer too large to relay".to_owned()),
    };
    pool.give_back(upstream, send);
    let status = parts.status.as_u16();
    let mut b = hyper::Response::builder().status(parts.status);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) && k != "content-length" {
            b = b.header(k, v);
        }
    }
    match b.body(Full::new(body)) {
        Ok(r) => (r, status),
        Err(_) => bad_gateway("sent a malformed answer".to_owned()),
    }
}

/// A connection to the service carrying the proxy's mark, so the redirect lets it pass. Setting
/// a mark needs `CAP_NET_ADMIN`; without it the connection goes unmarked (fine when nothing is
/// redirected, as in tests on loopback).
async fn connect_marked(to: SocketAddr, mark: u32) -> std::io::Result<tokio::net::TcpStream> {
    let sock = match to {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    let _ = socket2::SockRef::from(&sock).set_mark(mark);
    sock.connect(to).await
}

/// The destination a redirected connection was bound for (`SO_ORIGINAL_DST`), when it differs
/// from where it arrived.
fn original_destination(stream: &tokio::net::TcpStream, local: SocketAddr) -> Option<SocketAddr> {
    let sock = socket2::SockRef::from(stream);
    // An IPv4 connection on a dual-stack listener is asked as IPv4 first.
    let mapped = matches!(local, SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some());
    let dst = match local {
        SocketAddr::V4(_) => sock.original_dst_v4(),
        SocketAddr::V6(_) if mapped => sock.original_dst_v4().or_else(|_| sock.original_dst_v6()),
        SocketAddr::V6(_) => sock.original_dst_v6(),
    }
    .ok()?
    .as_socket()?;
    let dst = match dst.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), dst.port()),
            None => dst,
        },
        _ => dst,
    };
    (dst != local).then_some(dst)
}
