//! `imdsguard search`: the records of every supported format that hold a keyword, match a regular
//! expression or carry field values, as a timeline (what Hayabusa's and Chainsaw's `search` do,
//! over the same inputs `hunt` reads); and `imdsguard metrics`: how many records by channel and
//! event id, by host, or by file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use imdsguard_event::{parse_time_ms, Event, FieldSet, Format, LocalZone, Position, Sym};
use imdsguard_parse::{read_inputs_parallel, ReadOptions, Summary};
use imdsguard_rules::Alert;
use regex::{Regex, RegexBuilder};

use crate::out::{destination, JsonItems};
use crate::{default_threads, format_parser, parse_zone, print_summary};

/// What both commands read and how.
#[derive(Debug, clap::Args)]
pub(crate) struct ReadArgs {
    /// Files, directories, archives or `-` for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Decode every record with this format instead of sniffing.
    #[arg(long, value_parser = format_parser())]
    format: Option<Format>,
    /// The zone of record times written in local time without one (as for `hunt`).
    #[arg(long, value_name = "ZONE", value_parser = parse_zone)]
    timezone: Option<LocalZone>,
    /// Worker threads for decoding (default, or 0: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    threads: Option<usize>,
    /// Only records from this time on: RFC 3339 or a duration ago (`24h`).
    #[arg(long, value_name = "TIME", value_parser = crate::cmd::store::when)]
    from: Option<i64>,
    /// Only records before this time (same forms as --from).
    #[arg(long, value_name = "TIME", value_parser = crate::cmd::store::when)]
    to: Option<i64>,
    /// In directories, read only files with this extension (`evtx`, `jsonl.gz`; repeatable).
    #[arg(long, value_name = "EXT", value_parser = crate::parse_ext)]
    ext: Vec<String>,
    /// An access-log layout, as the server's configuration writes it: nginx's `log_format`
    /// (`'$remote_addr - $remote_user [$time_local] "$request" $status …'`) or Apache's
    /// `LogFormat` (`'%h %l %u %t \"%r\" %>s %b …'`). A file whose first record line follows
    /// it is read with it; the others are sniffed as usual.
    #[arg(long, value_name = "FORMAT", value_parser = crate::parse_log_format)]
    log_format: Option<std::sync::Arc<imdsguard_parse::LogFormat>>,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
}

impl ReadArgs {
    fn options(&self, fields: FieldSet) -> ReadOptions {
        ReadOptions {
            format: self.format,
            timezone: self.timezone.clone(),
            fields: Arc::new(fields),
            extensions: Arc::new(self.ext.clone()),
            log_format: self.log_format.clone(),
            ..ReadOptions::default()
        }
    }

    /// Whether the record's time is inside --from/--to (a record without a readable time is).
    fn inside(&self, e: &Event) -> bool {
        match e.time.as_deref().and_then(parse_time_ms) {
            Some(t) => self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t < to),
            None => true,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// A word any of the record's values holds, in any case (given several times: any of
    /// them).
    #[arg(short = 'k', long = "keyword", value_name = "WORD")]
    keywords: Vec<String>,
    /// A regular expression (Rust's syntax) any of the record's values matches (given several
    /// times: any of them).
    #[arg(short = 'r', long = "regex", value_name = "REGEX")]
    regexes: Vec<String>,
    /// `NAME=TEXT`: the record's field NAME holds TEXT, in any case; given several times, all
    /// must hold. Fields are those Windows event records name (`Image`, `CommandLine`,
    /// `DestinationIp`, `EventID`…); for other formats use --keyword or --regex.
    #[arg(short = 'F', long = "field", value_name = "NAME=TEXT", value_parser = field_filter)]
    fields: Vec<(String, String)>,
    /// Regular expressions ignore case.
    #[arg(short = 'i', long)]
    ignore_case: bool,
    /// How to print: `table`, `csv`, `jsonl` or `json`; default a table on a terminal, JSON
    /// lines otherwise.
    #[arg(long, value_enum)]
    output: Option<SearchOutput>,
}

/// How `search` and `metrics` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SearchOutput {
    /// Aligned lines for people.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object a line.
    Jsonl,
    /// One JSON array.
    Json,
}

