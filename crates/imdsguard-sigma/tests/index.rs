//! The indexed evaluator agrees with the reference evaluator (every rule on every event): the
//! SigmaHQ rule set plus the built-in pack over every public log the decoders read.

use std::path::PathBuf;

use imdsguard_enrich::Enricher;
use imdsguard_parse::{read_inputs, ReadOptions, Summary};
use imdsguard_rules::RuleSet;
use imdsguard_sigma::{compile, load_dir};

#[test]
fn indexed_evaluation_equals_reference_evaluation() {
    let shared = imdsguard_testdata::shared_data!("");
    let mut rules = Vec::new();
    for dir in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        let (loaded, _) = load_dir(&shared.join("sigma").join(dir));
        let mut seen = std::collections::HashSet::new();
        rules.extend(
            loaded
                .iter()
                .filter_map(|r| compile(r).ok())
                .filter(|r| seen.insert(r.id.clone())),
        );
    }
    let before = rules.len();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    rules.retain(|r| seen.insert(r.id.clone()));
    assert!(before - rules.len() < 10);
    let set = RuleSet::new(rules).unwrap();
    let (always, keys) = set.index_stats();
    assert!(
        always < set.rules().len() / 10,
        "{always} of {} rules unindexed",
        set.rules().len()
    );
    assert!(keys > 20);
    // Most rules need a literal in some field before they are evaluated (the second stage).
    let (needing, literals) = set.prefilter_stats();
    eprintln!(
        "prefilter: {needing} of {} rules, {literals} literals",
        set.rules().len()
    );
    assert!(
        needing > set.rules().len() * 3 / 4,
        "{needing} of {} rules prefiltered",
        set.rules().len()
    );
    let enricher = Enricher::builtin();
    let opts = ReadOptions {
        fields: set.record_fields().clone(),
        ..ReadOptions::default()
    };
    let inputs: Vec<PathBuf> = ["evtx", "defender", "linux", "sigma/regression_data"]
        .iter()
        .map(|d| shared.join(d))
        .collect();
    let mut summary = Summary::default();
    let (mut events, mut hits, mut mismatches) = (0u64, 0u64, Vec::new());
    read_inputs(&inputs, &opts, &mut summary, &mut |e| {
        events += 1;
        let ev = enricher.enrich(&e);
        let fast: Vec<&str> = set.eval(&ev).iter().map(|h| h.rule.id.as_str()).collect();
        let reference: Vec<&str> = set
            .eval_reference(&ev)
            .iter()
            .map(|h| h.rule.id.as_str())
            .collect();
        hits += reference.len() as u64;
        if fast != reference && mismatches.len() < 10 {
            mismatches.push(format!(
                "{}: fast {fast:?} reference {reference:?}",
                e.source
            ));
        }
    });
    assert!(events > 6_000, "{events}");
    assert!(hits > 500, "{hits}");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
