//! Fuzzes the Sigma front end: any text either reads into rules or returns an error naming the
//! file; any condition string parses or says why, and a parsed condition prints and parses back
//! to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = imdsguard_sigma::parse_rule(text, "fuzz.yml") {
        assert_eq!(e.path, "fuzz.yml");
    }
    if let Ok(c) = imdsguard_sigma::parse_condition(text) {
        let again = imdsguard_sigma::parse_condition(&c.to_string()).expect("a printed condition parses");
        assert_eq!(again.to_string(), c.to_string());
    }
});
