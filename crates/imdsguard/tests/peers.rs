//! Rule by rule beside Chainsaw 2.16.4 and Hayabusa 4.0.0: every hit either peer reports on the
//! public EVTX files of `../shared/data` (their hits are in `../shared/data/peers/`, one line per
//! rule, file and `EventRecordID`) is an alert here too, with the rule scope each peer ran
//! (Chainsaw: SigmaHQ's `rules/windows`; Hayabusa: its converted set, which also holds the
//! threat-hunting and emerging-threat rules).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn shared() -> Option<PathBuf> {
    imdsguard_testdata::shared_data("peers").map(|_| imdsguard_testdata::root())
}

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            evtx_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "evtx") {
            out.push(p);
        }
    }
}

/// (rule id, file name, record) of every alert over the public EVTX files with these rules.
fn ours(shared: &Path, rules: &[&str]) -> BTreeSet<(String, String, u64)> {
    let mut files = Vec::new();
    evtx_files(shared, &mut files);
    files.sort();
    assert!(files.len() >= 155, "{} EVTX files", files.len());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imdsguard"));
    cmd.args(["hunt", "--no-db", "--no-builtin", "--output", "jsonl"]);
    for r in rules {
        cmd.arg("--sigma").arg(shared.join("sigma").join(r));
    }
    let out = cmd.args(&files).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a.get("rule_id").is_some())
        .map(|a| {
            let path = a["source"]["path"].as_str().unwrap();
            (
                a["rule_id"].as_str().unwrap().to_owned(),
                Path::new(path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                a["source"]["record"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn peer_hits(shared: &Path, peer: &str) -> Vec<(String, String, u64)> {
    std::fs::read_to_string(shared.join(format!("peers/{peer}-hits.tsv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[0].to_owned(), c[2].to_owned(), c[3].parse().unwrap())
        })
        .collect()
}

fn assert_covers(peer: &str, rules: &[&str]) {
    let Some(shared) = shared() else { return };
    let ours = ours(&shared, rules);
    let theirs = peer_hits(&shared, peer);
    assert!(theirs.len() > 400, "{peer}: {} hits", theirs.len());
    let missing: Vec<&(String, String, u64)> =
        theirs.iter().filter(|h| !ours.contains(*h)).collect();
    assert!(
        missing.is_empty(),
        "{} of {peer}'s {} hits are not alerts here: {missing:#?}",
        missing.len(),
        theirs.len()
    );
}

#[test]
fn every_chainsaw_hit_is_an_alert() {
    assert_covers("chainsaw", &["rules/windows"]);
}

#[test]
fn every_hayabusa_hit_is_an_alert() {
    assert_covers(
        "hayabusa",
        &[
            "rules/windows",
            "rules-threat-hunting/windows",
            "rules-emerging-threats",
        ],
    );
}
