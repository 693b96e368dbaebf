//! Fuzzes the reading of a log bus's messages: the input split at NUL bytes into messages
//! (numbered with gaps, as a stream's partition is), each a record of any format or a Fluent Bit
//! batch. Every event and every skipped record is cited by one of the messages' numbers, nothing
//! panics, and the summary counts every event handed on.
#![no_main]

use imdsguard_event::Position;
use imdsguard_parse::messages::{read_messages, Message};
use imdsguard_parse::{ReadOptions, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let messages: Vec<Message<'_>> = data
        .split(|&b| b == 0)
        .enumerate()
        .map(|(i, payload)| Message { seq: 10 + i as u64 * 2 - (i as u64 % 3 == 0) as u64, payload })
        .collect();
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    let known = |p: Position| match p {
        Position::Line(n) | Position::Element { line: n, .. } => seqs.contains(&n),
        Position::Record { .. } => false,
    };
    let mut summary = Summary::default();
    let mut decoded = 0u64;
    let opts = ReadOptions { max_line: 4096, ..ReadOptions::default() };
    read_messages("nats:FUZZ", &messages, &opts, &mut summary, &mut |e| {
        decoded += 1;
        assert!(known(e.source.position), "{} is no message", e.source);
    });
    assert_eq!(decoded, summary.total_events());
    for s in &summary.first_skips {
        assert!(known(s.source.position), "skip at {} is no message", s.source);
    }
});
