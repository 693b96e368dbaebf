//! Google Cloud Audit Logs (`protoPayload` of type `google.cloud.audit.AuditLog`), as Cloud
//! Logging exports them (sinks to Cloud Storage, BigQuery's JSON, `gcloud logging read
//! --format=json`): `protoPayload.serviceName`, `methodName`,
//! `authenticationInfo.principalEmail`, `requestMetadata.callerIp` (an address, or `private` /
//! `gce-internal-ip` for calls from inside Google's network), `requestMetadata.callerNetwork`
//! (the VPC a call came from), `status` (an error when its code is not 0).
//!
//! A call made with a VM's service account names the account, not the VM: the inventory says
//! which instances hand that account out.

use imdsguard_event::{Cloud, Event, Format, Principal, SourceRef};

use super::{Decoding, JsonDecoder, Skip};
use crate::fields::{object, Fields};
use crate::json::Map;

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::GcpAudit,
    sniff,
    decode,
};

/// A LogEntry whose payload is an audit log.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    object(v, &["protoPayload"])
        .and_then(|p| p.get("@type"))
        .and_then(|t| t.as_str())
        .is_some_and(|t| t.ends_with("google.cloud.audit.AuditLog"))
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let p = object(v, &["protoPayload"]).ok_or_else(|| super::missing("protoPayload"))?;
    let time = v
        .text(&["timestamp", "receiveTimestamp"])
        .ok_or_else(|| super::missing("timestamp"))?;
    let action = p
        .text(&["methodName"])
        .ok_or_else(|| super::missing("protoPayload.methodName"))?;
    let auth = object(p, &["authenticationInfo"]);
    let meta = object(p, &["requestMetadata"]);
    let principal = auth.and_then(|a| a.text(&["principalEmail", "principalSubject"]));
    let principal_type = principal.as_deref().map(|e| {
        if e.ends_with(".gserviceaccount.com") {
            Principal::Workload
        } else if e.contains('@') {
            Principal::User
        } else {
            Principal::Other
        }
    });
    let caller_ip = meta.and_then(|m| m.text(&["callerIp"]));
    let error = object(p, &["status"]).and_then(|s| {
        let code = s.number(&["code"]).unwrap_or(0);
        (code != 0).then(|| {
            s.text(&["message"])
                .unwrap_or_else(|| format!("status {code}"))
        })
    });
    let labels = object(v, &["resource", "labels"]);
    let cloud = Cloud {
        provider: "gcp",
        service: p.text(&["serviceName"]),
        action: Some(action.clone()),
        caller_ip,
        user_agent: meta.and_then(|m| m.text(&["callerSuppliedUserAgent"])),
        principal_type,
        principal,
        role: None,
        session: None,
        instance: None,
        access_key: None,
        delivery: None,
        invoked_by: None,
        vpc_endpoint: meta.and_then(|m| m.text(&["callerNetwork"])),
        error,
        account: labels.and_then(|l| l.text(&["project_id"])),
        region: labels.and_then(|l| l.text(&["location", "zone", "region"])),
        metadata_options: None,
        issued: None,
    };
    let mut e = super::cloud_fields::call_event(
        source,
        Format::GcpAudit,
        time,
        v.text(&["insertId"]),
        None,
        None,
        cloud,
    );
    super::cloud_fields::keep(&mut e, v, how.fields, super::cloud_fields::GCP, true);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;
    use imdsguard_event::Position;

    #[test]
    fn a_service_account_s_call_names_the_account_and_the_caller() {
        let line = r#"{"insertId":"x1","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access","protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{"code":7,"message":"PERMISSION_DENIED"},"authenticationInfo":{"principalEmail":"123-compute@developer.gserviceaccount.com"},"requestMetadata":{"callerIp":"198.51.100.23","callerSuppliedUserAgent":"gcloud/460.0.0"},"serviceName":"storage.googleapis.com","methodName":"storage.objects.list"},"resource":{"type":"gcs_bucket","labels":{"project_id":"p","location":"us"}},"timestamp":"2026-11-20T09:00:00.1Z"}"#;
        let v: Value = serde_json::from_str(line).unwrap();
        let m = v.as_object().unwrap();
        assert!(sniff(m));
        let fields = imdsguard_event::FieldSet::default();
        let e = decode(
            m,
            SourceRef {
                path: "g.json".into(),
                position: Position::Line(1),
            },
            Decoding { fields: &fields },
        )
        .unwrap();
        let c = e.cloud.unwrap();
        assert_eq!(c.principal_type, Some(Principal::Workload));
        assert_eq!(c.caller_ip.as_deref(), Some("198.51.100.23"));
        assert_eq!(c.error.as_deref(), Some("PERMISSION_DENIED"));
        assert_eq!(c.account.as_deref(), Some("p"));
        assert_eq!(e.record_id.as_deref(), Some("x1"));
    }
}
