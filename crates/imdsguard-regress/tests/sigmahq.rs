//! SigmaHQ's own regression suite (`../shared/data/sigma`, or the SigmaHQ checkout named by
//! `IMDSGUARD_SIGMA_ROOT`): every `info.yml` under `regression_data/` names a rule and samples on
//! which it must fire; every test case must pass, and at most one `info.yml` may list no test
//! (SigmaHQ's Cisco test has its entries commented out).

use std::path::PathBuf;

use imdsguard_regress::Suite;

fn sigma_root() -> Option<PathBuf> {
    match std::env::var_os("IMDSGUARD_SIGMA_ROOT") {
        Some(root) => Some(PathBuf::from(root)),
        None => imdsguard_testdata::shared_data("sigma"),
    }
}

#[test]
fn sigmahq_regression_tests_pass() {
    let Some(root) = sigma_root() else {
        return;
    };
    let suite = Suite::open(&root, &[]).unwrap();
    assert!(suite.infos().len() >= 143, "{}", suite.infos().len());
    let report = suite.run();
    let failures: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| {
            format!(
                "{}: {} ({}) matched {} of {} records, wants {}{}",
                o.info,
                o.title,
                o.rule,
                o.got,
                o.records,
                o.want,
                o.problem
                    .as_deref()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    eprintln!(
        "{} of {} regression test cases pass ({} info.yml list no test data)",
        report.passed(),
        report.outcomes.len(),
        report.empty.len()
    );
    assert!(report.bad_info.is_empty(), "{:?}", report.bad_info);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(report.outcomes.len() + report.empty.len() >= 143);
    assert!(report.empty.len() <= 1, "{:?}", report.empty);
}
