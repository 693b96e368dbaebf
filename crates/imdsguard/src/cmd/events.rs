//! `imdsguard events`: every record as a typed event, and the read summary every reading
//! command prints.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use imdsguard_event::{Format, LocalZone};
use imdsguard_parse::{read_inputs_parallel, ReadOptions, Summary};

use crate::{default_threads, format_parser, parse_zone};
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// Files, directories or `-` for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Decode every record with this format instead of sniffing (EVTX files are recognized by
    /// their header).
    #[arg(long, value_parser = format_parser())]
    format: Option<Format>,
    /// The zone of record times written in local time without one (NXLog's `EventTime` when no
    /// UTC field is beside it): an IANA name (`America/New_York`, daylight saving included), an
    /// offset (`-04:00`) or `UTC`. Without it such times are read as UTC, and the summary counts them.
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<LocalZone>,
    /// Worker threads for decoding (default, or 0: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    threads: Option<usize>,
    /// In directories, read only files with this extension (`evtx`, `jsonl.gz`; repeatable).
    #[arg(long, value_name = "EXT", value_parser = crate::parse_ext)]
    ext: Vec<String>,
    /// An access-log layout, as the server's configuration writes it: nginx's `log_format`
    /// (`'$remote_addr - $remote_user [$time_local] "$request" $status …'`) or Apache's
    /// `LogFormat` (`'%h %l %u %t \"%r\" %>s %b …'`). A file whose first record line follows
    /// it is read with it; the others are sniffed as usual.
    #[arg(long, value_name = "FORMAT", value_parser = crate::parse_log_format)]
    log_format: Option<std::sync::Arc<imdsguard_parse::LogFormat>>,
}

pub(crate) fn events(args: EventsArgs) -> Result<ExitCode> {
    let opts = ReadOptions {
        format: args.format,
        timezone: args.timezone,
        extensions: std::sync::Arc::new(args.ext.clone()),
        log_format: args.log_format.clone(),
        ..ReadOptions::default()
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut summary = Summary::default();
    let mut write_error: Option<io::Error> = None;
    let started = std::time::Instant::now();
    // Workers serialize; this thread writes, in input order.
    let to_json = |event: imdsguard_event::Event| {
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        line
    };
    read_inputs_parallel(
        &args.inputs,
        &opts,
        default_threads(args.threads),
        &mut summary,
        &to_json,
        &mut |line: Vec<u8>| {
            if write_error.is_none() {
                if let Err(e) = out.write_all(&line) {
                    write_error = Some(e);
                }
            }
        },
    );
    if let Some(e) = write_error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("writing events");
        }
    }
    out.flush().ok();
    print_summary(&summary, started.elapsed());
    // Exit 2 when inputs were named and not one of them could be read: missing, unreadable, or in
    // no supported format. A readable input that holds no events is a completed run.
    let unread = summary.input_errors.len() as u64 + summary.unrecognized_files.len() as u64;
    let none_read = summary.total_events() == 0 && summary.total_skipped() == 0 && unread > 0;
    Ok(if none_read {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Files named one by one before the rest are counted by extension.
const NAMED_NOT_READ: usize = 5;

/// The files not read: the first few named with why, the rest counted by extension (a folder
/// of thousands of other files says so in a line, not a megabyte).
fn not_read_lines(files: &[String]) -> Vec<String> {
    let mut out: Vec<String> = files.iter().take(NAMED_NOT_READ).cloned().collect();
    if files.len() <= NAMED_NOT_READ {
        return out;
    }
    let mut by_ext: std::collections::BTreeMap<String, usize> = Default::default();
    for f in &files[NAMED_NOT_READ..] {
        // "path: why": the path ends at the first ": " after its last '/'.
        let name_start = f.rfind('/').map_or(0, |i| i + 1);
        let name = f[name_start..]
            .split_once(": ")
            .map_or(&f[name_start..], |(n, _)| n);
        let ext = std::path::Path::new(name)
            .extension()
            .map_or("(no extension)".to_owned(), |e| {
                format!(".{}", e.to_string_lossy())
            });
        *by_ext.entry(ext).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = by_ext.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.push(format!(
        "{} more files not read, by extension: {}",
        files.len() - NAMED_NOT_READ,
        counts
            .iter()
            .map(|(e, n)| format!("{n} {e}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

pub(crate) fn print_summary(s: &Summary, elapsed: std::time::Duration) {
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "imdsguard: {} files ({} in no supported format), {} events, {} records skipped, {:.2} s ({:.0} events/s)",
        s.files,
        s.unrecognized_files.len(),
        s.total_events(),
        s.total_skipped(),
        secs,
        s.total_events() as f64 / secs.max(1e-9)
    );
    for (format, n) in &s.events {
        eprintln!("  events   {:<24} {n}", format.as_str());
    }
    for (reason, n) in &s.skipped {
        eprintln!("  skipped  {:<24} {n}", reason.as_str());
    }
    for skip in &s.first_skips {
        eprintln!("  skipped: {skip}");
    }
    if s.total_skipped() > s.first_skips.len() as u64 {
        eprintln!(
            "  ... {} more skipped records counted above",
            s.total_skipped() - s.first_skips.len() as u64
        );
    }
    for (format, n) in &s.local_times {
        eprintln!(
            "  time     {n} {} records write local time without a zone: read as UTC (give --timezone)",
            format.as_str()
        );
    }
    for (format, n) in &s.unreadable_times {
        eprintln!(
            "  time     {n} {} records have a time that is not one; they are left out of correlation",
            format.as_str()
        );
    }
    for (source, text) in &s.first_unreadable_times {
        eprintln!("  time     {source}: {text:?} is not a time");
    }
    if s.lossy > 0 {
        eprintln!(
            "  utf-8    {} records were not valid UTF-8: read with U+FFFD in place of each invalid byte",
            s.lossy
        );
    }
    for at in &s.first_lossy {
        eprintln!("  utf-8    {at}: read with U+FFFD");
    }
    for p in s.passed_over.iter().take(NAMED_NOT_READ) {
        eprintln!("  passed over: {p}");
    }
    if s.passed_over.len() > NAMED_NOT_READ {
        eprintln!(
            "  passed over: hidden entries in {} more folders or archives",
            s.passed_over.len() - NAMED_NOT_READ
        );
    }
    for line in not_read_lines(&s.unrecognized_files) {
        eprintln!("  not read: {line}");
    }
    for e in &s.input_errors {
        eprintln!("  error: {e}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_not_read_beyond_the_first_few_are_counted_by_extension() {
        let files: Vec<String> = [
            "a.txt", "b.yml", "c.yml", "d", "e.json", "f.yml", "g.txt", "h", "i.yml",
        ]
        .iter()
        .map(|n| format!("/data/x: y/{n}: not a supported log format (tried …)"))
        .collect();
        let lines = super::not_read_lines(&files);
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0], files[0]);
        assert_eq!(
            lines[5],
            "4 more files not read, by extension: 2 .yml, 1 (no extension), 1 .txt"
        );
    }
}
