//! Azure Activity Log records, in the three shapes they are exported in: diagnostic settings to
//! a storage account or Event Hub (`time`, `operationName`, `callerIpAddress`,
//! `identity.claims`, `resultType`), the REST API and `az monitor activity-log list`
//! (`eventTimestamp`, `operationName.value`, `claims`, `httpRequest.clientIpAddress`,
//! `status.value`), and Log Analytics `AzureActivity` rows (`TimeGenerated`,
//! `OperationNameValue`, `CallerIpAddress`, `Claims` as a JSON string).
//!
//! A call made with a VM's managed identity carries the identity's resource in the token's
//! `xms_mirid` claim: for a system-assigned identity, the VM itself
//! (`…/providers/Microsoft.Compute/virtualMachines/NAME`), which is the instance the call is
//! typed with, as CloudTrail's session name is for an EC2 instance.

use imdsguard_event::{Cloud, Event, Format, Principal, SourceRef};

use super::{Decoding, JsonDecoder, Skip};
use crate::fields::{object, Fields};
use crate::json::{Map, Value};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::AzureActivity,
    sniff,
    decode,
};

/// An Activity Log record in any of its shapes.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    let op = v.get("operationName").is_some() || v.get("OperationNameValue").is_some();
    op && (v.get("callerIpAddress").is_some()
        || v.get("CallerIpAddress").is_some()
        || v.get("claims").is_some()
        || object(v, &["identity", "claims"]).is_some()
        || v.get("Claims").is_some())
}

/// A member that is text, or the `value` of an object (`{"value": …, "localizedValue": …}`).
fn text_or_value(v: &Map<'_>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match v.get(n)? {
        Value::Object(o) => o.text(&["value"]),
        _ => v.text(&[n]),
    })
}

