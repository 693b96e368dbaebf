//! The record fields of cloud audit logs that loaded rules read, under the names Sigma's cloud
//! rules write them: every value under its dotted path (`userIdentity.type`,
//! `requestParameters.bucketName`), an object under its own path as JSON text
//! (`requestParameters|contains`), Azure's `{"value": …, "localizedValue": …}` under the
//! member's own name, and the names other exports give the same value (`gcp.audit.method_name`
//! and `data.protoPayload.…` for Google Cloud audit logs).

use imdsguard_event::{Cloud, Event, EventKind, FieldSet, Format, Network, SourceRef, Sym};

use crate::json::{Map, Value};

/// The event of one cloud API call: its time as written (UTC), the record's own id, the host it
/// is about (an instance), its channel (Entra's log category), and the caller's address as the
/// network source when it is an address (not a service's name).
pub(crate) fn call_event(
    source: SourceRef,
    format: Format,
    time: String,
    record_id: Option<String>,
    host: Option<String>,
    channel: Option<String>,
    cloud: Cloud,
) -> Event {
    Event {
        channel,
        native_id: cloud.action.clone(),
        record_id,
        time: Some(time),
        host,
        network: cloud
            .caller_ip
            .clone()
            .filter(|c| c.parse::<std::net::IpAddr>().is_ok())
            .map(|ip| Network {
                src_ip: Some(ip),
                ..Default::default()
            }),
        cloud: Some(Box::new(cloud)),
        ..Event::empty(source, format, EventKind::CloudCall)
    }
}

/// Names a value is also kept under, by the dotted path the record gives it.
pub(crate) type Aliases = &'static [(&'static str, &'static str)];

/// Google Cloud audit logs, as Elastic's integration and wrapped exports name their fields.
pub(crate) const GCP: Aliases = &[
    ("protoPayload.methodName", "gcp.audit.method_name"),
    ("protoPayload.serviceName", "gcp.audit.service_name"),
    ("protoPayload.resourceName", "gcp.audit.resource_name"),
    (
        "protoPayload.authenticationInfo.principalEmail",
        "gcp.audit.authentication_info.principal_email",
    ),
];

/// Entra ID's logs as SigmaHQ's Azure rules name their fields, whichever shape the record has:
/// Log Analytics' column names for the diagnostic export's members and back, and the activity
/// under `properties.message`.
pub(crate) const ENTRA: Aliases = &[
    ("operationName", "OperationName"),
    ("operationName", "properties.message"),
    ("OperationName", "operationName"),
    ("OperationName", "properties.message"),
    ("properties.activityDisplayName", "properties.message"),
    ("resultType", "ResultType"),
    ("ResultType", "resultType"),
    ("resultDescription", "ResultDescription"),
    ("ResultDescription", "resultDescription"),
    ("category", "Category"),
    ("Category", "category"),
    ("properties.loggedByService", "LoggedByService"),
    (
        "properties.authenticationRequirement",
        "AuthenticationRequirement",
    ),
    (
        "AuthenticationRequirement",
        "properties.authenticationRequirement",
    ),
    ("properties.userAgent", "userAgent"),
    ("UserAgent", "userAgent"),
    ("properties.riskState", "RiskState"),
    (
        "properties.deviceDetail.trustType",
        "DeviceDetail.trusttype",
    ),
];

/// The Activity Log as SigmaHQ's Azure rules name its fields, whichever shape the record has.
pub(crate) const ACTIVITY: Aliases = &[
    ("OperationNameValue", "operationName"),
    ("operationName", "OperationNameValue"),
    ("operationName", "properties.message"),
    ("category", "CategoryValue"),
    ("CategoryValue", "category"),
    ("resourceProviderName", "ResourceProviderValue"),
    ("ResourceProviderValue", "resourceProviderName"),
    ("resourceId", "ResourceId"),
    ("ResourceId", "resourceId"),
];

/// Keeps what `fields` asks for of `v` in `e.fields`; values under names no rule reads go under
/// [`Sym::ANY`] when keyword rules are loaded. `data_prefix`: also answer `data.` + each path
/// (exports that wrap the entry in `data`).
pub(crate) fn keep(
    e: &mut Event,
    v: &Map<'_>,
    fields: &FieldSet,
    aliases: Aliases,
    data_prefix: bool,
) {
    if fields.is_empty() {
        return;
    }
    let mut push = |name: &str, value: String| {
        let mut kept = false;
        if let Some(s) = fields.get(name) {
            e.fields.push((s, value.clone()));
            kept = true;
        }
        if data_prefix {
            if let Some(s) = fields.get(&format!("data.{name}")) {
                e.fields.push((s, value.clone()));
                kept = true;
            }
        }
        for (from, to) in aliases {
            if *from == name {
                if let Some(s) = fields.get(to) {
                    e.fields.push((s, value.clone()));
                    kept = true;
                }
            }
        }
        if !kept && fields.keywords() {
            e.fields.push((Sym::ANY, value));
        }
    };
    walk(v, "", 0, fields, &mut push);
}

fn walk(
    m: &Map<'_>,
    prefix: &str,
    depth: u8,
    fields: &FieldSet,
    push: &mut dyn FnMut(&str, String),
) {
    for (k, v) in m.iter() {
        let name = if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(o) => {
                if fields.get(&name).is_some() {
                    // Azure's `{"value": …}` reads as its value; any other object as its JSON.
                    match o.get("value").and_then(Value::as_str) {
                        Some(text) => push(&name, text.to_owned()),
                        None => push(&name, json_text(v)),
                    }
                }
                if depth < 8 {
                    walk(o, &name, depth + 1, fields, push);
                }
            }
            Value::Array(items) => {
                for x in items {
                    match x {
                        Value::Object(o) if depth < 8 => walk(o, &name, depth + 1, fields, push),
                        Value::Object(_) | Value::Array(_) | Value::Null => {}
                        x => push(&name, scalar(x)),
                    }
                }
            }
            Value::Null => {}
            x => push(&name, scalar(x)),
        }
    }
}

fn scalar(v: &Value<'_>) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// A value as compact JSON text.
fn json_text(v: &Value<'_>) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value<'_>, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&serde_json::to_string(&**s).unwrap_or_default()),
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                write_json(x, out);
            }
            out.push('}');
        }
    }
}
