//! Zeek's `http.log` as JSON lines (`LogAscii::use_json=T`, or a shipper's JSON): one HTTP
//! request and its answer seen on the wire. Fields by Zeek's names: `ts`, `uid`, `id.orig_h`,
//! `id.orig_p`, `id.resp_h`, `id.resp_p` (or `id_orig_h` …, as writers that cannot keep dots in
//! names rename them: RockNSM's, the Kafka plugin's), `trans_depth`, `method`, `host`, `uri`,
//! `referrer`, `version`, `user_agent`, `response_body_len`, `status_code`, `proxied` (the
//! headers that show a proxy: `X-FORWARDED-FOR -> 10.0.0.7`), and `client_header_names` when
//! Zeek's `header-names` policy logs it (which headers the request sent: a metadata request
//! without `X-aws-ec2-metadata-token` is IMDSv1).

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use super::{Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::Fields;
use crate::json::{Map, Value};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::ZeekHttp,
    sniff,
    decode,
};

/// A Zeek connection id and an HTTP request's fields.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("uid").is_some()
        && (v.get("id.orig_h").is_some() || v.get("id_orig_h").is_some())
        && (v.get("uri").is_some() || v.get("method").is_some() || v.get("status_code").is_some())
}

/// The value of a `proxied` header (`X-FORWARDED-FOR -> 10.0.0.7`) named `name`.
fn proxied(v: &Map<'_>, name: &str) -> Option<String> {
    let Some(Value::Array(items)) = v.get("proxied") else {
        return None;
    };
    items.iter().find_map(|i| {
        let Value::String(s) = i else { return None };
        let (h, value) = s.split_once("->")?;
        h.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let ts = v
        .text(&["ts"])
        .ok_or_else(|| (SkipReason::MissingField, "no ts".to_owned()))?;
    let time = parse_time_ms(&ts)
        .map(format_time_ms)
        .ok_or_else(|| (SkipReason::Malformed, format!("ts {ts:?} is not a time")))?;
    let host = v.text(&["host"]);
    let uri = v.text(&["uri"]);
    let dst_ip = v.text(&["id.resp_h", "id_resp_h"]);
    let dst_port = v.port(&["id.resp_p", "id_resp_p"]);
    // The URL as the client asked: its Host header (else the server's address) and the target;
    // a proxy's absolute-form target is whole already.
    let url = uri.as_ref().map(|u| {
        if u.starts_with('/') {
            let authority = host.clone().or_else(|| {
                dst_ip.as_ref().map(|ip| match dst_port {
                    Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
                    Some(p) => format!("{ip}:{p}"),
                    None => ip.clone(),
                })
            });
            match authority {
                Some(a) => format!("http://{a}{u}"),
                None => u.clone(),
            }
        } else {
            u.clone()
        }
    });
    let record_id = v.text(&["uid"]).map(|uid| match v.text(&["trans_depth"]) {
        Some(d) => format!("{uid}#{d}"),
        None => uid,
    });
    let mut e = Event {
        native_id: v.text(&["method"]),
        record_id,
        time: Some(time),
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: v.text(&["id.orig_h", "id_orig_h"]),
            src_port: v.port(&["id.orig_p", "id_orig_p"]),
            dst_ip,
            dst_port,
            dst_host: None,
            url,
            outbound: None,
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Wire,
            method: v.text(&["method"]),
            uri,
            host,
            version: v.text(&["version"]),
            status: v
                .number(&["status_code"])
                .and_then(|s| u16::try_from(s).ok()),
            bytes_out: v.number(&["response_body_len"]),
            user_agent: v.text(&["user_agent"]),
            referer: v.text(&["referrer"]),
            forwarded_for: proxied(v, "X-FORWARDED-FOR"),
            header_names: match v.get("client_header_names") {
                Some(Value::Array(names)) => Some(
                    names
                        .iter()
                        .filter_map(|n| match n {
                            Value::String(s) => Some(s.to_string()),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            },
        })),
        ..Event::empty(source, Format::ZeekHttp, EventKind::HttpRequest)
    };
    super::zeek_conn::keep_zeek_fields(&mut e, v, how.fields);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::Position;

    fn map(text: &str) -> Map<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_request_on_the_wire_decodes_with_its_client_server_and_answer() {
        let line = r#"{"ts":1795165921.305988,"uid":"CHhAvVGS1DHFjwGM9","id.orig_h":"10.42.0.17","id.orig_p":51544,"id.resp_h":"169.254.169.254","id.resp_p":80,"trans_depth":1,"method":"GET","host":"169.254.169.254","uri":"/latest/meta-data/iam/security-credentials/node-role","version":"1.1","user_agent":"aws-sdk-go/1.44","request_body_len":0,"response_body_len":1321,"status_code":200,"status_msg":"OK","proxied":["X-FORWARDED-FOR -> 203.0.113.50"]}"#;
        let v = map(line);
        assert!(sniff(&v));
        let at = SourceRef {
            path: "http.log".into(),
            position: Position::Line(1),
        };
        let fields = Default::default();
        let e = decode(&v, at, Decoding { fields: &fields }).unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-20T09:12:01.305Z"));
        assert_eq!(e.record_id.as_deref(), Some("CHhAvVGS1DHFjwGM9#1"));
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.src_ip.as_deref(), Some("10.42.0.17"));
        assert_eq!(n.dst_ip.as_deref(), Some("169.254.169.254"));
        assert_eq!(
            n.url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/node-role")
        );
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.vantage, Vantage::Wire);
        assert_eq!((h.status, h.bytes_out), (Some(200), Some(1321)));
        assert_eq!(h.forwarded_for.as_deref(), Some("203.0.113.50"));
        assert!(!sniff(&map(
            r#"{"uid":"C1","id.orig_h":"10.0.0.1","proto":"tcp","conn_state":"SF"}"#
        )));
        // Writers that rename dotted names.
        let renamed = line
            .replace("id.orig_h", "id_orig_h")
            .replace("id.resp_h", "id_resp_h");
        let v = map(&renamed);
        assert!(sniff(&v));
    }
}
