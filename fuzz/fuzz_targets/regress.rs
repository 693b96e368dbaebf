//! Fuzzes what the regression runner reads: any text is an `info.yml` that reads or says why, a
//! processing pipeline that reads (and applies to a rule) or says why, Sigma files whose filters
//! apply or are reported, and JSON samples whose unreadable lines are named.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

const RULE: &str = "title: t\nid: 5e8d6a4c-1b2f-4c3d-9e8f-0a1b2c3d4e5f\nlogsource: {category: process_creation, product: windows}\ndetection:\n    s: {Image|endswith: x, CommandLine: [a, b]}\n    condition: s\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = imdsguard_regress::Info::parse(Path::new("/nonexistent"), Path::new("/nonexistent/info.yml"), text);
    let mut rule = imdsguard_sigma::parse_rule(RULE, "r.yml").expect("fixed rule").remove(0);
    match imdsguard_sigma::Pipeline::parse(text, "p.yml") {
        Ok(p) => {
            if imdsguard_sigma::apply_pipelines(&mut rule, &[p]).is_ok() {
                let _ = imdsguard_sigma::compile_detection(&rule);
            }
        }
        Err(e) => assert_eq!(e.path, "p.yml"),
    }
    if let Ok(mut rules) = imdsguard_sigma::parse_rule(text, "f.yml") {
        rules.push(rule);
        let (left, report) = imdsguard_sigma::apply_filters(rules);
        assert!(left.iter().all(|r| r.filter.is_none()));
        assert!(report.unused.iter().all(|e| e.path == "f.yml"));
    }
    for kind in [imdsguard_regress::SampleKind::Json, imdsguard_regress::SampleKind::Ndjson] {
        let mut bad = Vec::new();
        for (line, v) in imdsguard_regress::json_objects(text, kind, "s.json", &mut bad) {
            let all = imdsguard_event::FieldSet::of([imdsguard_event::Sym::ANY]);
            let e = imdsguard_regress::json_event(&v, "s.json", line, &all);
            assert!(e.fields.windows(2).all(|w| w[0].0 <= w[1].0));
        }
        assert!(bad.iter().all(|b| b.starts_with("s.json")));
    }
});
