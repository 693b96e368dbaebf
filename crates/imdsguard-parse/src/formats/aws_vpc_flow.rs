//! Amazon VPC flow logs as delivered to S3 or exported from CloudWatch Logs: space-separated
//! fields, in the order a header line names (`version account-id interface-id srcaddr …`, the
//! first line of each delivered file) or, without a header, in the order of AWS's field table
//! (the default version 2 format has its 14 fields; 21, 25 and 29 fields are versions 3, 4 and 5
//! with every field). Each record is one flow in an aggregation window: a network event from
//! `srcaddr:srcport` to `dstaddr:dstport`, at the window's `start`, on the instance the
//! interface belongs to.
//!
//! AWS does not record traffic to the instance metadata service, the Amazon Time Sync Service
//! or Amazon DNS in flow logs: they cannot show a metadata request. They show what happens after
//! (an instance sending data out, a stolen key used from a host in the VPC).

use std::io::BufRead;

use imdsguard_event::{format_time_ms, Event, EventKind, Format, Network, Position, SourceRef};

use crate::error::SkipReason;
use crate::{ReadOptions, Skipped, Summary};

/// The fields of AWS's table in its order: versions 2 (the first 14), 3 (21), 4 (25) and 5.
const FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    // Later additions, known so a header naming them is read.
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
];

/// Whether a line is a flow-log header (every word a field of AWS's table, `srcaddr` among
/// them) or a default-order record (`2 123456789010 eni-… …`).
pub(crate) fn sniff_line(line: &str) -> bool {
    header(line).is_some() || {
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        matches!(w.len(), 14 | 21 | 25 | 29)
            && matches!(w[0], "2" | "3" | "4" | "5")
            && w[1].bytes().all(|b| b.is_ascii_digit())
            && (w[2].starts_with("eni-") || w[2] == "-")
            && matches!(w[13], "OK" | "NODATA" | "SKIPDATA")
    }
}

/// The field order a header line names.
fn header(line: &str) -> Option<Vec<usize>> {
    let order: Option<Vec<usize>> = line
        .split_ascii_whitespace()
        .map(|w| FIELDS.iter().position(|f| *f == w))
        .collect();
    order.filter(|o| o.len() >= 3 && o.contains(&3))
}

/// The IANA protocol number's name.
fn protocol(n: &str) -> String {
    match n {
        "1" => "icmp".into(),
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "58" => "icmpv6".into(),
        other => other.to_owned(),
    }
}

/// The event of one record, its values in `order`'s fields.
fn decode(
    values: &[&str],
    order: &[usize],
    source: SourceRef,
) -> Result<Event, (SkipReason, String)> {
    if values.len() != order.len() {
        return Err((
            SkipReason::Malformed,
            format!(
                "{} values for the {} fields of the format",
                values.len(),
                order.len()
            ),
        ));
    }
    let get = |name: &str| {
        let i = FIELDS.iter().position(|f| *f == name)?;
        let at = order.iter().position(|o| *o == i)?;
        Some(values[at]).filter(|v| *v != "-")
    };
    if let Some(status @ ("NODATA" | "SKIPDATA")) = get("log-status") {
        return Err((
            SkipReason::MissingField,
            format!(
                "no flow: log-status {status} ({})",
                if status == "NODATA" {
                    "no traffic on the interface in the window"
                } else {
                    "records lost in the window"
                }
            ),
        ));
    }
    let start = get("start").ok_or_else(|| (SkipReason::MissingField, "no start".to_owned()))?;
    // Seconds since the epoch, up to the year 9999.
    let time = start
        .parse::<i64>()
        .ok()
        .filter(|s| (0..=253_402_300_799).contains(s))
        .map(|s| format_time_ms(s * 1000))
        .ok_or_else(|| {
            (
                SkipReason::Malformed,
                format!("start {start:?} is not a time"),
            )
        })?;
    let outbound = match get("flow-direction") {
        Some("egress") => Some(true),
        Some("ingress") => Some(false),
        _ => None,
    };
    Ok(Event {
        source,
        format: Format::AwsVpcFlow,
        kind: EventKind::NetworkConnect,
        channel: None,
        native_id: get("action").map(str::to_owned),
        record_id: None,
        time: Some(time),
        clock: imdsguard_event::Clock::Utc,
        host: get("instance-id")
            .or_else(|| get("interface-id"))
            .map(str::to_owned),
        process: Default::default(),
        parent: Default::default(),
        network: Some(Network {
            protocol: get("protocol").map(protocol),
            src_ip: get("srcaddr").map(str::to_owned),
            src_port: get("srcport").and_then(|p| p.parse().ok()),
            dst_ip: get("dstaddr").map(str::to_owned),
            dst_port: get("dstport").and_then(|p| p.parse().ok()),
            dst_host: None,
            url: None,
            outbound,
        }),
        http: None,
        cloud: None,
        dns_query: None,
        container: None,
        fields: Vec::new(),
    })
}

