//! Microsoft Entra ID (Azure AD) sign-in and audit logs: as diagnostic settings write them (a
//! storage account's or Event Hub's records with `category` `SignInLogs`,
//! `NonInteractiveUserSignInLogs`, `ServicePrincipalSignInLogs`, `ManagedIdentitySignInLogs` or
//! `AuditLogs`, the entry under `properties`), and as Log Analytics rows (`SigninLogs`,
//! `AADManagedIdentitySignInLogs`, `AADServicePrincipalSignInLogs`, `AuditLogs`: `TimeGenerated`,
//! `IPAddress`, `ServicePrincipalId`, `InitiatedBy` as JSON text …; `SourceSystem` `Azure AD`).
//!
//! A managed identity's sign-in names the identity (`servicePrincipalId`, the `principalId` that
//! `az vm list -d` gives a VM's identity), so the inventory ties it to its VM; an audit entry names
//! who initiated it (a user or an application) and from where.

use imdsguard_event::{Cloud, Event, Format, Principal, SourceRef};

use super::{Decoding, JsonDecoder, Skip};
use crate::fields::{object, Fields};
use crate::json::Map;

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::AzureEntra,
    sniff,
    decode,
};

const CATEGORIES: [&str; 7] = [
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs",
    "AuditLogs",
    "ProvisioningLogs",
    "RiskyUsers",
];

const TABLES: [&str; 5] = [
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs",
    "AuditLogs",
];

/// A sign-in or audit record of Entra ID in either shape.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    let is = |k: &str, set: &[&str]| {
        v.get(k)
            .and_then(|x| x.as_str())
            .is_some_and(|c| set.contains(&c))
    };
    is("category", &CATEGORIES)
        || is("Category", &CATEGORIES)
        || is("Type", &TABLES)
        || (v.get("SourceSystem").and_then(|x| x.as_str()) == Some("Azure AD")
            && (v.contains_key("OperationName") || v.contains_key("ResultType")))
}

/// What the record says: under `properties` (diagnostic shape), else at its top (Log Analytics).
struct Row<'a, 'v> {
    props: Option<&'a Map<'v>>,
    top: &'a Map<'v>,
}

impl Row<'_, '_> {
    fn text(&self, names: &[&str]) -> Option<String> {
        self.props
            .and_then(|p| p.text(names))
            .or_else(|| self.top.text(names))
    }

    /// A member that is an object, or Log Analytics' JSON text of one.
    fn json(&self, names: &[&str]) -> Option<serde_json::Value> {
        for n in names {
            for m in [self.props, Some(self.top)].into_iter().flatten() {
                match m.get(n) {
                    Some(crate::json::Value::String(s)) => {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
                            return Some(v);
                        }
                    }
                    Some(crate::json::Value::Object(_)) => {
                        let o = object(m, &[n])?;
                        let mut out = serde_json::Map::new();
                        for (k, x) in o.iter() {
                            if let Some(s) = x.as_str() {
                                out.insert(k.to_owned(), s.into());
                            } else if let Some(inner) = x.as_object() {
                                let mut im = serde_json::Map::new();
                                for (ik, iv) in inner.iter() {
                                    if let Some(s) = iv.as_str() {
                                        im.insert(ik.to_owned(), s.into());
                                    }
                                }
                                out.insert(k.to_owned(), im.into());
                            }
                        }
                        return Some(out.into());
                    }
                    _ => {}
                }
            }
        }
        None
    }
}

