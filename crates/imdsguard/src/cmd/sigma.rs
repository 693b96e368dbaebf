//! `imdsguard sigma`: rule files checked against the specification, regression suites run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub(crate) struct SigmaArgs {
    #[command(subcommand)]
    action: SigmaAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SigmaAction {
    /// Load Sigma rule files or directories (recursively) and check them against the Sigma
    /// specification: each file that does not load is named with the reason, and a summary counts
    /// rules by kind and failures by reason. Exit status 1 when any file failed.
    Check {
        /// Rule files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run a Sigma regression suite in SigmaHQ's layout: each `info.yml` under
    /// `ROOT/regression_data` names rules (by id) and event samples (EVTX, JSON, NDJSON) on which
    /// they must fire at least `match_count` times, with the pipelines and filters a JSON test
    /// names. Prints one line per test case (PASS/FAIL, matches wanted and found, why it could not
    /// run); a summary on standard error. Exit status 1 when any test case failed.
    Test {
        /// The suite's root: a SigmaHQ checkout, or any folder with `regression_data/` (or
        /// `info.yml` files) in it.
        root: PathBuf,
        /// Rule folders to find the tested rules in (default: ROOT's `rules*` folders).
        #[arg(long = "rules", value_name = "DIR")]
        rules: Vec<PathBuf>,
        /// `text` (one line per test case) or `jsonl` (one object per test case).
        #[arg(long, default_value = "text", value_parser = ["text", "jsonl"])]
        output: String,
    },
}

pub(crate) fn sigma(args: SigmaArgs) -> Result<ExitCode> {
    let paths = match args.action {
        SigmaAction::Check { paths } => paths,
        SigmaAction::Test {
            root,
            rules,
            output,
        } => return sigma_test(&root, &rules, &output),
    };
    // The same loading and compiling as `hunt --sigma`: one verdict for a rule, whichever
    // command reads it (a regex over the engine's size limit fails here too).
    let cfg = imdsguard_pipeline::config::RulesConfig {
        sigma: paths,
        builtin: false,
        // Every rule is checked, deprecated and unsupported ones too.
        select: imdsguard_pipeline::config::Selection {
            deprecated: true,
            unsupported: true,
            ..Default::default()
        },
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (_, report) = imdsguard_pipeline::Rules::load(&cfg, threads)?;
    let mut by_reason: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for e in &report.errors {
        println!("{e}");
        *by_reason.entry(e.kind.as_str()).or_default() += 1;
    }
    let (detections, correlations) = (report.sigma_rules, report.correlations);
    let filters = report.filters.len();
    let failed: usize = by_reason.values().sum();
    eprintln!(
        "imdsguard: {} Sigma rules load and compile ({detections} detection, {correlations} correlation, {filters} filters), {failed} failed",
        detections + correlations + filters
    );
    for (reason, n) in &by_reason {
        eprintln!("  failed   {reason:<40} {n}");
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `sigma test`: a regression suite in SigmaHQ's layout.
pub(crate) fn sigma_test(root: &Path, rule_dirs: &[PathBuf], output: &str) -> Result<ExitCode> {
    let suite = imdsguard_regress::Suite::open(root, rule_dirs)?;
    let report = suite.run();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for o in &report.outcomes {
        if output == "jsonl" {
            serde_json::to_writer(&mut out, o)?;
            writeln!(out)?;
            continue;
        }
        let status = if o.passed() { "PASS" } else { "FAIL" };
        match &o.problem {
            // It could not run: say why, not a count of nothing.
            Some(p) => writeln!(
                out,
                "{status} {} {:?} [{}] could not run: {p}",
                o.rule, o.title, o.test
            )?,
            None => writeln!(
                out,
                "{status} {} {:?} [{}] {} of {} records matched, wants {}: {}",
                o.rule, o.title, o.test, o.got, o.records, o.want, o.sample
            )?,
        }
        for u in &o.unreadable {
            writeln!(out, "     unreadable: {u}")?;
        }
    }
    out.flush()?;
    let failed = report.outcomes.len() - report.passed();
    eprintln!(
        "imdsguard: {} info.yml, {} test cases: {} passed, {failed} failed; {} info.yml list no test case, {} do not read; {} rules loaded, {} rule files did not load",
        suite.infos().len(),
        report.outcomes.len(),
        report.passed(),
        report.empty.len(),
        report.bad_info.len(),
        report.rules_loaded,
        report.rule_errors.len()
    );
    for b in &report.bad_info {
        eprintln!("  unreadable info.yml: {b}");
    }
    Ok(if failed > 0 || !report.bad_info.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
