//! Fuzzes the cloud audit readers: the first byte puts the rest inside a CloudTrail `Records`
//! file, a CloudTrail record's request parameters (where metadata settings are read), an Azure
//! Activity record's token claims, an Entra ID sign-in's properties, or a Google Cloud audit
//! payload. Nothing panics, and every
//! decoded record and skip is cited inside the input.
#![no_main]

use imdsguard_event::Position;
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (head, tail): (&[u8], &[u8]) = match pick % 5 {
        0 => (b"{\"Records\":[", b"]}"),
        1 => (
            b"{\"eventVersion\":\"1.08\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"RunInstances\",\"eventTime\":\"2026-01-01T00:00:00Z\",\"userIdentity\":{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/r/i-0123456789abcdef0\"},\"requestParameters\":",
            b"}",
        ),
        2 => (
            b"{\"time\":\"2026-01-01T00:00:00Z\",\"operationName\":\"X/Y\",\"callerIpAddress\":\"1.2.3.4\",\"identity\":{\"claims\":",
            b"}}",
        ),
        3 => (
            b"{\"time\":\"2026-01-01T00:00:00Z\",\"category\":\"ManagedIdentitySignInLogs\",\"properties\":",
            b"}",
        ),
        _ => (
            b"{\"timestamp\":\"2026-01-01T00:00:00Z\",\"protoPayload\":{\"@type\":\"type.googleapis.com/google.cloud.audit.AuditLog\",\"methodName\":\"m\",\"requestMetadata\":",
            b"}}",
        ),
    };
    let mut doc = head.to_vec();
    doc.extend_from_slice(rest);
    doc.extend_from_slice(tail);
    let lines = doc.iter().filter(|&&c| c == b'\n').count() as u64 + 1;
    let mut summary = Summary::default();
    let mut decoded = 0u64;
    let opts = ReadOptions { max_line: 1 << 16, ..ReadOptions::default() };
    let inside = |p: Position| match p {
        Position::Line(n) | Position::Element { line: n, .. } => n >= 1 && n <= lines,
        Position::Record { .. } => false,
    };
    read_reader("fuzz", &mut std::io::Cursor::new(&doc), &opts, &mut summary, &mut |e| {
        decoded += 1;
        assert!(inside(e.source.position), "{:?} outside the input", e.source.position);
        if let Some(o) = e.cloud.as_ref().and_then(|c| c.metadata_options.as_ref()) {
            let _ = o.weakens();
        }
    });
    assert_eq!(decoded, summary.total_events());
    for s in &summary.first_skips {
        assert!(inside(s.source.position), "skip {:?} outside the input", s.source.position);
    }
});
