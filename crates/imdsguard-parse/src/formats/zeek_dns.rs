//! Zeek's `dns.log` as JSON lines (or from its TSV form): one query and its answers seen on the
//! wire, by Zeek's names: `ts`, `uid`, `id.orig_h` … (or `id_orig_h` …), `query`,
//! `qtype_name`, `rcode_name`, `answers`. A DNS event of the asking host, with no process.

use imdsguard_event::{Event, EventKind, Format, SourceRef};

use super::zeek_conn::{keep_zeek_fields, zeek_network, zeek_time};
use super::{Decoding, JsonDecoder, Skip};
use crate::fields::Fields;
use crate::json::Map;

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::ZeekDns,
    sniff,
    decode,
};

/// A Zeek connection id and a query's fields.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("uid").is_some()
        && (v.get("id.orig_h").is_some() || v.get("id_orig_h").is_some())
        && (v.get("query").is_some() || v.get("qtype_name").is_some() || v.get("rcode").is_some())
        && v.get("conn_state").is_none()
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let time = zeek_time(v)?;
    let query = v.text(&["query"]);
    let mut e = Event {
        source,
        format: Format::ZeekDns,
        kind: if query.is_some() {
            EventKind::DnsQuery
        } else {
            EventKind::Other
        },
        channel: None,
        native_id: v.text(&["qtype_name"]),
        record_id: v.text(&["uid"]),
        time: Some(time),
        clock: imdsguard_event::Clock::Utc,
        host: None,
        process: Default::default(),
        parent: Default::default(),
        network: Some(zeek_network(v)),
        http: None,
        cloud: None,
        dns_query: query,
        container: None,
        fields: Vec::new(),
    };
    keep_zeek_fields(&mut e, v, how.fields);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;
    use imdsguard_event::{FieldSet, Position};

    #[test]
    fn a_query_decodes() {
        let text = r#"{"ts":1587500000.5,"uid":"C1","id.orig_h":"10.0.0.8","id.orig_p":53211,"id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp","query":"metadata.google.internal","qtype_name":"A","rcode_name":"NOERROR","answers":["169.254.169.254"]}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let m = v.as_object().unwrap();
        assert!(sniff(m));
        assert!(!super::super::zeek_http::sniff(m));
        assert!(!super::super::zeek_conn::sniff(m));
        let fields = FieldSet::default();
        let at = SourceRef {
            path: "dns.log".into(),
            position: Position::Line(1),
        };
        let e = decode(m, at, Decoding { fields: &fields }).unwrap();
        assert_eq!(e.kind, EventKind::DnsQuery);
        assert_eq!(e.dns_query.as_deref(), Some("metadata.google.internal"));
        assert_eq!(e.native_id.as_deref(), Some("A"));
        assert_eq!(
            e.network.as_ref().unwrap().src_ip.as_deref(),
            Some("10.0.0.8")
        );
    }
}
