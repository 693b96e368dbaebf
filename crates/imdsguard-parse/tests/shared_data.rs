//! The decoders over the real public logs in `../shared/data` (see its SOURCES.md): counts pinned,
//! and the decoded events of the smaller files snapshotted (insta) so any change is reviewed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use imdsguard_event::{Event, EventKind, Format};
use imdsguard_parse::{read_inputs, ReadOptions, Summary};

/// The file or directory under the public logs, or the test returns (skipped off CI).
macro_rules! shared {
    ($rel:expr $(,)?) => {
        imdsguard_testdata::shared_data!($rel)
    };
}

fn read(paths: &[PathBuf]) -> (Vec<Event>, Summary) {
    let mut events = Vec::new();
    let mut summary = Summary::default();
    read_inputs(paths, &ReadOptions::default(), &mut summary, &mut |e| {
        events.push(e)
    });
    (events, summary)
}

/// How many events of a kind carry this native id (`5156`, `AUOMS_EXECVE`, ...).
fn count(events: &[Event], kind: EventKind, id: &str) -> usize {
    events
        .iter()
        .filter(|e| e.kind == kind && e.native_id.as_deref() == Some(id))
        .count()
}

/// Paths relative to `shared/data`, so snapshots do not depend on where the checkout lives.
fn relative(mut events: Vec<Event>) -> Vec<Event> {
    for e in &mut events {
        if let Some(i) = e.source.path.find("shared/data/") {
            e.source.path = e.source.path[i + "shared/data/".len()..].to_owned();
        }
    }
    events
}

#[test]
fn otrf_imds_connections_all_decode_as_connections_to_the_endpoint() {
    let (events, summary) = read(&[shared!("evtx/otrf_json/otrf_windows_imds_events.jsonl")]);
    assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
    assert_eq!(events.len(), 1077);
    let by_format: BTreeMap<Format, usize> = events.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.format).or_default() += 1;
        m
    });
    assert_eq!(by_format.get(&Format::NxlogJson), Some(&1073));
    assert_eq!(by_format.get(&Format::SentinelSecurityEvent), Some(&2));
    assert_eq!(by_format.get(&Format::SentinelWindowsEvent), Some(&2));
    for e in &events {
        assert_eq!(e.kind, EventKind::NetworkConnect, "{}", e.source);
        let net = e.network.as_ref().expect("network detail");
        assert_eq!(
            net.dst_ip.as_deref(),
            Some("169.254.169.254"),
            "{}",
            e.source
        );
        assert!(e.process.name().is_some(), "{}: no process image", e.source);
        assert!(e.host.is_some(), "{}: no host", e.source);
    }
    let powershell: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.process
                .name()
                .is_some_and(|n| n.eq_ignore_ascii_case("powershell.exe"))
        })
        .collect();
    assert_eq!(
        powershell.len(),
        4,
        "the one PowerShell client, seen by Sysmon and Security in two carriers"
    );
}

#[test]
fn sentinel_rows_snapshot() {
    let (events, _) = read(&[shared!("evtx/otrf_json/otrf_windows_imds_events.jsonl")]);
    let sentinel: Vec<Event> = events
        .into_iter()
        .filter(|e| {
            matches!(
                e.format,
                Format::SentinelSecurityEvent | Format::SentinelWindowsEvent
            )
        })
        .collect();
    insta::assert_json_snapshot!("otrf_imds_sentinel_rows", relative(sentinel));
}

#[test]
fn defender_exports_snapshot() {
    let (events, summary) = read(&[shared!("defender")]);
    assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
    assert!(events
        .iter()
        .any(|e| e.kind == EventKind::ProcessStart && e.format == Format::DefenderStreaming));
    insta::assert_json_snapshot!("defender_events", relative(events));
}

