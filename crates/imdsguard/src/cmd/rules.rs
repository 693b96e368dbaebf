//! `imdsguard rules`: the built-in detections listed, shown and exported to other languages.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use imdsguard_target::Catalog;

#[derive(Debug, clap::Args)]
pub(crate) struct RulesArgs {
    #[command(subcommand)]
    action: RulesAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RulesAction {
    /// One line per detection: id, severity, ATT&CK, title.
    List,
    /// Everything about one detection: description, false positives, condition, reasons.
    Show {
        /// The detection's id (`IMDS-001`).
        id: String,
    },
    /// Export the built-in detections to another rule language.
    ///
    /// `--to sigma` writes one Sigma rule per detection and log source it can be written for
    /// (process_creation, network_connection, dns_query), the enriched checks spelled out in the
    /// log source's fields (catalog addresses and names, allowlisted agent paths, ...); what is
    /// approximated is said in each rule's description, and detections or log sources that cannot
    /// be written are named on standard error.
    ///
    /// `--to kql|spl|eql|esql|sql` writes a query per rule: Defender XDR KQL, Splunk SPL, Elastic
    /// EQL and ES|QL (ECS fields), SQL (DuckDB, Trino, Spark SQL). The built-in detections go
    /// through their Sigma form; Sigma files or directories given after the options are converted
    /// instead. Where the language is wider than the rule, a comment says so; rules a language
    /// cannot express are named on standard error with the reason.
    Export {
        /// The target language.
        #[arg(long, value_parser = ["sigma", "kql", "spl", "eql", "esql", "sql"])]
        to: String,
        /// Export only this detection (or Sigma rule, by id or title).
        #[arg(long)]
        rule: Option<String>,
        /// `text` (queries with comments), `jsonl` (one object per query: id, title, path, lang,
        /// query, bytes, notes) or `json` (those objects as one array).
        #[arg(long, default_value = "text", value_parser = ["text", "jsonl", "json"])]
        output: String,
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// The longest query your SIEM takes (`64K`, `10000`): a longer one is not written, and
        /// is named with its size. Every export's size is reported either way.
        #[arg(long, value_name = "SIZE", value_parser = crate::parse_size)]
        max_size: Option<usize>,
        /// SQL: the table to read.
        #[arg(long, default_value = "logs")]
        table: String,
        /// SQL: the engine (regex function, quoting).
        #[arg(long, default_value = "duckdb", value_parser = ["duckdb", "trino", "spark"])]
        dialect: String,
        /// ES|QL: the index pattern to read.
        #[arg(long, default_value = "logs-*")]
        index: String,
        /// Sigma rule files or directories to convert instead of the built-in detections.
        sigma: Vec<PathBuf>,
    },
}

pub(crate) fn rules(args: RulesArgs) -> Result<ExitCode> {
    let pack = imdsguard_detections::pack();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.action {
        RulesAction::List => {
            for r in pack.rules() {
                let attack: Vec<&str> = r.attack.iter().map(|t| t.as_str()).collect();
                writeln!(
                    out,
                    "{}  {:<8}  {:<20}  {}",
                    r.id,
                    r.severity.as_str(),
                    attack.join(","),
                    r.title
                )?;
            }
            for m in imdsguard_correlate::correlations() {
                writeln!(
                    out,
                    "{}  {:<8}  {:<20}  {}  (correlation)",
                    m.id(),
                    m.severity.as_str(),
                    m.doc().techniques().join(","),
                    m.title()
                )?;
            }
        }
        RulesAction::Export {
            to,
            rule,
            output,
            out: file,
            max_size,
            table,
            dialect,
            index,
            sigma,
        } if to != "sigma" || !sigma.is_empty() => {
            drop(out);
            let opts = imdsguard_query::Options {
                table,
                dialect: imdsguard_query::SqlDialect::from_name(&dialect).unwrap_or_default(),
                index,
            };
            let (w, _) = crate::out::destination(file.as_ref())?;
            let written = Written {
                w,
                form: output,
                max_size,
            };
            return export_queries(pack, &to, rule, written, &opts, &sigma);
        }
        RulesAction::Export {
            rule, out: file, ..
        } => {
            drop(out);
            let (mut out, _) = crate::out::destination(file.as_ref())?;
            let cat = Catalog::builtin();
            let allow = imdsguard_enrich::Allowlist::builtin();
            let mut first = true;
            let mut found = false;
            for r in pack.rules() {
                if rule
                    .as_deref()
                    .is_some_and(|id| !r.id.eq_ignore_ascii_case(id))
                {
                    continue;
                }
                found = true;
                let (exported, skipped) = imdsguard_sigma::export_rule(r, cat, allow);
                for e in exported {
                    if !first {
                        writeln!(out, "---")?;
                    }
                    first = false;
                    out.write_all(e.yaml.as_bytes())?;
                }
                for s in skipped {
                    eprintln!(
                        "imdsguard: {} not exported for {}: {}",
                        s.rule_id,
                        s.target.map_or("any log source", |t| t.category()),
                        s.reason
                    );
                }
            }
            if !found {
                anyhow::bail!("no detection {:?}", rule.unwrap_or_default());
            }
            out.flush()?;
        }
        RulesAction::Show { id } => {
            let correlation =
                imdsguard_correlate::correlations().find(|m| m.id().eq_ignore_ascii_case(&id));
            if let Some(m) = correlation {
                writeln!(out, "{}  {}  (correlation)", m.id(), m.title())?;
                writeln!(out, "severity:   {}", m.severity)?;
                writeln!(out, "ATT&CK:     {}", m.doc().techniques().join(", "))?;
                write!(out, "\n{}", m.doc())?;
                return Ok(ExitCode::SUCCESS);
            }
            let Some(r) = pack.get(&id) else {
                let ids: Vec<&str> = pack
                    .rules()
                    .iter()
                    .map(|r| r.id.as_str())
                    .chain(imdsguard_correlate::correlations().map(|m| m.id()))
                    .collect();
                anyhow::bail!("no detection {id:?}; detections: {}", ids.join(", "));
            };
            let attack: Vec<&str> = r.attack.iter().map(|t| t.as_str()).collect();
            writeln!(out, "{}  {}", r.id, r.title)?;
            writeln!(out, "severity:   {}", r.severity)?;
            for e in &r.escalations {
                writeln!(out, "            {} when {}", e.severity, e.when)?;
            }
            writeln!(out, "ATT&CK:     {}", attack.join(", "))?;
            match &r.doc {
                Some(doc) => write!(out, "\n{doc}")?,
                None => {
                    writeln!(out, "\n{}\n\nfalse positives:", r.description)?;
                    for fp in &r.false_positives {
                        writeln!(out, "  - {fp}")?;
                    }
                }
            }
            writeln!(out, "\ncondition:\n  {}\n", r.when)?;
            writeln!(out, "reasons:")?;
            for reason in &r.reasons {
                match &reason.when {
                    Some(w) => writeln!(out, "  - {}\n      when {}", reason.text, w)?,
                    None => writeln!(out, "  - {}", reason.text)?,
                }
            }
            for e in &r.escalations {
                writeln!(out, "  - {}\n      when {}", e.reason, e.when)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where and how exported queries are written.
pub(crate) struct Written {
    pub(crate) w: Box<dyn Write>,
    /// `text`, `jsonl` or `json`.
    pub(crate) form: String,
    /// The longest query written.
    pub(crate) max_size: Option<usize>,
}

/// `rules export --to kql|spl|eql|esql|sql`: the pack (through its Sigma form) or Sigma files as
/// queries.
pub(crate) fn export_queries(
    pack: &imdsguard_rules::RuleSet,
    to: &str,
    only: Option<String>,
    written_to: Written,
    opts: &imdsguard_query::Options,
    sigma: &[PathBuf],
) -> Result<ExitCode> {
    use imdsguard_query::{convert, Lang};
    let Some(lang) = Lang::from_name(to) else {
        anyhow::bail!("Sigma files are already Sigma: give --to kql, spl, eql, esql or sql");
    };
    let mut rules = Vec::new();
    let mut load_errors = 0usize;
    // Pack rules with no Sigma form at all, and why: what `--rule ID` is told when it names one.
    let mut unexportable: Vec<(String, String)> = Vec::new();
    if sigma.is_empty() {
        let cat = Catalog::builtin();
        let allow = imdsguard_enrich::Allowlist::builtin();
        for r in pack.rules() {
            let (exported, skipped) = imdsguard_sigma::export_rule(r, cat, allow);
            for e in exported {
                let path = format!("{} (built-in)", r.id);
                let parsed = imdsguard_sigma::parse_rule(&e.yaml, &path).map_err(|e| {
                    anyhow::anyhow!("the pack's own Sigma export does not read back: {e}")
                })?;
                rules.extend(parsed.into_iter().map(|s| (r.id.clone(), s)));
            }
            let none_exported = !rules.iter().any(|(id, _)| id == &r.id);
            for s in &skipped {
                if only
                    .as_deref()
                    .is_none_or(|o| o.eq_ignore_ascii_case(&s.rule_id))
                {
                    eprintln!(
                        "imdsguard: {} not exported for {}: {}",
                        s.rule_id,
                        s.target.map_or("any log source", |t| t.category()),
                        s.reason
                    );
                }
            }
            if none_exported {
                if let Some(s) = skipped.first() {
                    unexportable.push((r.id.clone(), s.reason.clone()));
                }
            }
        }
    } else {
        let mut all = Vec::new();
        for p in sigma {
            let (rs, errs) = imdsguard_sigma::load_dir(p);
            for e in &errs {
                eprintln!("imdsguard: {e}");
            }
            load_errors += errs.len();
            all.extend(rs);
        }
        // Sigma filters among the files tune the rules they name before those are written.
        let (all, filters) = imdsguard_sigma::apply_filters(all);
        for e in &filters.unused {
            eprintln!("imdsguard: {e}");
        }
        load_errors += filters.unused.len();
        for (title, n) in &filters.applied {
            eprintln!("imdsguard: filter {title:?} tunes {n} rules");
        }
        rules.extend(
            all.into_iter()
                .map(|r| (r.id.clone().unwrap_or_else(|| r.title.clone()), r)),
        );
    }
    // A rule given twice (a file named beside its folder, the same id in two places) is
    // written once: the first.
    let mut seen = std::collections::HashSet::new();
    let before = rules.len();
    rules.retain(|(id, r): &(String, imdsguard_sigma::SigmaRule)| {
        seen.insert((id.to_ascii_lowercase(), r.logsource.category.clone()))
    });
    if rules.len() < before {
        eprintln!(
            "imdsguard: {} rules given more than once, written once",
            before - rules.len()
        );
    }
    if let Some(want) = &only {
        rules.retain(|(id, r)| {
            id.eq_ignore_ascii_case(want)
                || r.id
                    .as_deref()
                    .is_some_and(|i| i.eq_ignore_ascii_case(want))
                || r.title.eq_ignore_ascii_case(want)
        });
        if rules.is_empty() {
            if let Some((id, why)) = unexportable
                .iter()
                .find(|(id, _)| id.eq_ignore_ascii_case(want))
            {
                anyhow::bail!(
                    "{id} cannot be written in {}: it has no Sigma form ({why})",
                    lang.name()
                );
            }
            anyhow::bail!("no rule {want} in the pack or the Sigma files given");
        }
    }
    let Written { w, form, max_size } = written_to;
    let mut items = crate::out::JsonItems::new(w, form == "json");
    let (comment, end) = match lang {
        Lang::Kql | Lang::Eql | Lang::Esql => ("// ", ""),
        Lang::Spl => ("```", "```"),
        Lang::Sql => ("-- ", ""),
    };
    let mut written = 0usize;
    let (mut largest, mut total, mut too_long) = (0usize, 0usize, 0usize);
    let mut refused: std::collections::BTreeMap<String, usize> = Default::default();
    for (id, r) in &rules {
        match convert(r, lang, opts) {
            Ok(q) => {
                let bytes = q.text.len();
                if let Some(max) = max_size.filter(|&m| bytes > m) {
                    too_long += 1;
                    eprintln!(
                        "imdsguard: {} ({id}) not written: its {} query is {bytes} bytes, over --max-size {max}",
                        r.title,
                        lang.name()
                    );
                    continue;
                }
                written += 1;
                largest = largest.max(bytes);
                total += bytes;
                if form == "text" {
                    let out = &mut items.w;
                    if written > 1 {
                        writeln!(out)?;
                    }
                    writeln!(out, "{comment}{} ({id}), {bytes} bytes{end}", r.title)?;
                    for n in &q.notes {
                        writeln!(out, "{comment}note: {n}{end}")?;
                    }
                    writeln!(out, "{}", q.text)?;
                } else {
                    items.item(&serde_json::json!({
                        "id": id,
                        "title": r.title,
                        "path": r.path,
                        "lang": lang.name(),
                        "query": q.text,
                        "bytes": bytes,
                        "notes": q.notes,
                    }))?;
                }
            }
            Err(e) => {
                eprintln!("imdsguard: {e}");
                *refused.entry(e.reason.to_string()).or_default() += 1;
            }
        }
    }
    items.finish()?;
    let n_refused: usize = refused.values().sum();
    eprintln!(
        "imdsguard: {written} {} queries from {} rules ({} in all, the largest {}){}; {n_refused} not expressible; {load_errors} files did not load",
        lang.name(),
        rules.len(),
        crate::show_size(total),
        crate::show_size(largest),
        match max_size {
            Some(max) => format!("; {too_long} over --max-size {}", crate::show_size(max)),
            None => String::new(),
        }
    );
    Ok(if written == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
