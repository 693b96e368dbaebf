//! Google Cloud Logging entries that carry an HTTP request (`httpRequest`): the external and
//! internal Application Load Balancers' request logs (`resource.type` `http_load_balancer`,
//! `jsonPayload` a `LoadBalancerLogEntry`), and the same shape from Cloud Run, App Engine and
//! Cloud Armor, as `gcloud logging read --format=json`, a log sink or a BigQuery export write
//! them. `requestUrl` is the full URL with the request's `Host`; `remoteIp` the client;
//! `serverIp` the backend. Each is a request the service received: an inbound HTTP event.

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use super::{Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::{object, Fields};
use crate::json::Map;

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::GcpHttp,
    sniff,
    decode,
};

/// A log entry (`logName`, `insertId` or `resource`) with an `httpRequest` naming a URL or a
/// method.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    let Some(req) = object(v, &["httpRequest"]) else {
        return false;
    };
    (req.get("requestUrl").is_some() || req.get("requestMethod").is_some())
        && (v.get("logName").is_some()
            || v.get("insertId").is_some()
            || v.get("resource").is_some())
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, _how: Decoding<'_>) -> Result<Event, Skip> {
    let req = object(v, &["httpRequest"]).ok_or_else(|| super::missing("httpRequest"))?;
    let ts = v
        .text(&["timestamp", "receiveTimestamp"])
        .ok_or_else(|| super::missing("timestamp"))?;
    let time = parse_time_ms(&ts).map(format_time_ms).ok_or_else(|| {
        (
            SkipReason::Malformed,
            format!("timestamp {ts:?} is not a time"),
        )
    })?;
    let url = req.text(&["requestUrl"]);
    let host = url
        .as_deref()
        .and_then(super::squid::url_authority)
        .map(|a| super::squid::authority(a).0.to_owned());
    let uri = url.as_deref().map(|u| match u.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
        None => u.to_owned(),
    });
    let method = req.text(&["requestMethod"]);
    let (server, server_port) = match req.text(&["serverIp"]) {
        Some(s) => {
            let (h, p) = super::squid::authority(&s);
            (Some(h.to_owned()), p)
        }
        None => (None, None),
    };
    let resource = object(v, &["resource", "labels"]);
    Ok(Event {
        native_id: method.clone(),
        record_id: v.text(&["insertId"]),
        time: Some(time),
        host: resource.and_then(|r| {
            r.text(&[
                "backend_service_name",
                "service_name",
                "module_id",
                "forwarding_rule_name",
            ])
        }),
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: req.text(&["remoteIp"]),
            dst_ip: server,
            dst_port: server_port,
            url,
            outbound: Some(false),
            ..Network::default()
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Inbound,
            method,
            uri,
            host,
            version: req.text(&["protocol"]),
            status: req.number(&["status"]).and_then(|s| u16::try_from(s).ok()),
            bytes_out: req.number(&["responseSize"]),
            user_agent: req.text(&["userAgent"]),
            referer: req.text(&["referer"]),
            forwarded_for: None,
            header_names: None,
        })),
        ..Event::empty(source, Format::GcpHttp, EventKind::HttpRequest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;
    use imdsguard_event::{FieldSet, Position};

    #[test]
    fn a_load_balancer_entry_decodes() {
        let text = r#"{"insertId":"1f3v2xkf4w3l0q","jsonPayload":{"@type":"type.googleapis.com/google.cloud.loadbalancing.type.LoadBalancerLogEntry","statusDetails":"response_sent_by_backend"},"httpRequest":{"requestMethod":"GET","requestUrl":"http://35.201.10.7/computeMetadata/v1/instance/service-accounts/default/token","requestSize":"77","status":200,"responseSize":"1602","userAgent":"curl/7.64.0","remoteIp":"203.0.113.1","serverIp":"10.128.0.5","latency":"0.002s","protocol":"HTTP/1.1"},"resource":{"type":"http_load_balancer","labels":{"backend_service_name":"web-backend","project_id":"p","zone":"global"}},"timestamp":"2026-11-20T09:00:00.123456Z","severity":"INFO","logName":"projects/p/logs/requests","receiveTimestamp":"2026-11-20T09:00:01Z"}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let m = v.as_object().unwrap();
        assert!(sniff(m));
        assert!(!super::super::aws_waf::sniff(m));
        let fields = FieldSet::default();
        let at = SourceRef {
            path: "lb.json".into(),
            position: Position::Line(1),
        };
        let e = decode(m, at, Decoding { fields: &fields }).unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-20T09:00:00.123Z"));
        assert_eq!(e.host.as_deref(), Some("web-backend"));
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.host.as_deref(), Some("35.201.10.7"));
        assert_eq!(
            h.uri.as_deref(),
            Some("/computeMetadata/v1/instance/service-accounts/default/token")
        );
        assert_eq!((h.status, h.bytes_out), (Some(200), Some(1602)));
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.src_ip.as_deref(), Some("203.0.113.1"));
        assert_eq!(n.dst_ip.as_deref(), Some("10.128.0.5"));
    }
}
