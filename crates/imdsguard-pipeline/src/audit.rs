//! `imdsguard audit`: the hardening that would have stopped credential theft through the
//! metadata service, instance by instance, each finding with the command that fixes it. From the
//! inventory: instances that still allow IMDSv1, hop limits above 1 (on container hosts the
//! pods reach the node's credentials), the endpoint left on. From the logs when given: roles
//! whose credentials CloudTrail says were delivered over IMDSv1, instance identities never used
//! from their instance, and the hosts, clients and processes still sending IMDSv1 requests (web,
//! proxy and wire logs that record header names; command lines that read the service without a
//! token).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use imdsguard_event::{EventKind, Instance, Severity, SourceRef};
use imdsguard_parse::{ReadOptions, Summary};
use serde::Serialize;

use crate::config::{ReadConfig, ResourceConfig};
use crate::detect::Detector;
use crate::resources::Resources;
use crate::rules::Rules;
use crate::PipelineError;

/// What `audit` reads.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Catalog, allowlist and the inventory files.
    pub resources: ResourceConfig,
    /// Logs to read (CloudTrail, web, proxy, wire and host telemetry); may be empty.
    pub inputs: Vec<PathBuf>,
    /// Reading.
    pub read: ReadConfig,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// The instance accepts IMDSv1 requests (`HttpTokens` optional).
    Imdsv1Allowed,
    /// CloudTrail shows the instance's role credentials delivered over IMDSv1.
    Imdsv1Delivered,
    /// A host, client or process sends IMDSv1 requests.
    Imdsv1Caller,
    /// The IMDSv2 token answer travels more than one hop.
    HopLimit,
    /// The instance has an identity its own calls never used in the logs read.
    UnusedIdentity,
}

impl Check {
    /// The name used in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Imdsv1Allowed => "imdsv1-allowed",
            Check::Imdsv1Delivered => "imdsv1-delivered",
            Check::Imdsv1Caller => "imdsv1-caller",
            Check::HopLimit => "hop-limit",
            Check::UnusedIdentity => "unused-identity",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What is checked.
    pub check: Check,
    /// How much it matters.
    pub severity: Severity,
    /// `aws`, `azure`, `gcp`, or empty when unknown.
    pub provider: &'static str,
    /// The instance, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Its host name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What the finding is about, in a sentence.
    pub detail: String,
    /// Records that show it (up to five).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// The command that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The audit's result.
#[derive(Debug)]
pub struct AuditReport {
    /// The findings, most severe first, then by check and instance.
    pub findings: Vec<Finding>,
    /// Instances the inventory listed.
    pub instances: usize,
    /// Inventory entries not read, with why.
    pub inventory_skipped: Vec<String>,
    /// What reading the logs found and skipped.
    pub summary: Summary,
}

fn region_flag(i: &Instance) -> String {
    // An availability zone (`us-east-1a`) names its region without the last letter.
    match i.region.as_deref() {
        Some(z) if i.provider == "aws" => {
            let b = z.as_bytes();
            let zone = b.len() > 2
                && b[b.len() - 1].is_ascii_lowercase()
                && b[b.len() - 2].is_ascii_digit();
            format!(" --region {}", if zone { &z[..z.len() - 1] } else { z })
        }
        _ => String::new(),
    }
}

/// The inventory's own findings for one instance.
fn inventory_findings(i: &Instance, out: &mut Vec<Finding>) {
    let base = |check, severity, detail: String, fix: Option<String>| Finding {
        check,
        severity,
        provider: i.provider,
        instance: Some(i.id.clone()),
        host: i.host.clone(),
        detail,
        evidence: Vec::new(),
        fix,
    };
    if i.provider != "aws" {
        return;
    }
    let disabled = i
        .endpoint
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case("disabled"));
    if disabled {
        return;
    }
    if i.http_tokens.as_deref() == Some("optional") {
        out.push(base(
            Check::Imdsv1Allowed,
            if i.identity.is_some() {
                Severity::High
            } else {
                Severity::Medium
            },
            match &i.identity {
                Some(p) => format!("HttpTokens optional: any GET, as a server-side request forgery makes, reads the credentials of {p}."),
                None => "HttpTokens optional: any GET reads the instance's metadata and user-data (no instance profile attached).".into(),
            },
            Some(format!(
                "aws ec2 modify-instance-metadata-options --instance-id {} --http-tokens required --http-endpoint enabled{}",
                i.id,
                region_flag(i)
            )),
        ));
    }
    if let Some(h) = i.hop_limit.filter(|h| *h > 1) {
        let ctr = i.container_host;
        out.push(base(
            Check::HopLimit,
            if ctr { Severity::High } else { Severity::Low },
            if ctr {
                format!("Hop limit {h} on a container host: every pod and container reaches the node's metadata service and its role credentials.")
            } else {
                format!("Hop limit {h}: the token answer reaches forwarded hops and containers; nothing on a host that runs no containers needs more than 1.")
            },
            Some(format!(
                "aws ec2 modify-instance-metadata-options --instance-id {} --http-put-response-hop-limit 1{}",
                i.id,
                region_flag(i)
            )),
        ));
    }
}

