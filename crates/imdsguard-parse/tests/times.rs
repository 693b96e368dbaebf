//! Every event's time is UTC RFC 3339 with milliseconds, taken from the most reliable field of
//! its record: Sysmon's `UtcTime`, then a field that names its zone (`SystemTime`, `@timestamp`,
//! `TimeGenerated`), then a local time without a zone (NXLog's `EventTime`), read in the zone
//! the user gives or else as UTC and counted. The records are OTRF's, as NXLog and its pipeline
//! wrote them.

use imdsguard_event::{Format, LocalZone};
use imdsguard_parse::{read_reader, ReadOptions, Summary};

/// Security 4688 as the OTRF pipeline wrote it: NXLog's local `EventTime` (the lab ran on US
/// Eastern time) and the pipeline's UTC `@timestamp`, a minute later.
const BFETOOL: &str = r#"{"Hostname":"WORKSTATION5.theshire.local","NewProcessName":"C:\\WindowsAzure\\GuestAgent_2.7.41491.993_2020-09-04_054718\\GuestAgent\\BfeToolWin8.exe","ParentProcessName":"C:\\WindowsAzure\\GuestAgent_2.7.41491.993_2020-09-04_054718\\GuestAgent\\WindowsAzureGuestAgent.exe","CommandLine":"\"BfeToolWin8.exe\" /restricthostaccess 168.63.129.16","EventID":4688,"EventReceivedTime":"2020-09-04 03:09:21","EventTime":"2020-09-04 03:08:22","Channel":"security","@timestamp":"2020-09-04T07:09:22.869Z","SourceModuleType":"im_msvistalog"}"#;

/// Sysmon 3 from a later OTRF export: `TimeCreated` and `@timestamp` say `Z` but are four hours
/// behind Sysmon's own `UtcTime`.
const SVCHOST: &str = r#"{"Protocol":"udp","DestinationIp":"168.63.129.16","Initiated":"true","SourcePort":"53080","User":"NT AUTHORITY\\NETWORK SERVICE","SourceName":"Microsoft-Windows-Sysmon","UtcTime":"2020-10-22 05:31:07.989","SourceIp":"192.168.2.5","DestinationPort":"53","ProcessId":"1928","TimeCreated":"2020-10-22T01:31:10.271Z","@timestamp":"2020-10-22T01:31:10.271Z","Image":"C:\\Windows\\System32\\svchost.exe","Hostname":"WORKSTATION5","Channel":"Microsoft-Windows-Sysmon/Operational","EventID":3}"#;

fn read(doc: &str, zone: Option<&str>) -> (Vec<Option<String>>, Summary) {
    let opts = ReadOptions {
        timezone: zone.map(|z| LocalZone::parse(z).unwrap()),
        ..ReadOptions::default()
    };
    let mut times = Vec::new();
    let mut summary = Summary::default();
    read_reader("t", &mut doc.as_bytes(), &opts, &mut summary, &mut |e| {
        times.push(e.time)
    });
    (times, summary)
}

#[test]
fn the_most_reliable_field_gives_the_time_in_one_form() {
    let (times, summary) = read(&format!("{BFETOOL}\n{SVCHOST}\n"), None);
    assert_eq!(
        times,
        [
            Some("2020-09-04T07:09:22.869Z".to_owned()),
            Some("2020-10-22T05:31:07.989Z".to_owned())
        ]
    );
    assert!(summary.local_times.is_empty(), "{:?}", summary.local_times);
}

#[test]
fn a_local_time_alone_is_read_in_the_zone_given_or_counted() {
    let local_only = BFETOOL.replace(r#""@timestamp":"2020-09-04T07:09:22.869Z","#, "");
    let (times, summary) = read(&local_only, Some("America/New_York"));
    assert_eq!(times, [Some("2020-09-04T07:08:22.000Z".to_owned())]);
    assert!(summary.local_times.is_empty());
    let (times, summary) = read(&local_only, None);
    assert_eq!(times, [Some("2020-09-04T03:08:22.000Z".to_owned())]);
    assert_eq!(summary.local_times.get(&Format::NxlogJson), Some(&1));
    // A zone given changes nothing for times that name theirs.
    let (times, _) = read(SVCHOST, Some("+09:00"));
    assert_eq!(times, [Some("2020-10-22T05:31:07.989Z".to_owned())]);
}

#[test]
fn a_time_that_is_not_one_is_dropped_and_counted_with_its_record() {
    let bad = SVCHOST.replace("2020-10-22 05:31:07.989", "sometime on Thursday");
    let (times, summary) = read(&bad, None);
    assert_eq!(times, [None]);
    assert_eq!(summary.unreadable_times.get(&Format::NxlogJson), Some(&1));
    let (source, text) = &summary.first_unreadable_times[0];
    assert_eq!(source.to_string(), "t:1");
    assert_eq!(text, "sometime on Thursday");
}

#[test]
fn evtx_system_times_keep_milliseconds() {
    let xml = "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing'/><EventID>4688</EventID><TimeCreated SystemTime='2026-11-20T09:14:08.1234567Z'/><Channel>Security</Channel><Computer>w</Computer></System><EventData><Data Name='NewProcessName'>C:\\x.exe</Data></EventData></Event>\n";
    let (times, _) = read(xml, None);
    assert_eq!(times, [Some("2026-11-20T09:14:08.123Z".to_owned())]);
}
