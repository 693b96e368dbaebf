//! `imdsguard harden`: host controls around the metadata service, printed.

use std::process::ExitCode;

use anyhow::Result;

/// What `harden` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum EmitArg {
    /// nftables rules: only the allowed users and cgroups reach the service.
    Nftables,
    /// iptables and ip6tables commands: only the allowed users reach the service.
    Iptables,
    /// Linux audit rules recording connect() calls.
    Auditd,
    /// A Sysmon configuration fragment for event ids 1, 3 and 22.
    Sysmon,
}

#[derive(Debug, clap::Args)]
pub(crate) struct HardenArgs {
    /// The controls to print.
    #[arg(long, value_enum)]
    emit: EmitArg,
    /// A user that may still reach the metadata service (repeat for more; default: root, as
    /// the cloud agents run).
    #[arg(long, value_name = "USER")]
    allow_user: Vec<String>,
    /// A cgroup v2 path whose processes may still reach it (nftables only), e.g.
    /// `system.slice/amazon-ssm-agent.service`.
    #[arg(long, value_name = "PATH")]
    allow_cgroup: Vec<String>,
}

#[cfg(feature = "guard")]
pub(crate) fn harden(args: HardenArgs) -> Result<ExitCode> {
    use imdsguard_guard::harden;
    let mut users = args.allow_user;
    if users.is_empty() && args.allow_cgroup.is_empty() {
        users.push("root".to_owned());
    }
    let allow = harden::Allow {
        users,
        cgroups: args.allow_cgroup,
    };
    let text = match args.emit {
        EmitArg::Nftables => harden::nftables(&allow).map_err(anyhow::Error::msg)?,
        EmitArg::Iptables => harden::iptables(&allow).map_err(anyhow::Error::msg)?,
        EmitArg::Auditd => harden::auditd(),
        EmitArg::Sysmon => harden::sysmon(),
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "guard"))]
pub(crate) fn harden(_: HardenArgs) -> Result<ExitCode> {
    anyhow::bail!("this imdsguard was built without the `guard` feature, which `harden` needs")
}
