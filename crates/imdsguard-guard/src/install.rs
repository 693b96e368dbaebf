//! The redirect that puts the proxy in front of the metadata service: packet-filter rules that
//! send every local connection to a guarded address (IPv4, IPv6, and IPv4-mapped IPv6, which
//! leaves the host as IPv4) to the proxy's port, except the proxy's own, which carry its socket
//! mark.
//!
//! nftables: one table, `inet imdsguard`, replaced atomically on install and deleted on
//! uninstall, so nothing else in the rule set is touched. Where `nft` is absent, iptables and
//! ip6tables: a chain `IMDSGUARD` in the `nat` table and one jump to it from `OUTPUT`.
//!
//! The rules go in before the proxy listens, and stay when it stops: until it listens (at boot,
//! during a restart, after a crash) a redirected connection is refused, never let through to the
//! service unguarded. Connections that were open before the install are cut (conntrack) so none
//! keeps bypassing the guard.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::GuardError;

/// The socket mark the proxy's own connections to the service carry, and the rules let pass.
pub const DEFAULT_MARK: u32 = 0x1d5;

/// The addresses guarded by default: AWS (IMDS and its IPv6 address, ECS task credentials, EKS
/// Pod Identity and its IPv6 address), GCP's IPv6 address, Alibaba Cloud's. Azure, GCP, Oracle
/// and others share 169.254.169.254.
pub const GUARDED: [&str; 7] = [
    "169.254.169.254",
    "169.254.170.2",
    "169.254.170.23",
    "100.100.100.200",
    "fd00:ec2::254",
    "fd00:ec2::23",
    "fd20:ce::254",
];

/// Whether `ip` is one of the guarded addresses (IPv4-mapped forms as IPv4).
pub fn is_guarded(ip: IpAddr) -> bool {
    static PARSED: std::sync::LazyLock<Vec<IpAddr>> =
        std::sync::LazyLock::new(|| GUARDED.iter().filter_map(|a| a.parse().ok()).collect());
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    PARSED.contains(&ip)
}

/// Which packet filter holds the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// nftables (`nft`).
    Nft,
    /// iptables and ip6tables.
    Iptables,
}

impl Backend {
    /// nftables when `nft` runs, else iptables when it runs.
    pub fn detect() -> Option<Backend> {
        if runs("nft", &["--version"]) {
            Some(Backend::Nft)
        } else if runs("iptables", &["--version"]) {
            Some(Backend::Iptables)
        } else {
            None
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nftables",
            Backend::Iptables => "iptables",
        }
    }
}

/// What to install.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// The proxy's port (it listens on 127.0.0.1 and ::1).
    pub port: u16,
    /// The mark of the proxy's own connections.
    pub mark: u32,
    /// The guarded addresses.
    pub addresses: Vec<IpAddr>,
    /// Also redirect connections arriving from other network namespaces (containers on a
    /// bridge), and accept connections to the port only when loopback or redirected (nftables).
    pub containers: bool,
}

impl Redirect {
    /// The default addresses, to `port`.
    pub fn new(port: u16) -> Redirect {
        Redirect {
            port,
            mark: DEFAULT_MARK,
            addresses: GUARDED.iter().filter_map(|a| a.parse().ok()).collect(),
            containers: false,
        }
    }

    fn v4(&self) -> Vec<String> {
        self.addresses
            .iter()
            .filter(|a| a.is_ipv4())
            .map(ToString::to_string)
            .collect()
    }

    fn v6(&self) -> Vec<String> {
        self.addresses
            .iter()
            .filter(|a| a.is_ipv6())
            .map(ToString::to_string)
            .collect()
    }

    /// The redirect rules of a chain, IPv4 then IPv6.
    fn nft_redirects(&self) -> String {
        [("ip", self.v4()), ("ip6", self.v6())]
            .into_iter()
            .filter(|(_, addrs)| !addrs.is_empty())
            .map(|(family, addrs)| {
                format!(
                    "\t\t{family} daddr {{ {} }} tcp dport 80 redirect to :{}\n",
                    addrs.join(", "),
                    self.port
                )
            })
            .collect()
    }

