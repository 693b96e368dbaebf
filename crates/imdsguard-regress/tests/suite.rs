//! The regression runner over a suite written for it (`tests/data/suite`): both `info.yml`
//! layouts, JSON / NDJSON / JSONL samples, a root-level pipeline and a test's own, a Sigma filter
//! (applied before the pipeline, so its `User` is mapped too), `neq` and the long regex flag
//! names, and everything that cannot run reported rather than skipped.

use std::path::PathBuf;

use imdsguard_regress::Suite;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/suite")
}

/// One outcome as the test reads it: info file, test name, got, want, passed, problem.
type Row<'a> = (String, &'a str, u64, u64, bool, Option<&'a str>);

#[test]
fn every_test_case_is_judged_and_what_cannot_run_says_why() {
    let suite = Suite::open(&root(), &[]).unwrap();
    assert_eq!(suite.infos().len(), 4);
    let report = suite.run();
    assert_eq!(report.rules_loaded, 2);
    // The rule whose condition names a search it lacks does not load.
    assert_eq!(report.rule_errors.len(), 1, "{:?}", report.rule_errors);
    assert!(report.bad_info.is_empty(), "{:?}", report.bad_info);
    let rows: Vec<Row> = report
        .outcomes
        .iter()
        .map(|o| {
            (
                o.info.rsplit("windows/").next().unwrap().to_owned(),
                o.test.as_str(),
                o.got,
                o.want,
                o.passed(),
                o.problem.as_deref(),
            )
        })
        .collect();
    let expect: Vec<Row> = vec![
        (
            "broken/info.yml".into(),
            "Unnamed Test",
            0,
            1,
            false,
            Some("rule 00000000-0000-4000-8000-000000000000 is not in the rule set (1 rule files did not load; `imdsguard sigma check` names them)"),
        ),
        (
            "broken/info.yml".into(),
            "Unnamed Test",
            0,
            1,
            false,
            Some("rule 00000000-0000-4000-8000-000000000000 is not in the rule set (1 rule files did not load; `imdsguard sigma check` names them)"),
        ),
        (
            "broken/info.yml".into(),
            "Unnamed Test",
            0,
            1,
            false,
            Some("sample type \"raw\" is not supported (evtx, json, ndjson, jsonl)"),
        ),
        ("broken/info.yml".into(), "Unnamed Test", 0, 1, false, None),
        (
            "neq/info.yml".into(),
            "Positive Detection Test",
            2,
            2,
            true,
            None,
        ),
        (
            "proc_creation_win_test_broken/info.yml".into(),
            "Positive Detection Test",
            0,
            1,
            false,
            None,
        ),
        (
            "whoami/info.yml".into(),
            "Positive Detection Test",
            1,
            1,
            true,
            None,
        ),
        (
            "whoami/info.yml".into(),
            "Flat records, no pipeline",
            2,
            2,
            true,
            None,
        ),
        (
            "whoami/info.yml".into(),
            "The admin filter takes the record out",
            0,
            1,
            false,
            None,
        ),
    ];
    assert_eq!(rows.len(), expect.len(), "{rows:#?}");
    for (got, want) in rows.iter().zip(&expect) {
        assert_eq!(got.0, want.0);
        assert_eq!(got.1, want.1);
        assert_eq!((got.2, got.3, got.4), (want.2, want.3, want.4), "{got:?}");
        match (got.5, want.5) {
            (Some(g), Some(w)) => assert_eq!(g, w),
            (g, None) if got.0.starts_with("broken") => {
                assert!(
                    g.is_some_and(|m| m.contains("missing.evtx not found")),
                    "{g:?}"
                )
            }
            // The rule's own load error, found by SigmaHQ's naming (folder = rule file).
            (g, None) if got.0.starts_with("proc_creation_win_test_broken") => {
                assert!(
                    g.is_some_and(|m| m.starts_with(
                        "rule 9c8b7a6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d is not in the rule set: "
                    ) && m.contains("proc_creation_win_test_broken.yml")
                        && m.contains("the condition names \"filter\"")),
                    "{g:?}"
                )
            }
            (g, w) => assert_eq!(g, w),
        }
    }
    assert_eq!(report.passed(), 3);
    // The bad NDJSON line is named by file and line; the records around it were read.
    let flat = &report.outcomes[7];
    assert_eq!(flat.records, 3);
    assert_eq!(flat.unreadable.len(), 1);
    assert!(
        flat.unreadable[0].ends_with("flat.ndjson:5: expected ident at line 1 column 2"),
        "{:?}",
        flat.unreadable
    );
}

#[test]
fn a_root_without_info_files_is_an_error() {
    let e = Suite::open(&root().join("rules"), &[]).err().unwrap();
    assert!(e.to_string().contains("no info.yml"), "{e}");
    // info.yml files but no rule folder: said, not nine "not in the rule set" failures.
    let e = Suite::open(&root().join("regression_data/rules/windows"), &[])
        .err()
        .unwrap();
    assert!(e.to_string().contains("give --rules DIR"), "{e}");
    let given = Suite::open(
        &root().join("regression_data/rules/windows"),
        &[root().join("rules")],
    )
    .unwrap();
    assert_eq!(given.run().passed(), 3);
}

#[test]
fn time_modifiers_read_the_part_as_written() {
    use imdsguard_sigma::{compile_detection, parse_rule};
    let rule = parse_rule(
        "title: t\nlogsource: {product: windows}\ndetection:\n    night:\n        UtcTime|hour|lt: 6\n    week:\n        UtcTime|week: 48\n    not_monday:\n        UtcTime|day|neq: 25\n    condition: night and week and not_monday\n",
        "t.yml",
    )
    .unwrap()
    .remove(0);
    let compiled = compile_detection(&rule).unwrap();
    let fields = imdsguard_rules::record_fields([&compiled]);
    let enricher = imdsguard_enrich::Enricher::builtin();
    let fires = |time: &str| {
        let v = serde_json::json!({ "UtcTime": time });
        let e = imdsguard_regress::json_event(&v, "t.json", 1, &fields);
        compiled.eval(&enricher.enrich(&e)).is_some()
    };
    // ISO week 48 of 2026 runs from Monday the 23rd to Sunday the 29th of November.
    assert!(fires("2026-11-24 03:12:00.000"));
    assert!(!fires("2026-11-24 06:00:00.000"), "hour 6 is not < 6");
    assert!(!fires("2026-11-25 03:12:00.000"), "day 25");
    assert!(fires("2026-11-29 05:59:59"));
    assert!(!fires("2026-11-30 03:12:00.000"), "week 49");
    assert!(!fires("not a time"));
    // A time modifier takes a whole number, and nothing but a comparison, neq or all beside it.
    for bad in [
        "UtcTime|hour: x",
        "UtcTime|hour|contains: 3",
        "UtcTime|hour|minute: 3",
    ] {
        let (k, v) = bad.split_once(": ").unwrap();
        let text = format!("title: t\nlogsource: {{product: windows}}\ndetection:\n    s:\n        {k}: {v}\n    condition: s\n");
        assert!(parse_rule(&text, "t.yml").is_err(), "{bad}");
    }
}
