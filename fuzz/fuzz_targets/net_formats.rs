//! Fuzzes the proxy, load balancer, WAF, W3C, flow-log, Zeek conn/dns, Azure gateway and Google
//! Cloud request-log readers, the first byte
//! choosing which (every one reached): any bytes either decode into events of that format with
//! a readable time and a line inside the input, or are counted as skipped; nothing panics.
#![no_main]

use imdsguard_event::{parse_time_ms, Format, Position};
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use libfuzzer_sys::fuzz_target;

const FORMATS: &[Format] = &[
    Format::Squid,
    Format::AwsAlb,
    Format::AwsVpcFlow,
    Format::W3c,
    Format::AwsWaf,
    Format::ZeekConn,
    Format::ZeekDns,
    Format::AzureHttp,
    Format::GcpHttp,
    Format::Haproxy,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(pick) % FORMATS.len()];
    let lines = data.iter().filter(|&&c| c == b'\n').count() as u64 + 1;
    let mut summary = Summary::default();
    let mut decoded = 0u64;
    let opts = ReadOptions {
        max_line: 4096,
        format: Some(format),
        ..ReadOptions::default()
    };
    read_reader("fuzz", &mut std::io::Cursor::new(data), &opts, &mut summary, &mut |e| {
        decoded += 1;
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
