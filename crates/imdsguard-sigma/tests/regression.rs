//! SigmaHQ's own regression suite (`../shared/data/sigma/regression_data/**/info.yml`): each names a
//! rule and an EVTX file on which that rule must fire (at least `match_count` times when given).
//! The rule is loaded and compiled from the SigmaHQ rule set, the EVTX read by the real reader with
//! the records' own fields kept, and the compiled rule evaluated by the rule IR's evaluator.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use imdsguard_enrich::Enricher;
use imdsguard_parse::{read_inputs, ReadOptions, Summary};
use imdsguard_sigma::{compile, load_dir, SigmaRule};
use yaml_rust2::YamlLoader;

fn sigma_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sigma")
}

fn info_files(p: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            info_files(&path, out);
        } else if path.file_name().is_some_and(|n| n == "info.yml") {
            out.push(path);
        }
    }
}

#[test]
fn sigmahq_regression_tests_pass() {
    let root = sigma_root();
    let mut by_id: HashMap<String, SigmaRule> = HashMap::new();
    for dir in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        let (rules, _) = load_dir(&root.join(dir));
        for r in rules {
            if let Some(id) = r.id.clone() {
                by_id.insert(id, r);
            }
        }
    }
    let mut infos = Vec::new();
    info_files(&root.join("regression_data"), &mut infos);
    infos.sort();
    assert!(infos.len() >= 143, "{}", infos.len());
    let enricher = Enricher::builtin();
    let mut passed = 0;
    let mut failures = Vec::new();
    let mut vacuous = Vec::new();
    for info in &infos {
        let text = std::fs::read_to_string(info).unwrap();
        let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
        let id = doc["rule_metadata"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // A test whose entries are commented out checks nothing (SigmaHQ's Cisco test is one).
        let Some(tests) = doc["regression_tests_info"].as_vec() else {
            vacuous.push(info.display().to_string());
            passed += 1;
            continue;
        };
        let Some(rule) = by_id.get(&id) else {
            failures.push(format!("{}: rule {id} not in the rule set", info.display()));
            continue;
        };
        let compiled = match compile(rule) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{}: {e}", info.display()));
                continue;
            }
        };
        let mut ok = true;
        for t in tests {
            let evtx = root.join(t["path"].as_str().unwrap());
            let want = t["match_count"].as_i64().unwrap_or(1).max(1) as usize;
            let opts = ReadOptions {
                keep_fields: true,
                ..ReadOptions::default()
            };
            let mut summary = Summary::default();
            let mut hits = 0;
            read_inputs(std::slice::from_ref(&evtx), &opts, &mut summary, &mut |e| {
                if compiled.eval(&enricher.enrich(&e)).is_some() {
                    hits += 1;
                }
            });
            if hits < want {
                ok = false;
                failures.push(format!(
                    "{}: {} matched {hits} of {} events, wants {want} ({})",
                    info.display(),
                    rule.title,
                    summary.total_events(),
                    rule.path
                ));
            }
        }
        if ok {
            passed += 1;
        }
    }
    eprintln!(
        "{passed} of {} regression tests pass ({} list no test data)",
        infos.len(),
        vacuous.len()
    );
    for f in &failures {
        eprintln!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(passed, infos.len());
    assert!(vacuous.len() <= 1, "{vacuous:?}");
}
