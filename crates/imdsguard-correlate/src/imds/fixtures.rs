//! Every built-in correlation's positive and negative timelines, decoded by the real decoders
//! (NXLog-flattened Sysmon records) and enriched by the real enrich stage: a positive must raise
//! its correlation, a negative must not. Timelines are built by the helpers here so that a
//! minute of 40 requests reads as one line of code, not 40.

use imdsguard_enrich::Enricher;
use imdsguard_event::parse_time_ms;
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use imdsguard_rules::Alert;

use super::*;

/// The settings the timelines are written for: an hour of learning instead of a day.
pub(super) fn config() -> Config {
    Config {
        learn_ms: 3_600_000,
        ..Config::default()
    }
}

/// A Sysmon process start (event 1): `image` runs `cmd`, started by `parent` (pid `ppid`).
pub(super) fn start(
    time: &str,
    pid: u32,
    image: &str,
    cmd: &str,
    ppid: u32,
    parent: &str,
) -> String {
    serde_json::json!({
        "EventTime": time, "Hostname": "web01", "SourceModuleType": "im_msvistalog",
        "EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "ProcessId": pid.to_string(), "Image": image, "CommandLine": cmd,
        "User": "CORP\\svc-web", "ParentProcessId": ppid.to_string(), "ParentImage": parent,
    })
    .to_string()
}

/// A Sysmon network connection (event 3) from `image` to 169.254.169.254:80.
pub(super) fn connect(time: &str, pid: u32, image: &str, user: &str) -> String {
    serde_json::json!({
        "EventTime": time, "Hostname": "web01", "SourceModuleType": "im_msvistalog",
        "EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "ProcessId": pid.to_string(), "Image": image, "User": user, "Protocol": "tcp",
        "Initiated": "true", "SourceIp": "10.0.1.15", "SourcePort": "49811",
        "DestinationIp": "169.254.169.254", "DestinationPort": "80",
    })
    .to_string()
}

/// `curl.exe` run by `cmd.exe` (pid `ppid`) with `args`.
pub(super) fn curl(time: &str, pid: u32, ppid: u32, args: &str) -> String {
    start(
        time,
        pid,
        r"C:\Windows\System32\curl.exe",
        &format!("curl.exe {args}"),
        ppid,
        r"C:\Windows\System32\cmd.exe",
    )
}

pub(super) const SSM: &str = r"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe";
pub(super) const SYSTEM: &str = r"NT AUTHORITY\SYSTEM";

