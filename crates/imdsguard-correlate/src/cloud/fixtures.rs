//! The cloud correlations' positive and negative timelines: CloudTrail records as AWS writes
//! them, read by the real decoder and enriched by the real enrich stage.

use std::sync::Arc;

use imdsguard_enrich::Enricher;
use imdsguard_event::{parse_time_ms, Instance, Inventory};
use imdsguard_parse::{read_reader, ReadOptions, Summary};
use imdsguard_rules::Alert;

use super::*;

const INSTANCE: &str = "i-0a1b2c3d4e5f60718";

/// A call by the instance's role session at `secs` past 09:00 from `ip`, delivered over
/// IMDS`delivery`.
fn call(secs: u32, action: &str, ip: &str, delivery: &str) -> String {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLEROLEID:{INSTANCE}"),
            "arn": format!("arn:aws:sts::111122223333:assumed-role/web-role/{INSTANCE}"),
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLEKEY000001",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/web-role"},
                "ec2RoleDelivery": delivery,
            },
        },
        "eventTime": format!("2026-11-20T09:{:02}:{:02}Z", secs / 60, secs % 60),
        "eventSource": "s3.amazonaws.com",
        "eventName": action,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.0 Python/3.11 Darwin/23.1.0",
        "eventID": format!("ev-{secs}"),
        "recipientAccountId": "111122223333",
    })
    .to_string()
}

fn inventory() -> Arc<Inventory> {
    Arc::new(Inventory::new(vec![
        Instance {
            provider: "aws",
            id: INSTANCE.into(),
            host: Some("ip-10-0-1-5.ec2.internal".into()),
            private_ips: vec!["10.0.1.5".parse().unwrap()],
            public_ips: vec!["3.80.1.2".parse().unwrap()],
            http_tokens: Some("optional".into()),
            ..Default::default()
        },
        Instance {
            provider: "aws",
            id: "i-0ffffffffffffffff".into(),
            private_ips: vec!["10.0.2.9".parse().unwrap()],
            ..Default::default()
        },
    ]))
}

fn raised(lines: &[String], inv: Arc<Inventory>) -> Vec<Alert> {
    let doc = lines.join("\n");
    let mut events = Vec::new();
    let mut summary = Summary::default();
    read_reader(
        "timeline",
        &mut doc.as_bytes(),
        &ReadOptions::default(),
        &mut summary,
        &mut |e| events.push(e),
    );
    assert_eq!(events.len(), lines.len(), "{:?}", summary.first_skips);
    let enricher = Enricher::builtin();
    let mut cloud = Cloud::new(inv, 1000);
    let mut out = Vec::new();
    for e in &events {
        let ev = enricher.enrich(e);
        let t = parse_time_ms(e.time.as_deref().unwrap()).unwrap();
        if let Some(u) = CloudUse::of(&ev, t) {
            out.extend(cloud.push(&u));
        }
    }
    out
}

fn of<'a>(alerts: &'a [Alert], id: &str) -> Vec<&'a Alert> {
    alerts.iter().filter(|a| a.rule_id == id).collect()
}

#[test]
fn credentials_used_outside_the_listed_instance_are_critical_and_the_use_that_follows_joins() {
    let lines = vec![
        call(0, "ListBuckets", "3.80.1.2", "2.0"),
        call(10, "ListBuckets", "198.51.100.23", "2.0"),
        call(20, "ListObjects", "198.51.100.23", "2.0"),
        call(30, "ListObjects", "198.51.100.23", "2.0"),
        call(40, "GetObject", "198.51.100.23", "2.0"),
    ];
    let alerts = raised(&lines, inventory());
    let found = of(&alerts, "IMDS-105");
    let sev: Vec<Severity> = found.iter().map(|a| a.severity).collect();
    assert_eq!(sev, [Severity::Critical, Severity::Low, Severity::Low]);
    assert_eq!(found[1].related, vec![found[0].id.clone()]);
    // Named as the inventory names the host, so host telemetry joins the same incident.
    assert_eq!(found[0].host.as_deref(), Some("ip-10-0-1-5.ec2.internal"));
    assert!(
        found[0].reasons[1].contains("3.80.1.2"),
        "{:?}",
        found[0].reasons
    );
    insta::assert_json_snapshot!("IMDS-105", found[0]);
}

