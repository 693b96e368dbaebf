//! `hunt --output csv-timeline|json-timeline`: the alerts as a timeline an analyst sorts and
//! filters in a spreadsheet or loads into Timesketch, one row per alert in time order, with the
//! columns Hayabusa's timelines have (`Timestamp`, `Computer`, `Channel`, `EventID`, `Level`,
//! `RecordID`, `RuleTitle`, `Details`, …) chosen by a profile.

use imdsguard_event::Position;
use imdsguard_rules::Alert;

/// Which columns a timeline has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Timestamp, Computer, Channel, EventID, Level, RuleTitle, Details.
    Minimal,
    /// The minimal columns with RecordID, RuleID, ATT&CK ids, Source and AlertID.
    Standard,
    /// Everything: the process, the metadata target, escalation and the reasons too.
    Verbose,
    /// What Timesketch imports: `datetime`, `timestamp_desc` and `message`, then the standard
    /// columns.
    Timesketch,
}

/// The column names of a profile, in order.
pub fn header(p: Profile) -> Vec<&'static str> {
    let minimal = [
        "Timestamp",
        "Computer",
        "Channel",
        "EventID",
        "Level",
        "RuleTitle",
        "Details",
    ];
    let standard_more = ["RecordID", "RuleID", "MitreTechniques", "Source", "AlertID"];
    let verbose_more = [
        "Format",
        "EventKind",
        "Process",
        "CommandLine",
        "User",
        "ParentImage",
        "TargetProvider",
        "TargetEndpoint",
        "TargetPath",
        "TargetKind",
        "TargetEncoding",
        "Escalate",
        "Reasons",
    ];
    match p {
        Profile::Minimal => minimal.to_vec(),
        Profile::Standard => [&minimal[..], &standard_more[..]].concat(),
        Profile::Verbose => [&minimal[..], &standard_more[..], &verbose_more[..]].concat(),
        Profile::Timesketch => [
            &["datetime", "timestamp_desc", "message"][..],
            &minimal[..],
            &standard_more[..],
        ]
        .concat(),
    }
}

/// One alert's row, in [`header`]'s order.
pub fn row(a: &Alert, p: Profile) -> Vec<String> {
    let o = |v: Option<&String>| v.cloned().unwrap_or_default();
    let pr = a.process.as_ref();
    let t = a.target.as_ref();
    let details = a.details();
    let value = |column: &str| -> String {
        match column {
            "Timestamp" | "datetime" => o(a.time.as_ref()),
            "timestamp_desc" => "Event Time".into(),
            "message" => format!("{}: {details}", a.title),
            "Computer" => o(a.host.as_ref()),
            // Logs that are not Windows event logs have no channel: their format stands in.
            "Channel" => a
                .event
                .channel
                .clone()
                .unwrap_or_else(|| a.event.format.as_str().to_owned()),
            "EventID" => o(a.event.id.as_ref()),
            "Level" => a.severity.as_str().into(),
            "RuleTitle" => a.title.clone(),
            "Details" => details.clone(),
            "RecordID" => match a.source.position {
                Position::Record { id, .. } => id.to_string(),
                Position::Line(_) | Position::Element { .. } => String::new(),
            },
            "RuleID" => a.rule_id.clone(),
            "MitreTechniques" => a
                .attack
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            "Source" => a.source_text(),
            "AlertID" => a.id.clone(),
            "Format" => a.event.format.as_str().into(),
            "EventKind" => a.event.kind.as_str().into(),
            "Process" => o(pr.and_then(|p| p.image.as_ref())),
            "CommandLine" => o(pr.and_then(|p| p.command_line.as_ref())),
            "User" => o(pr.and_then(|p| p.user.as_ref())),
            "ParentImage" => o(pr.and_then(|p| p.parent_image.as_ref())),
            "TargetProvider" => o(t.and_then(|t| t.provider.as_ref())),
            "TargetEndpoint" => o(t.and_then(|t| t.endpoint.as_ref())),
            "TargetPath" => o(t.and_then(|t| t.path.as_ref())),
            "TargetKind" => t.map(|t| t.kind.as_str().to_owned()).unwrap_or_default(),
            "TargetEncoding" => t
                .map(|t| t.encoding_text().replace(',', ";"))
                .unwrap_or_default(),
            "Escalate" => a
                .triage
                .as_ref()
                .map(|t| t.escalate.to_string())
                .unwrap_or_default(),
            "Reasons" => a.reasons.join(" | "),
            _ => String::new(),
        }
    };
    header(p).into_iter().map(value).collect()
}

/// Alerts in time order (untimed ones last, in the order they came).
pub fn sort(alerts: &mut [Alert]) {
    alerts.sort_by(|a, b| match (&a.time, &b.time) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_starts_with_what_its_readers_need() {
        assert_eq!(header(Profile::Minimal)[0], "Timestamp");
        assert_eq!(header(Profile::Minimal).len(), 7);
        assert!(header(Profile::Standard).contains(&"RecordID"));
        assert!(header(Profile::Verbose).contains(&"CommandLine"));
        // Timesketch requires these three.
        assert_eq!(
            header(Profile::Timesketch)[..3],
            ["datetime", "timestamp_desc", "message"]
        );
    }
}
