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
    assert_eq!(suite.infos().len(), 3);
    let report = suite.run();
    assert_eq!(report.rules_loaded, 2);
    assert!(report.rule_errors.is_empty(), "{:?}", report.rule_errors);
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
            Some("rule 00000000-0000-4000-8000-000000000000 is not in the rule set"),
        ),
        (
            "broken/info.yml".into(),
            "Unnamed Test",
            0,
            1,
            false,
            Some("rule 00000000-0000-4000-8000-000000000000 is not in the rule set"),
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
            (g, w) => assert_eq!(g, w),
        }
    }
    assert_eq!(report.passed(), 3);
    // The bad NDJSON line is named by file and line; the records around it were read.
    let flat = &report.outcomes[6];
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
}
