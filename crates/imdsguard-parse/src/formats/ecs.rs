//! Elastic Common Schema NDJSON, the generic format: `process.*`, `destination.*`, `url.*`,
//! `dns.*`, `host.name`, `@timestamp`.

use crate::json::{Map, Value};
use imdsguard_event::{
    Container, Event, EventKind, Format, Http, Network, Process, SourceRef, Vantage,
};

use super::{Decoding, JsonDecoder, Skip};
use crate::fields::{object, Fields};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::Ecs,
    sniff,
    decode,
};

pub(crate) fn sniff(v: &Map<'_>) -> bool {
    v.contains_key("ecs")
        || (v.contains_key("@timestamp")
            && ["process", "destination", "url", "dns", "event"]
                .iter()
                .any(|k| v.get(k).is_some_and(Value::is_object)))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.to_ascii_lowercase()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect(),
        _ => Vec::new(),
    }
}

fn process(p: Option<&Map<'_>>, user: Option<String>) -> Process {
    let Some(p) = p else {
        return Process::default();
    };
    Process {
        pid: p.number(&["pid"]),
        image: p.text(&["executable"]).or_else(|| p.text(&["name"])),
        command_line: p.text(&["command_line"]).or_else(|| {
            let args: Vec<&str> = p
                .get("args")?
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            (!args.is_empty()).then(|| args.join(" "))
        }),
        user,
        hashes: object(p, &["hash"]).and_then(|h| h.text(&["sha256", "sha1", "md5"])),
        comm: None,
    }
}

/// `container.*` and `orchestrator.*` / `kubernetes.*` (Elastic's Kubernetes metadata), when present.
fn container(v: &Map<'_>) -> Option<Container> {
    let c = object(v, &["container"]);
    let k8s = object(v, &["kubernetes"]);
    let orch = object(v, &["orchestrator", "resource"]);
    let found = Container {
        id: c.and_then(|c| c.text(&["id"])),
        name: c.and_then(|c| c.text(&["name"])),
        image: c
            .and_then(|c| object(c, &["image"]))
            .and_then(|i| i.text(&["name"])),
        pod: k8s
            .and_then(|k| object(k, &["pod"]))
            .and_then(|p| p.text(&["name"]))
            .or_else(|| {
                orch.filter(|r| r.text(&["type"]).as_deref() == Some("pod"))
                    .and_then(|r| r.text(&["name"]))
            }),
        namespace: k8s
            .and_then(|k| k.text(&["namespace"]))
            .or_else(|| object(v, &["orchestrator"]).and_then(|o| o.text(&["namespace"]))),
    };
    (found != Container::default()).then_some(found)
}

/// The HTTP part of a web event: ECS's `http.*`, `url.*` and `user_agent.*`; received or sent as
/// `network.direction` says (a server's and a proxy's records look alike otherwise).
fn http(v: &Map<'_>) -> Http {
    let h = object(v, &["http"]);
    let request = h.and_then(|h| object(h, &["request"]));
    let response = h.and_then(|h| object(h, &["response"]));
    let url = object(v, &["url"]);
    let uri = url.and_then(|u| {
        let path = u.text(&["path"])?;
        Some(match u.text(&["query"]) {
            Some(q) => format!("{path}?{q}"),
            None => path,
        })
    });
    let vantage = match object(v, &["network"])
        .and_then(|n| n.text(&["direction"]))
        .as_deref()
    {
        Some("inbound" | "ingress") => Vantage::Inbound,
        Some("outbound" | "egress") => Vantage::Outbound,
        _ => Vantage::Unknown,
    };
    Http {
        vantage,
        method: request.and_then(|r| r.text(&["method"])),
        uri,
        host: url.and_then(|u| u.text(&["domain"])),
        version: h.and_then(|h| h.text(&["version"])),
        status: response
            .and_then(|r| r.text(&["status_code"]))
            .and_then(|s| s.parse().ok()),
        bytes_out: response
            .and_then(|r| object(r, &["body"]).and_then(|b| b.text(&["bytes"])))
            .and_then(|b| b.parse().ok()),
        user_agent: object(v, &["user_agent"]).and_then(|u| u.text(&["original"])),
        referer: request.and_then(|r| r.text(&["referrer"])),
        forwarded_for: None,
        header_names: None,
    }
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, _how: Decoding<'_>) -> Result<Event, Skip> {
    let categories = strings(object(v, &["event"]).and_then(|e| e.get("category")));
    let user = object(v, &["user"]).and_then(|u| {
        let name = u.text(&["name"])?;
        Some(match u.text(&["domain"]) {
            Some(d) => format!("{d}\\{name}"),
            None => name,
        })
    });
    let proc_obj = object(v, &["process"]);
    let mut e = Event {
        source,
        format: Format::Ecs,
        kind: EventKind::Other,
        channel: None,
        native_id: object(v, &["event"]).and_then(|ev| ev.text(&["code", "action"])),
        record_id: object(v, &["event"]).and_then(|ev| ev.text(&["id"])),
        time: v.text(&["@timestamp"]),
        clock: imdsguard_event::Clock::Utc,
        host: object(v, &["host"]).and_then(|h| h.text(&["name", "hostname"])),
        process: process(proc_obj, user),
        parent: process(proc_obj.and_then(|p| object(p, &["parent"])), None),
        network: None,
        http: None,
        cloud: None,
        dns_query: object(v, &["dns", "question"]).and_then(|q| q.text(&["name"])),
        container: container(v),
        fields: Vec::new(),
    };
    let dest = object(v, &["destination"]);
    let url = object(v, &["url"]).and_then(|u| u.text(&["full", "original"]));
    if dest.is_some() || url.is_some() {
        let src = object(v, &["source"]);
        let net = object(v, &["network"]);
        e.network = Some(Network {
            protocol: net
                .and_then(|n| n.text(&["transport", "protocol"]))
                .map(|p| p.to_ascii_lowercase()),
            src_ip: src.and_then(|s| s.text(&["ip", "address"])),
            src_port: src.and_then(|s| s.port(&["port"])),
            dst_ip: dest.and_then(|d| d.text(&["ip", "address"])),
            dst_port: dest.and_then(|d| d.port(&["port"])),
            dst_host: dest.and_then(|d| d.text(&["domain"])),
            url,
            outbound: net
                .and_then(|n| n.text(&["direction"]))
                .map(|d| matches!(d.as_str(), "outbound" | "egress")),
        });
    }
    e.kind = if e.dns_query.is_some() || categories.iter().any(|c| c == "dns") {
        EventKind::DnsQuery
    } else if categories.iter().any(|c| c == "process") && e.network.is_none() {
        EventKind::ProcessStart
    } else if e.network.as_ref().is_some_and(|n| n.url.is_some())
        && categories.iter().any(|c| c == "web")
    {
        e.http = Some(Box::new(http(v)));
        EventKind::HttpRequest
    } else if e.network.is_some() {
        EventKind::NetworkConnect
    } else {
        EventKind::Other
    };
    Ok(e)
}
