//! The whole SigmaHQ rule set (`../shared/data/sigma`, 3,754 files): every file loads or is
//! reported with its path and a reason, none is dropped, and the failures are only those the
//! specification or the regex engine rules out (counted by reason, each class explained below).

use std::collections::BTreeMap;

use imdsguard_sigma::{load_dir, ErrorKind};

#[test]
fn every_sigmahq_rule_loads_or_is_reported() {
    let sigma_root = imdsguard_testdata::shared_data!("sigma");
    let mut files = 0;
    let mut loaded = 0;
    let mut by_kind: BTreeMap<ErrorKind, Vec<String>> = BTreeMap::new();
    for dir in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        let root = sigma_root.join(dir);
        files += walk(&root);
        let (rules, errors) = load_dir(&root);
        loaded += rules.len();
        for e in errors {
            assert!(e.path.ends_with(".yml"), "{e}");
            by_kind.entry(e.kind).or_default().push(e.to_string());
        }
    }
    let failed: usize = by_kind.values().map(Vec::len).sum();
    eprintln!("{files} files, {loaded} rules loaded, {failed} reported");
    for (kind, list) in &by_kind {
        eprintln!("  {} {}", list.len(), kind.as_str());
        for m in list {
            eprintln!("    {m}");
        }
    }
    // One rule per file in SigmaHQ: nothing is lost between the two counts.
    assert_eq!(loaded + failed, files, "{by_kind:#?}");
    assert!(files > 3_700, "{files}");
    // Every rule of the set reads and checks: no failure is accepted. (Regular expressions with
    // look-around would be reported as `Value`; SigmaHQ has none.)
    assert_eq!(failed, 0, "{by_kind:#?}");
    assert_eq!(loaded, files);
}

#[test]
fn a_rule_tree_with_broken_files_reports_each_and_loads_the_rest() {
    let dir = std::env::temp_dir().join(format!("imdsguard-sigma-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let good = "title: ok\nlogsource: {product: windows}\ndetection: {sel: {Image|endswith: '\\curl.exe'}, condition: sel}\n";
    std::fs::write(dir.join("a.yml"), good).unwrap();
    std::fs::write(dir.join("sub/b.yml"), "title: bad\nlogsource: {product: windows}\ndetection: {sel: {A|nope: b}, condition: sel}\n").unwrap();
    std::fs::write(dir.join("sub/c.yaml"), "title: [\n").unwrap();
    std::fs::write(dir.join("sub/readme.txt"), "not a rule").unwrap();
    let (rules, errors) = load_dir(&dir);
    assert_eq!(rules.len(), 1);
    assert_eq!(errors.len(), 2);
    let kinds: Vec<ErrorKind> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ErrorKind::Modifier, ErrorKind::Yaml]);
    assert!(
        errors[0]
            .to_string()
            .contains("b.yml: rule \"bad\": search \"sel\": unknown modifier \"nope\""),
        "{}",
        errors[0]
    );
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        usize::from(path.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