#[test]
fn the_instance_s_own_addresses_services_and_other_instances_are_told_apart() {
    // Only its own addresses, and a service acting on its behalf: nothing.
    let mut own = vec![
        call(0, "ListBuckets", "3.80.1.2", "2.0"),
        call(5, "ListBuckets", "10.0.1.5", "2.0"),
    ];
    let mut by_service: serde_json::Value =
        serde_json::from_str(&call(6, "GetObject", "203.0.113.9", "2.0")).unwrap();
    by_service["userIdentity"]["invokedBy"] = "athena.amazonaws.com".into();
    own.push(by_service.to_string());
    own.push(call(7, "GetObject", "athena.amazonaws.com", "2.0"));
    assert!(of(&raised(&own, inventory()), "IMDS-105").is_empty());
    // From another listed instance: high, naming it.
    let moved = vec![call(0, "ListBuckets", "10.0.2.9", "2.0")];
    let a = raised(&moved, inventory());
    let found = of(&a, "IMDS-105");
    assert_eq!(found[0].severity, Severity::High);
    assert!(found[0].reasons[1].contains("i-0ffffffffffffffff"));
}

#[test]
fn without_an_inventory_a_second_address_is_reported_with_the_first() {
    let lines = vec![
        call(0, "ListBuckets", "3.80.1.2", "2.0"),
        call(1, "ListBuckets", "3.80.1.2", "2.0"),
        call(10, "GetCallerIdentity", "198.51.100.23", "2.0"),
    ];
    let alerts = raised(&lines, Arc::default());
    let found = of(&alerts, "IMDS-105");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::High);
    assert!(found[0].reasons[1].contains("came from 3.80.1.2 first"));
    // One address only: nothing to compare with.
    let one = vec![call(0, "ListBuckets", "198.51.100.23", "1.0")];
    assert!(of(&raised(&one, Arc::default()), "IMDS-105").is_empty());
}

#[test]
fn imdsv1_delivery_is_one_finding_per_instance_and_role() {
    let lines = vec![
        call(0, "ListBuckets", "3.80.1.2", "1.0"),
        call(1, "ListObjects", "3.80.1.2", "1.0"),
        call(2, "GetObject", "3.80.1.2", "1.0"),
    ];
    let alerts = raised(&lines, inventory());
    let found = of(&alerts, "IMDS-106");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Low);
    assert!(found[0]
        .reasons
        .iter()
        .any(|r| r.contains("--http-tokens required")));
    assert!(found[0]
        .reasons
        .iter()
        .any(|r| r.contains("confirms HttpTokens optional")));
    insta::assert_json_snapshot!("IMDS-106", found[0]);
    // IMDSv2 delivery: nothing.
    let v2 = vec![call(0, "ListBuckets", "3.80.1.2", "2.0")];
    assert!(of(&raised(&v2, inventory()), "IMDS-106").is_empty());
}

#[test]
fn each_cloud_correlation_is_documented_in_its_own_file() {
    for (i, m) in RULES.iter().enumerate() {
        let doc = m.doc();
        assert_eq!(doc.id, format!("IMDS-{}", 105 + i));
        assert!(
            doc.techniques().iter().any(|t| t == "T1552.005"),
            "{}",
            doc.id
        );
    }
}

