//! `imdsguard ship`: publish log files, line by line, to the NATS JetStream stream `watch --nats`
//! reads.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Debug)]
pub(crate) struct ShipArgs {
    /// Files to publish, line by line (JSON lines, audit logs, access logs: any format `hunt`
    /// reads line by line).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The NATS server (`nats://host:4222`; `tls://host:4222` requires TLS; `user:password@`
    /// or `token@` before the host authenticates; shown without them).
    #[arg(long, value_name = "URL")]
    nats: String,
    #[command(flatten)]
    auth: NatsAuthArgs,
    /// The stream (created when it does not exist, holding imdsguard.part.>).
    #[arg(long, value_name = "NAME", default_value = imdsguard_pipeline::nats::DEFAULT_STREAM)]
    stream: String,
    /// The host the lines come from (default: this machine's name): the subject
    /// `imdsguard.logs.<host>` and the header `Imdsguard-Host`, which `watch` gives to records
    /// that name no host.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Where each file's position is kept, so a restart goes on where the last run stopped
    /// (default: ship-state.json beside the default store).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Keep following the files as they grow (through rotation), until interrupted.
    #[arg(long)]
    follow: bool,
    /// How long to wait when no file grew (with --follow).
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = crate::parse_duration_ms)]
    poll: i64,
}

/// TLS and credentials for the NATS server, shared by `ship` and `watch --nats`.
#[derive(Args, Debug, Default)]
pub(crate) struct NatsAuthArgs {
    /// Trust these certificate authorities (PEM) for the NATS server's certificate, and require
    /// TLS (without it, a server that asks for TLS is checked against the system's).
    #[arg(long, value_name = "FILE")]
    nats_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a NATS server that verifies its clients (with
    /// --nats-key).
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    nats_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    nats_key: Option<PathBuf>,
    /// A NATS credentials file (a user's JWT and NKey seed, as `nsc` writes it).
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
}

impl NatsAuthArgs {
    /// Whether any was given.
    pub(crate) fn given(&self) -> bool {
        self.nats_ca.is_some() || self.nats_cert.is_some() || self.nats_creds.is_some()
    }

    pub(crate) fn auth(self) -> imdsguard_pipeline::NatsAuth {
        imdsguard_pipeline::NatsAuth {
            ca: self.nats_ca,
            cert: self.nats_cert.zip(self.nats_key),
            creds: self.nats_creds,
        }
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

pub(crate) fn ship(a: ShipArgs) -> Result<ExitCode> {
    let state = match a.state {
        Some(s) => s,
        None => imdsguard_store::default_path()
            .filter(|p| !imdsguard_store::is_url(p))
            .and_then(|p| p.parent().map(|d| d.join("ship-state.json")))
            .context("no place for the positions: give --state FILE")?,
    };
    let cfg = imdsguard_pipeline::ShipConfig {
        url: a.nats,
        auth: a.auth.auth(),
        stream: a.stream,
        inputs: a.inputs,
        host: a.host.unwrap_or_else(this_host),
        state,
        follow: a.follow,
        poll: std::time::Duration::from_millis(a.poll.max(1) as u64),
        max_chunk: 1 << 20,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let report = imdsguard_pipeline::ship(&cfg, &stop, &mut |n| eprintln!("imdsguard ship: {n}"))?;
    eprintln!(
        "imdsguard ship: {} lines of {} files published to {} as {} ({} already there); positions in {}",
        report.published,
        report.files,
        imdsguard_pipeline::nats::shown(&cfg.url),
        imdsguard_pipeline::nats::subject_token(&cfg.host),
        report.duplicates,
        cfg.state.display()
    );
    Ok(ExitCode::SUCCESS)
}
