//! Fuzzes `--log-format`: the first line of the input is the layout (nginx or Apache syntax),
//! the rest the log read against it. A layout either compiles or is refused with a position
//! inside it; lines either decode into requests with a readable time or are counted as skipped;
//! nothing panics.
#![no_main]

use std::sync::Arc;

use imdsguard_event::{parse_time_ms, Position};
use imdsguard_parse::{read_reader, InputError, LogFormat, ReadOptions, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (layout, log) = text.split_once('\n').unwrap_or((&text, ""));
    let format = match LogFormat::parse(layout) {
        Ok(f) => f,
        Err(InputError::LogFormat { at, .. }) => {
            assert!(at <= layout.chars().count(), "position {at} outside the layout");
            return;
        }
        Err(e) => panic!("unexpected error {e}"),
    };
    let opts = ReadOptions {
        max_line: 4096,
        log_format: Some(Arc::new(format)),
        ..ReadOptions::default()
    };
    let lines = log.bytes().filter(|&c| c == b'\n').count() as u64 + 1;
    let mut summary = Summary::default();
    read_reader("fuzz", &mut log.as_bytes(), &opts, &mut summary, &mut |e| {
        if e.format == imdsguard_event::Format::WebAccess {
            assert!(e.time.as_deref().and_then(parse_time_ms).is_some(), "{:?}", e.time);
        }
        if let Position::Line(n) = e.source.position {
            assert!(n >= 1 && n <= lines, "line {n} outside the input");
        }
    });
});
