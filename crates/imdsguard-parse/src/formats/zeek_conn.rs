//! Zeek's `conn.log` as JSON lines (or from its TSV form): one connection seen on the wire, by
//! Zeek's names: `ts`, `uid`, `id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p` (or
//! `id_orig_h` …), `proto`, `service`, `conn_state`, `local_orig`. A network event from the
//! originator to the responder, with no process: the monitor sees hosts, not programs.
//!
//! Where Zeek watches a node's or a pod network's traffic, a connection to a metadata address
//! names the container or pod address that made it.

use imdsguard_event::{
    format_time_ms, parse_time_ms, Event, EventKind, FieldSet, Format, Network, SourceRef, Sym,
};

use super::{Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::Fields;
use crate::json::Map;

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::ZeekConn,
    sniff,
    decode,
};

/// A Zeek connection id and a connection's state.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.get("uid").is_some()
        && (v.get("id.orig_h").is_some() || v.get("id_orig_h").is_some())
        && (v.get("conn_state").is_some() || v.get("history").is_some())
}

/// `ts` as RFC 3339.
pub(crate) fn zeek_time(v: &Map<'_>) -> Result<String, Skip> {
    let ts = v
        .text(&["ts"])
        .ok_or_else(|| (SkipReason::MissingField, "no ts".to_owned()))?;
    parse_time_ms(&ts)
        .map(format_time_ms)
        .ok_or_else(|| (SkipReason::Malformed, format!("ts {ts:?} is not a time")))
}

/// Keeps the record's fields that loaded rules read, under Zeek's own names (`id.orig_h`,
/// `query`, `uri` …, as SigmaHQ's `product: zeek` rules write them; `id_orig_h` read as
/// `id.orig_h`); values of other names go under [`Sym::ANY`] when keyword rules are loaded.
pub(crate) fn keep_zeek_fields(e: &mut Event, v: &Map<'_>, fields: &FieldSet) {
    if fields.is_empty() {
        return;
    }
    v.each(&mut |name, value| {
        let dotted;
        let name = match name.strip_prefix("id_") {
            Some(rest) => {
                dotted = format!("id.{rest}");
                dotted.as_str()
            }
            None => name,
        };
        let sym = fields
            .get(name)
            .or_else(|| fields.keywords().then_some(Sym::ANY));
        if let Some(s) = sym {
            e.fields.push((s, value.text().into_owned()));
        }
    });
}

/// The connection's addresses and ports.
pub(crate) fn zeek_network(v: &Map<'_>) -> Network {
    Network {
        protocol: v.text(&["proto"]),
        src_ip: v.text(&["id.orig_h", "id_orig_h"]),
        src_port: v.port(&["id.orig_p", "id_orig_p"]),
        dst_ip: v.text(&["id.resp_h", "id_resp_h"]),
        dst_port: v.port(&["id.resp_p", "id_resp_p"]),
        dst_host: None,
        url: None,
        outbound: None,
    }
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let time = zeek_time(v)?;
    let mut e = Event {
        source,
        format: Format::ZeekConn,
        kind: EventKind::NetworkConnect,
        channel: None,
        native_id: v.text(&["conn_state"]),
        record_id: v.text(&["uid"]),
        time: Some(time),
        clock: imdsguard_event::Clock::Utc,
        host: None,
        process: Default::default(),
        parent: Default::default(),
        network: Some(zeek_network(v)),
        http: None,
        cloud: None,
        dns_query: None,
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
    fn a_connection_decodes() {
        let text = r#"{"ts":1587500000.123456,"uid":"CkTkDl1ZFtaNi6lOog","id.orig_h":"10.244.1.7","id.orig_p":40112,"id.resp_h":"169.254.169.254","id.resp_p":80,"proto":"tcp","service":"http","conn_state":"SF"}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let m = v.as_object().unwrap();
        assert!(sniff(m));
        assert!(!super::super::zeek_http::sniff(m));
        let fields = FieldSet::default();
        let at = SourceRef {
            path: "conn.log".into(),
            position: Position::Line(1),
        };
        let e = decode(m, at, Decoding { fields: &fields }).unwrap();
        assert_eq!(e.kind, EventKind::NetworkConnect);
        assert_eq!(e.time.as_deref(), Some("2020-04-21T20:13:20.123Z"));
        let n = e.network.as_ref().unwrap();
        assert_eq!(n.src_ip.as_deref(), Some("10.244.1.7"));
        assert_eq!(
            (n.dst_ip.as_deref(), n.dst_port),
            (Some("169.254.169.254"), Some(80))
        );
        assert_eq!(n.protocol.as_deref(), Some("tcp"));
    }
}
