//! `imdsguard audit`: hardening findings from the inventory and the logs, each with its fix.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;
use imdsguard_event::{Format, LocalZone};

use crate::out::{destination, JsonItems};

#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Logs to read beside the inventory: CloudTrail (credentials delivered over IMDSv1,
    /// identities never used), web, proxy and wire logs and host telemetry (who still sends
    /// IMDSv1 requests).
    inputs: Vec<PathBuf>,
    /// An inventory of instances (the JSON of `aws ec2 describe-instances`, `az vm list -d` or
    /// `gcloud compute instances list --format=json`). Repeatable.
    #[arg(long, value_name = "FILE")]
    inventory: Vec<PathBuf>,
    /// How to print: aligned columns (`table`), one JSON object a line (`jsonl`), one JSON array
    /// (`json`).
    #[arg(long, short = 'f', value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// Decode every record with this format instead of sniffing.
    #[arg(long, value_parser = crate::format_parser())]
    format: Option<Format>,
    /// The zone of local times written without one.
    #[arg(long, value_name = "ZONE", value_parser = crate::parse_zone)]
    timezone: Option<LocalZone>,
    /// Exit with status 1 when a finding at or above this severity was made.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<imdsguard_event::Severity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns, the fix under each finding.
    Table,
    /// One JSON object a line.
    Jsonl,
    /// One JSON array.
    Json,
}

pub(crate) fn audit(a: AuditArgs) -> Result<ExitCode> {
    if a.inventory.is_empty() && a.inputs.is_empty() {
        anyhow::bail!("nothing to audit: give --inventory FILE, logs, or both");
    }
    let started = std::time::Instant::now();
    let report = imdsguard_pipeline::audit(&imdsguard_pipeline::AuditConfig {
        resources: imdsguard_pipeline::ResourceConfig {
            catalog: None,
            allowlist: None,
            inventory: a.inventory,
        },
        inputs: a.inputs.clone(),
        read: imdsguard_pipeline::ReadConfig {
            format: a.format,
            timezone: a.timezone,
            progress: None,
            extensions: Vec::new(),
            log_format: None,
        },
    })?;
    let (mut w, _) = destination(a.out.as_ref())?;
    match a.output {
        Output::Table => {
            writeln!(
                w,
                "{:<9} {:<17} {:<6} {:<22} DETAIL",
                "SEVERITY", "CHECK", "CLOUD", "INSTANCE / HOST"
            )?;
            for f in &report.findings {
                let who = f.instance.as_deref().or(f.host.as_deref()).unwrap_or("-");
                writeln!(
                    w,
                    "{:<9} {:<17} {:<6} {:<22} {}",
                    f.severity.as_str(),
                    f.check.as_str(),
                    if f.provider.is_empty() {
                        "-"
                    } else {
                        f.provider
                    },
                    who,
                    f.detail
                )?;
                for e in &f.evidence {
                    writeln!(w, "{:58}seen: {e}", "")?;
                }
                if let Some(fix) = &f.fix {
                    writeln!(w, "{:58}fix:  {fix}", "")?;
                }
            }
            w.flush()?;
        }
        Output::Jsonl | Output::Json => {
            let mut j = JsonItems::new(w, a.output == Output::Json);
            for f in &report.findings {
                j.item(f)?;
            }
            j.finish()?;
        }
    }
    eprintln!(
        "imdsguard audit: {} instances in the inventory, {} findings",
        report.instances,
        report.findings.len()
    );
    for s in &report.inventory_skipped {
        eprintln!("  not read: {s}");
    }
    if !a.inputs.is_empty() {
        crate::cmd::events::print_summary(&report.summary, started.elapsed());
    }
    let failed = a
        .fail_on
        .is_some_and(|s| report.findings.iter().any(|f| f.severity >= s));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
