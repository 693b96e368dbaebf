//! AWS WAF logs (WAFv2 and Classic), one JSON record a request as delivered to S3, CloudWatch
//! Logs or Firehose: `timestamp` (milliseconds), `action`, `terminatingRuleId`, and the request
//! as WAF inspected it in `httpRequest` (`clientIp`, `httpMethod`, `uri`, `args`, `httpVersion`,
//! `requestId`, and `headers`, a list of `{name, value}`: `Host`, `User-Agent`, `Referer`,
//! `X-Forwarded-For` …). `responseCodeSent` is the status WAF answered with when it did.
//!
//! WAF sees what a client sent to a load balancer, API Gateway or CloudFront in front of the
//! application: the request's headers included, so a metadata address in the `Host` header or a
//! token header is visible here when the access log would not show it.

use imdsguard_event::{
    format_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use super::{Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::{object, Fields};
use crate::json::{Map, Value};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::AwsWaf,
    sniff,
    decode,
};

/// A web ACL and the request it inspected.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("webaclId").is_some()
        && v.get("httpRequest")
            .is_some_and(|r| r.as_object().is_some())
}

/// The value of the request header `name`.
fn header(req: &Map<'_>, name: &str) -> Option<String> {
    let Some(Value::Array(items)) = req.get("headers") else {
        return None;
    };
    items.iter().find_map(|h| {
        let h = h.as_object()?;
        h.text(&["name"])
            .filter(|n| n.eq_ignore_ascii_case(name))
            .and_then(|_| h.text(&["value"]))
    })
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, _how: Decoding<'_>) -> Result<Event, Skip> {
    let req = object(v, &["httpRequest"]).ok_or_else(|| super::missing("httpRequest"))?;
    let ms = v
        .text(&["timestamp"])
        .ok_or_else(|| super::missing("timestamp"))?;
    // Milliseconds since the epoch, up to the end of the year 9999.
    let time = ms
        .parse::<i64>()
        .ok()
        .filter(|ms| (0..=253_402_300_799_999).contains(ms))
        .map(format_time_ms)
        .ok_or_else(|| {
            (
                SkipReason::Malformed,
                format!("timestamp {ms:?} is not a time"),
            )
        })?;
    let host = header(req, "Host").map(|h| super::squid::authority(&h).0.to_owned());
    let path = req.text(&["uri"]);
    let uri = path.as_ref().map(|p| match req.text(&["args"]) {
        Some(a) => format!("{p}?{a}"),
        None => p.clone(),
    });
    let url = uri.as_ref().map(|u| match &host {
        Some(h) if u.starts_with('/') => format!("http://{h}{u}"),
        _ => u.clone(),
    });
    let method = req.text(&["httpMethod"]);
    Ok(Event {
        native_id: v.text(&["action"]),
        record_id: req.text(&["requestId"]),
        time: Some(time),
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: req.text(&["clientIp"]),
            url,
            outbound: Some(false),
            ..Network::default()
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Inbound,
            method,
            uri,
            host,
            version: req.text(&["httpVersion"]),
            status: v
                .number(&["responseCodeSent"])
                .and_then(|s| u16::try_from(s).ok()),
            bytes_out: None,
            user_agent: header(req, "User-Agent"),
            referer: header(req, "Referer"),
            forwarded_for: header(req, "X-Forwarded-For"),
            header_names: match req.get("headers") {
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .filter_map(|h| h.as_object()?.text(&["name"]))
                        .collect(),
                ),
                _ => None,
            },
        })),
        ..Event::empty(source, Format::AwsWaf, EventKind::HttpRequest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::{FieldSet, Position};

    #[test]
    fn a_record_decodes_with_its_headers() {
        let text = r#"{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-southeast-2:EXAMPLE12345:regional/webacl/STMTest/1EXAMPLE","terminatingRuleId":"Default_Action","action":"ALLOW","httpRequest":{"clientIp":"89.160.20.156","country":"AU","headers":[{"name":"host","value":"169.254.169.254:80"},{"name":"User-Agent","value":"curl/7.61.1"},{"name":"X-Forwarded-For","value":"203.0.113.9"}],"uri":"/latest/meta-data/iam/security-credentials/","args":"a=1","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"rid"},"responseCodeSent":200}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let m = v.as_object().unwrap();
        assert!(sniff(m));
        let fields = FieldSet::default();
        let at = SourceRef {
            path: "waf.log".into(),
            position: Position::Line(1),
        };
        let e = decode(m, at, Decoding { fields: &fields }).unwrap();
        assert_eq!(e.time.as_deref(), Some("2019-12-13T23:40:12.771Z"));
        assert_eq!(e.native_id.as_deref(), Some("ALLOW"));
        let h = e.http.as_ref().unwrap();
        assert_eq!(h.host.as_deref(), Some("169.254.169.254"));
        assert_eq!(h.user_agent.as_deref(), Some("curl/7.61.1"));
        assert_eq!(h.forwarded_for.as_deref(), Some("203.0.113.9"));
        assert_eq!(h.status, Some(200));
        assert_eq!(
            e.network.as_ref().unwrap().url.as_deref(),
            Some("http://169.254.169.254/latest/meta-data/iam/security-credentials/?a=1")
        );
    }
}
