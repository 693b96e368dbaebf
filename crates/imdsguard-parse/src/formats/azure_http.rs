//! Azure Application Gateway and Front Door access logs, as diagnostic settings deliver them
//! (a storage account's or Event Hub's JSON records: `category` `ApplicationGatewayAccessLog`,
//! `FrontDoorAccessLog` or classic `FrontdoorAccessLog`, the request under `properties`), and
//! the same rows from Log Analytics' `AzureDiagnostics` table (`Category`, fields with their type
//! suffix: `clientIP_s`, `requestUri_s`, `httpStatus_d` …).
//!
//! Application Gateway logs the path (`requestUri`), the query and the `Host` header
//! (`originalHost`, the one the client sent; `host`, the one sent to the backend); Front Door
//! logs the full URL. Each record is a request the gateway received: an inbound HTTP event.

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, Format, Http, Network, SourceRef, Vantage,
};

use super::{Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::{object, Fields};
use crate::json::{Map, Value};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::AzureHttp,
    sniff,
    decode,
};

const CATEGORIES: &[&str] = &[
    "ApplicationGatewayAccessLog",
    "FrontDoorAccessLog",
    "FrontdoorAccessLog",
];

fn category<'a>(v: &'a Map<'_>) -> Option<&'a str> {
    v.get("category")
        .or_else(|| v.get("Category"))
        .and_then(Value::as_str)
        .filter(|c| CATEGORIES.iter().any(|k| k.eq_ignore_ascii_case(c)))
}

/// An access-log category of a gateway or Front Door.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    category(v).is_some()
}

/// A record's field: under `properties`, or at the top with its Log Analytics type suffix.
struct Row<'a, 'v> {
    props: Option<&'a Map<'v>>,
    top: &'a Map<'v>,
}

impl Row<'_, '_> {
    fn text(&self, name: &str) -> Option<String> {
        if let Some(p) = self.props {
            if let Some(t) = p.text(&[name]) {
                return Some(t);
            }
        }
        self.top
            .text(&[&format!("{name}_s"), &format!("{name}_d"), name])
    }

