//! `imdsguard target`: whether each string points at a metadata service.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::ValueEnum;
use imdsguard_target::report::{table_header, TargetReport};
use imdsguard_target::MAX_INPUT;

use crate::out::JsonItems;

#[derive(Debug, clap::Args)]
pub(crate) struct TargetArgs {
    /// Strings to classify; standard input, one per line, when none are given.
    strings: Vec<String>,
    /// How to print: one JSON object a line (`jsonl`), one JSON array (`json`), or aligned
    /// columns (`table`). `-f` is the same option.
    #[arg(long, short = 'f', value_enum, default_value_t = Output::Jsonl)]
    output: Output,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// A catalog file that extends the built-in one (same format as `imdsguard catalog --toml`).
    #[arg(long, value_name = "FILE")]
    catalog: Option<PathBuf>,
    /// Print only the inputs that point at a metadata service.
    #[arg(long)]
    only_targets: bool,
    /// What each input is: `text` (a command line or any free text; weak host forms such as a
    /// bare number count only where a port, path or network client says they are hosts), `host`
    /// (a host name or address with an optional port, as DNS queries, HTTP `Host` and proxy
    /// `CONNECT` targets hold: `2852039166` is an address), or `url`.
    #[arg(long = "as", value_enum, default_value_t = ReadAsArg::Text, value_name = "KIND")]
    read_as: ReadAsArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReadAsArg {
    /// Free text.
    Text,
    /// A host name or address, with an optional port.
    Host,
    /// A URL (a scheme-less one is `host[:port]/path`).
    Url,
}

impl From<ReadAsArg> for imdsguard_target::ReadAs {
    fn from(a: ReadAsArg) -> Self {
        match a {
            ReadAsArg::Text => imdsguard_target::ReadAs::Text,
            ReadAsArg::Host => imdsguard_target::ReadAs::Host,
            ReadAsArg::Url => imdsguard_target::ReadAs::Url,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// One JSON object per line.
    Jsonl,
    /// One JSON array.
    Json,
    /// Aligned columns for people.
    Table,
}

pub(crate) fn target(args: TargetArgs) -> Result<ExitCode> {
    let resources = imdsguard_pipeline::Resources::load(&imdsguard_pipeline::ResourceConfig {
        catalog: args.catalog.clone(),
        allowlist: None,
        inventory: Vec::new(),
    })?;
    let normalizer = resources.normalizer();
    let (w, _) = crate::out::destination(args.out.as_ref())?;
    let mut out = JsonItems::new(w, args.output == Output::Json);
    const WIDTH: usize = 60;
    if args.output == Output::Table {
        writeln!(out.w, "{}", table_header(WIDTH))?;
    }
    let emit = |input: &str, out: &mut JsonItems<Box<dyn Write>>| -> Result<()> {
        if input.len() > MAX_INPUT {
            eprintln!(
                "imdsguard target: an input of {} bytes was read up to its first {} bytes",
                input.len(),
                MAX_INPUT
            );
        }
        let report = TargetReport::build_as(&normalizer, input, args.read_as.into());
        if args.only_targets && !report.metadata {
            return Ok(());
        }
        match args.output {
            Output::Json | Output::Jsonl => out.item(&report)?,
            Output::Table => writeln!(out.w, "{}", report.table_row(WIDTH))?,
        }
        Ok(())
    };
    if args.strings.is_empty() {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            eprintln!("imdsguard target: reading strings from standard input, one per line (Ctrl-D to end)");
        }
        let mut reader = stdin.lock();
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            if reader
                .read_until(b'\n', &mut buf)
                .context("reading standard input")?
                == 0
            {
                break;
            }
            line_no += 1;
            while buf.last().is_some_and(|&c| c == b'\n' || c == b'\r') {
                buf.pop();
            }
            match std::str::from_utf8(&buf) {
                Ok(line) => emit(line, &mut out)?,
                Err(_) => {
                    // Bytes that are not UTF-8 are read as Latin-1-ish lossy text and said so.
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    eprintln!("imdsguard target: <stdin>:{line_no}: not UTF-8; invalid bytes replaced with U+FFFD");
                    emit(&line, &mut out)?;
                }
            }
        }
    } else {
        for s in &args.strings {
            emit(s, &mut out)?;
        }
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}
