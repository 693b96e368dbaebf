//! The parallel JSON-lines reader gives exactly what the serial one gives: the same events with
//! the same sources, in the same order, and the same summary, whatever the thread count, across
//! many batches, with blank lines, CRLF line ends, broken records and lines over the limit (one
//! longer than a batch).

use std::path::PathBuf;

use imdsguard_event::Event;
use imdsguard_parse::{read_inputs, read_inputs_parallel, ReadOptions, Summary};

fn corpus() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imdsguard-parallel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mixed.jsonl");
    let mut text = String::new();
    let long = format!(
        "{{\"EventID\":3,\"Channel\":\"x\",\"Pad\":\"{}\"}}",
        "y".repeat(3000)
    );
    for i in 0..40_000u32 {
        if i == 20_000 {
            // Longer than a whole batch: passed over without being held.
            text.push_str(&"z".repeat(3_000_000));
        }
        match i % 997 {
            5 => text.push('\n'),
            7 => text.push_str("{\"EventID\":\n"),
            11 => text.push_str(&long),
            13 => text.push_str("[1,2]"),
            _ => text.push_str(&format!(
                "{{\"EventID\":3,\"Channel\":\"Microsoft-Windows-Sysmon/Operational\",\"Hostname\":\"h{i}\",\"Image\":\"C:\\\\x\\\\p{i}.exe\",\"DestinationIp\":\"169.254.169.254\",\"DestinationPort\":80,\"SourceIp\":\"10.0.0.{}\"}}",
                i % 250
            )),
        }
        text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn key(e: &Event) -> String {
    serde_json::to_string(e).unwrap()
}

#[test]
fn parallel_reading_equals_serial_reading() {
    let path = corpus();
    let opts = ReadOptions {
        max_line: 2048,
        keep_skips: 1000,
        ..ReadOptions::default()
    };
    let mut serial = Vec::new();
    let mut s1 = Summary::default();
    read_inputs(std::slice::from_ref(&path), &opts, &mut s1, &mut |e| {
        serial.push(key(&e))
    });
    assert!(serial.len() > 39_000, "{}", serial.len());
    assert!(s1.total_skipped() >= 3 * 40, "{:?}", s1.skipped);
    for threads in [2, 3, 8] {
        let mut par = Vec::new();
        let mut s2 = Summary::default();
        read_inputs_parallel(
            std::slice::from_ref(&path),
            &opts,
            threads,
            &mut s2,
            &|e| key(&e),
            &mut |k| par.push(k),
        );
        assert_eq!(par.len(), serial.len(), "threads {threads}");
        assert!(
            par == serial,
            "threads {threads}: events differ or are out of order"
        );
        assert_eq!(s2.events, s1.events);
        assert_eq!(s2.skipped, s1.skipped);
        for (a, b) in s2.first_skips.iter().zip(&s1.first_skips) {
            assert_eq!(a, b, "threads {threads}");
        }
        assert_eq!(s2.first_skips.len(), s1.first_skips.len());
    }
}

/// Records keep their own fields for Sigma rules: EventData under the names rules interned, the
/// provider as `Provider_Name`, unnamed `Data` items each, Defender's spaced names without spaces.
#[test]
fn kept_fields_carry_provider_unnamed_data_and_spaced_names() {
    use imdsguard_event::Sym;
    use imdsguard_parse::read_reader;
    let (prov, data, threat, image) = (
        Sym::intern("Provider_Name"),
        Sym::intern("Data"),
        Sym::intern("ThreatName"),
        Sym::intern("Image"),
    );
    let text = concat!(
        r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Service Control Manager"}},"EventID":7023,"Channel":"System","Computer":"h"},"EventData":{"Data":{"#text":["Windows Update","%%1053"]}}}}"##,
        "\n",
        r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Windows Defender"}},"EventID":1116,"Channel":"Microsoft-Windows-Windows Defender/Operational","Computer":"h"},"EventData":{"Threat Name":"Virus:DOS/EICAR_Test_File","Image":"C:\\x.exe"}}}"##,
        "\n"
    );
    let opts = ReadOptions {
        fields: std::sync::Arc::new(imdsguard_event::FieldSet::of([prov, data, threat, image])),
        ..ReadOptions::default()
    };
    let mut events = Vec::new();
    read_reader(
        "k.jsonl",
        &mut text.as_bytes(),
        &opts,
        &mut Summary::default(),
        &mut |e| events.push(e),
    );
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].field(prov), Some("Service Control Manager"));
    let datas: Vec<&str> = events[0]
        .fields
        .iter()
        .filter(|(s, _)| *s == data)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(datas, ["Windows Update", "%%1053"]);
    assert_eq!(events[1].field(threat), Some("Virus:DOS/EICAR_Test_File"));
    assert_eq!(events[1].field(image), Some("C:\\x.exe"));
    // A name another rule set reads (numbered in this process) is not kept: only the set given.
    let channel = Sym::intern("Channel");
    assert!(events.iter().all(|e| e.field(channel).is_none()));
    assert!(events
        .iter()
        .flat_map(|e| &e.fields)
        .all(|(s, _)| [prov, data, threat, image].contains(s)));
    // Without a field set nothing is kept.
    let mut plain = Vec::new();
    read_reader(
        "k.jsonl",
        &mut text.as_bytes(),
        &ReadOptions::default(),
        &mut Summary::default(),
        &mut |e| plain.push(e),
    );
    assert!(plain.iter().all(|e| e.fields.is_empty()));
}
