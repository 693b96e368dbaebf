//! Fuzzes the normalizer end to end (tokenizer, decoders, URL readings, host and path readers) and
//! checks two invariants besides not panicking: the answer does not depend on being asked twice,
//! and every target it reports names a provider or an endpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let n = imdsguard_target::builtin();
    let first = n.find(&text);
    let again = n.find(&text);
    assert_eq!(first.len(), again.len());
    for t in &first {
        assert!(t.provider.is_some() || t.endpoint.is_some(), "target with neither provider nor endpoint");
    }
    for part in text.split(['.', ':']) {
        let _ = imdsguard_target::parse_ipv4(part);
        let _ = imdsguard_target::parse_ipv6(part);
    }
});
