//! Host controls around the metadata service, printed for an operator to apply: packet-filter
//! rules that let only listed users and cgroups reach it (the SOC playbook's containment, and
//! AWS's advice to limit IMDS access with local firewall rules), audit rules that record
//! `connect()` calls so its callers show in the audit log, and a Sysmon configuration fragment
//! that captures the process starts, connections and name lookups `hunt` reads.

use std::fmt::Write;

use crate::install::{DEFAULT_MARK, GUARDED};

/// Who may still reach the service once the rules are in.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    /// User names or ids.
    pub users: Vec<String>,
    /// cgroup v2 paths (`system.slice/amazon-ssm-agent.service`).
    pub cgroups: Vec<String>,
}

fn v4() -> Vec<&'static str> {
    GUARDED
        .iter()
        .copied()
        .filter(|a| !a.contains(':'))
        .collect()
}

fn v6() -> Vec<&'static str> {
    GUARDED
        .iter()
        .copied()
        .filter(|a| a.contains(':'))
        .collect()
}

/// A user for nft/iptables: a name or a number, nothing else.
fn checked_user(u: &str) -> Result<&str, String> {
    let ok = !u.is_empty()
        && u.len() <= 32
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    ok.then_some(u)
        .ok_or_else(|| format!("{u:?} is not a user name or id"))
}

fn checked_cgroup(c: &str) -> Result<String, String> {
    let c = c.trim().trim_matches('/');
    let ok = !c.is_empty() && !c.contains(['"', '\n', '\\']);
    ok.then(|| c.to_owned())
        .ok_or_else(|| format!("{c:?} is not a cgroup path"))
}

/// nftables: a table of its own, `inet imdsguard_harden`, replaced as one transaction.
pub fn nftables(allow: &Allow) -> Result<String, String> {
    let mut s = String::new();
    s.push_str("#!/usr/sbin/nft -f\n# imdsguard harden: only the users and cgroups below reach the metadata service;\n# every other connection to it is logged and reset. Apply: nft -f FILE. Remove: nft delete table inet imdsguard_harden\n");
    s.push_str("add table inet imdsguard_harden\ndelete table inet imdsguard_harden\n");
    s.push_str("table inet imdsguard_harden {\n\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n");
    let _ = writeln!(
        s,
        "\t\t# The guard's own connections (imdsguard proxy), by their socket mark."
    );
    let _ = writeln!(s, "\t\tmeta mark {DEFAULT_MARK:#x} accept");
    for (family, addrs) in [("ip", v4()), ("ip6", v6())] {
        let set = format!("{family} daddr {{ {} }} tcp dport 80", addrs.join(", "));
        for u in &allow.users {
            let _ = writeln!(s, "\t\t{set} meta skuid {} accept", checked_user(u)?);
        }
        for c in &allow.cgroups {
            let c = checked_cgroup(c)?;
            let level = c.split('/').count();
            let _ = writeln!(s, "\t\t{set} socket cgroupv2 level {level} \"{c}\" accept");
        }
        let _ = writeln!(
            s,
            "\t\t{set} log prefix \"imdsguard-harden: \" reject with tcp reset"
        );
    }
    s.push_str("\t}\n}\n");
    Ok(s)
}

/// iptables and ip6tables commands: a chain `IMDSGUARD_HARDEN` in `filter`, jumped to first
/// from `OUTPUT`.
pub fn iptables(allow: &Allow) -> Result<String, String> {
    let mut s = String::new();
    s.push_str("#!/bin/sh\n# imdsguard harden: only the users below reach the metadata service; every other\n# connection to it is logged and reset. Remove: iptables -D OUTPUT -j IMDSGUARD_HARDEN;\n# iptables -F IMDSGUARD_HARDEN; iptables -X IMDSGUARD_HARDEN (and the same with ip6tables).\nset -e\n");
    if !allow.cgroups.is_empty() {
        s.push_str(
            "# --allow-cgroup has no iptables form here; use --emit nftables for cgroups.\n",
        );
    }
    for (prog, addrs) in [("iptables", v4()), ("ip6tables", v6())] {
        let c = "IMDSGUARD_HARDEN";
        let _ = writeln!(s, "{prog} -N {c}");
        let _ = writeln!(
            s,
            "{prog} -A {c} -m mark --mark {DEFAULT_MARK:#x} -j RETURN"
        );
        for u in &allow.users {
            let _ = writeln!(
                s,
                "{prog} -A {c} -m owner --uid-owner {} -j RETURN",
                checked_user(u)?
            );
        }
        for a in addrs {
            let _ = writeln!(
                s,
                "{prog} -A {c} -d {a} -p tcp --dport 80 -j LOG --log-prefix \"imdsguard-harden: \""
            );
            let _ = writeln!(
                s,
                "{prog} -A {c} -d {a} -p tcp --dport 80 -j REJECT --reject-with tcp-reset"
            );
        }
        let _ = writeln!(s, "{prog} -I OUTPUT 1 -j {c}");
    }
    Ok(s)
}