/// A flow log: a header line sets the field order for the records after it (a file of
/// concatenated deliveries holds several); without one, the order is AWS's table's.
pub(crate) fn read(
    name: &str,
    first: Vec<u8>,
    first_line: u64,
    r: &mut dyn BufRead,
    opts: &ReadOptions,
    summary: &mut Summary,
    on_event: &mut dyn FnMut(Event),
) {
    let mut order: Option<Vec<usize>> = None;
    let mut one = |t: Vec<u8>, n: u64, summary: &mut Summary| {
        let source = SourceRef {
            path: name.to_owned(),
            position: Position::Line(n),
        };
        let text = String::from_utf8_lossy(&t);
        if let Some(h) = header(&text) {
            order = Some(h);
            return;
        }
        let values: Vec<&str> = text.split_ascii_whitespace().collect();
        let default: Vec<usize>;
        let fields = match &order {
            Some(o) => o.as_slice(),
            None if matches!(values.len(), 14 | 21 | 25 | 29) => {
                default = (0..values.len()).collect();
                &default
            }
            None => {
                summary.skip(
                    Skipped {
                        source,
                        reason: SkipReason::Malformed,
                        detail: format!(
                            "{} values and no header line naming the fields (the default formats have 14, 21, 25 or 29)",
                            values.len()
                        ),
                    },
                    opts.keep_skips,
                );
                return;
            }
        };
        summary.decoded(
            decode(&values, fields, source.clone()),
            source,
            opts,
            on_event,
        );
    };
    crate::each_line_from(name, first, first_line, r, opts, summary, &mut one);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> SourceRef {
        SourceRef {
            path: "flow.log".into(),
            position: Position::Line(1),
        }
    }

    fn default(line: &str) -> Result<Event, (SkipReason, String)> {
        let v: Vec<&str> = line.split_ascii_whitespace().collect();
        let order: Vec<usize> = (0..v.len()).collect();
        decode(&v, &order, at())
    }

    #[test]
    fn default_and_all_field_records_decode() {
        let e = default("2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 49761 443 6 20 4249 1418530010 1418530070 ACCEPT OK").unwrap();
        assert_eq!(e.kind, EventKind::NetworkConnect);
        assert_eq!(e.time.as_deref(), Some("2014-12-14T04:06:50.000Z"));
        assert_eq!(e.host.as_deref(), Some("eni-1235b8ca123456789"));
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.protocol.as_deref(), Some("tcp"));
        assert_eq!(
            (n.dst_ip.as_deref(), n.dst_port),
            (Some("203.0.113.12"), Some(443))
        );
        assert_eq!(e.native_id.as_deref(), Some("ACCEPT"));

        let v5 = default("5 64111117617 eni-069xxxxxb7a490 89.160.20.156 10.200.0.0 50041 33004 17 52 1 164000066 1640000297 REJECT OK vpc-09676f97xxxxxb8a7 subnet-02d645xxxxxxxdbc0 i-0axxxxxx1ad77 1 IPv4 89.160.20.156 10.200.0.80 us-east-1 use1-az5 - - AMAZON CLOUDFRONT ingress 1").unwrap();
        assert_eq!(v5.host.as_deref(), Some("i-0axxxxxx1ad77"));
        assert_eq!(v5.network.as_ref().unwrap().outbound, Some(false));
        assert_eq!(
            v5.network.as_ref().unwrap().protocol.as_deref(),
            Some("udp")
        );

        let (reason, detail) = default(
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
        )
        .unwrap_err();
        assert_eq!(reason, SkipReason::MissingField);
        assert!(detail.contains("NODATA"), "{detail}");
    }

    #[test]
    fn a_header_sets_the_order() {
        let order = header("instance-id srcaddr dstaddr dstport start log-status").unwrap();
        let v = [
            "i-0abc",
            "10.0.0.5",
            "198.51.100.7",
            "443",
            "1700000000",
            "OK",
        ];
        let e = decode(&v, &order, at()).unwrap();
        assert_eq!(e.host.as_deref(), Some("i-0abc"));
        assert_eq!(e.network.as_ref().unwrap().dst_port, Some(443));
        assert!(sniff_line(
            "version account-id interface-id srcaddr dstaddr"
        ));
        assert!(header("version account-id interface-id").is_none());
        assert!(!sniff_line("2 123456789010 eni-1 a b"));
        assert!(!sniff_line("the quick brown fox"));
    }
}
