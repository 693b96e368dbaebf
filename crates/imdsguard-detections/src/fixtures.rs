//! Every detection's positive and negative fixtures, decoded by the real decoders and enriched by
//! the real enrich stage: a positive must raise its rule, a negative must not. Failures are
//! collected and reported together.

use imdsguard_enrich::Enricher;
use imdsguard_parse::{read_reader, ReadOptions, Summary};

use crate::*;

/// (rule id, positive fixtures, negative fixtures) of every detection, from its file.
fn fixtures() -> Vec<(String, &'static [&'static str], &'static [&'static str])> {
    FIXTURES
        .iter()
        .zip(DETECTIONS)
        .map(|((_, pos, neg), rule)| (rule().id, *pos, *neg))
        .collect()
}

/// Rule ids raised by a fixture document, with the reasons of the rule under test.
fn raised(doc: &str, rule: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut events = Vec::new();
    let mut summary = Summary::default();
    read_reader(
        "fixture",
        &mut doc.as_bytes(),
        &ReadOptions::default(),
        &mut summary,
        &mut |e| events.push(e),
    );
    if events.is_empty() || summary.total_skipped() > 0 {
        return Err(format!(
            "fixture does not decode cleanly: {:?}",
            summary.first_skips
        ));
    }
    let enricher = Enricher::builtin();
    let mut ids = Vec::new();
    let mut reasons = Vec::new();
    for e in &events {
        let ev = enricher.enrich(e);
        for hit in pack().eval(&ev) {
            if hit.rule.id == rule {
                reasons.extend(hit.reasons.clone());
            }
            ids.push(hit.rule.id.clone());
        }
    }
    Ok((ids, reasons))
}

#[test]
fn every_detection_has_fixtures_and_they_hold() {
    let all = fixtures();
    assert_eq!(all.len(), DETECTIONS.len());
    let mut failures = Vec::new();
    for (id, pos, neg) in &all {
        let id = id.as_str();
        assert!(pack().get(id).is_some(), "{id} is not in the pack");
        assert!(
            !pos.is_empty() && !neg.is_empty(),
            "{id} needs positive and negative fixtures"
        );
        for doc in *pos {
            match raised(doc, id) {
                Ok((ids, reasons)) if ids.iter().any(|i| i == id) => {
                    if reasons.is_empty()
                        || reasons
                            .iter()
                            .any(|r| r.contains('{') || r.trim().is_empty())
                    {
                        failures.push(format!("{id}: bad reasons {reasons:?} for {doc}"));
                    }
                }
                Ok((ids, _)) => {
                    failures.push(format!("{id}: positive not raised (raised {ids:?}): {doc}"))
                }
                Err(e) => failures.push(format!("{id}: {e}: {doc}")),
            }
        }
        for doc in *neg {
            match raised(doc, id) {
                Ok((ids, _)) if ids.iter().any(|i| i == id) => {
                    failures.push(format!("{id}: negative raised: {doc}"))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("{id}: {e}: {doc}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rule_is_documented_and_ids_are_stable() {
    for (i, r) in pack().rules().iter().enumerate() {
        assert_eq!(r.id, format!("IMDS-{:03}", i + 1));
        assert!(!r.description.is_empty() && !r.false_positives.is_empty());
        assert!(
            r.attack.iter().any(|t| t.as_str() == "T1552.005"),
            "{}",
            r.id
        );
    }
}

/// What each detection's first positive fixture raises, as the alert JSON users read: a change
/// in any field, reason or severity shows up in review.
#[test]
fn each_detection_s_alert_on_its_first_positive() {
    let enricher = Enricher::builtin();
    for (id, pos, _) in fixtures() {
        let id = id.as_str();
        let mut events = Vec::new();
        read_reader(
            "fixture.log",
            &mut pos[0].as_bytes(),
            &ReadOptions::default(),
            &mut Summary::default(),
            &mut |e| events.push(e),
        );
        let alerts: Vec<imdsguard_rules::Alert> = events
            .iter()
            .flat_map(|e| {
                let ev = enricher.enrich(e);
                pack()
                    .eval(&ev)
                    .into_iter()
                    .filter(|h| h.rule.id == id)
                    .map(|h| imdsguard_rules::Alert::new(&h, &ev))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(alerts.len(), 1, "{id}");
        insta::assert_json_snapshot!(id, alerts[0]);
    }
}