/// The managed identity's resource id when it is a VM's (or a scale set's) own identity.
fn vm_of(mirid: &str) -> Option<&str> {
    let lower = mirid.to_ascii_lowercase();
    (lower.contains("/providers/microsoft.compute/virtualmachines/")
        || lower.contains("/providers/microsoft.compute/virtualmachinescalesets/"))
    .then_some(mirid)
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let time = v
        .text(&["time", "eventTimestamp", "TimeGenerated"])
        .ok_or_else(|| super::missing("time"))?;
    let action = text_or_value(v, &["operationName", "OperationNameValue"])
        .ok_or_else(|| super::missing("operationName"))?;
    // The token's claims: an object, or Log Analytics' JSON string.
    let claims: Option<&Map<'_>> =
        object(v, &["identity", "claims"]).or_else(|| object(v, &["claims"]));
    // Log Analytics' Claims string, read into a map of its own.
    let string_claims: Option<serde_json::Value> = if claims.is_none() {
        v.text(&["Claims"])
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
    } else {
        None
    };
    let claim = |name: &str| -> Option<String> {
        match claims {
            Some(c) => c.text(&[name]),
            None => string_claims
                .as_ref()
                .and_then(|c| c.get(name))
                .and_then(|x| x.as_str())
                .map(str::to_owned)
                .filter(|s| !s.is_empty()),
        }
    };
    let mirid = claim("xms_mirid");
    let instance = mirid.as_deref().and_then(vm_of).map(str::to_owned);
    let upn = claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")
        .or_else(|| claim("upn"))
        .or_else(|| claim("unique_name"));
    let principal_type = if mirid.is_some() {
        Principal::Workload
    } else if upn.is_some() {
        Principal::User
    } else {
        Principal::Other
    };
    let caller_ip = v
        .text(&["callerIpAddress", "CallerIpAddress"])
        .or_else(|| object(v, &["httpRequest"]).and_then(|h| h.text(&["clientIpAddress"])));
    let result = text_or_value(v, &["resultType", "status", "ActivityStatusValue"]);
    let failed = result
        .as_deref()
        .is_some_and(|r| r.eq_ignore_ascii_case("failure") || r.eq_ignore_ascii_case("failed"));
    let error = failed.then(|| {
        text_or_value(
            v,
            &["resultSignature", "subStatus", "ActivitySubstatusValue"],
        )
        .unwrap_or_else(|| "Failed".to_owned())
    });
    let resource = v.text(&["resourceId", "ResourceId", "_ResourceId"]);
    let account = v.text(&["subscriptionId", "SubscriptionId"]).or_else(|| {
        resource.as_deref().and_then(|r| {
            let mut parts = r.split('/');
            parts
                .by_ref()
                .find(|p| p.eq_ignore_ascii_case("subscriptions"))?;
            parts.next().map(str::to_owned)
        })
    });
    let service = text_or_value(v, &["resourceProviderName", "ResourceProviderValue"])
        .or_else(|| action.split('/').next().map(str::to_owned));
    let host = instance
        .as_deref()
        .and_then(|m| m.rsplit('/').next())
        .map(str::to_owned);
    let cloud = Cloud {
        provider: "azure",
        service,
        action: Some(action.clone()),
        caller_ip,
        user_agent: None,
        principal_type: Some(principal_type),
        principal: v
            .text(&["caller", "Caller"])
            .or_else(|| upn.clone())
            .or_else(|| claim("http://schemas.microsoft.com/identity/claims/objectidentifier")),
        role: mirid.clone().filter(|_| instance.is_none()),
        session: None,
        instance,
        access_key: claim("uti"),
        delivery: None,
        invoked_by: None,
        vpc_endpoint: None,
        error,
        account,
        region: v.text(&["location", "Location"]),
        metadata_options: None,
        issued: None,
    };
    let mut e = super::cloud_fields::call_event(
        source,
        Format::AzureActivity,
        time,
        v.text(&[
            "eventDataId",
            "EventDataId",
            "correlationId",
            "CorrelationId",
        ]),
        host,
        None,
        cloud,
    );
    super::cloud_fields::keep(&mut e, v, how.fields, super::cloud_fields::ACTIVITY, false);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::Position;

    fn read(line: &str) -> Event {
        let v: Value = serde_json::from_str(line).unwrap();
        let fields = imdsguard_event::FieldSet::default();
        let m = v.as_object().unwrap();
        assert!(sniff(m));
        decode(
            m,
            SourceRef {
                path: "a.json".into(),
                position: Position::Line(1),
            },
            Decoding { fields: &fields },
        )
        .unwrap()
    }

    const VM: &str =
        "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web1";

    #[test]
    fn a_vm_s_managed_identity_names_the_vm_in_every_shape() {
        let diag = format!(
            r#"{{"time":"2026-11-20T09:00:00Z","resourceId":"/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.STORAGE/STORAGEACCOUNTS/DATA","operationName":"MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION","category":"Administrative","resultType":"Success","callerIpAddress":"198.51.100.23","identity":{{"claims":{{"xms_mirid":"{VM}","idtyp":"app","uti":"u1"}}}},"location":"westeurope"}}"#
        );
        let rest = format!(
            r#"{{"eventTimestamp":"2026-11-20T09:00:00Z","operationName":{{"value":"Microsoft.Storage/storageAccounts/listKeys/action"}},"caller":"p-1","claims":{{"xms_mirid":"{VM}"}},"httpRequest":{{"clientIpAddress":"198.51.100.23"}},"status":{{"value":"Failed"}},"subStatus":{{"value":"Forbidden"}}}}"#
        );
        let la = format!(
            r#"{{"TimeGenerated":"2026-11-20T09:00:00Z","OperationNameValue":"MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION","CallerIpAddress":"198.51.100.23","Caller":"p-1","Claims":"{{\"xms_mirid\":\"{VM}\"}}","ActivityStatusValue":"Success"}}"#
        );
        for (line, failed) in [(diag, false), (rest, true), (la, false)] {
            let e = read(&line);
            let c = e.cloud.as_deref().unwrap();
            assert_eq!(c.instance.as_deref(), Some(VM), "{line}");
            assert_eq!(e.host.as_deref(), Some("web1"));
            assert_eq!(c.principal_type, Some(Principal::Workload));
            assert_eq!(c.caller_ip.as_deref(), Some("198.51.100.23"));
            assert_eq!(c.error.is_some(), failed, "{line}");
        }
    }

    #[test]
    fn a_user_s_call_names_no_instance() {
        let e = read(
            r#"{"time":"2026-11-20T09:00:00Z","operationName":"MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE","callerIpAddress":"203.0.113.5","identity":{"claims":{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"alice@example.com"}},"resultType":"Success"}"#,
        );
        let c = e.cloud.unwrap();
        assert_eq!(c.instance, None);
        assert_eq!(c.principal_type, Some(Principal::User));
        assert_eq!(c.principal.as_deref(), Some("alice@example.com"));
    }
}
