//! Record times: any text either reads as a time or is refused, never a panic or an overflow;
//! and what reads back from `format_time_ms` is the same instant.
#![no_main]

use imdsguard_event::{format_time_ms, parse_time_ms};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Years 0001 to 9999 (RFC 3339's four digits) round-trip; epoch seconds can name later
    // years, and an offset can step before year 1.
    const YEAR_1: i64 = -62_135_596_800_000;
    const YEAR_10000: i64 = 253_402_300_800_000;
    if let Some(ms) = parse_time_ms(text).filter(|ms| (YEAR_1..YEAR_10000).contains(ms)) {
        assert_eq!(parse_time_ms(&format_time_ms(ms)), Some(ms), "{text:?}");
    }
});