    /// The nftables script: the table replaced as one transaction.
    pub fn nft_script(&self) -> String {
        let mut s = String::new();
        s.push_str("add table inet imdsguard\ndelete table inet imdsguard\n");
        s.push_str("table inet imdsguard {\n");
        s.push_str("\tcomment \"imdsguard proxy: connections to the metadata service go through the guard\"\n");
        s.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
        s.push_str(&format!("\t\tmeta mark {:#x} return\n", self.mark));
        s.push_str(&self.nft_redirects());
        s.push_str("\t}\n");
        if self.containers {
            // Containers' connections come in from their namespaces through PREROUTING and are
            // sent to the proxy's port on the address they arrived at; the port itself takes
            // only loopback and redirected connections, so the proxy is no open door.
            s.push_str("\tchain prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;\n");
            s.push_str(&self.nft_redirects());
            s.push_str("\t}\n");
            s.push_str(&format!(
                "\tchain input {{\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport {p} iif lo accept\n\t\ttcp dport {p} ct status dnat accept\n\t\ttcp dport {p} drop\n\t}}\n",
                p = self.port
            ));
        }
        s.push_str("}\n");
        s
    }

    /// The iptables commands (without the program name), IPv4 then IPv6.
    fn iptables_rules(&self) -> Vec<(&'static str, Vec<String>)> {
        let mut out = Vec::new();
        for (prog, addrs) in [("iptables", self.v4()), ("ip6tables", self.v6())] {
            if addrs.is_empty() {
                continue;
            }
            let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            out.push((prog, v(&["-t", "nat", "-N", CHAIN])));
            out.push((
                prog,
                v(&[
                    "-t",
                    "nat",
                    "-A",
                    CHAIN,
                    "-m",
                    "mark",
                    "--mark",
                    &format!("{:#x}", self.mark),
                    "-j",
                    "RETURN",
                ]),
            ));
            for a in addrs {
                out.push((
                    prog,
                    v(&[
                        "-t",
                        "nat",
                        "-A",
                        CHAIN,
                        "-d",
                        &a,
                        "-p",
                        "tcp",
                        "--dport",
                        "80",
                        "-j",
                        "REDIRECT",
                        "--to-ports",
                        &self.port.to_string(),
                    ]),
                ));
            }
            out.push((prog, v(&["-t", "nat", "-I", "OUTPUT", "1", "-j", CHAIN])));
        }
        out
    }
}

const CHAIN: &str = "IMDSGUARD";

