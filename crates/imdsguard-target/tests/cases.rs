//! The case tables in `tests/cases/`: every notation and provider the normalizer must read in
//! free text (`targets.tsv`) and in values that are hosts (`hosts.tsv`: DNS query names, HTTP
//! `Host`, proxy `CONNECT` targets), and what it must never call a target in either
//! (`benign.txt`, `benign-hosts.txt`). A failing run lists every mismatching row, not only the
//! first.

use std::collections::BTreeSet;
use std::path::PathBuf;

use imdsguard_target::{builtin, Encoding, ReadAs, Target};

fn read(name: &str) -> Vec<(usize, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.replace("<LF>", "\n")))
        .collect()
}

fn describe(t: &Target<'_>) -> String {
    format!(
        "endpoint={} provider={} kind={} encoding=[{}] path={}",
        t.endpoint_text().unwrap_or("-"),
        t.provider_id().unwrap_or("-"),
        t.kind,
        t.encoding,
        t.path.as_deref().unwrap_or("-"),
    )
}

#[test]
fn every_target_row_classifies_as_written() {
    check_targets("targets.tsv", ReadAs::Text, 100);
}

#[test]
fn every_host_row_classifies_as_written() {
    check_targets("hosts.tsv", ReadAs::Host, 10);
}

fn check_targets(file: &str, how: ReadAs, at_least: usize) {
    let n = builtin();
    let mut failures = Vec::new();
    let rows = read(file);
    assert!(rows.len() > at_least, "the table has {} rows", rows.len());
    for (line, row) in &rows {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(
            cols.len(),
            5,
            "{file}:{line}: expected 5 tab-separated columns, got {}",
            cols.len()
        );
        let (input, endpoint, provider, kind, encodings) =
            (cols[0], cols[1], cols[2], cols[3], cols[4]);
        let want_enc: BTreeSet<&str> = if encodings == "-" {
            BTreeSet::new()
        } else {
            encodings.split(',').collect()
        };
        for e in &want_enc {
            assert!(
                Encoding::from_name(e).is_some(),
                "{file}:{line}: unknown encoding {e:?}"
            );
        }
        let found = n.find_as(input, how);
        let Some(best) = found.first() else {
            failures.push(format!("{file}:{line}: {input:?}\n    want {endpoint} {provider} {kind} [{encodings}]\n    got  no target"));
            continue;
        };
        let got_enc: BTreeSet<&str> = best.encoding.iter().map(Encoding::as_str).collect();
        let ok = best.endpoint_text().unwrap_or("-") == endpoint
            && best.provider_id().unwrap_or("-") == provider
            && best.kind.as_str() == kind
            && got_enc == want_enc;
        if !ok {
            failures.push(format!(
                "{file}:{line}: {input:?}\n    want endpoint={endpoint} provider={provider} kind={kind} encoding=[{encodings}]\n    got  {}",
                describe(best)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn no_benign_row_is_a_target() {
    check_benign("benign.txt", ReadAs::Text, 60);
}

#[test]
fn no_benign_host_is_a_target() {
    check_benign("benign-hosts.txt", ReadAs::Host, 10);
}

fn check_benign(file: &str, how: ReadAs, at_least: usize) {
    let n = builtin();
    let rows = read(file);
    assert!(rows.len() > at_least, "the table has {} rows", rows.len());
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|(line, input)| {
            let found = n.find_as(input, how);
            found
                .first()
                .map(|t| format!("{file}:{line}: {input:?} called a target: {}", describe(t)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows are called targets:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
