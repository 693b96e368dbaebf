//! Fuzzes the proxy's policy files and the policy suggested from audit records: any text either
//! checks or is refused with an error (no panic), a checked policy decides any request, and the
//! policy suggested from any records always checks.
#![no_main]

use std::sync::Arc;

use imdsguard_guard::attrib::{Attribution, Process};
use imdsguard_guard::policy::{Facts, Policy};
use imdsguard_guard::suggest::Observed;
use imdsguard_target::Kind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::parse(text, "fuzz.toml") {
        let who = Attribution::Process(Arc::new(Process {
            pid: 7,
            exe: Some("/usr/bin/curl".into()),
            cmdline: vec!["curl".into()],
            uid: 0,
            user: Some("root".into()),
            cgroup: None,
            container: Some("ab".repeat(32)),
        }));
        for kind in Kind::ALL {
            for path in ["/latest/api/token", "/", "/computeMetadata/v1/x"] {
                let f = Facts {
                    method: "GET",
                    path,
                    provider: Some("aws"),
                    kind: *kind,
                    token: false,
                    forwarded: Vec::new(),
                };
                let d = p.decide(&f, &who);
                assert!(d.allow || matches!(d.status, 401 | 403), "{d:?}");
                let _ = p.decide(&f, &Attribution::Unattributed("x".into()));
            }
        }
    }
    let mut seen = Observed::default();
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            seen.add(&v);
        }
    }
    let suggested = seen.policy("fuzz");
    if let Err(e) = Policy::parse(&suggested, "suggested.toml") {
        panic!("the suggestion does not check: {e}\n{suggested}");
    }
});
