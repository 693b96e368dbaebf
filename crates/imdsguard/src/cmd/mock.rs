//! `imdsguard mock` and `imdsguard proxy`: the metadata-service mock and the guard, in the
//! foreground.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Result;

/// The service the mock plays.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ProviderArg {
    /// EC2 instance metadata (IMDSv1 and IMDSv2), under `/latest`.
    Aws,
    /// Azure Instance Metadata Service, under `/metadata`.
    Azure,
    /// Google Compute Engine metadata, under `/computeMetadata/v1`.
    Gcp,
    /// ECS task credentials (`/v2/credentials/ID`) and EKS Pod Identity (`/v1/credentials`).
    Ecs,
    /// All of them, told apart by path.
    All,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MockArgs {
    /// Address and port to listen on, e.g. `127.0.0.1:8169`, or `169.254.169.254:80` inside a
    /// network namespace of your own.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The service to play.
    #[arg(long, value_enum, default_value = "all")]
    provider: ProviderArg,
    /// Require IMDSv2 session tokens (AWS `HttpTokens=required`): token-less requests get 401.
    #[arg(long)]
    require_token: bool,
    /// IP TTL (IPv6 hop limit) of the IMDSv2 token reply; AWS's default is 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=64))]
    hop_limit: u8,
    /// The IAM role (AWS, ECS) or service account (GCP) whose fake credentials are served.
    #[arg(long, default_value = "imdsguard-mock-role")]
    role: String,
}

#[cfg(feature = "guard")]
pub(crate) fn mock(args: MockArgs) -> Result<ExitCode> {
    use imdsguard_guard::mock::{run, MockConfig, Provider};
    let provider = match args.provider {
        ProviderArg::Aws => Provider::Aws,
        ProviderArg::Azure => Provider::Azure,
        ProviderArg::Gcp => Provider::Gcp,
        ProviderArg::Ecs => Provider::Ecs,
        ProviderArg::All => Provider::All,
    };
    let config = MockConfig {
        provider,
        require_token: args.require_token,
        hop_limit: args.hop_limit,
        role: args.role,
    };
    let v2 = if config.require_token {
        "IMDSv2 required"
    } else {
        "IMDSv1 and IMDSv2"
    };
    run(args.listen, config, |addr| {
        eprintln!(
            "imdsguard mock: serving {} on {addr} ({v2}; token hop limit {}); fake credentials only",
            provider.name(),
            args.hop_limit
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "guard"))]
pub(crate) fn mock(_: MockArgs) -> Result<ExitCode> {
    anyhow::bail!("this imdsguard was built without the `guard` feature, which `mock` needs")
}

/// `--mode`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ModeArg {
    /// Decide and record, let everything pass.
    Monitor,
    /// Refuse what the policy denies.
    Enforce,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ProxyArgs {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// The metadata service to forward to.
    #[arg(long, value_name = "ADDR:PORT", default_value = "169.254.169.254:80")]
    upstream: SocketAddr,
    /// The policy (TOML; reloaded when it changes, the previous one kept when the new one is
    /// bad). Without it: monitor mode, every request passes and is recorded.
    #[arg(long, value_name = "FILE")]
    policy: Option<std::path::PathBuf>,
    /// Where each request is recorded: who, what, the decision and the rule (JSON lines; never
    /// tokens, credentials or bodies).
    #[arg(long, value_name = "FILE")]
    audit_log: std::path::PathBuf,
    /// Over the policy's own `mode`.
    #[arg(long, value_enum)]
    mode: Option<ModeArg>,
    /// Rotate the audit log past this size (five old files are kept).
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::parse_size)]
    audit_max_size: usize,
}

#[cfg(feature = "guard")]
pub(crate) fn proxy(args: ProxyArgs) -> Result<ExitCode> {
    use imdsguard_guard::policy::Mode;
    use imdsguard_guard::proxy::{run, ProxyConfig};
    let config = ProxyConfig {
        listen: args.listen,
        upstream: args.upstream,
        policy: args.policy.clone(),
        mode: args.mode.map(|m| match m {
            ModeArg::Monitor => Mode::Monitor,
            ModeArg::Enforce => Mode::Enforce,
        }),
        audit_log: args.audit_log.clone(),
        audit_max_bytes: args.audit_max_size as u64,
    };
    let mode_arg = config.mode;
    run(config, |addr, policy| {
        let policy_text = match &args.policy {
            Some(p) => format!("policy {} ({} rules)", p.display(), policy.rules.len()),
            None => "no policy: every request passes".to_owned(),
        };
        eprintln!(
            "imdsguard proxy: guarding {} on {addr} ({} mode, {policy_text}; audit log {})",
            args.upstream,
            mode_arg.unwrap_or(policy.mode).as_str(),
            args.audit_log.display()
        );
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "guard"))]
pub(crate) fn proxy(_: ProxyArgs) -> Result<ExitCode> {
    anyhow::bail!("this imdsguard was built without the `guard` feature, which `proxy` needs")
}
