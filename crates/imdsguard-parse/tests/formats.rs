//! One record per format and event type, decoded and summarized in one line each: the decoders'
//! field mapping as data. Records are written in the formats' documented shapes.

use imdsguard_event::Event;
use imdsguard_parse::{read_inputs, ReadOptions, Summary};

fn summarize(e: &Event) -> String {
    let net = e.network.as_ref().map(|n| {
        format!(
            " net={}:{}{}{}",
            n.dst_ip.as_deref().unwrap_or("-"),
            n.dst_port.map_or("-".into(), |p| p.to_string()),
            n.url
                .as_deref()
                .map(|u| format!(" url={u}"))
                .unwrap_or_default(),
            n.outbound
                .map(|o| if o { " out" } else { " in" })
                .unwrap_or_default()
        )
    });
    format!(
        "{} {} id={} host={} proc={}|{}|{}|{} parent={}|{}{}{}",
        e.format.as_str(),
        serde_json::to_value(e.kind).unwrap().as_str().unwrap(),
        e.native_id.as_deref().unwrap_or("-"),
        e.host.as_deref().unwrap_or("-"),
        e.process.pid.map_or("-".into(), |p| p.to_string()),
        e.process.image.as_deref().unwrap_or("-"),
        e.process.command_line.as_deref().unwrap_or("-"),
        e.process.user.as_deref().unwrap_or("-"),
        e.parent.pid.map_or("-".into(), |p| p.to_string()),
        e.parent.image.as_deref().unwrap_or("-"),
        net.unwrap_or_default(),
        e.dns_query
            .as_deref()
            .map(|q| format!(" dns={q}"))
            .unwrap_or_default(),
    )
}