#[test]
fn sigma_regression_events_decode_without_a_skip() {
    let (events, summary) = read(&[shared!("sigma/regression_data")]);
    assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
    assert!(events.len() >= 142, "{} events", events.len());
    assert!(events.iter().all(|e| e.format == Format::EvtxJson));
    // The regression folders also hold the rules' info.yml and the .evtx originals: named once each.
    assert!(summary
        .unrecognized_files
        .iter()
        .any(|f| f.contains("info.yml: not a supported log format")));

    let process_starts = events
        .iter()
        .filter(|e| e.kind == EventKind::ProcessStart)
        .count();
    assert!(process_starts > 20, "{process_starts} process starts");
    assert!(events
        .iter()
        .filter(|e| e.kind == EventKind::ProcessStart)
        .all(|e| e.process.image.is_some()));
}

#[test]
fn auditd_logs_group_records_and_decode_the_gce_agent_connection() {
    let (events, summary) = read(&[
        shared!("linux/go-libaudit_normal_gce_google_accounts.log"),
        shared!("linux/go-libaudit_audit-rhel7.log"),
        shared!("linux/laurel_record-connect.txt"),
        shared!("linux/laurel_record-execve.txt"),
        shared!("linux/laurel_record-execve-long.txt"),
        shared!("linux/laurel_record-perl-reverse-shell.txt"),
    ]);
    // One line in the RHEL 7 sample has no timestamp at all (`type=UNKNOWN[1329] msg=?`).
    assert_eq!(summary.total_skipped(), 1, "{:?}", summary.first_skips);
    assert!(summary.first_skips[0]
        .to_string()
        .contains("go-libaudit_audit-rhel7.log:31: malformed record"));
    assert!(events.iter().all(|e| e.format == Format::Auditd));
    let gce = events
        .iter()
        .find(|e| e.network.as_ref().and_then(|n| n.dst_ip.as_deref()) == Some("169.254.169.254"))
        .expect("the GCE accounts daemon's connect() to the metadata server");
    assert_eq!(
        gce.source.to_string().rsplit('/').next(),
        Some("go-libaudit_normal_gce_google_accounts.log:1")
    );
    assert_eq!(
        gce.process.image.as_deref(),
        Some("/usr/bin/python2.7;58d1ccfb (deleted)")
    );
    assert_eq!(gce.process.pid, Some(1172));
    assert_eq!(gce.network.as_ref().and_then(|n| n.dst_port), Some(80));
    let long = events
        .iter()
        .find(|e| e.source.path.ends_with("laurel_record-execve-long.txt"))
        .expect("long execve");
    // `a1_len=16384` counts hex digits: an 8,192-byte argument, split over three EXECVE records.
    assert_eq!(
        long.process.command_line.as_deref().map(str::len),
        Some("/bin/echo ".len() + 8192),
        "long arguments are joined from their pieces"
    );
    insta::assert_json_snapshot!("auditd_events", relative(events));
}

