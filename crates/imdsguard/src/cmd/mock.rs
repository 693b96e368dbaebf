//! `imdsguard mock`: the metadata-service mock, in the foreground.

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
