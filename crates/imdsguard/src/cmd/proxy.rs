//! `imdsguard proxy`: the guard in front of the metadata service, and its redirect, status and
//! suggested policy.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Result;

/// `--mode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ModeArg {
    /// Decide and record, let everything pass.
    Monitor,
    /// Refuse what the policy denies.
    Enforce,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ProxyArgs {
    #[command(subcommand)]
    action: Option<ProxyAction>,
    /// Address and port to listen on; repeat for more (the redirect sends IPv4 connections to
    /// 127.0.0.1 and IPv6 ones to ::1, at the port given to `install`).
    #[arg(long, value_name = "ADDR:PORT", required = true)]
    listen: Vec<SocketAddr>,
    /// The metadata service to forward to (a redirected connection goes where it was bound).
    #[arg(long, value_name = "ADDR:PORT", default_value = "169.254.169.254:80")]
    upstream: SocketAddr,
    /// The policy (TOML; reloaded when it changes, the previous one kept when the new one is
    /// bad). Without it: monitor mode, every request passes and is recorded.
    #[arg(long, value_name = "FILE")]
    policy: Option<std::path::PathBuf>,
    /// Where each request is recorded: who, what, the decision and the rule (JSON lines; never
    /// tokens, credentials or bodies).
    #[arg(long, value_name = "FILE", required = true)]
    audit_log: Option<std::path::PathBuf>,
    /// Over the policy's own `mode`.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Rotate the audit log past this size (five old files are kept).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::parse_size)]
    audit_max_size: usize,
    /// The socket mark of the proxy's own connections to the service (the redirect lets them
    /// pass); the same as `install --mark`.
    #[arg(long, default_value = "0x1d5", value_parser = parse_mark)]
    mark: u32,
    /// Keep the redirect to this port in place: installed before listening when missing,
    /// checked every 3 seconds and restored when something removed or reordered it.
    #[arg(long, value_name = "PORT")]
    keep_redirect: Option<u16>,
    /// Threads serving connections: one serves tens of thousands of requests a second; more add
    /// throughput on many cores, and tail latency on few.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// With `--keep-redirect`: the redirect covers containers too (as `install --containers`).
    #[arg(long, requires = "keep_redirect")]
    containers: bool,
    #[command(flatten)]
    backend: BackendArgs,
    /// Run `hunt`'s built-in detections and correlations on every request as the audit log
    /// records it, with this store for their alerts and incidents (and the log's position, so a
    /// restart goes on where it stopped); alerts are also printed (JSON lines).
    #[arg(long, value_name = "PATH|URL")]
    db: Option<std::path::PathBuf>,
    /// With `--db`: append the alerts to FILE instead of standard output.
    #[arg(long, value_name = "FILE", requires = "db")]
    alerts: Option<std::path::PathBuf>,
    /// With `--db`: an allowlist file that extends the built-in one (as `hunt --allowlist`).
    #[arg(long, value_name = "FILE", requires = "db")]
    allowlist: Option<std::path::PathBuf>,
    /// With `--db`: print only alerts at or above this severity (all are stored).
    #[arg(long, default_value = "info", requires = "db")]
    min_severity: imdsguard_event::Severity,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProxyAction {
    /// Redirect every local connection to the metadata addresses to the proxy's port.
    ///
    /// nftables (table `inet imdsguard`) or, without `nft`, iptables and ip6tables (chain
    /// `IMDSGUARD`): 169.254.169.254, 169.254.170.2, 169.254.170.23, 100.100.100.200,
    /// fd00:ec2::254, fd00:ec2::23 and fd20:ce::254, port 80, IPv4-mapped IPv6 included. The
    /// proxy's own connections, marked `--mark`, pass. Until the proxy listens, redirected
    /// connections are refused. Open connections to those addresses are cut (conntrack).
    Install(InstallArgs),
    /// Remove the rules `install` wrote, and nothing else.
    Uninstall(BackendArgs),
    /// Say whether the redirect is in place (exit status 1 when not), the policy's hash and
    /// mode, and the last decisions the audit log recorded.
    Status(StatusArgs),
    /// Write a policy from what audit logs recorded (in `monitor` mode, say), to review.
    ///
    /// One rule per executable seen, with its users (and containers, when it only ran in
    /// containers), allowing exactly the methods and paths it asked for; everything else denied;
    /// IMDSv2 required when every AWS request carried a token.
    SuggestPolicy(SuggestArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// The policy file the proxy runs with: its SHA-256, mode and rules are shown.
    #[arg(long, value_name = "FILE")]
    policy: Option<std::path::PathBuf>,
    /// The proxy's audit log: the mode it runs in and its last decisions are shown.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<std::path::PathBuf>,
    /// How many of the last decisions to show.
    #[arg(long, default_value_t = 10)]
    last: usize,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SuggestArgs {
    /// Audit logs (`audit.jsonl`, and its rotated `audit.jsonl.1` … if wanted).
    #[arg(required = true, value_name = "AUDIT_LOG")]
    logs: Vec<std::path::PathBuf>,
    /// Write the policy there instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InstallArgs {
    /// The proxy's port (it listens on 127.0.0.1 and [::1] at it).
    #[arg(long, default_value_t = 8169)]
    port: u16,
    /// The socket mark of the proxy's own connections, which pass.
    #[arg(long, default_value = "0x1d5", value_parser = parse_mark)]
    mark: u32,
    #[command(flatten)]
    backend: BackendArgs,
    /// Also redirect connections from containers (other network namespaces on a bridge), and
    /// let the port take only loopback and redirected connections; the proxy then listens on
    /// `[::]:PORT` (nftables only).
    #[arg(long)]
    containers: bool,
    /// Instead of installing the rules now, write a systemd unit (`imdsguard-proxy.service`)
    /// that installs them before the network comes up and runs the proxy with them.
    #[arg(long)]
    unit: bool,
    /// Where `--unit` writes the unit.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/etc/systemd/system",
        requires = "unit"
    )]
    unit_dir: std::path::PathBuf,
    /// The policy the unit's proxy enforces (without it: monitor mode).
    #[arg(long, value_name = "FILE", requires = "unit")]
    policy: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BackendArgs {
    /// The packet filter (default: nftables when `nft` runs, else iptables).
    #[arg(long, value_enum)]
    backend: Option<BackendArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum BackendArg {
    /// nftables.
    Nft,
    /// iptables and ip6tables.
    Iptables,
}

fn parse_mark(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let n = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => t.parse(),
    };
    n.ok()
        .filter(|n| *n != 0)
        .ok_or_else(|| format!("{s:?} is not a non-zero mark (decimal or 0x hex)"))
}

#[cfg(feature = "guard")]
fn backend(b: &BackendArgs) -> Result<imdsguard_guard::install::Backend> {
    use imdsguard_guard::install::Backend;
    match b.backend {
        Some(BackendArg::Nft) => Ok(Backend::Nft),
        Some(BackendArg::Iptables) => Ok(Backend::Iptables),
        None => Backend::detect()
            .ok_or_else(|| anyhow::anyhow!("neither nft nor iptables runs here: install nftables")),
    }
}

#[cfg(feature = "guard")]
pub(crate) fn proxy(args: ProxyArgs) -> Result<ExitCode> {
    use imdsguard_guard::install;
    use imdsguard_guard::policy::Mode;
    use imdsguard_guard::proxy::{run, ProxyConfig};
    match &args.action {
        Some(ProxyAction::Install(a)) => {
            let b = backend(&a.backend)?;
            let mut r = install::Redirect::new(a.port);
            r.mark = a.mark;
            r.containers = a.containers;
            if a.unit {
                let exe = std::env::current_exe()
                    .map_err(|e| anyhow::anyhow!("where is this imdsguard: {e}"))?;
                let path = a.unit_dir.join("imdsguard-proxy.service");
                // Whether the unit removes the redirect when the proxy stops comes from the
                // policy's `fail`; a policy not written yet fails closed, and the unit says so.
                let fail_open = match &a.policy {
                    Some(p) if p.exists() => {
                        imdsguard_guard::policy::Policy::load(p)?.fail
                            == imdsguard_guard::policy::Fail::Open
                    }
                    Some(p) => {
                        eprintln!(
                            "imdsguard proxy: {} does not exist yet: the unit fails closed (write it \
                             with `install --unit` again if the policy says fail = \"open\")",
                            p.display()
                        );
                        false
                    }
                    None => false,
                };
                let text = install::systemd_unit(&exe, &r, b, a.policy.as_deref(), fail_open);
                std::fs::write(&path, text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                eprintln!(
                    "imdsguard proxy: wrote {}; `systemctl daemon-reload && systemctl enable --now imdsguard-proxy` starts it",
                    path.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let done = install::install(&r, b)?;
            let cut = match done.flushed {
                Some(n) => format!("{n} open connections to them cut"),
                None => "conntrack not found: connections opened before now are not cut".to_owned(),
            };
            eprintln!(
                "imdsguard proxy: {} now redirects the metadata addresses to port {} ({cut}); until the proxy listens there, such connections are refused",
                b.name(),
                a.port
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(ProxyAction::Uninstall(a)) => {
            let b = backend(a)?;
            if install::uninstall(b)? {
                eprintln!("imdsguard proxy: the redirect is removed from {}", b.name());
            } else {
                eprintln!("imdsguard proxy: no redirect of ours in {}", b.name());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(ProxyAction::Status(a)) => status(a),
        Some(ProxyAction::SuggestPolicy(a)) => suggest_policy(a),
        None => {
            let audit_log = args.audit_log.clone().expect("required by clap");
            let config = ProxyConfig {
                listen: args.listen.clone(),
                upstream: args.upstream,
                policy: args.policy.clone(),
                mode: args.mode.map(|m| match m {
                    ModeArg::Monitor => Mode::Monitor,
                    ModeArg::Enforce => Mode::Enforce,
                }),
                audit_log: audit_log.clone(),
                audit_max_bytes: args.audit_max_size as u64,
                mark: args.mark,
                threads: usize::from(args.threads),
                keep_redirect: match args.keep_redirect {
                    Some(port) => {
                        let mut r = install::Redirect::new(port);
                        r.mark = args.mark;
                        r.containers = args.containers;
                        Some((r, backend(&args.backend)?))
                    }
                    None => None,
                },
            };
            let mode_arg = config.mode;
            // The detections follow the audit log on a thread of their own: a request is
            // judged as `hunt` judges the log, and the guard never waits on them.
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let detections = match &args.db {
                Some(db) => Some(crate::cmd::watch::beside(
                    detections(&args, db, &audit_log),
                    args.alerts.clone(),
                    std::sync::Arc::clone(&stop),
                    "proxy: detections",
                )?),
                None => None,
            };
            let served = run(config, |addrs, policy| {
                let policy_text = match &args.policy {
                    Some(p) => format!("policy {} ({} rules)", p.display(), policy.rules.len()),
                    None => "no policy: every request passes".to_owned(),
                };
                let on: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                eprintln!(
                    "imdsguard proxy: guarding {} on {} ({} mode, {policy_text}; audit log {})",
                    args.upstream,
                    on.join(" and "),
                    mode_arg.unwrap_or(policy.mode).as_str(),
                    audit_log.display()
                );
            });
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(d) = detections {
                match d.join() {
                    Ok(Ok(report)) => eprintln!(
                        "imdsguard proxy: detections: {} requests judged, {} alerts shown (store {})",
                        report.status.events,
                        report.status.alerts,
                        args.db.as_deref().map_or(String::new(), imdsguard_store::shown)
                    ),
                    // Said when it stopped.
                    Ok(Err(_)) => {}
                    Err(_) => eprintln!("imdsguard proxy: the detections' thread panicked"),
                }
            }
            served?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The watch over the proxy's own audit log: the built-in detections, its records' format.
#[cfg(feature = "guard")]
fn detections(
    args: &ProxyArgs,
    db: &std::path::Path,
    audit_log: &std::path::Path,
) -> imdsguard_pipeline::WatchConfig {
    use imdsguard_pipeline as p;
    p::WatchConfig {
        nats: None,
        common: p::Config {
            resources: p::ResourceConfig {
                allowlist: args.allowlist.clone(),
                ..Default::default()
            },
            rules: p::RulesConfig {
                builtin: true,
                sigma: Vec::new(),
                select: Default::default(),
            },
            read: p::ReadConfig {
                format: Some(imdsguard_event::Format::ImdsguardProxy),
                ..Default::default()
            },
            correlate: p::CorrelateConfig::default(),
            min_severity: args.min_severity,
            threads: 1,
        },
        db: db.to_path_buf(),
        inputs: vec![audit_log.to_path_buf()],
        syslog_udp: Vec::new(),
        syslog_tcp: Vec::new(),
        // Change notification wakes it as the audit log grows; this bounds the wait without it.
        poll: std::time::Duration::from_millis(100),
        syslog_idle: std::time::Duration::from_secs(300),
        max_chunk: 1 << 20,
        once: false,
        // The proxy creates the log as it starts.
        wait: true,
        drain: true,
        webhook: None,
    }
}

#[cfg(feature = "guard")]
fn status(a: &StatusArgs) -> Result<ExitCode> {
    use imdsguard_guard::install;
    use imdsguard_guard::policy::Policy;
    let b = backend(&a.backend)?;
    let installed = install::installed(b);
    match install::listing(b) {
        Some(rules) if installed => {
            println!("redirect: installed ({})", b.name());
            print!("{rules}");
        }
        _ => println!("redirect: not installed ({})", b.name()),
    }
    if let Some(p) = &a.policy {
        let hash = Policy::file_hash(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        match Policy::load(p) {
            Ok(policy) => println!(
                "policy: {} sha256 {hash} ({} mode, {} rules, default {})",
                p.display(),
                policy.mode.as_str(),
                policy.rules.len(),
                match policy.default {
                    imdsguard_guard::policy::Action::Allow => "allow",
                    imdsguard_guard::policy::Action::Deny => "deny",
                }
            ),
            Err(e) => println!("policy: {} sha256 {hash} does not check: {e}", p.display()),
        }
    }
    if let Some(log) = &a.audit_log {
        let records = tail_records(log, a.last)?;
        match records.last() {
            Some(r) => println!(
                "running: {} mode (the last record, {})",
                r["mode"].as_str().unwrap_or("?"),
                r["time"].as_str().unwrap_or("?")
            ),
            None => println!("running: no record in {}", log.display()),
        }
        if !records.is_empty() {
            println!("last decisions ({}):", log.display());
        }
        for r in &records {
            let who = match (r["process"]["exe"].as_str(), r["process"]["pid"].as_u64()) {
                (Some(e), Some(p)) => format!("{e} (pid {p})"),
                _ => format!("unattributed {}", r["client"].as_str().unwrap_or("?")),
            };
            println!(
                "  {}  {:<5} {}  {who}  {} {}  rule {}",
                r["time"].as_str().unwrap_or("?"),
                r["decision"].as_str().unwrap_or("?"),
                r["status"],
                r["method"].as_str().unwrap_or("?"),
                r["path"].as_str().unwrap_or("?"),
                r["rule"].as_str().unwrap_or("?"),
            );
        }
    }
    Ok(if installed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The last `n` records of an audit log, read from its end.
#[cfg(feature = "guard")]
fn tail_records(path: &std::path::Path, n: usize) -> Result<Vec<serde_json::Value>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub((n as u64 + 1) * 4096);
    f.seek(SeekFrom::Start(from))?;
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let lines: Vec<&str> = text.lines().skip(usize::from(from > 0)).collect();
    Ok(lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .take(n)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect())
}

#[cfg(feature = "guard")]
fn suggest_policy(a: &SuggestArgs) -> Result<ExitCode> {
    use std::io::BufRead;
    let mut seen = imdsguard_guard::suggest::Observed::default();
    let mut skipped = 0usize;
    let mut read = 0usize;
    for path in &a.logs {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("imdsguard: {}: {e}", path.display());
                continue;
            }
        };
        read += 1;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("imdsguard: {}:{}: {e}", path.display(), i + 1);
                    skipped += 1;
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(r) if r.get("decision").is_some() => seen.add(&r),
                Ok(_) => {
                    eprintln!(
                        "imdsguard: {}:{}: not an audit record of imdsguard proxy",
                        path.display(),
                        i + 1
                    );
                    skipped += 1;
                }
                Err(e) => {
                    eprintln!("imdsguard: {}:{}: {e}", path.display(), i + 1);
                    skipped += 1;
                }
            }
        }
    }
    if read == 0 {
        anyhow::bail!("not one audit log could be read");
    }
    let sources: Vec<String> = a.logs.iter().map(|p| p.display().to_string()).collect();
    let text = seen.policy(&sources.join(", "));
    match &a.output {
        Some(out) => {
            std::fs::write(out, &text).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?
        }
        None => print!("{text}"),
    }
    eprintln!(
        "imdsguard: {} requests read from {read} audit logs; {skipped} lines skipped",
        seen.requests()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "guard"))]
pub(crate) fn proxy(_: ProxyArgs) -> Result<ExitCode> {
    anyhow::bail!("this imdsguard was built without the `guard` feature, which `proxy` needs")
}