#[test]
fn evtx_files_yield_every_readable_record_and_name_the_rest() {
    // (file, events decoded, records skipped): the omerbenamram samples are the evtx crate's own
    // edge cases (a zero-size record, a bad chunk header, no CRC32, dirty trailing chunks).
    let table: &[(&str, u64, u64)] = &[
        ("deepbluecli_powersploit-security.evtx", 27, 0),
        (
            "evtx2mitre_ID4688-Encoded_PowerShell_MSF_payload.evtx",
            59,
            0,
        ),
        (
            "evtx2mitre_ID800-4103-4104-LSASS_dump_lsassy_PowerShell.evtx",
            56,
            0,
        ),
        ("evtxattack_DE_RDP_Tunnel_5156.evtx", 101, 0),
        ("evtxattack_DE_sysmon-3-rdp-tun.evtx", 73, 0),
        ("evtxattack_PanacheSysmon_vs_AtomicRedTeam01.evtx", 565, 0),
        ("evtxattack_Sysmon_UACME_64.evtx", 530, 0),
        ("omerbenamram_Application_no_crc32.evtx", 17, 0),
        ("omerbenamram_Security_short_selected.evtx", 7, 0),
        ("omerbenamram_sample-with-zero-data-size-event.evtx", 449, 1),
        // Two chunks unreadable: one between chunks numbered 46741 and 47628 (886 records), one
        // where the full log wrapped around (its count unknown: one); and one bad record.
        ("omerbenamram_sample_with_a_bad_chunk_magic.evtx", 301, 888),
        ("omerbenamram_security.evtx", 2261, 0),
        ("omerbenamram_sysmon.evtx", 358, 8),
    ];
    let mut failures = Vec::new();
    for (file, want_events, want_skipped) in table {
        let (events, summary) = read(&[shared!(&format!("evtx/{file}"))]);
        let got = (events.len() as u64, summary.total_skipped());
        if got != (*want_events, *want_skipped) {
            failures.push(format!(
                "{file}: want {want_events} events, {want_skipped} skipped; got {} and {}: {:?}",
                got.0, got.1, summary.first_skips
            ));
        }
        assert!(
            events.iter().all(
                |e| matches!(e.source.position, imdsguard_event::Position::Record { id: n, .. } if n > 0)
            ),
            "{file}: records are named by number"
        );
        assert!(
            summary.input_errors.is_empty(),
            "{file}: {:?}",
            summary.input_errors
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let (events, _) = read(&[shared!("evtx/evtxattack_DE_RDP_Tunnel_5156.evtx")]);
    assert_eq!(
        count(&events, EventKind::NetworkConnect, "5156"),
        63,
        "every 5156 of the RDP tunnel sample is a typed connection"
    );
    assert_eq!(
        count(&events, EventKind::ProcessStart, "4688"),
        17,
        "and every 4688 a process start"
    );
    let (events, summary) = read(&[shared!(
        "evtx/omerbenamram_sample-with-zero-data-size-event.evtx",
    )]);
    assert!(
        summary.first_skips[0]
            .to_string()
            .contains("record 3: malformed record: the record at byte 2080 of chunk 1 (at byte 4096) cannot be read (Invalid EVTX record data size"),
        "{:?}",
        summary.first_skips
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e.source.position, imdsguard_event::Position::Record { id: n, .. } if n > 3)),
        "records after the zero-size one are read"
    );
}

#[test]
fn sentinel_syslog_rows_from_linux_decode() {
    let (events, summary) = read(&[
        shared!("linux/otrf_syslog_sysmon_linux_log4shell_jndi_reference.json"),
        shared!("linux/otrf_syslog_auoms_auditd_log4shell_jndi_reference.json"),
    ]);
    assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
    assert_eq!(events.len(), 143);
    assert!(events.iter().all(|e| e.format == Format::SentinelSyslog));
    assert_eq!(
        count(&events, EventKind::ProcessStart, "1"),
        31,
        "Sysmon for Linux process creations"
    );
    assert_eq!(
        count(&events, EventKind::NetworkConnect, "3"),
        6,
        "Sysmon for Linux connections"
    );
    assert_eq!(
        count(&events, EventKind::ProcessStart, "AUOMS_EXECVE"),
        27,
        "auoms executions that succeeded"
    );
    let shell = events
        .iter()
        .find(|e| {
            e.process
                .command_line
                .as_deref()
                .is_some_and(|c| c.contains("{base64,-d}"))
        })
        .expect("the log4shell payload's shell");
    assert_eq!(
        shell.parent.image.as_deref(),
        Some("/usr/lib/jvm/java-8-openjdk-amd64/jre/bin/java")
    );
    assert_eq!(shell.process.user.as_deref(), Some("tomcat"));
}