fn s(v: &serde_json::Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    let row = Row {
        props: object(v, &["properties"]),
        top: v,
    };
    let category = v
        .text(&["category", "Category"])
        .or_else(|| v.text(&["Type"]))
        .unwrap_or_default();
    let time = v
        .text(&[
            "time",
            "TimeGenerated",
            "createdDateTime",
            "activityDateTime",
        ])
        .or_else(|| row.text(&["createdDateTime", "activityDateTime"]))
        .ok_or_else(|| super::missing("time"))?;
    let action = row
        .text(&[
            "operationName",
            "OperationName",
            "activityDisplayName",
            "ActivityDisplayName",
        ])
        .or_else(|| v.text(&["operationName", "OperationName"]))
        .unwrap_or_else(|| "Sign-in activity".to_owned());
    let initiated = row.json(&["initiatedBy", "InitiatedBy"]);
    let managed = category.contains("ManagedIdentity");
    let service_principal = row.text(&["servicePrincipalId", "ServicePrincipalId"]);
    let upn = row
        .text(&["userPrincipalName", "UserPrincipalName"])
        .or_else(|| {
            initiated
                .as_ref()
                .and_then(|i| s(i, &["user", "userPrincipalName"]))
        });
    let (principal, principal_type) = if managed {
        (service_principal.clone(), Principal::Workload)
    } else if let Some(u) = upn.clone() {
        (Some(u), Principal::User)
    } else {
        (
            service_principal
                .clone()
                .or_else(|| {
                    initiated
                        .as_ref()
                        .and_then(|i| s(i, &["app", "servicePrincipalId"]))
                })
                .or_else(|| {
                    initiated
                        .as_ref()
                        .and_then(|i| s(i, &["app", "displayName"]))
                }),
            Principal::Other,
        )
    };
    let caller_ip = row
        .text(&["ipAddress", "IPAddress"])
        .or_else(|| v.text(&["callerIpAddress", "CallerIpAddress"]))
        .or_else(|| {
            initiated
                .as_ref()
                .and_then(|i| s(i, &["user", "ipAddress"]))
        })
        .or_else(|| initiated.as_ref().and_then(|i| s(i, &["app", "ipAddress"])));
    let result = v
        .text(&["resultType", "ResultType"])
        .or_else(|| row.text(&["result", "Result"]));
    let status = row.json(&["status", "Status"]);
    let code = status
        .as_ref()
        .and_then(|x| x.get("errorCode"))
        .and_then(|c| {
            c.as_i64()
                .or_else(|| c.as_str().and_then(|t| t.parse().ok()))
        });
    let failed = match (code, result.as_deref()) {
        (Some(c), _) => c != 0,
        (None, Some(r)) => !(r == "0" || r.eq_ignore_ascii_case("success")),
        (None, None) => false,
    };
    let error = failed.then(|| {
        row.text(&[
            "resultDescription",
            "ResultDescription",
            "resultReason",
            "ResultReason",
        ])
        .or_else(|| status.as_ref().and_then(|x| s(x, &["failureReason"])))
        .or(result.clone())
        .unwrap_or_else(|| "failed".to_owned())
    });
    let cloud = Cloud {
        provider: "azure",
        service: Some("Microsoft Entra ID".to_owned()),
        action: Some(action.clone()),
        caller_ip,
        user_agent: row.text(&["userAgent", "UserAgent"]),
        principal_type: Some(principal_type),
        principal,
        role: row.text(&["resourceDisplayName", "ResourceDisplayName"]),
        session: None,
        instance: None,
        access_key: row.text(&["uniqueTokenIdentifier", "UniqueTokenIdentifier"]),
        delivery: None,
        invoked_by: None,
        vpc_endpoint: None,
        error,
        account: v.text(&["tenantId", "TenantId"]),
        region: row.text(&["location", "Location"]),
        metadata_options: None,
        issued: None,
    };
    let mut e = super::cloud_fields::call_event(
        source,
        Format::AzureEntra,
        time,
        row.text(&["id", "Id"]),
        None,
        Some(category).filter(|c| !c.is_empty()),
        cloud,
    );
    super::cloud_fields::keep(&mut e, v, how.fields, super::cloud_fields::ENTRA, false);
    // SigmaHQ's sign-in rules test `Status: Success`, which neither shape writes as text.
    if let Some(sym) = how.fields.get("Status") {
        if v.get("Status").is_none_or(|x| x.as_str().is_none()) {
            let ok = e.cloud.as_ref().is_some_and(|c| c.error.is_none());
            e.fields
                .push((sym, if ok { "Success" } else { "Failure" }.to_owned()));
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Value;
    use imdsguard_event::Position;

    fn read(line: &str) -> Event {
        let v: Value = serde_json::from_str(line).unwrap();
        let m = v.as_object().unwrap();
        assert!(sniff(m), "{line}");
        let fields = imdsguard_event::FieldSet::default();
        decode(
            m,
            SourceRef {
                path: "e.json".into(),
                position: Position::Line(1),
            },
            Decoding { fields: &fields },
        )
        .unwrap()
    }

    #[test]
    fn a_managed_identity_sign_in_names_the_identity_in_both_shapes() {
        for line in [
            r#"{"time":"2026-11-20T09:00:00Z","operationName":"Sign-in activity","category":"ManagedIdentitySignInLogs","resultType":"0","properties":{"id":"s1","servicePrincipalId":"p-1","servicePrincipalName":"web1","ipAddress":"20.1.2.3","resourceDisplayName":"Azure Key Vault","status":{"errorCode":0}}}"#,
            r#"{"TimeGenerated":"2026-11-20T09:00:00Z","OperationName":"Sign-in activity","Category":"ManagedIdentitySignInLogs","ResultType":"0","ServicePrincipalId":"p-1","IPAddress":"20.1.2.3","ResourceDisplayName":"Azure Key Vault","Type":"AADManagedIdentitySignInLogs"}"#,
        ] {
            let e = read(line);
            let c = e.cloud.unwrap();
            assert_eq!(c.principal_type, Some(Principal::Workload));
            assert_eq!(c.principal.as_deref(), Some("p-1"));
            assert_eq!(c.caller_ip.as_deref(), Some("20.1.2.3"));
            assert_eq!(c.role.as_deref(), Some("Azure Key Vault"));
            assert!(c.error.is_none());
        }
    }

    #[test]
    fn an_audit_row_names_its_initiator_and_a_failed_sign_in_its_reason() {
        let e = read(
            r#"{"SourceSystem":"Azure AD","TimeGenerated":"2021-08-02T13:29:25.983Z","OperationName":"Add delegated permission grant","Category":"ApplicationManagement","Result":"success","InitiatedBy":"{\"user\":{\"userPrincipalName\":\"pgustavo@simulandlabs.com\",\"ipAddress\":\"203.0.113.9\"}}","LoggedByService":"Core Directory","Type":"ServicePrincipal"}"#,
        );
        let c = e.cloud.unwrap();
        assert_eq!(c.principal.as_deref(), Some("pgustavo@simulandlabs.com"));
        assert_eq!(c.caller_ip.as_deref(), Some("203.0.113.9"));
        assert!(c.error.is_none());
        let e = read(
            r#"{"time":"2026-11-20T09:00:00Z","operationName":"Sign-in activity","category":"SignInLogs","resultType":"50126","resultDescription":"Invalid username or password","properties":{"userPrincipalName":"bob@example.com","ipAddress":"198.51.100.4","status":{"errorCode":50126,"failureReason":"Invalid username or password"}}}"#,
        );
        let c = e.cloud.unwrap();
        assert_eq!(c.error.as_deref(), Some("Invalid username or password"));
        assert_eq!(c.principal_type, Some(Principal::User));
    }
}
