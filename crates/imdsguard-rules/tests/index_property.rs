//! Property: the indexed and prefiltered evaluator ([`RuleSet::eval`]) returns exactly what the reference
//! evaluator ([`RuleSet::eval_reference`], every rule on every event) returns, for random rule sets
//! (equality, containment, negation, conjunction and disjunction over raw and typed fields, the
//! `Channel` field the index likes least, keyword searches over every value, and regexes) and random
//! events.

use imdsguard_enrich::Enricher;
use imdsguard_event::Severity;
use imdsguard_event::{Event, EventKind, Format, Position, Process, SourceRef, Sym};
use imdsguard_rules::{Expr, Field, Matcher, Rule, RuleSet, Text};
use proptest::prelude::*;

const NAMES: [&str; 3] = ["PropEventID", "Channel", "PropImage"];
const VALUES: [&str; 5] = ["1", "3", "sysmon", "Security", "C:\\x\\CMD.exe"];

fn field(i: usize) -> Field {
    match i {
        0..=2 => Field::Raw(Sym::intern(NAMES[i])),
        3 => Field::EventKind,
        4 => Field::ProcessImage,
        _ => Field::Keywords,
    }
}

fn regex(r: &str) -> Matcher {
    Matcher::Regex(regex::Regex::new(r).unwrap())
}

fn leaf() -> impl Strategy<Value = Expr> {
    (
        0usize..6,
        prop::collection::vec((0usize..5, 0usize..9), 1..3),
    )
        .prop_map(|(f, vs)| {
            let ms = vs
                .into_iter()
                .map(|(v, kind)| {
                    let text = if f == 3 {
                        ["process-start", "network-connect", "other"][v % 3]
                    } else {
                        VALUES[v]
                    };
                    let head = &text[..text.len().min(2)];
                    let tail = &text[text.len().saturating_sub(3)..];
                    // Every matcher the literal prefilter reads, case-insensitive and cased, and
                    // one it cannot (exists).
                    match kind {
                        0 => Matcher::Eq(Text::new(text)),
                        1 => Matcher::Contains(Text::new(head)),
                        2 => Matcher::Prefix(Text::new(head)),
                        3 => Matcher::Suffix(Text::new(tail)),
                        4 => Matcher::Eq(Text::cased(text)),
                        // Regexes: a literal start, a start of two case-folded alternatives, and
                        // one that can start anywhere.
                        5 => regex(&format!(
                            "(?i){}.*{}",
                            regex::escape(head),
                            regex::escape(tail)
                        )),
                        6 => regex(&format!("(x|{})+", regex::escape(head))),
                        7 => regex(&format!(".?{}", regex::escape(tail))),
                        _ => Matcher::Exists,
                    }
                })
                .collect();
            Expr::Test(field(f), ms)
        })
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::All),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::Any),
            inner.prop_map(|e| !e),
        ]
    })
}

fn event(raw: Vec<(usize, usize)>, kind: usize, image: Option<usize>) -> Event {
    let source = SourceRef {
        path: "prop".into(),
        position: Position::Line(1),
    };
    let kind = [
        EventKind::ProcessStart,
        EventKind::NetworkConnect,
        EventKind::Other,
    ][kind];
    Event {
        process: Process {
            image: image.map(|v| VALUES[v].to_owned()),
            ..Process::default()
        },
        fields: raw
            .into_iter()
            .map(|(n, v)| (Sym::intern(NAMES[n]), VALUES[v].to_owned()))
            .collect(),
        ..Event::empty(source, Format::EvtxJson, kind)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn indexed_equals_reference(
        exprs in prop::collection::vec(expr(), 1..12),
        events in prop::collection::vec(
            (prop::collection::vec((0usize..3, 0usize..5), 0..4), 0usize..3, prop::option::of(0usize..5)),
            1..8,
        ),
    ) {
        let rules: Vec<Rule> = exprs
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                Rule::builder(&format!("P-{i}"), "p", Severity::Low, e)
                    .description("property")
                    .reason("matched")
                    .build()
                    .unwrap()
            })
            .collect();
        let set = RuleSet::new(rules).unwrap();
        let enricher = Enricher::builtin();
        for (raw, kind, image) in events {
            let e = event(raw, kind, image);
            let ev = enricher.enrich(&e);
            let fast: Vec<&str> = set.eval(&ev).iter().map(|h| h.rule.id.as_str()).collect();
            let reference: Vec<&str> = set.eval_reference(&ev).iter().map(|h| h.rule.id.as_str()).collect();
            prop_assert_eq!(fast, reference);
        }
    }
}