/// An EVTX file cut short (a copy stopped one byte, or 20,000 bytes, before its end) gives the
/// records whole before the cut, and says what was lost. Before, the cut chunk was dropped
/// silently: 0 events, 0 skipped.
#[test]
fn a_truncated_evtx_file_gives_what_precedes_the_cut_and_says_so() {
    let full = shared!("evtx/evtxattack_DE_RDP_Tunnel_5156.evtx");
    let bytes = std::fs::read(&full).unwrap();
    let (whole, _) = read(std::slice::from_ref(&full));
    assert_eq!(whole.len(), 101);
    let dir = std::env::temp_dir().join(format!("imdsguard-evtx-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (cut, want) in [(1usize, 101usize), (20_000, 72)] {
        let path = dir.join(format!("cut{cut}.evtx"));
        std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
        let (events, summary) = read(&[path]);
        assert_eq!(events.len(), want, "cut {cut}: {:?}", summary.input_errors);
        // The records kept are the first ones, in order, as in the whole file.
        for (a, b) in events.iter().zip(&whole) {
            assert_eq!(a.record_id, b.record_id);
        }
        assert!(
            summary.input_errors.iter().any(|e| e.contains(&format!(
                "the file ends {} bytes into chunk 1 of the 1 its header counts: {want} records read",
                65_536 - cut
            ))),
            "{:?}",
            summary.input_errors
        );
    }
}

/// An EVTX file whose header was overwritten (its first bytes zeroed) still holds its chunks:
/// every record is read from them, and a chunk damaged too costs only its own records, counted.
/// Before, such a file was "in no supported format": 0 events.
#[test]
fn an_evtx_file_with_a_damaged_header_gives_the_records_of_its_chunks() {
    let full = shared!("evtx/omerbenamram_security.evtx");
    let bytes = std::fs::read(&full).unwrap();
    let (whole, _) = read(std::slice::from_ref(&full));
    assert!(whole.len() > 1000, "{}", whole.len());
    let dir = std::env::temp_dir().join(format!("imdsguard-evtx-head-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let mut damaged = bytes.clone();
    damaged[..8].copy_from_slice(&[0; 8]);
    let path = dir.join("header.evtx");
    std::fs::write(&path, &damaged).unwrap();
    let (events, summary) = read(std::slice::from_ref(&path));
    let ids =
        |e: &[imdsguard_event::Event]| e.iter().map(|e| e.record_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&events), ids(&whole));
    // The chunks written (the header counts them; the file has room for more).
    let chunks = u16::from_le_bytes([bytes[0x2a], bytes[0x2b]]) as usize;
    assert!(
        summary.input_errors.iter().any(|e| e.contains(&format!(
            "the file header is damaged (the file does not begin with `ElfFile`): {} records read from {chunks} chunks",
            whole.len()
        ))),
        "{:?}",
        summary.input_errors
    );
    assert_eq!(summary.total_skipped(), 0);

    // The third chunk's header overwritten as well: its records are lost, and said to be.
    let third = 4096 + 2 * 65_536;
    damaged[third..third + 8].copy_from_slice(&[0; 8]);
    std::fs::write(&path, &damaged).unwrap();
    let (events, summary) = read(std::slice::from_ref(&path));
    let lost: Vec<_> = whole
        .iter()
        .filter(|e| !events.iter().any(|k| k.record_id == e.record_id))
        .collect();
    assert!(!lost.is_empty());
    assert_eq!(events.len() + lost.len(), whole.len());
    // Every lost record is counted, and named by its numbers.
    assert_eq!(summary.total_skipped(), lost.len() as u64);
    let range = format!(
        "its records are lost: {} by the numbers of the chunks around it, {} to {}",
        lost.len(),
        lost[0].record_id.as_deref().unwrap_or("?"),
        lost[lost.len() - 1].record_id.as_deref().unwrap_or("?")
    );
    assert!(
        summary.first_skips.iter().any(|s| s.detail
            == format!("chunk 3 (at byte 135168) has no readable chunk header: {range}")),
        "{:?}",
        summary.first_skips
    );
    assert!(
        summary.input_errors.iter().any(|e| e.contains(&format!(
            "{} chunks by their own headers, 1 chunks unreadable",
            chunks - 1
        ))),
        "{:?}",
        summary.input_errors
    );
}

/// A chunk damaged inside a whole file: its records are skipped, each counted, and the skip
/// names the chunk, where it is, and the records it held; the other chunks' records are read.
#[test]
fn an_unreadable_chunk_is_named_and_its_records_counted() {
    let full = shared!("evtx/omerbenamram_security.evtx");
    let mut bytes = std::fs::read(&full).unwrap();
    let (whole, _) = read(std::slice::from_ref(&full));
    let dir = std::env::temp_dir().join(format!("imdsguard-evtx-chunk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let third = 4096 + 2 * 65_536;
    bytes[third..third + 8].copy_from_slice(b"XXXXXXXX");
    let path = dir.join("chunk.evtx");
    std::fs::write(&path, &bytes).unwrap();
    let (events, summary) = read(std::slice::from_ref(&path));
    let lost: Vec<_> = whole
        .iter()
        .filter(|e| !events.iter().any(|k| k.record_id == e.record_id))
        .collect();
    assert!(lost.len() > 10, "{}", lost.len());
    assert_eq!(events.len() + lost.len(), whole.len());
    assert_eq!(summary.total_skipped(), lost.len() as u64);
    let want = format!(
        "chunk 3 (at byte 135168) cannot be read (Failed to parse chunk header): its records are lost: {} by the numbers of the chunks around it, {} to {}",
        lost.len(),
        lost[0].record_id.as_deref().unwrap_or("?"),
        lost[lost.len() - 1].record_id.as_deref().unwrap_or("?")
    );
    assert!(
        summary.first_skips.iter().any(|s| s.detail == want),
        "{want}\n{:?}",
        summary.first_skips
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Web and network logs as public projects ship them: Elastic's nginx module test file (address
/// lists before the client, a quoted X-Forwarded-For list, an empty request) and OTRF's APT29
/// Zeek `http.log` (JSON with `id_orig_h`-style names): every line an HTTP request, none skipped.
#[test]
fn public_web_and_zeek_logs_decode_every_line() {
    let nginx = shared!("net/elastic-beats_nginx_access_test.log");
    let (events, summary) = read(std::slice::from_ref(&nginx));
    assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
    let lines = std::fs::read_to_string(&nginx).unwrap().lines().count();
    assert_eq!(events.len(), lines);
    let clients: Vec<&str> = events
        .iter()
        .map(|e| e.network.as_ref().unwrap().src_ip.as_deref().unwrap())
        .collect();
    assert_eq!(
        clients,
        [
            "127.0.0.1",
            "172.17.0.1",
            "85.181.35.98",
            "85.181.35.98",
            "10.2.1.185",
            "10.2.2.121",
            "127.0.0.1"
        ]
    );
    assert!(events.iter().all(|e| e.format == Format::WebAccess));

    let zeek = shared!("net/otrf_apt29_day1_SCRANTON_zeek_json_http.log");
    let (events, summary) = read(std::slice::from_ref(&zeek));
    assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
    let lines = std::fs::read_to_string(&zeek).unwrap().lines().count();
    assert_eq!(events.len(), lines);
    for e in &events {
        assert_eq!(e.format, Format::ZeekHttp);
        assert!(e.network.as_ref().unwrap().src_ip.is_some(), "{}", e.source);
        assert!(e.record_id.is_some(), "{}", e.source);
    }
}

/// The proxy, load balancer, WAF, flow-log and Zeek conn/dns files: every line read as its
/// format, sniffed from its first line; flow records with no traffic and Zeek logs of other
/// paths named with why.
#[test]
fn public_proxy_balancer_flow_and_zeek_network_logs_decode() {
    let data_lines = |p: &PathBuf| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count()
    };
    for (file, format, kind) in [
        (
            "net/elastic-beats_squid_access1_first22.log",
            Format::Squid,
            EventKind::HttpRequest,
        ),
        (
            "net/elastic-beats_aws_example-alb-http.log",
            Format::AwsAlb,
            EventKind::HttpRequest,
        ),
        (
            "net/elastic-integrations_aws_waf_test-waf.log",
            Format::AwsWaf,
            EventKind::HttpRequest,
        ),
        (
            "net/otrf_apt29_day1_SCRANTON_zeek_json_conn.log",
            Format::ZeekConn,
            EventKind::NetworkConnect,
        ),
        (
            "net/otrf_lsass01_zeek_tsv_conn.log",
            Format::ZeekConn,
            EventKind::NetworkConnect,
        ),
        (
            "net/elastic-integrations_aws_vpcflow_v5-all-fields.log",
            Format::AwsVpcFlow,
            EventKind::NetworkConnect,
        ),
    ] {
        let path = shared!(file);
        let (events, summary) = read(std::slice::from_ref(&path));
        assert_eq!(
            summary.total_skipped(),
            0,
            "{file}: {:?}",
            summary.first_skips
        );
        assert_eq!(events.len(), data_lines(&path), "{file}");
        for e in &events {
            assert_eq!((e.format, e.kind), (format, kind), "{}", e.source);
            let n = e.network.as_ref().unwrap();
            assert!(n.src_ip.is_some(), "{}", e.source);
            assert!(e.time.is_some(), "{}", e.source);
        }
    }

    // Squid: the clients and the servers reached directly.
    let squid = shared!("net/elastic-beats_squid_access1_first22.log");
    let (events, _) = read(std::slice::from_ref(&squid));
    let connects = events
        .iter()
        .filter(|e| e.native_id.as_deref() == Some("CONNECT"))
        .count();
    let text = std::fs::read_to_string(&squid).unwrap();
    assert_eq!(connects, text.matches(" CONNECT ").count());
    assert!(connects > 0);
    assert!(events
        .iter()
        .all(|e| e.http.as_ref().unwrap().vantage == imdsguard_event::Vantage::Outbound));
    assert_eq!(
        events[0].network.as_ref().unwrap().dst_host.as_deref(),
        Some("login.yahoo.com")
    );

    // The load balancer: a request it could not read keeps its status, not a made-up URL.
    let alb = shared!("net/elastic-beats_aws_example-alb-http.log");
    let (events, _) = read(std::slice::from_ref(&alb));
    let unread: Vec<_> = events
        .iter()
        .filter(|e| e.http.as_ref().unwrap().method.is_none())
        .collect();
    assert_eq!(unread.len(), 2);
    assert!(unread
        .iter()
        .all(|e| e.network.as_ref().unwrap().url.is_none()
            && e.http.as_ref().unwrap().status == Some(400)));

    // Flow logs: NODATA and SKIPDATA windows are named, not read as flows.
    let flow = shared!("net/elastic-integrations_aws_vpcflow_v2-extra-samples.log");
    let (events, summary) = read(std::slice::from_ref(&flow));
    assert_eq!(
        events.len() as u64 + summary.total_skipped(),
        data_lines(&flow) as u64
    );
    assert_eq!(summary.total_skipped(), 2);
    assert!(summary.first_skips[0].detail.contains("NODATA"));
    assert!(summary.first_skips[1].detail.contains("SKIPDATA"));

    // Zeek dns: every record read, the ones naming a query as lookups.
    let dns = shared!("net/otrf_lsass01_zeek_tsv_dns.log");
    let (events, summary) = read(std::slice::from_ref(&dns));
    assert_eq!(summary.total_skipped(), 0, "{:?}", summary.first_skips);
    assert_eq!(events.len(), data_lines(&dns));
    let lookups: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::DnsQuery)
        .collect();
    assert!(!lookups.is_empty());
    assert!(lookups
        .iter()
        .all(|e| e.dns_query.is_some() && e.format == Format::ZeekDns));

    // Zeek logs of other paths: the TSV named once with its count, JSON records skipped as such.
    let ssh_tsv = shared!("net/brimdata_wrccdc2018_zeek_tsv_ssh.log.gz");
    let ssh_json = shared!("net/brimdata_wrccdc2018_zeek_json_ssh.json.gz");
    let (events, summary) = read(&[ssh_tsv, ssh_json]);
    assert!(events.is_empty());
    assert_eq!(
        summary.unrecognized_files.len(),
        1,
        "{:?}",
        summary.unrecognized_files
    );
    assert!(summary.unrecognized_files[0].contains("a Zeek ssh log (22 records)"));
    assert!(summary.total_skipped() > 0);
    assert!(summary
        .first_skips
        .iter()
        .all(|s| s.detail.starts_with("a Zeek record of a log not read")));
}