/// `2026-11-20 HH:MM:SS` from seconds after 08:00.
pub(super) fn at(secs: u32) -> String {
    let s = 8 * 3600 + secs;
    format!(
        "2026-11-20 {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The correlation alerts a timeline raises, in order.
pub(super) fn raised(lines: &[String]) -> Result<Vec<Alert>, String> {
    raised_with(lines, Baselines::new()).map(|(a, _)| a)
}

/// The same, starting from a saved baseline; returns the baseline after.
fn raised_with(lines: &[String], baselines: Baselines) -> Result<(Vec<Alert>, Baselines), String> {
    let doc = lines.join("\n");
    let mut events = Vec::new();
    let mut summary = Summary::default();
    read_reader(
        "timeline",
        &mut doc.as_bytes(),
        &ReadOptions::default(),
        &mut summary,
        &mut |e| events.push(e),
    );
    if events.len() != lines.len() || summary.total_skipped() > 0 {
        return Err(format!(
            "timeline does not decode cleanly: {:?}",
            summary.first_skips
        ));
    }
    let enricher = Enricher::builtin();
    let mut imds = Imds::new(config(), baselines);
    let mut out = Vec::new();
    for e in &events {
        let ev = enricher.enrich(e);
        let time = e.time.as_deref().and_then(parse_time_ms).ok_or("no time")?;
        if let Some(t) = Touch::of(&ev, time) {
            out.extend(imds.push(&t, None));
        }
    }
    Ok((out, imds.baselines().clone()))
}

/// A baseline saved after reading a timeline, carried into a second reading of the same
/// timeline (a user hunting the same logs again with the store), changes nothing.
#[test]
fn reading_a_timeline_again_with_its_own_baseline_gives_the_same_alerts() {
    let ids = |a: &[Alert]| a.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    for lines in imds_102_first_seen::positive()
        .into_iter()
        .chain(imds_103_rate::positive())
    {
        let (first, saved) = raised_with(&lines, Baselines::new()).unwrap();
        assert!(!first.is_empty());
        let (again, _) = raised_with(&lines, saved).unwrap();
        assert_eq!(ids(&first), ids(&again));
    }
}

/// A timeline read in two parts by two readers, the second starting from the baselines and
/// windows the first saved (a worker killed and another taking its hosts over), raises exactly
/// what one reader raises, wherever it is cut; without the windows, the windowed correlations
/// would start their windows again and fire later, or not at all.
#[test]
fn a_timeline_cut_anywhere_and_taken_over_with_its_windows_gives_the_same_alerts() {
    let ids = |a: &[Alert]| a.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    let touches = |lines: &[String]| -> Vec<Touch> {
        let mut events = Vec::new();
        read_reader(
            "timeline",
            &mut lines.join("\n").as_bytes(),
            &ReadOptions::default(),
            &mut Summary::default(),
            &mut |e| events.push(e),
        );
        let enricher = Enricher::builtin();
        events
            .iter()
            .filter_map(|e| {
                let time = e.time.as_deref().and_then(parse_time_ms)?;
                Touch::of(&enricher.enrich(e), time)
            })
            .collect()
    };
    let mut differed_without = false;
    for lines in imds_101_token_sequence::positive()
        .into_iter()
        .chain(imds_104_enumeration::positive())
    {
        let all = touches(&lines);
        let mut one = Imds::new(config(), Baselines::new());
        let whole: Vec<Alert> = all.iter().flat_map(|t| one.push(t, None)).collect();
        assert!(!whole.is_empty());
        for cut in 1..all.len() {
            let run = |with_windows: bool| {
                let mut first = Imds::new(config(), Baselines::new());
                let mut got: Vec<Alert> = all[..cut]
                    .iter()
                    .flat_map(|t| first.push(t, None))
                    .collect();
                let mut second = Imds::new(config(), first.baselines().clone());
                if with_windows {
                    let hosts: std::collections::BTreeSet<String> =
                        all.iter().map(|t| t.host.clone()).collect();
                    for h in hosts {
                        second.restore_windows(&h, first.windows(&h));
                    }
                }
                got.extend(all[cut..].iter().flat_map(|t| second.push(t, None)));
                ids(&got)
            };
            assert_eq!(run(true), ids(&whole), "cut at {cut}");
            differed_without |= run(false) != ids(&whole);
        }
    }
    assert!(
        differed_without,
        "no cut needed the windows: nothing tested"
    );
}

type Cases = fn() -> Vec<Vec<String>>;

#[test]
fn every_correlation_has_timelines_and_they_hold() {
    let all: [(&str, Cases, Cases); 4] = [
        (
            "IMDS-101",
            imds_101_token_sequence::positive,
            imds_101_token_sequence::negative,
        ),
        (
            "IMDS-102",
            imds_102_first_seen::positive,
            imds_102_first_seen::negative,
        ),
        ("IMDS-103", imds_103_rate::positive, imds_103_rate::negative),
        (
            "IMDS-104",
            imds_104_enumeration::positive,
            imds_104_enumeration::negative,
        ),
    ];
    assert_eq!(all.len(), RULES.len());
    let mut failures = Vec::new();
    for (id, pos, neg) in all {
        let (pos, neg) = (pos(), neg());
        assert!(
            !pos.is_empty() && !neg.is_empty(),
            "{id} needs both kinds of timeline"
        );
        for (i, lines) in pos.iter().enumerate() {
            match raised(lines) {
                Ok(alerts) => {
                    let mine: Vec<&Alert> = alerts.iter().filter(|a| a.rule_id == id).collect();
                    if mine.len() != 1 {
                        failures.push(format!("{id} positive {i}: raised {} times", mine.len()));
                    } else if mine[0].reasons.is_empty() || mine[0].related.is_empty() {
                        failures.push(format!("{id} positive {i}: no reasons or related"));
                    }
                }
                Err(e) => failures.push(format!("{id} positive {i}: {e}")),
            }
        }
        for (i, lines) in neg.iter().enumerate() {
            match raised(lines) {
                Ok(alerts) if alerts.iter().any(|a| a.rule_id == id) => {
                    failures.push(format!("{id} negative {i}: raised"))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("{id} negative {i}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What each correlation's first positive timeline raises, as the alert JSON users read.
#[test]
fn each_correlation_s_alert_on_its_first_positive() {
    let all: [(&str, Cases); 4] = [
        ("IMDS-101", imds_101_token_sequence::positive),
        ("IMDS-102", imds_102_first_seen::positive),
        ("IMDS-103", imds_103_rate::positive),
        ("IMDS-104", imds_104_enumeration::positive),
    ];
    for (id, pos) in all {
        let alerts = raised(&pos()[0]).unwrap();
        let mine: Vec<&Alert> = alerts.iter().filter(|a| a.rule_id == id).collect();
        assert_eq!(mine.len(), 1, "{id}");
        insta::assert_json_snapshot!(id, mine[0]);
    }
}

/// Each correlation's documentation (its file's module comment) reads, with its id in order.
#[test]
fn every_correlation_is_documented_in_its_own_file() {
    for (i, m) in RULES.iter().enumerate() {
        let doc = m.doc();
        assert_eq!(doc.id, format!("IMDS-{}", 101 + i));
        assert_eq!(m.title(), doc.title);
        assert!(
            doc.techniques().iter().any(|t| t == "T1552.005"),
            "{}",
            doc.id
        );
    }
}
