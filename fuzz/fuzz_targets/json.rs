//! Fuzzes the JSON reader the line decoders use against `serde_json`: any text is either refused
//! by both or read by both into the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = imdsguard_parse::json_agrees_with_serde(text) {
            panic!("{text:?}: {e}");
        }
    }
});