    fn number(&self, name: &str) -> Option<u64> {
        let t = self.text(name)?;
        // Log Analytics writes numbers as doubles (`200.0`).
        t.split('.').next()?.parse().ok()
    }
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, _how: Decoding<'_>) -> Result<Event, Skip> {
    let front_door = category(v).is_some_and(|c| c.to_ascii_lowercase().starts_with("frontdoor"));
    let row = Row {
        props: object(v, &["properties"]),
        top: v,
    };
    let ts = v
        .text(&["time", "timeStamp", "TimeGenerated"])
        .ok_or_else(|| super::missing("time"))?;
    let time = parse_time_ms(&ts)
        .map(format_time_ms)
        .ok_or_else(|| (SkipReason::Malformed, format!("time {ts:?} is not a time")))?;
    let (url, uri, host) = if front_door {
        // The full URL, as the client asked it.
        let url = row.text("requestUri");
        let host = row.text("hostName").or_else(|| {
            url.as_deref()
                .and_then(super::squid::url_authority)
                .map(|a| super::squid::authority(a).0.to_owned())
        });
        let uri = url.as_deref().map(|u| match u.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_owned(),
            None => u.to_owned(),
        });
        (url, uri, host)
    } else {
        let path = row.text("originalRequestUriWithArgs").or_else(|| {
            row.text("requestUri")
                .map(|p| match row.text("requestQuery") {
                    Some(q) => format!("{p}?{q}"),
                    None => p,
                })
        });
        let host = row
            .text("originalHost")
            .or_else(|| row.text("host"))
            .map(|h| super::squid::authority(&h).0.to_owned());
        let url = path.as_ref().map(|p| match &host {
            Some(h) if p.starts_with('/') => format!("http://{h}{p}"),
            _ => p.clone(),
        });
        (url, path, host)
    };
    let method = row.text("httpMethod");
    Ok(Event {
        native_id: method.clone(),
        record_id: row
            .text("transactionId")
            .or_else(|| row.text("trackingReference")),
        time: Some(time),
        host: row.text("instanceId"),
        network: Some(Network {
            protocol: Some("tcp".into()),
            src_ip: row.text("clientIP").or_else(|| row.text("clientIp")),
            src_port: row.number("clientPort").and_then(|p| u16::try_from(p).ok()),
            url,
            outbound: Some(false),
            ..Network::default()
        }),
        http: Some(Box::new(Http {
            vantage: Vantage::Inbound,
            method,
            uri,
            host,
            version: row.text("httpVersion"),
            status: row
                .number("httpStatus")
                .or_else(|| row.number("httpStatusCode"))
                .and_then(|s| u16::try_from(s).ok()),
            bytes_out: row
                .number("sentBytes")
                .or_else(|| row.number("responseBytes")),
            user_agent: row.text("userAgent"),
            referer: row.text("referer").or_else(|| row.text("referrer")),
            forwarded_for: None,
            header_names: None,
        })),
        ..Event::empty(source, Format::AzureHttp, EventKind::HttpRequest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::{FieldSet, Position};

    fn decoded(text: &str) -> Event {
        let v: Value = serde_json::from_str(text).unwrap();
        let m = v.as_object().unwrap();
        assert!(sniff(m), "{text}");
        let fields = FieldSet::default();
        let at = SourceRef {
            path: "appgw.json".into(),
            position: Position::Line(1),
        };
        decode(m, at, Decoding { fields: &fields }).unwrap()
    }

    #[test]
    fn gateway_front_door_and_log_analytics_rows_decode() {
        // Application Gateway's access log as its diagnostic setting writes it (Microsoft's
        // documented example, the request changed to the Host-header probe).
        let gw = decoded(
            r#"{"timeStamp":"2021-10-14T22:17:11+00:00","resourceId":"/SUBSCRIPTIONS/X/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.NETWORK/APPLICATIONGATEWAYS/APPGW","listenerName":"HTTP-Listener","ruleName":"Storage-Static-Rule","backendPoolName":"StaticStorageAccount","backendSettingName":"StorageStatic-HTTPS-Setting","operationName":"ApplicationGatewayAccess","category":"ApplicationGatewayAccessLog","properties":{"instanceId":"appgw_2","clientIP":"185.42.129.24","clientPort":45057,"httpMethod":"GET","originalRequestUriWithArgs":"/metadata/identity/oauth2/token?api-version=2018-02-01","requestUri":"/metadata/identity/oauth2/token","requestQuery":"api-version=2018-02-01","userAgent":"curl/7.68.0","httpStatus":404,"httpVersion":"HTTP/1.1","receivedBytes":184,"sentBytes":466,"transactionId":"592d1649f75a8d480a3c4dc6a975309d","originalHost":"169.254.169.254","host":"20.110.30.194"}}"#,
        );
        assert_eq!(gw.time.as_deref(), Some("2021-10-14T22:17:11.000Z"));
        assert_eq!(gw.host.as_deref(), Some("appgw_2"));
        let h = gw.http.as_ref().unwrap();
        assert_eq!(h.host.as_deref(), Some("169.254.169.254"));
        assert_eq!(
            h.uri.as_deref(),
            Some("/metadata/identity/oauth2/token?api-version=2018-02-01")
        );
        assert_eq!((h.status, h.bytes_out), (Some(404), Some(466)));
        assert_eq!(
            gw.network.as_ref().unwrap().src_ip.as_deref(),
            Some("185.42.129.24")
        );

        let fd = decoded(
            r#"{"time":"2026-11-20T09:00:00.1234567Z","resourceId":"/SUBSCRIPTIONS/X/PROVIDERS/MICROSOFT.CDN/PROFILES/FD","category":"FrontDoorAccessLog","operationName":"Microsoft.Cdn/Profiles/AccessLog/Write","properties":{"trackingReference":"0TeF","httpMethod":"GET","httpVersion":"1.1.0","requestUri":"https://shop.example:443/api/fetch?u=http%3A%2F%2F169.254.169.254%2F","hostName":"shop.example","requestBytes":"640","responseBytes":"1200","userAgent":"python-requests/2.32","clientIp":"203.0.113.8","clientPort":"50122","httpStatusCode":"200"}}"#,
        );
        let h = fd.http.as_ref().unwrap();
        assert_eq!(
            h.uri.as_deref(),
            Some("/api/fetch?u=http%3A%2F%2F169.254.169.254%2F")
        );
        assert_eq!((h.status, h.bytes_out), (Some(200), Some(1200)));
        assert_eq!(fd.record_id.as_deref(), Some("0TeF"));

        let la = decoded(
            r#"{"TimeGenerated":"2026-11-20T09:00:00Z","Category":"ApplicationGatewayAccessLog","clientIP_s":"198.51.100.4","httpMethod_s":"GET","requestUri_s":"/latest/meta-data/","requestQuery_s":"","httpStatus_d":200.0,"userAgent_s":"curl/8","host_s":"shop.example","originalHost_s":"shop.example","sentBytes_d":312.0}"#,
        );
        let h = la.http.as_ref().unwrap();
        assert_eq!(h.uri.as_deref(), Some("/latest/meta-data/"));
        assert_eq!((h.status, h.bytes_out), (Some(200), Some(312)));
        assert_eq!(
            la.network.as_ref().unwrap().url.as_deref(),
            Some("http://shop.example/latest/meta-data/")
        );
    }
}