/// A systemd unit that runs the proxy as a service: the redirect installed before the network
/// comes up (so nothing reaches the service unguarded at boot), the proxy restarted whenever it
/// stops, with only the capabilities it needs (network administration for the rules and socket
/// marks, reading other processes' `/proc` entries for attribution) under a user of its own, on a
/// read-only file system but for its log directory.
pub fn systemd_unit(
    exe: &std::path::Path,
    r: &Redirect,
    backend: Backend,
    policy: Option<&std::path::Path>,
    fail_open: bool,
) -> String {
    let exe = exe.display();
    let b = match backend {
        Backend::Nft => "nft",
        Backend::Iptables => "iptables",
    };
    let policy = policy
        .map(|p| format!(" --policy {}", p.display()))
        .unwrap_or_default();
    format!(
        "[Unit]
Description=imdsguard proxy: every request to the cloud metadata service attributed, decided, recorded
DefaultDependencies=no
After=local-fs.target
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=simple
# The redirect first: until the proxy listens, connections to the service are refused.
ExecStartPre={exe} proxy install --port {port} --mark {mark:#x} --backend {b}
ExecStart={exe} proxy --listen 127.0.0.1:{port} --listen [::1]:{port} --mark {mark:#x} --keep-redirect {port} --backend {b}{policy} --audit-log /var/log/imdsguard/audit.jsonl --db /var/lib/imdsguard/proxy.db --alerts /var/log/imdsguard/alerts.jsonl
{stop}Restart=always
RestartSec=1
DynamicUser=yes
LogsDirectory=imdsguard
StateDirectory=imdsguard
AmbientCapabilities=CAP_NET_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH
CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_PTRACE CAP_DAC_READ_SEARCH
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
",
        port = r.port,
        mark = r.mark,
        stop = if fail_open {
            format!("# The policy says fail = \"open\": when the proxy stops or crashes, the redirect goes,\n# and connections reach the service unguarded until it is back.\nExecStopPost={exe} proxy uninstall --backend {b}\n")
        } else {
            String::new()
        },
    )
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Where the rules are.
    pub backend: Backend,
    /// Open connections to guarded addresses that were cut, when conntrack could say.
    pub flushed: Option<usize>,
}

/// Installs (or replaces) the redirect.
pub fn install(r: &Redirect, backend: Backend) -> Result<Installed, GuardError> {
    if r.containers && backend == Backend::Iptables {
        return Err(GuardError::Rules(
            "redirecting containers' connections needs nftables (`--backend nft`)".to_owned(),
        ));
    }
    match backend {
        Backend::Nft => run_stdin("nft", &["-f", "-"], &r.nft_script())?,
        Backend::Iptables => {
            uninstall(Backend::Iptables)?;
            for (prog, args) in r.iptables_rules() {
                run(prog, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
            }
        }
    }
    let flushed = flush_conntrack(&r.addresses);
    Ok(Installed { backend, flushed })
}

/// Removes what [`install`] wrote, and only that; whether there was anything.
pub fn uninstall(backend: Backend) -> Result<bool, GuardError> {
    match backend {
        Backend::Nft => {
            if !installed(Backend::Nft) {
                return Ok(false);
            }
            run("nft", &["delete", "table", "inet", "imdsguard"])?;
            Ok(true)
        }
        Backend::Iptables => {
            let mut any = false;
            for prog in ["iptables", "ip6tables"] {
                if !runs(prog, &["-t", "nat", "-L", CHAIN, "-n"]) {
                    continue;
                }
                any = true;
                while runs(prog, &["-t", "nat", "-D", "OUTPUT", "-j", CHAIN]) {}
                run(prog, &["-t", "nat", "-F", CHAIN])?;
                run(prog, &["-t", "nat", "-X", CHAIN])?;
            }
            Ok(any)
        }
    }
}

/// Whether the redirect is in place.
pub fn installed(backend: Backend) -> bool {
    match backend {
        Backend::Nft => runs("nft", &["list", "table", "inet", "imdsguard"]),
        Backend::Iptables => runs("iptables", &["-t", "nat", "-C", "OUTPUT", "-j", CHAIN]),
    }
}

/// Whether the rules are in place as `r` wants them: our table with its mark exemption and its
/// redirect to the port (nftables), or our chain with its redirects and the jump to it first in
/// `OUTPUT` (iptables and ip6tables).
pub fn intact(r: &Redirect, backend: Backend) -> bool {
    let Some(listing) = listing(backend) else {
        return false;
    };
    match backend {
        Backend::Nft => {
            listing.contains(&format!("meta mark {:#010x} return", r.mark))
                && listing.contains(&format!("redirect to :{}", r.port))
        }
        Backend::Iptables => {
            let first_jump = |prog: &str| {
                Command::new(prog)
                    .args(["-t", "nat", "-S", "OUTPUT"])
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .and_then(|t| t.lines().find(|l| l.starts_with("-A")).map(str::to_owned))
                    .is_some_and(|l| l == format!("-A OUTPUT -j {CHAIN}"))
            };
            listing.contains(&format!("--to-ports {}", r.port))
                && first_jump("iptables")
                && (r.v6().is_empty() || first_jump("ip6tables"))
        }
    }
}

/// The installed rules as the packet filter lists them.
pub fn listing(backend: Backend) -> Option<String> {
    let out = match backend {
        Backend::Nft => Command::new("nft")
            .args(["list", "table", "inet", "imdsguard"])
            .output(),
        Backend::Iptables => Command::new("iptables")
            .args(["-t", "nat", "-S", CHAIN])
            .output(),
    }
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Cuts tracked connections to the guarded addresses; how many, or `None` without conntrack.
fn flush_conntrack(addrs: &[IpAddr]) -> Option<usize> {
    let mut n = 0;
    for a in addrs {
        let family = if a.is_ipv4() { "ipv4" } else { "ipv6" };
        let out = Command::new("conntrack")
            .args(["-D", "-f", family, "-p", "tcp", "-d", &a.to_string()])
            .stdout(Stdio::null())
            .output()
            .ok()?;
        // "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted."
        let said = String::from_utf8_lossy(&out.stderr);
        n += said
            .split_whitespace()
            .zip(said.split_whitespace().skip(1))
            .find(|(_, w)| *w == "flow")
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .unwrap_or(0);
    }
    Some(n)
}

fn runs(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(prog: &str, args: &[&str]) -> Result<(), GuardError> {
    run_with(prog, args, None)
}

fn run_stdin(prog: &str, args: &[&str], input: &str) -> Result<(), GuardError> {
    run_with(prog, args, Some(input))
}

/// Runs `prog ARGS`, with `input` on its standard input when given; its error output in the
/// error when it fails.
fn run_with(prog: &str, args: &[&str], input: Option<&str>) -> Result<(), GuardError> {
    let failed = |e: std::io::Error| GuardError::Rules(format!("{prog}: {e}"));
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(failed)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(failed)?;
    }
    let out = child.wait_with_output().map_err(failed)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(GuardError::Rules(format!(
            "{prog} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nft_table_redirects_every_guarded_address_but_the_proxys_own() {
        let s = Redirect::new(8169).nft_script();
        assert!(s.starts_with("add table inet imdsguard\ndelete table inet imdsguard\n"));
        assert!(s.contains("meta mark 0x1d5 return"));
        assert!(s.contains(
            "ip daddr { 169.254.169.254, 169.254.170.2, 169.254.170.23, 100.100.100.200 } tcp dport 80 redirect to :8169"
        ));
        assert!(s.contains("ip6 daddr { fd00:ec2::254, fd00:ec2::23, fd20:ce::254 } tcp dport 80 redirect to :8169"));
        // The mark's exemption comes before the redirects.
        assert!(s.find("meta mark").unwrap() < s.find("redirect").unwrap());
    }

    #[test]
    fn the_unit_installs_the_redirect_before_the_network_and_keeps_it() {
        let u = systemd_unit(
            std::path::Path::new("/usr/bin/imdsguard"),
            &Redirect::new(8169),
            Backend::Nft,
            Some(std::path::Path::new("/etc/imdsguard/policy.toml")),
            false,
        );
        assert!(u.contains("Before=network-pre.target"));
        assert!(
            !u.contains("ExecStopPost"),
            "fail closed: the rules stay when it stops"
        );
        let open = systemd_unit(
            std::path::Path::new("/usr/bin/imdsguard"),
            &Redirect::new(8169),
            Backend::Nft,
            None,
            true,
        );
        assert!(open.contains("ExecStopPost=/usr/bin/imdsguard proxy uninstall --backend nft\n"));
        assert!(u.contains("ExecStartPre=/usr/bin/imdsguard proxy install --port 8169 --mark 0x1d5 --backend nft\n"));
        assert!(u.contains("--keep-redirect 8169 --backend nft --policy /etc/imdsguard/policy.toml --audit-log /var/log/imdsguard/audit.jsonl --db /var/lib/imdsguard/proxy.db"));
        assert!(u.contains("\nStateDirectory=imdsguard\n"));
        assert!(u.contains("DynamicUser=yes") && u.contains("ProtectSystem=strict"));
        assert!(!u.contains("CAP_SYS_ADMIN"));
    }

    #[test]
    fn iptables_gets_a_chain_and_one_jump_per_family() {
        let rules = Redirect::new(8169).iptables_rules();
        let jumps: Vec<_> = rules
            .iter()
            .filter(|(_, a)| a.contains(&"OUTPUT".to_owned()))
            .map(|(p, _)| *p)
            .collect();
        assert_eq!(jumps, ["iptables", "ip6tables"]);
        assert_eq!(
            rules
                .iter()
                .filter(|(_, a)| a.contains(&"REDIRECT".to_owned()))
                .count(),
            7
        );
    }
}
