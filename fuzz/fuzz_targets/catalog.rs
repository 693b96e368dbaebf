//! Fuzzes the catalog loader: any text either loads or returns an error naming a line within it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = imdsguard_target::Catalog::from_toml(text, "fuzz.toml") {
        if let Some(line) = e.line {
            assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line} outside the input");
        }
    }
});