#[test]
fn every_format_maps_its_fields() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Hostname":"web01","ProcessId":"4242","Image":"C:\\Users\\a\\AppData\\Local\\Temp\\x.exe","CommandLine":"x.exe http://169.254.169.254/latest/user-data","User":"CORP\\a","ParentProcessId":"100","ParentImage":"C:\\Windows\\explorer.exe"}"#,
            r"nxlog-json process-start id=1 host=web01 proc=4242|C:\Users\a\AppData\Local\Temp\x.exe|x.exe http://169.254.169.254/latest/user-data|CORP\a parent=100|C:\Windows\explorer.exe",
        ),
        (
            r#"{"EventID":22,"SourceName":"Microsoft-Windows-Sysmon","Hostname":"web01","ProcessId":"7","Image":"C:\\py\\python.exe","QueryName":"metadata.google.internal"}"#,
            r"nxlog-json dns-query id=22 host=web01 proc=7|C:\py\python.exe|-|- parent=-|- dns=metadata.google.internal",
        ),
        (
            r##"{"Event":{"System":{"EventID":4688,"Channel":"Security","Computer":"dc1","TimeCreated":{"#attributes":{"SystemTime":"2024-01-01T00:00:00Z"}}},"EventData":{"NewProcessId":"0x1a2b","NewProcessName":"C:\\Windows\\System32\\curl.exe","CommandLine":"curl 2852039166","TargetUserName":"-","SubjectUserName":"svc","SubjectDomainName":"CORP","ProcessId":"0x10","ParentProcessName":"C:\\Windows\\System32\\cmd.exe"}}}"##,
            r"evtx-json process-start id=4688 host=dc1 proc=6699|C:\Windows\System32\curl.exe|curl 2852039166|CORP\svc parent=16|C:\Windows\System32\cmd.exe",
        ),
        (
            r#"{"@timestamp":"2024-01-01T00:00:00Z","host":{"name":"ws1"},"winlog":{"event_id":"3","channel":"Microsoft-Windows-Sysmon/Operational","computer_name":"ws1.corp","event_data":{"ProcessId":"9","Image":"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe","DestinationIp":"169.254.169.254","DestinationPort":"80","Protocol":"tcp","Initiated":"true"}}}"#,
            r"winlogbeat network-connect id=3 host=ws1.corp proc=9|C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe|-|- parent=-|- net=169.254.169.254:80 out",
        ),
        // Winlogbeat 5.x and 6.x (the 2019 Mordor datasets): the same fields at the top level,
        // `log_name` for the channel, `source_name` for the provider, `record_number`.
        (
            r#"{"@timestamp":"2019-05-18T18:34:58.964Z","beat":{"hostname":"WECServer","name":"WECServer","version":"6.5.4"},"computer_name":"HR001.shire.com","event_data":{"ProcessId":"3032","Image":"C:\\Windows\\System32\\curl.exe","CommandLine":"curl http://169.254.169.254/latest/meta-data/iam/security-credentials/","User":"SHIRE\\pgustavo","ParentProcessId":"2364","ParentImage":"C:\\Windows\\System32\\cmd.exe"},"event_id":1,"host":{"name":"WECServer"},"level":"Information","log_name":"Microsoft-Windows-Sysmon/Operational","opcode":"Info","process_id":2208,"record_number":"25012","source_name":"Microsoft-Windows-Sysmon","type":"wineventlog","version":5}"#,
            r"winlogbeat process-start id=1 host=hr001.shire.com proc=3032|C:\Windows\System32\curl.exe|curl http://169.254.169.254/latest/meta-data/iam/security-credentials/|SHIRE\pgustavo parent=2364|C:\Windows\System32\cmd.exe",
        ),
        (
            r#"{"Timestamp":"2024-01-01T00:00:00Z","DeviceName":"vm1","ActionType":"ConnectionSuccess","RemoteIP":"169.254.169.254","RemotePort":80,"RemoteUrl":"169.254.169.254","InitiatingProcessFileName":"curl.exe","InitiatingProcessFolderPath":"c:\\tools","InitiatingProcessCommandLine":"curl.exe http://169.254.169.254/","InitiatingProcessId":77,"InitiatingProcessAccountDomain":"corp","InitiatingProcessAccountName":"bob"}"#,
            r"defender-json network-connect id=ConnectionSuccess host=vm1 proc=77|c:\tools\curl.exe|curl.exe http://169.254.169.254/|corp\bob parent=-|- net=169.254.169.254:80 url=169.254.169.254 out",
        ),
        (
            r#"{"@timestamp":"2024-01-01T00:00:00Z","ecs":{"version":"8.11"},"event":{"category":["process"],"type":["start"]},"host":{"name":"lin1"},"user":{"name":"www-data"},"process":{"pid":5,"executable":"/usr/bin/curl","args":["curl","http://169.254.169.254/latest/meta-data/"],"parent":{"pid":4,"executable":"/usr/sbin/php-fpm8.2"}}}"#,
            "ecs process-start id=- host=lin1 proc=5|/usr/bin/curl|curl http://169.254.169.254/latest/meta-data/|www-data parent=4|/usr/sbin/php-fpm8.2",
        ),
        (
            r#"{"@timestamp":"2024-01-01T00:00:00Z","event":{"category":"network"},"host":{"name":"lin1"},"process":{"pid":5,"executable":"/usr/bin/python3"},"destination":{"ip":"fd00:ec2::254","port":80},"network":{"transport":"tcp","direction":"egress"}}"#,
            "ecs network-connect id=- host=lin1 proc=5|/usr/bin/python3|-|- parent=-|- net=fd00:ec2::254:80 out",
        ),
        (
            r#"{"EventID":4624,"Channel":"Security","Hostname":"dc1","TargetUserName":"bob"}"#,
            "nxlog-json other id=4624 host=dc1 proc=-|-|-|- parent=-|-",
        ),
        // nginx and Apache access logs: a request the server received.
        (
            r#"203.0.113.50 - - [20/Nov/2026:09:12:03 +0000] "GET /api/preview?url=http://169.254.169.254/latest/meta-data/ HTTP/1.1" 200 312 "-" "python-requests/2.31.0""#,
            "web-access http-request id=GET host=- proc=-|-|-|- parent=-|- net=-:- url=/api/preview?url=http://169.254.169.254/latest/meta-data/ in",
        ),
        (
            r#"shop.example:443 203.0.113.50 - - [20/Nov/2026:09:12:03 +0000] "POST /upload HTTP/2.0" 413 0 "-" "-""#,
            "web-access http-request id=POST host=- proc=-|-|-|- parent=-|- net=-:- url=http://shop.example/upload in",
        ),
        // Zeek's http.log as JSON: a request seen on the wire.
        (
            r#"{"ts":1795165921.305988,"uid":"C1","id.orig_h":"10.42.0.17","id.orig_p":51544,"id.resp_h":"169.254.169.254","id.resp_p":80,"trans_depth":1,"method":"GET","host":"169.254.169.254","uri":"/latest/meta-data/","status_code":200}"#,
            "zeek-http http-request id=GET host=- proc=-|-|-|- parent=-|- net=169.254.169.254:80 url=http://169.254.169.254/latest/meta-data/",
        ),
    ];
    let dir = std::env::temp_dir().join(format!("imdsguard-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (i, (record, want)) in cases.iter().enumerate() {
        let file = dir.join(format!("case{i}.json"));
        std::fs::write(&file, record).unwrap();
        let mut events = Vec::new();
        let mut summary = Summary::default();
        read_inputs(&[file], &ReadOptions::default(), &mut summary, &mut |e| {
            events.push(e)
        });
        let got = events
            .first()
            .map(summarize)
            .unwrap_or_else(|| format!("nothing decoded: {:?}", summary.first_skips));
        if got != *want {
            failures.push(format!("case {i}:\n  want {want}\n  got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn gzip_input_is_read_transparently() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("imdsguard-gz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..5000 {
        writeln!(
            gz,
            r#"{{"EventID":3,"Channel":"Microsoft-Windows-Sysmon/Operational","Image":"a{i}.exe","ProcessId":"{i}","DestinationIp":"169.254.169.254","SourcePort":"{}"}}"#,
            40000 + i % 20000
        )
        .unwrap();
    }
    let bytes = gz.finish().unwrap();
    std::fs::write(&file, &bytes).unwrap();
    let mut n = 0;
    let mut summary = Summary::default();
    read_inputs(
        std::slice::from_ref(&file),
        &ReadOptions::default(),
        &mut summary,
        &mut |_| n += 1,
    );
    assert_eq!(n, 5000);
    assert!(
        summary.input_errors.is_empty(),
        "{:?}",
        summary.input_errors
    );
    // Truncated: what was readable is kept and the stop is reported with the line it reached.
    std::fs::write(&file, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut kept = 0;
    let mut summary = Summary::default();
    read_inputs(&[file], &ReadOptions::default(), &mut summary, &mut |_| {
        kept += 1
    });
    assert!(kept > 1000 && kept < 5000, "{kept} lines kept");
    assert_eq!(summary.input_errors.len(), 1, "{:?}", summary.input_errors);
    assert!(
        summary.input_errors[0].contains(&format!(":{}: reading stopped", kept + 1)),
        "{:?}",
        summary.input_errors
    );
}

#[test]
fn defender_csv_exports_decode_row_by_row() {
    let csv = "\u{feff}Timestamp,DeviceName,ActionType,FileName,FolderPath,ProcessId,ProcessCommandLine,AccountDomain,AccountName,InitiatingProcessFileName,InitiatingProcessFolderPath,InitiatingProcessId,InitiatingProcessCommandLine,RemoteIP,RemotePort,RemoteUrl\n\
2024-01-01T00:00:00Z,vm1,ProcessCreated,curl.exe,C:\\Tools\\curl.exe,10,\"curl.exe -H \"\"Metadata: true\"\" http://169.254.169.254/metadata/instance?api-version=2021-02-01\",corp,bob,cmd.exe,C:\\Windows\\System32\\cmd.exe,9,cmd.exe /c run.bat,,,\n\
2024-01-01T00:00:01Z,vm1,ConnectionSuccess,,,,,,,curl.exe,C:\\Tools\\curl.exe,10,curl.exe,169.254.169.254,80,\n\
2024-01-01T00:00:02Z,vm1,ConnectionSuccess,too,few\n";
    let dir = std::env::temp_dir().join(format!("imdsguard-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hunting.csv");
    std::fs::write(&file, csv).unwrap();
    let mut events = Vec::new();
    let mut summary = Summary::default();
    read_inputs(
        std::slice::from_ref(&file),
        &ReadOptions::default(),
        &mut summary,
        &mut |e| events.push(e),
    );
    let got: Vec<String> = events.iter().map(summarize).collect();
    assert_eq!(
        got,
        vec![
            r#"defender-csv process-start id=ProcessCreated host=vm1 proc=10|C:\Tools\curl.exe|curl.exe -H "Metadata: true" http://169.254.169.254/metadata/instance?api-version=2021-02-01|corp\bob parent=9|C:\Windows\System32\cmd.exe"#.to_owned(),
            r"defender-csv network-connect id=ConnectionSuccess host=vm1 proc=10|C:\Tools\curl.exe|curl.exe|- parent=-|- net=169.254.169.254:80 out".to_owned(),
        ]
    );
    let lines: Vec<String> = events.iter().map(|e| e.source.to_string()).collect();
    assert!(
        lines[0].ends_with("hunting.csv:2") && lines[1].ends_with("hunting.csv:3"),
        "{lines:?}"
    );
    assert_eq!(summary.total_skipped(), 1);
    assert!(
        summary.first_skips[0]
            .to_string()
            .ends_with("hunting.csv:4: malformed record: 5 fields where the header has 16"),
        "{:?}",
        summary.first_skips
    );
}

/// One byte that is not UTF-8 in an audit record or an XML export costs that byte (read as
/// U+FFFD, counted and named), not the record, nor the XML document's every event.
#[test]
fn a_byte_that_is_not_utf8_costs_the_byte_in_audit_and_xml_too() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |name: &str, bytes: Vec<u8>| {
        let mut summary = Summary::default();
        let mut events = Vec::new();
        imdsguard_parse::read_reader(
            name,
            &mut std::io::Cursor::new(bytes),
            &ReadOptions::default(),
            &mut summary,
            &mut |e| events.push(e),
        );
        (events, summary)
    };
    for (file, needle) in [
        (
            "samples/logs/linux-audit.log",
            &b"exe=\"/dev/shm/.x/c\""[..],
        ),
        ("samples/logs/sysmon-wevtutil.xml", &b"SSM\\amazon"[..]),
    ] {
        let bytes = std::fs::read(root.join(file)).unwrap();
        let (want, _) = read(file, bytes.clone());
        assert!(!want.is_empty(), "{file}");
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap_or_else(|| panic!("{file}: no {:?}", String::from_utf8_lossy(needle)))
            + needle.len()
            - 1;
        let mut damaged = bytes.clone();
        damaged.insert(at - 1, 0xFF);
        let (got, summary) = read(file, damaged);
        assert_eq!(got.len(), want.len(), "{file}: {:?}", summary.first_skips);
        assert_eq!(summary.lossy, 1, "{file}");
        assert_eq!(summary.total_skipped(), 0, "{file}");
        assert!(
            got.iter().any(|e| format!("{e:?}").contains('\u{FFFD}')),
            "{file}: the mark is kept in a field"
        );
    }
}

/// An access log: each line a request with its client, status, size and headers; a line that
/// is no request is named with its line and the rest are read.
#[test]
fn access_log_lines_decode_with_their_http_part() {
    let text = concat!(
        r#"198.51.100.7 - bob [20/Nov/2026:09:00:04 -0500] "GET /a?b=c HTTP/1.1" 200 5120 "https://shop.example/" "Mozilla/5.0" "10.1.1.1, 203.0.113.9""#,
        "\n",
        "not an access line\n",
        r#"10.0.1.40 - - [20/Nov/2026:09:00:00 +0000] "GET /health HTTP/1.1" 200 - "-" "ELB-HealthChecker/2.0""#,
        "\n",
    );
    let dir = std::env::temp_dir().join(format!("imdsguard-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("access.log");
    std::fs::write(&file, text).unwrap();
    let mut events = Vec::new();
    let mut summary = Summary::default();
    read_inputs(&[file], &ReadOptions::default(), &mut summary, &mut |e| {
        events.push(e)
    });
    assert_eq!(events.len(), 2);
    let e = &events[0];
    assert_eq!(e.time.as_deref(), Some("2026-11-20T14:00:04.000Z"));
    assert_eq!(
        e.network.as_ref().unwrap().src_ip.as_deref(),
        Some("198.51.100.7")
    );
    let h = e.http.as_ref().unwrap();
    assert_eq!(
        (h.method.as_deref(), h.uri.as_deref(), h.status, h.bytes_out),
        (Some("GET"), Some("/a?b=c"), Some(200), Some(5120))
    );
    assert_eq!(h.referer.as_deref(), Some("https://shop.example/"));
    assert_eq!(h.user_agent.as_deref(), Some("Mozilla/5.0"));
    assert_eq!(h.forwarded_for.as_deref(), Some("10.1.1.1, 203.0.113.9"));
    assert_eq!(events[1].http.as_ref().unwrap().bytes_out, None);
    assert_eq!(summary.total_skipped(), 1);
    assert!(
        summary.first_skips[0].to_string().ends_with(
            "access.log:2: malformed record: not an access-log line (common, combined or vhost_combined)"
        ),
        "{}",
        summary.first_skips[0]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Zeek's TSV: the header names the fields and the separators; `-` is unset, sets split on the
/// set separator; a line whose values do not fit the header is named; a log of another path is
/// named once, not read.
#[test]
fn zeek_tsv_http_logs_decode_by_their_header() {
    let text = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n\
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\tuser_agent\tresponse_body_len\tstatus_code\tproxied\n\
#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tcount\tcount\tset[string]\n\
1795165921.305988\tCHhAv\t10.42.0.17\t51544\t169.254.169.254\t80\t1\tGET\t169.254.169.254\t/latest/meta-data/iam/security-credentials/node-role\tpython-requests/2.31.0\t1321\t200\t-\n\
1795165930.000000\tCx\t10.0.1.15\t40100\t10.0.2.8\t3128\t1\tGET\t-\thttp://169.254.169.254/latest/user-data\tWget/1.21\t0\t401\tX-FORWARDED-FOR -> 203.0.113.9,VIA -> 1.1 squid\n\
1795165931.0\tbad\n\
#path\tssh\n\
#fields\tts\tuid\n\
1795165932.0\tC9\n";
    let dir = std::env::temp_dir().join(format!("imdsguard-zeek-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("http.log");
    std::fs::write(&file, text).unwrap();
    let mut events = Vec::new();
    let mut summary = Summary::default();
    read_inputs(&[file], &ReadOptions::default(), &mut summary, &mut |e| {
        events.push(e)
    });
    assert_eq!(events.len(), 2, "{:?}", summary.first_skips);
    let first = &events[0];
    assert_eq!(first.record_id.as_deref(), Some("CHhAv#1"));
    assert_eq!(
        first.network.as_ref().unwrap().url.as_deref(),
        Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/node-role")
    );
    let proxied = events[1].http.as_ref().unwrap();
    assert_eq!(proxied.status, Some(401));
    assert_eq!(proxied.forwarded_for.as_deref(), Some("203.0.113.9"));
    assert_eq!(
        events[1].network.as_ref().unwrap().url.as_deref(),
        Some("http://169.254.169.254/latest/user-data")
    );
    assert!(
        summary.first_skips.iter().any(|s| s
            .to_string()
            .ends_with("http.log:10: malformed record: 2 values for the 14 fields of the header")),
        "{:?}",
        summary.first_skips
    );
    assert!(
        summary.unrecognized_files.iter().any(|u| u.ends_with(
            "http.log: a Zeek ssh log (1 record): the Zeek logs read are http, conn and dns"
        )),
        "{:?}",
        summary.unrecognized_files
    );
    std::fs::remove_dir_all(&dir).ok();
}
