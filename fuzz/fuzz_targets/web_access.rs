//! Fuzzes the web access-log reader (nginx and Apache `common`, `combined`, `vhost_combined`):
//! any bytes either decode into HTTP requests with a readable status and time, or are counted as
//! skipped with a line inside the input; nothing panics.
#![no_main]

use imdsguard_event::{parse_time_ms, EventKind, Format, Position};
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&c| c == b'\n').count() as u64 + 1;
    let mut summary = Summary::default();
    let mut decoded = 0u64;
    let opts = ReadOptions {
        max_line: 4096,
        format: Some(Format::WebAccess),
        ..ReadOptions::default()
    };
    read_reader("fuzz", &mut std::io::Cursor::new(data), &opts, &mut summary, &mut |e| {
        decoded += 1;
        assert_eq!(e.kind, EventKind::HttpRequest);
        let status = e.http.as_ref().and_then(|h| h.status).expect("a status");
        assert!((100..=999).contains(&status));
        assert!(e.time.as_deref().and_then(parse_time_ms).is_some(), "{:?}", e.time);
        if let Position::Line(n) = e.source.position {
            assert!(n >= 1 && n <= lines, "line {n} outside the input");
        }
    });
    assert_eq!(decoded, summary.total_events());
    for s in &summary.first_skips {
        if let Position::Line(n) = s.source.position {
            assert!(n >= 1 && n <= lines, "skip at line {n} outside the input");
        }
    }
});
