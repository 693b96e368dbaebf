//! **IMDS-008 — Container or pod reaching the node's metadata service.**
//!
//! *What.* A process in a container or Kubernetes pod (the record carries container or pod
//! context) that reaches or references the metadata service of the node it runs on.
//!
//! *Why.* A pod that reads the node's metadata gets the node's role, which is usually far broader
//! than the workload's (EKS node roles, GKE node service accounts): the classic container escape
//! to the cloud (Peirates, Hildegard, TeamTNT). Workloads should use their own identity (IRSA, EKS
//! Pod Identity, GKE Workload Identity), and a hop limit of 1 or a network policy should keep pods
//! from the node's endpoint.
//!
//! *False positives.* Node-level add-ons that run as pods and read the node's metadata (the VPC
//! CNI's `aws-node`, the EBS CSI driver, kube2iam/kiam): they are allowlisted by path.
//!
//! *ATT&CK.* T1552.005, T1611 (Escape to Host).

use imdsguard_event::Severity;
use imdsguard_rules::{Expr, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![has_target(), in_container(), not_agent()]);
    let b = Rule::documented(include_str!("imds_008_container.rs"), Severity::Medium, when)
    .attack("T1552.005")
    .attack("T1611")
    .reason("{process.name} runs in container {container.id} and reached the node's metadata service at {target.endpoint}.")
    .reason("A process in container {container.pod} reached the node's metadata service at {target.endpoint}.")
    .reason_if(!imdsguard_rules::on(imdsguard_rules::Field::ProcessName).exists(), "The process in the container is not named by the record.")
    .reason("{container.image} is the container image.");
    finish(standard_reasons(b).escalate(
        credentials(),
        Severity::High,
        "The path hands out the node's credentials, usually broader than the workload's own.",
    ))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"node1"},"container":{"id":"4f1c2a","image":{"name":"shop/api:1.2"}},"process":{"executable":"/usr/bin/python3","command_line":"python3 /app/job.py"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"node1"},"kubernetes":{"pod":{"name":"debug-7f9"},"namespace":"default"},"process":{"executable":"/usr/bin/curl","command_line":"curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/"}}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"node1"},"container":{"id":"4f1c2a"},"process":{"executable":"/usr/bin/python3","command_line":"python3 /app/job.py"},"destination":{"ip":"10.0.0.9","port":5432}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"node1"},"container":{"id":"aa11"},"process":{"executable":"/app/aws-k8s-agent"},"destination":{"ip":"169.254.169.254","port":80}}"#,
];
