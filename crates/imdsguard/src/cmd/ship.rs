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
    /// The NATS server (`nats://host:4222`).
    #[arg(long, value_name = "URL")]
    nats: String,
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
        cfg.url,
        imdsguard_pipeline::nats::subject_token(&cfg.host),
        report.duplicates,
        cfg.state.display()
    );
    Ok(ExitCode::SUCCESS)
}