fn field_filter(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, text)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), text.to_lowercase()))
        }
        _ => Err(format!("{s:?}: give NAME=TEXT, like Image=curl.exe")),
    }
}

/// What a search asks of each record, compiled once and shared by the workers.
struct Query {
    keywords: Vec<String>,
    regexes: Vec<Regex>,
    fields: Vec<(Sym, String)>,
    /// Per field filter: whether any record read carried that field (a misspelt name, or a
    /// format that names no fields, is said, not left as an empty result).
    seen: Vec<std::sync::atomic::AtomicBool>,
}

impl Query {
    /// The values that made the record match (empty when it does not).
    fn matches(&self, e: &Event) -> Option<Vec<String>> {
        for ((sym, text), seen) in self.fields.iter().zip(&self.seen) {
            let mut carried = false;
            let holds = e.fields.iter().any(|(s, v)| {
                carried |= s == sym;
                s == sym && v.to_lowercase().contains(text.as_str())
            });
            if carried {
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if !holds {
                return None;
            }
        }
        if self.keywords.is_empty() && self.regexes.is_empty() {
            return Some(Vec::new());
        }
        let mut hits = Vec::new();
        for v in values(e) {
            let lower = v.to_lowercase();
            let hit = self.keywords.iter().any(|k| lower.contains(k.as_str()))
                || self.regexes.iter().any(|r| r.is_match(v));
            if hit && !hits.iter().any(|h| h == v) {
                hits.push(v.to_owned());
            }
        }
        (!hits.is_empty()).then_some(hits)
    }
}

/// Every value of a record: the typed parts (process, network, HTTP request) and every field
/// the reader kept.
fn values(e: &Event) -> impl Iterator<Item = &str> {
    let p = [&e.process, &e.parent].into_iter().flat_map(|p| {
        [&p.image, &p.command_line, &p.user, &p.hashes, &p.comm]
            .into_iter()
            .flatten()
    });
    let n = e.network.iter().flat_map(|n| {
        [&n.src_ip, &n.dst_ip, &n.dst_host, &n.url, &n.protocol]
            .into_iter()
            .flatten()
    });
    let h = e.http.iter().flat_map(|h| {
        [&h.uri, &h.host, &h.user_agent, &h.referer, &h.forwarded_for]
            .into_iter()
            .flatten()
    });
    [&e.host, &e.dns_query, &e.channel, &e.native_id]
        .into_iter()
        .flatten()
        .chain(p)
        .chain(n)
        .chain(h)
        .map(String::as_str)
        .chain(e.fields.iter().map(|(_, v)| v.as_str()))
}

/// One record found: what is printed of it.
struct Found {
    alert: Alert,
    time_ms: Option<i64>,
    matched: Vec<String>,
}

const SEARCH_HEADER: [&str; 8] = [
    "Timestamp",
    "Computer",
    "Channel",
    "EventID",
    "RecordID",
    "Details",
    "Matched",
    "Source",
];

fn search_row(f: &Found) -> [String; 8] {
    let a = &f.alert;
    [
        a.time.clone().unwrap_or_default(),
        a.host.clone().unwrap_or_default(),
        a.event
            .channel
            .clone()
            .unwrap_or_else(|| a.event.format.as_str().to_owned()),
        a.event.id.clone().unwrap_or_default(),
        match a.source.position {
            Position::Record { id, .. } => id.to_string(),
            Position::Line(_) | Position::Element { .. } => String::new(),
        },
        a.details(),
        f.matched.join(" ¦ "),
        a.source_text(),
    ]
}

pub(crate) fn search(a: SearchArgs) -> Result<ExitCode> {
    if a.keywords.is_empty() && a.regexes.is_empty() && a.fields.is_empty() {
        anyhow::bail!("say what to look for: --keyword WORD, --regex REGEX or --field NAME=TEXT");
    }
    let regexes = a
        .regexes
        .iter()
        .map(|r| {
            RegexBuilder::new(r)
                .case_insensitive(a.ignore_case)
                .size_limit(1 << 24)
                .build()
                .with_context(|| format!("--regex {r:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    // Keywords and regexes read every value (kept under the keyword symbol); field filters
    // read their fields by name.
    let mut syms: Vec<Sym> = a.fields.iter().map(|(n, _)| Sym::intern(n)).collect();
    if !a.keywords.is_empty() || !regexes.is_empty() {
        syms.push(Sym::ANY);
    }
    let query = Query {
        keywords: a.keywords.iter().map(|k| k.to_lowercase()).collect(),
        regexes,
        fields: a
            .fields
            .iter()
            .map(|(n, t)| (Sym::intern(n), t.clone()))
            .collect(),
        seen: a.fields.iter().map(|_| Default::default()).collect(),
    };
    let opts = a.read.options(FieldSet::of(syms));
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let mut found: Vec<Found> = Vec::new();
    let read = &a.read;
    let find = |e: Event| -> Option<Found> {
        if !read.inside(&e) {
            return None;
        }
        let matched = query.matches(&e)?;
        Some(Found {
            time_ms: e.time.as_deref().and_then(parse_time_ms),
            alert: Alert::record(&e),
            matched,
        })
    };
    read_inputs_parallel(
        &read.inputs,
        &opts,
        default_threads(read.threads),
        &mut summary,
        &find,
        &mut |f: Option<Found>| found.extend(f),
    );
    // A timeline: in time order, records without a readable time last as they came.
    found.sort_by_key(|f| (f.time_ms.is_none(), f.time_ms));
    let (mut w, output) = output_to(read, a.output)?;
    let written = match output {
        SearchOutput::Table => found.iter().try_for_each(|f| {
            let mut r = search_row(f);
            r[6] = f
                .matched
                .iter()
                .map(|m| shorten(m, 120))
                .collect::<Vec<_>>()
                .join(" ¦ ");
            writeln!(
                w,
                "{:<24}  {:<20}  {} {}  {}  [{}]  ({})",
                r[0], r[1], r[2], r[3], r[5], r[6], r[7]
            )
        }),
        SearchOutput::Csv => {
            let mut c = csv::Writer::from_writer(&mut w);
            let rows = std::iter::once(SEARCH_HEADER.map(str::to_owned))
                .chain(found.iter().map(search_row));
            rows.into_iter()
                .try_for_each(|r| c.write_record(&r))
                .and_then(|()| c.flush().map_err(csv::Error::from))
                .map_err(std::io::Error::other)
        }
        SearchOutput::Jsonl | SearchOutput::Json => {
            let mut items = JsonItems::new(&mut w, output == SearchOutput::Json);
            found
                .iter()
                .try_for_each(|f| {
                    let mut m = serde_json::Map::new();
                    for (k, v) in SEARCH_HEADER.iter().zip(search_row(f)) {
                        m.insert((*k).to_owned(), serde_json::Value::String(v));
                    }
                    if !f.alert.event.fields.is_empty() {
                        m.insert(
                            "Fields".into(),
                            serde_json::to_value(&f.alert.event.fields).unwrap_or_default(),
                        );
                    }
                    items.item(&m)
                })
                .and_then(|()| items.finish())
        }
    };
    finish_output(written.and_then(|()| w.flush()))?;
    print_summary(&summary, started.elapsed());
    eprintln!("  found    {} records", found.len());
    for ((name, _), seen) in a.fields.iter().zip(&query.seen) {
        if !seen.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "  search   no record read carried a field named {name:?} (field filters read \
                 Windows events' own fields; use --keyword or --regex for other formats)"
            );
        }
    }
    Ok(exit_status(&summary))
}

/// Where a command writes, and in which form: as asked, else a table on a terminal and JSON
/// lines otherwise.
fn output_to(
    read: &ReadArgs,
    asked: Option<SearchOutput>,
) -> Result<(Box<dyn Write>, SearchOutput)> {
    let (w, terminal) = destination(read.out.as_ref())?;
    let output = asked.unwrap_or(if terminal {
        SearchOutput::Table
    } else {
        SearchOutput::Jsonl
    });
    Ok((w, output))
}

/// `s` on one line (runs of white space as one space), cut in the middle to `max` characters.
fn shorten(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let n = flat.chars().count();
    if n <= max {
        return flat;
    }
    let head: String = flat.chars().take(max / 2).collect();
    let tail: String = flat.chars().skip(n - (max - max / 2 - 1)).collect();
    format!("{head}…{tail}")
}

/// A closed pipe ends the output quietly, as Unix tools do.
fn finish_output(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing output"),
        _ => Ok(()),
    }
}

/// 2 when inputs were named and none could be read; else 0.
fn exit_status(summary: &Summary) -> ExitCode {
    let unread = summary.input_errors.len() as u64 + summary.unrecognized_files.len() as u64;
    if summary.total_events() == 0 && summary.total_skipped() == 0 && unread > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct MetricsArgs {
    #[command(flatten)]
    read: ReadArgs,
    /// What to count records by: `event` (channel, or format where there is none, and event
    /// id), `host`, or `file`.
    #[arg(long, value_enum, default_value = "event")]
    by: MetricsBy,
    /// How to print: `table`, `csv`, `jsonl` or `json`; default a table on a terminal, JSON
    /// lines otherwise.
    #[arg(long, value_enum)]
    output: Option<SearchOutput>,
}

/// What `metrics` counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum MetricsBy {
    /// Channel (or format) and event id.
    Event,
    /// Host.
    Host,
    /// Input file (archive members apart).
    File,
}

/// Counts of one key: records, first and last time.
#[derive(Default)]
struct Tally {
    records: u64,
    first: Option<i64>,
    last: Option<i64>,
}

pub(crate) fn metrics(a: MetricsArgs) -> Result<ExitCode> {
    let opts = a.read.options(FieldSet::default());
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    let by = a.by;
    let read = &a.read;
    let key = |e: Event| -> Option<(Vec<String>, Option<i64>)> {
        if !read.inside(&e) {
            return None;
        }
        let k = match by {
            MetricsBy::Event => vec![
                e.channel
                    .clone()
                    .unwrap_or_else(|| e.format.as_str().to_owned()),
                e.native_id.clone().unwrap_or_default(),
            ],
            MetricsBy::Host => vec![e.host.clone().unwrap_or_default()],
            MetricsBy::File => vec![e.source.path.clone(), e.format.as_str().to_owned()],
        };
        Some((k, e.time.as_deref().and_then(parse_time_ms)))
    };
    let mut tallies: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    read_inputs_parallel(
        &read.inputs,
        &opts,
        default_threads(read.threads),
        &mut summary,
        &key,
        &mut |k: Option<(Vec<String>, Option<i64>)>| {
            if let Some((k, t)) = k {
                let e = tallies.entry(k).or_default();
                e.records += 1;
                if let Some(t) = t {
                    e.first = Some(e.first.map_or(t, |f| f.min(t)));
                    e.last = Some(e.last.map_or(t, |l| l.max(t)));
                }
            }
        },
    );
    let total: u64 = tallies.values().map(|t| t.records).sum();
    let mut rows: Vec<(Vec<String>, Tally)> = tallies.into_iter().collect();
    rows.sort_by(|a, b| b.1.records.cmp(&a.1.records).then_with(|| a.0.cmp(&b.0)));
    let names: &[&str] = match by {
        MetricsBy::Event => &["Channel", "EventID"],
        MetricsBy::Host => &["Computer"],
        MetricsBy::File => &["File", "Format"],
    };
    let header: Vec<&str> = names
        .iter()
        .copied()
        .chain(["Records", "Percent", "First", "Last"])
        .collect();
    let time = |t: Option<i64>| t.map(imdsguard_event::format_time_ms).unwrap_or_default();
    let row = |(k, t): &(Vec<String>, Tally)| -> Vec<String> {
        let mut r = k.clone();
        if by == MetricsBy::Host && r[0].is_empty() {
            r[0] = "(no host)".into();
        }
        r.push(t.records.to_string());
        r.push(format!(
            "{:.2}",
            t.records as f64 * 100.0 / total.max(1) as f64
        ));
        r.push(time(t.first));
        r.push(time(t.last));
        r
    };
    let (mut w, output) = output_to(read, a.output)?;
    let written = match output {
        SearchOutput::Table => {
            let table: Vec<Vec<String>> =
                std::iter::once(header.iter().map(|h| h.to_string()).collect())
                    .chain(rows.iter().map(row))
                    .collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    table
                        .iter()
                        .map(|r| r[i].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            table.iter().try_for_each(|r| {
                let cells: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(c, n)| format!("{c:<n$}"))
                    .collect();
                writeln!(w, "{}", cells.join("  ").trim_end())
            })
        }
        SearchOutput::Csv => {
            let mut c = csv::Writer::from_writer(&mut w);
            std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .chain(rows.iter().map(row))
                .try_for_each(|r| c.write_record(&r))
                .and_then(|()| c.flush().map_err(csv::Error::from))
                .map_err(std::io::Error::other)
        }
        SearchOutput::Jsonl | SearchOutput::Json => {
            let mut items = JsonItems::new(&mut w, output == SearchOutput::Json);
            rows.iter()
                .try_for_each(|r| {
                    let mut m = serde_json::Map::new();
                    for (k, v) in header.iter().zip(row(r)) {
                        let v = match *k {
                            "Records" => serde_json::json!(r.1.records),
                            "Percent" => serde_json::json!(
                                (r.1.records as f64 * 10_000.0 / total.max(1) as f64).round()
                                    / 100.0
                            ),
                            _ => serde_json::Value::String(v),
                        };
                        m.insert((*k).to_owned(), v);
                    }
                    items.item(&m)
                })
                .and_then(|()| items.finish())
        }
    };
    finish_output(written.and_then(|()| w.flush()))?;
    print_summary(&summary, started.elapsed());
    Ok(exit_status(&summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(image: &str, cmd: &str) -> Event {
        Event {
            source: imdsguard_event::SourceRef {
                path: "x.jsonl".into(),
                position: Position::Line(1),
            },
            format: Format::NxlogJson,
            kind: imdsguard_event::EventKind::ProcessStart,
            channel: None,
            native_id: Some("1".into()),
            record_id: None,
            time: None,
            clock: Default::default(),
            host: None,
            process: imdsguard_event::Process {
                image: Some(image.into()),
                command_line: Some(cmd.into()),
                ..Default::default()
            },
            parent: Default::default(),
            network: None,
            http: None,
            cloud: None,
            dns_query: None,
            container: None,
            fields: vec![(Sym::intern("Image"), image.into())],
        }
    }

    #[test]
    fn keywords_ignore_case_regexes_match_and_fields_must_all_hold() {
        let e = event(
            "C:\\Windows\\System32\\curl.exe",
            "curl http://169.254.169.254/latest/meta-data/",
        );
        let q = |k: &[&str], r: &[&str], f: &[(&str, &str)]| Query {
            keywords: k.iter().map(|s| s.to_lowercase()).collect(),
            regexes: r.iter().map(|s| Regex::new(s).unwrap()).collect(),
            fields: f
                .iter()
                .map(|(n, t)| (Sym::intern(n), t.to_lowercase()))
                .collect(),
            seen: f.iter().map(|_| Default::default()).collect(),
        };
        assert_eq!(
            q(&["CURL.EXE"], &[], &[]).matches(&e),
            Some(vec!["C:\\Windows\\System32\\curl.exe".to_owned()])
        );
        assert!(q(&["wget"], &[], &[]).matches(&e).is_none());
        assert!(q(&[], &[r"169\.254\.\d+\.\d+/latest"], &[])
            .matches(&e)
            .is_some());
        assert!(q(&[], &[], &[("Image", "CURL")]).matches(&e).is_some());
        assert!(q(&[], &[], &[("Image", "curl"), ("CommandLine", "x")])
            .matches(&e)
            .is_none());
        assert!(q(&["meta-data"], &[], &[("Image", "wget")])
            .matches(&e)
            .is_none());
    }
}
