//! Fuzzes Zeek's TSV reader (the header's separators and field names, then records in their
//! order): any bytes either decode into HTTP requests with a readable time, or are counted as
//! skipped with a line inside the input, or name the file; nothing panics.
#![no_main]

use imdsguard_event::{parse_time_ms, EventKind, Format, Position};
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every input is a Zeek TSV log: its header line first.
    let mut input = b"#separator \\x09\n".to_vec();
    input.extend_from_slice(data);
    let lines = input.iter().filter(|&&c| c == b'\n').count() as u64 + 1;
    let mut summary = Summary::default();
    let mut decoded = 0u64;
    let opts = ReadOptions {
        max_line: 4096,
        format: Some(Format::ZeekHttp),
        ..ReadOptions::default()
    };
    read_reader("fuzz", &mut std::io::Cursor::new(&input), &opts, &mut summary, &mut |e| {
        decoded += 1;
        assert_eq!(e.kind, EventKind::HttpRequest);
        assert!(e.time.as_deref().and_then(parse_time_ms).is_some(), "{:?}", e.time);
        if let Position::Line(n) = e.source.position {
            assert!(n >= 2 && n <= lines, "line {n} outside the records");
        }
    });
    assert_eq!(decoded, summary.total_events());
});