/// Linux audit rules: every `connect()`, so that the metadata service's callers (their
/// executable, command line and user, with the address in the SOCKADDR record) are in the audit
/// log for `imdsguard hunt`.
pub fn auditd() -> String {
    "## imdsguard harden: record connect() calls; `imdsguard hunt /var/log/audit/audit.log` keeps the\n\
     ## ones that reach a metadata address. Busy hosts log many connects: add -F exit!=-115 or\n\
     ## -F uid!=... to thin them. Install: copy to /etc/audit/rules.d/imdsguard.rules; augenrules --load\n\
     -a always,exit -F arch=b64 -S connect -F key=imds-connect\n\
     -a always,exit -F arch=b32 -S connect -F key=imds-connect\n"
        .to_owned()
}

/// A Sysmon configuration fragment (event ids 1, 3 and 22) that keeps what reaches for the
/// metadata service: command lines naming it in any common spelling, connections to its
/// addresses, lookups of its names.
pub fn sysmon() -> String {
    let addrs: Vec<&str> = GUARDED.to_vec();
    let spellings = [
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "metadata.google.internal",
        "instance-data",
        "2852039166",
        "0xa9fea9fe",
        "0xA9FEA9FE",
        "0251.0376.0251.0376",
        "169.254.43518",
        "a9fe:a9fe",
    ];
    let names = [
        "metadata.google.internal",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    ];
    format!(
        r#"<!-- imdsguard harden: merge these rule groups into your Sysmon configuration
     (sysmon -c config.xml). Event 1 keeps command lines that name the metadata service,
     event 3 connections to its addresses, event 22 lookups of its names. -->
<Sysmon schemaversion="4.90">
  <EventFiltering>
    <RuleGroup name="imdsguard: metadata in command lines" groupRelation="or">
      <ProcessCreate onmatch="include">
        <CommandLine condition="contains any">{}</CommandLine>
      </ProcessCreate>
    </RuleGroup>
    <RuleGroup name="imdsguard: connections to the metadata service" groupRelation="or">
      <NetworkConnect onmatch="include">
        <DestinationIp condition="is any">{}</DestinationIp>
      </NetworkConnect>
    </RuleGroup>
    <RuleGroup name="imdsguard: metadata service names" groupRelation="or">
      <DnsQuery onmatch="include">
        <QueryName condition="is any">{}</QueryName>
      </DnsQuery>
    </RuleGroup>
  </EventFiltering>
</Sysmon>
"#,
        spellings.join(";"),
        addrs.join(";"),
        names.join(";")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_cgroups_are_checked_before_they_reach_a_rule() {
        let allow = Allow {
            users: vec!["root".into(), "ssm-user".into()],
            cgroups: vec!["/system.slice/amazon-ssm-agent.service".into()],
        };
        let n = nftables(&allow).unwrap();
        assert!(n.contains("ip daddr { 169.254.169.254, 169.254.170.2, 169.254.170.23, 100.100.100.200 } tcp dport 80 meta skuid ssm-user accept"));
        assert!(
            n.contains("socket cgroupv2 level 2 \"system.slice/amazon-ssm-agent.service\" accept")
        );
        assert!(n.contains(
            "ip6 daddr { fd00:ec2::254, fd00:ec2::23, fd20:ce::254 } tcp dport 80 log prefix"
        ));
        let bad = Allow {
            users: vec!["root; flush ruleset".into()],
            cgroups: Vec::new(),
        };
        assert!(nftables(&bad).is_err());
        assert!(iptables(&bad).is_err());
        let i = iptables(&allow).unwrap();
        assert!(i.contains("iptables -A IMDSGUARD_HARDEN -m owner --uid-owner ssm-user -j RETURN"));
        assert!(i.contains("ip6tables -I OUTPUT 1 -j IMDSGUARD_HARDEN"));
        assert!(
            sysmon().contains("<DestinationIp condition=\"is any\">169.254.169.254;169.254.170.2;")
        );
        assert!(auditd().contains("-S connect -F key=imds-connect"));
    }
}