#[test]
fn an_azure_vm_s_managed_identity_and_a_google_service_account_are_followed_too() {
    let vm =
        "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web1";
    let az = |secs: u32, ip: &str| {
        serde_json::json!({
            "time": format!("2026-11-20T09:00:{secs:02}Z"),
            "operationName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
            "category": "Administrative", "resultType": "Success",
            "callerIpAddress": ip,
            "identity": {"claims": {"xms_mirid": vm, "idtyp": "app"}},
            "correlationId": format!("c{secs}"),
        })
        .to_string()
    };
    let gcp = |secs: u32, ip: &str| {
        serde_json::json!({
            "insertId": format!("g{secs}"),
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "authenticationInfo": {"principalEmail": "web@p.iam.gserviceaccount.com"},
                "requestMetadata": {"callerIp": ip},
                "serviceName": "storage.googleapis.com", "methodName": "storage.objects.get",
            },
            "timestamp": format!("2026-11-20T09:00:{secs:02}Z"),
        })
        .to_string()
    };
    let inv = Arc::new(Inventory::new(vec![
        Instance {
            provider: "azure",
            id: vm.to_lowercase(),
            host: Some("web1".into()),
            private_ips: vec!["10.1.0.4".parse().unwrap()],
            public_ips: vec!["20.1.2.3".parse().unwrap()],
            ..Default::default()
        },
        Instance {
            provider: "gcp",
            id: "123".into(),
            host: Some("gce-web".into()),
            private_ips: vec!["10.128.0.2".parse().unwrap()],
            public_ips: vec!["34.1.2.3".parse().unwrap()],
            identity: Some("web@p.iam.gserviceaccount.com".into()),
            ..Default::default()
        },
    ]));
    let lines = vec![
        az(0, "20.1.2.3"),
        az(1, "198.51.100.23"),
        gcp(2, "34.1.2.3"),
        gcp(3, "private"),
        gcp(4, "198.51.100.24"),
    ];
    let alerts = raised(&lines, inv);
    let found = of(&alerts, "IMDS-105");
    let got: Vec<(&str, Severity)> = found
        .iter()
        .map(|a| (a.host.as_deref().unwrap_or(""), a.severity))
        .collect();
    // The VM's identity is proven by its token: critical. A service account may be another
    // workload's too: high.
    assert_eq!(
        got,
        [("web1", Severity::Critical), ("gce-web", Severity::High)]
    );
}

#[test]
fn a_managed_identity_s_sign_in_from_elsewhere_is_found_through_the_inventory() {
    let sign_in = |secs: u32, ip: &str| {
        serde_json::json!({
            "TimeGenerated": format!("2026-11-20T09:00:{secs:02}Z"), "OperationName": "Sign-in activity",
            "Category": "ManagedIdentitySignInLogs", "ResultType": "0", "ServicePrincipalId": "p-1",
            "IPAddress": ip, "ResourceDisplayName": "Azure Key Vault", "Type": "AADManagedIdentitySignInLogs",
        })
        .to_string()
    };
    let inv = Arc::new(Inventory::new(vec![Instance {
        provider: "azure",
        id: "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web1"
            .into(),
        host: Some("web1".into()),
        private_ips: vec!["10.1.0.4".parse().unwrap()],
        public_ips: vec!["20.1.2.3".parse().unwrap()],
        identity: Some("p-1".into()),
        ..Default::default()
    }]));
    let alerts = raised(&[sign_in(0, "20.1.2.3"), sign_in(5, "198.51.100.23")], inv);
    let found = of(&alerts, "IMDS-105");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].host.as_deref(), Some("web1"));
    assert_eq!(found[0].severity, Severity::High);
    // Without the inventory a workload identity may be any workload's: nothing.
    let alerts = raised(
        &[sign_in(0, "20.1.2.3"), sign_in(5, "198.51.100.23")],
        Arc::default(),
    );
    assert!(of(&alerts, "IMDS-105").is_empty());
}

#[test]
fn a_call_through_a_vpc_endpoint_is_elsewhere_only_from_another_listed_instance() {
    let via_endpoint = |secs: u32, ip: &str| {
        let mut v: serde_json::Value =
            serde_json::from_str(&call(secs, "GetObject", ip, "2.0")).unwrap();
        v["vpcEndpointId"] = "vpce-0a1b2c3d".into();
        v.to_string()
    };
    // Its own public address first, then the endpoint from a private address: its own way in.
    let lines = vec![
        call(0, "ListBuckets", "3.80.1.2", "2.0"),
        via_endpoint(5, "10.0.9.9"),
    ];
    assert!(of(&raised(&lines, Arc::default()), "IMDS-105").is_empty());
    assert!(of(&raised(&lines, inventory()), "IMDS-105").is_empty());
    // Through the endpoint from another listed instance's address: moved there.
    let moved = vec![via_endpoint(0, "10.0.2.9")];
    let a = raised(&moved, inventory());
    let found = of(&a, "IMDS-105");
    assert_eq!(found.len(), 1);
    assert!(found[0].reasons.iter().any(|r| r.contains("VPC endpoint")));
}
