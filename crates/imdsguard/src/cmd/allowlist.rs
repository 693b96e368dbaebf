//! `imdsguard allowlist`: the agent allowlist, for people or as its TOML source.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub(crate) struct AllowlistArgs {
    /// Print the built-in allowlist's TOML source instead of a summary.
    #[arg(long)]
    toml: bool,
}

pub(crate) fn allowlist(args: AllowlistArgs) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.toml {
        out.write_all(imdsguard_enrich::Allowlist::builtin_toml().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    for a in imdsguard_enrich::Allowlist::builtin().agents() {
        writeln!(out, "{:<24} {}", a.id, a.name)?;
        let names = a.name_texts();
        if !names.is_empty() {
            writeln!(out, "{:<24} names: {}", "", names.join(", "))?;
        }
        let paths = a.path_texts();
        if !paths.is_empty() {
            writeln!(out, "{:<24} paths: {}", "", paths.join(", "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
