//! `imdsguard catalog`: the endpoint catalog, for people or as its TOML source.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use imdsguard_target::Catalog;

#[derive(Debug, clap::Args)]
pub(crate) struct CatalogArgs {
    /// Print the built-in catalog's TOML source instead of a summary.
    #[arg(long)]
    toml: bool,
}

pub(crate) fn catalog(args: CatalogArgs) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if args.toml {
        out.write_all(Catalog::builtin_toml().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    for p in Catalog::builtin().providers() {
        let addrs: Vec<String> = p
            .addresses
            .iter()
            .map(ToString::to_string)
            .chain(p.hosts.iter().cloned())
            .collect();
        writeln!(out, "{:<22} {}", p.id, p.name)?;
        writeln!(out, "{:<22} endpoints: {}", "", addrs.join(", "))?;
        if !p.ports.is_empty() {
            let ports: Vec<String> = p.ports.iter().map(ToString::to_string).collect();
            let only = if p.port_required {
                "; the address alone is not the service"
            } else {
                ""
            };
            writeln!(out, "{:<22} ports: {} (TCP{only})", "", ports.join(", "))?;
        }
        for h in &p.headers {
            writeln!(
                out,
                "{:<22} header: {}{}",
                "",
                h.name,
                h.value
                    .as_deref()
                    .map(|v| format!(": {v}"))
                    .unwrap_or_default()
            )?;
        }
        for path in &p.paths {
            let q = path
                .query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{:<22} {:<11} {}{}",
                "",
                path.kind.as_str(),
                path.pattern,
                q
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