/// Runs the audit.
pub fn audit(cfg: &AuditConfig) -> Result<AuditReport, PipelineError> {
    // An inventory named among the inputs is used as one.
    let (inputs, found) = imdsguard_parse::inventory::split_inputs(&cfg.inputs);
    let mut resource_cfg = cfg.resources.clone();
    resource_cfg.inventory.extend(found);
    let resources = Resources::load(&resource_cfg)?;
    let inventory = resources.inventory().clone();
    let mut out: Vec<Finding> = Vec::new();
    for i in inventory.instances() {
        inventory_findings(i, &mut out);
    }
    let mut summary = Summary::default();
    if inputs.is_empty() {
        return Ok(finish(
            out,
            inventory.instances().len(),
            &resources,
            summary,
        ));
    }
    let (rules, _) = Rules::load(
        &crate::config::RulesConfig {
            sigma: Vec::new(),
            builtin: true,
            select: Default::default(),
        },
        1,
    )?;
    let normalizer = resources.normalizer();
    let detector = Detector::new(resources.enricher(&normalizer), &rules);
    let opts = ReadOptions {
        format: cfg.read.format,
        fields: rules.record_fields().clone(),
        timezone: cfg.read.timezone.clone(),
        extensions: std::sync::Arc::new(cfg.read.extensions.clone()),
        log_format: cfg.read.log_format.clone(),
        ..ReadOptions::default()
    };
    // Instances whose own sessions made calls; (instance, role) delivered over IMDSv1;
    // IMDSv1 callers by (host or client, process).
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut elsewhere: BTreeMap<String, u64> = BTreeMap::new();
    let mut delivered: BTreeMap<(String, String), Vec<SourceRef>> = BTreeMap::new();
    let mut callers: BTreeMap<(String, String), Vec<SourceRef>> = BTreeMap::new();
    imdsguard_parse::read_inputs(&inputs, &opts, &mut summary, &mut |e| {
        if let Some(c) = e.cloud.as_deref() {
            if let Some(i) = &c.instance {
                let key = i.to_ascii_lowercase();
                let own = c
                    .caller_ip
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .is_some_and(|ip| inventory.by_id(i).is_none_or(|x| x.owns(ip)));
                if own || inventory.by_id(i).is_none() {
                    used.insert(key);
                } else {
                    *elsewhere.entry(key).or_default() += 1;
                }
                if c.delivery.as_deref() == Some("1.0") {
                    delivered
                        .entry((i.clone(), c.role.clone().unwrap_or_default()))
                        .or_default()
                        .push(e.source.clone());
                }
            }
            if c.provider == "gcp" {
                if let Some(p) = &c.principal {
                    used.insert(p.to_ascii_lowercase());
                }
            }
            return;
        }
        let found = detector.observe(&e);
        let Some(obs) = found.obs else {
            return;
        };
        for a in &obs.alerts {
            let is_v1_wire = a.rule_id == "IMDS-012";
            let is_v1_command = a.event.kind == EventKind::ProcessStart
                && a.target
                    .as_ref()
                    .is_some_and(|t| t.provider.as_deref() == Some("aws") && t.method.is_none())
                && a.process.as_ref().is_some_and(|p| {
                    p.command_line.as_deref().is_some_and(|c| {
                        !c.to_ascii_lowercase().contains("x-aws-ec2-metadata-token")
                    })
                });
            if !(is_v1_wire || is_v1_command) {
                continue;
            }
            let who = a
                .host
                .clone()
                .or_else(|| a.http.as_ref().and_then(|h| h.client.clone()))
                .unwrap_or_else(|| "(unnamed)".into());
            let what = a
                .process
                .as_ref()
                .and_then(|p| p.image.clone())
                .or_else(|| {
                    a.http
                        .as_ref()
                        .and_then(|h| h.request.user_agent.clone())
                        .map(|u| format!("user agent {u}"))
                })
                .unwrap_or_default();
            let list = callers.entry((who, what)).or_default();
            if !list.contains(&a.source) {
                list.push(a.source.clone());
            }
        }
    });
    for ((instance, role), seen) in delivered {
        let listed = inventory.by_id(&instance);
        let role = if role.is_empty() {
            "its role".to_owned()
        } else {
            role
        };
        out.push(Finding {
            check: Check::Imdsv1Delivered,
            severity: Severity::Medium,
            provider: "aws",
            host: listed.and_then(|i| i.host.clone()),
            detail: format!(
                "{} calls made with {role}'s credentials that the instance fetched over IMDSv1 (ec2RoleDelivery 1.0).",
                seen.len()
            ),
            evidence: seen.iter().take(5).map(ToString::to_string).collect(),
            fix: Some(format!(
                "aws ec2 modify-instance-metadata-options --instance-id {instance} --http-tokens required --http-endpoint enabled{}",
                listed.map(region_flag).unwrap_or_default()
            )),
            instance: Some(instance),
        });
    }
    for ((who, what), seen) in callers {
        let listed = who
            .parse()
            .ok()
            .and_then(|ip| inventory.by_ip(ip))
            .or_else(|| inventory.by_host(&who));
        let by = if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        };
        out.push(Finding {
            check: Check::Imdsv1Caller,
            severity: Severity::Low,
            provider: "aws",
            instance: listed.map(|i| i.id.clone()),
            host: Some(who.clone()),
            detail: format!(
                "{who}{by} sent {} metadata request(s) without a session token: it breaks when IMDSv2 is required. Upgrade its SDK, or send the token (PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds, then X-aws-ec2-metadata-token on each request).",
                seen.len()
            ),
            evidence: seen.iter().take(5).map(ToString::to_string).collect(),
            fix: Some("TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600'); curl -s -H \"X-aws-ec2-metadata-token: $TOKEN\" http://169.254.169.254/latest/meta-data/".into()),
        });
    }
    // Identities no call of the instance used, when the logs hold cloud calls at all.
    let read_cloud = summary.events.keys().any(|f| {
        matches!(
            f,
            imdsguard_event::Format::AwsCloudTrail
                | imdsguard_event::Format::AzureActivity
                | imdsguard_event::Format::GcpAudit
        )
    });
    if read_cloud {
        for i in inventory.instances() {
            let Some(identity) = &i.identity else {
                continue;
            };
            let key = if i.provider == "gcp" {
                identity.to_ascii_lowercase()
            } else {
                i.id.to_ascii_lowercase()
            };
            if used.contains(&key) {
                continue;
            }
            let detail = match elsewhere.get(&key) {
                Some(n) => format!(
                    "{identity} is attached, and no call in the cloud audit logs read was made with it from the instance, while {n} were made with it from other addresses (see IMDS-105): the instance does not need it, and whoever used it does not own it."
                ),
                None => format!(
                    "{identity} is attached, and no call in the cloud audit logs read was made with it from the instance: credentials there for the taking, used by nothing."
                ),
            };
            let fix = match i.provider {
                "aws" => format!(
                    "aws ec2 disassociate-iam-instance-profile --association-id $(aws ec2 describe-iam-instance-profile-associations --filters Name=instance-id,Values={} --query 'IamInstanceProfileAssociations[0].AssociationId' --output text){}",
                    i.id,
                    region_flag(i)
                ),
                "azure" => format!("az vm identity remove --ids {} --identities [system]", i.id),
                _ => format!(
                    "gcloud compute instances set-service-account {} --no-service-account --no-scopes",
                    i.host.as_deref().unwrap_or(&i.id)
                ),
            };
            out.push(Finding {
                check: Check::UnusedIdentity,
                provider: i.provider,
                instance: Some(i.id.clone()),
                host: i.host.clone(),
                severity: if elsewhere.contains_key(&key) {
                    Severity::High
                } else {
                    Severity::Low
                },
                detail,
                evidence: Vec::new(),
                fix: Some(fix),
            });
        }
    }
    Ok(finish(
        out,
        inventory.instances().len(),
        &resources,
        summary,
    ))
}

fn finish(
    mut out: Vec<Finding>,
    instances: usize,
    resources: &Resources,
    summary: Summary,
) -> AuditReport {
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.check.cmp(&b.check))
            .then(a.instance.cmp(&b.instance))
            .then(a.host.cmp(&b.host))
    });
    AuditReport {
        findings: out,
        instances,
        inventory_skipped: resources.inventory_skipped().to_vec(),
        summary,
    }
}
