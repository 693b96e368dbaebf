//! Fuzzes the allowlist loader and the verdict: any text either loads or returns an error naming a
//! line within it; a loaded allowlist gives a verdict on any executable path without panicking.
#![no_main]

use imdsguard_event::{Event, EventKind, Format, Position, Process, SourceRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (toml, image) = text.split_once('\u{0}').unwrap_or((text, "/tmp/amazon-ssm-agent"));
    match imdsguard_enrich::Allowlist::from_toml(toml, "fuzz.toml") {
        Err(e) => {
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= toml.lines().count().max(1) + 1, "line {line} outside the input");
            }
        }
        Ok(a) => {
            let e = Event {
                host: Some(image.into()),
                process: Process { image: Some(image.into()), command_line: Some(image.into()), comm: Some(image.into()), ..Process::default() },
                parent: Process { image: Some(image.into()), ..Process::default() },
                ..Event::empty(SourceRef { path: "f".into(), position: Position::Line(1) }, Format::Ecs, EventKind::NetworkConnect)
            };
            let v = a.verdict(&e);
            let _ = v.explain(&e);
        }
    }
});
