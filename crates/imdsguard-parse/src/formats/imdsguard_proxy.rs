//! `imdsguard proxy`'s audit log (JSON lines): each request that reached the metadata service
//! through the guard, with the process behind its connection (`process`: `pid`, `exe`,
//! `cmdline`, `user`, `container`), where it went (`destination`), what it asked (`method`,
//! `path`, `headers`: the names only), and the decision (`mode`, `decision`, `rule`, `status`).
//! Read as a connection to the service made by that process, with the request's URL: the same
//! detections as for host telemetry apply.

use imdsguard_event::{
    format_time_ms, parse_time_ms, Container, Event, EventKind, Format, Http, Network, Process,
    SourceRef, Vantage,
};

use super::{Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::Fields;
use crate::json::{Map, Value};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::ImdsguardProxy,
    sniff,
    decode,
};

/// The guard's own keys: a decision on a connection to a destination.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.contains_key("decision")
        && v.contains_key("destination")
        && v.contains_key("connection")
        && v.contains_key("attributed")
}

/// `ip:port` or `[ip]:port`, split.
fn split_addr(a: &str) -> (Option<String>, Option<u16>) {
    let a = a.trim();
    let (host, port) = match a.rsplit_once(':') {
        Some((h, p)) if a.starts_with('[') || !h.contains(':') => (h, p.parse().ok()),
        _ => (a, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ((!host.is_empty()).then(|| host.to_owned()), port)
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, _: Decoding<'_>) -> Result<Event, Skip> {
    let t = v
        .text(&["time"])
        .ok_or_else(|| (SkipReason::MissingField, "no time".to_owned()))?;
    let time = parse_time_ms(&t)
        .map(format_time_ms)
        .ok_or_else(|| (SkipReason::Malformed, format!("time {t:?} is not a time")))?;
    let dest = v
        .text(&["destination"])
        .ok_or_else(|| (SkipReason::MissingField, "no destination".to_owned()))?;
    let (dst_ip, dst_port) = split_addr(&dest);
    let (src_ip, src_port) = v
        .text(&["client"])
        .map(|c| split_addr(&c))
        .unwrap_or_default();
    let path = v.text(&["path"]);
    let authority = match (&dst_ip, dst_port) {
        (Some(ip), Some(p)) if ip.contains(':') => format!("[{ip}]:{p}"),
        (Some(ip), Some(80) | None) => ip.clone(),
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (None, _) => String::new(),
    };
    let url = path.as_ref().map(|p| format!("http://{authority}{p}"));
    let p = crate::fields::object(v, &["process"]);
    let process = match p {
        Some(p) => Process {
            pid: p.number(&["pid"]),
            image: p.text(&["exe"]),
            command_line: match p.get("cmdline") {
                Some(Value::Array(args)) => {
                    let args: Vec<String> = args
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|a| {
                            if a.is_empty() || a.contains([' ', '\t', '"']) {
                                format!("\"{}\"", a.replace('"', "\\\""))
                            } else {
                                a.to_owned()
                            }
                        })
                        .collect();
                    (!args.is_empty()).then(|| args.join(" "))
                }
                _ => None,
            },
            user: p.text(&["user"]).or_else(|| p.text(&["uid"])),
            ..Process::default()
        },
        None => Process::default(),
    };
    let container = p.and_then(|p| p.text(&["container"])).map(|id| Container {
        id: Some(id),
        ..Container::default()
    });
    let header_names = match v.get("headers") {
        Some(Value::Array(h)) => Some(
            h.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    };
    Ok(Event {
        native_id: v.text(&["decision"]),
        time: Some(time),
        host: v.text(&["host"]),
        process,
        container,
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            dst_host: None,
            url,
            outbound: Some(true),
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Outbound,
            method: v.text(&["method"]),
            uri: path,
            host: None,
            version: None,
            status: v.number(&["status"]).and_then(|s| u16::try_from(s).ok()),
            bytes_out: None,
            user_agent: None,
            referer: None,
            forwarded_for: None,
            header_names,
        })),
        ..Event::empty(source, Format::ImdsguardProxy, EventKind::NetworkConnect)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::Position;

    #[test]
    fn a_guarded_request_reads_as_its_process_reaching_the_service() {
        let line = r#"{"time":"2026-12-07T16:47:58.31144509Z","host":"web01","connection":1,"client":"127.0.0.1:40312","destination":"169.254.169.254:80","attributed":true,"process":{"pid":1238,"exe":"/usr/bin/curl","cmdline":["curl","-s","-H","X-aws-ec2-metadata-token: [redacted]","http://169.254.169.254/latest/meta-data/iam/security-credentials/web"],"uid":33,"user":"www-data","cgroup":"/system.slice/nginx.service","container":null},"method":"GET","path":"/latest/meta-data/iam/security-credentials/web","provider":"aws","kind":"credentials","token":true,"headers":["host","user-agent","accept","x-aws-ec2-metadata-token"],"mode":"enforce","decision":"deny","rule":"default","why":"no rule allows it","status":403,"ms":0.4}"#;
        let v: Map<'_> = serde_json::from_str(line).unwrap();
        assert!(sniff(&v));
        let at = SourceRef {
            path: "audit.jsonl".into(),
            position: Position::Line(1),
        };
        let fields = Default::default();
        let how = Decoding { fields: &fields };
        let e = decode(&v, at, how).unwrap();
        assert_eq!(e.kind, EventKind::NetworkConnect);
        assert_eq!(e.host.as_deref(), Some("web01"));
        assert_eq!(e.time.as_deref(), Some("2026-12-07T16:47:58.311Z"));
        assert_eq!(e.native_id.as_deref(), Some("deny"));
        assert_eq!(e.process.pid, Some(1238));
        assert_eq!(e.process.image.as_deref(), Some("/usr/bin/curl"));
        assert_eq!(e.process.user.as_deref(), Some("www-data"));
        assert_eq!(
            e.process.command_line.as_deref(),
            Some("curl -s -H \"X-aws-ec2-metadata-token: [redacted]\" http://169.254.169.254/latest/meta-data/iam/security-credentials/web")
        );
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.dst_ip.as_deref(), Some("169.254.169.254"));
        assert_eq!(n.dst_port, Some(80));
        assert_eq!(n.src_port, Some(40312));
        assert_eq!(
            n.url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/web")
        );
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.status, Some(403));
        assert!(h
            .header_names
            .as_ref()
            .unwrap()
            .contains(&"x-aws-ec2-metadata-token".to_owned()));
        assert!(e.container.is_none());
        // IPv6 destinations, unattributed requests.
        let v6: Map<'_> = serde_json::from_str(r#"{"time":"2026-12-07T16:47:58Z","connection":2,"client":"[::1]:5000","destination":"[fd00:ec2::254]:80","attributed":false,"unattributed":"gone","method":"GET","path":"/latest/meta-data/","kind":"other","token":false,"headers":["host"],"mode":"monitor","decision":"allow","rule":"default","status":200,"ms":1.0}"#).unwrap();
        let e = decode(
            &v6,
            SourceRef {
                path: "a".into(),
                position: Position::Line(2),
            },
            how,
        )
        .unwrap();
        assert_eq!(
            e.network.as_ref().unwrap().url.as_deref(),
            Some("http://[fd00:ec2::254]:80/latest/meta-data/")
        );
        assert!(e.process.is_empty());
    }
}
