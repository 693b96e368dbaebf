//! **IMDS-013 — Instance metadata protection weakened.**
//!
//! *What.* A successful cloud API call that sets instance metadata options weaker than the
//! hardened ones: `HttpTokens` `optional` (IMDSv1 allowed again), `HttpPutResponseHopLimit`
//! above 1 (the token answer reaches containers and forwarded hops), or `HttpEndpoint`
//! `enabled` after it was turned off — by `ModifyInstanceMetadataOptions` on an instance,
//! `ModifyInstanceMetadataDefaults` for the account's region, or `RunInstances`,
//! `CreateLaunchTemplate`, `CreateLaunchTemplateVersion` and `ModifyLaunchTemplate` for the
//! instances they launch. Settings that harden (`required`, a hop limit of 1) raise nothing;
//! calls that failed raise nothing.
//!
//! *Why.* AWS's guidance and MITRE ATT&CK's T1552.005 mitigations name IMDSv2 and a hop limit of
//! 1 as what stops server-side request forgery and containers from reading an instance's role
//! credentials. Turning them back is what an intruder does before stealing credentials through a
//! web application, and what a rushed fix for an old SDK does. High for an account default
//! (every new instance) and for a change made with an instance's own role credentials.
//!
//! *False positives.* Infrastructure code that still launches instances with IMDSv1 for old
//! agents; container hosts that need a hop limit of 2 (EKS nodes whose pods use the node's
//! role). Fix the template rather than allowlist it.
//!
//! *ATT&CK.* T1562.001 (Impair Defenses: Disable or Modify Tools), T1552.005.

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![
        on(Field::EventKind).is("cloud-call"),
        on(Field::CloudImdsWeakened).exists(),
        !on(Field::CloudError).exists(),
    ]);
    let b = Rule::documented(
        include_str!("imds_013_metadata_protection_weakened.rs"),
        Severity::Medium,
        when,
    )
    .attack("T1562.001")
    .attack("T1552.005")
    .reason("{cloud.principal} called {cloud.action} from {cloud.caller_ip}, setting instance metadata options for {cloud.imds_target} that weaken protection ({cloud.imds_weakened}).")
    .reason_if(
        on(Field::CloudImdsWeakened).is("imdsv1-allowed"),
        "HttpTokens {cloud.imds_tokens}: IMDSv1 is allowed, so a server-side request forgery that can only make a GET reads the role's credentials.",
    )
    .reason_if(
        on(Field::CloudImdsWeakened).is("hop-limit-raised"),
        "Hop limit {cloud.imds_hop_limit}: the IMDSv2 token answer travels past the instance, to containers and forwarded hops.",
    )
    .reason_if(
        on(Field::CloudImdsWeakened).is("endpoint-enabled"),
        "The metadata endpoint is turned on.",
    )
    .escalate(
        on(Field::CloudImdsTarget).is("account default"),
        Severity::High,
        "The account's default for the region changed: every instance launched from now on gets it.",
    )
    .escalate(
        on(Field::CloudInstance).exists(),
        Severity::High,
        "The call was made with instance {cloud.instance}'s role credentials: a workload, or whoever holds its credentials, weakened the service that hands them out.",
    );
    finish(b)
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    // IMDSv1 allowed again and the hop limit raised on one instance.
    r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ops","accountId":"111122223333"},"eventTime":"2026-11-03T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"ModifyInstanceMetadataOptions","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.0","requestParameters":{"ModifyInstanceMetadataOptionsRequest":{"InstanceId":"i-0123456789abcdef0","HttpTokens":"optional","HttpPutResponseHopLimit":3}},"responseElements":{"ModifyInstanceMetadataOptionsResponse":{"instanceId":"i-0123456789abcdef0"}},"eventID":"a1","eventType":"AwsApiCall","recipientAccountId":"111122223333"}"#,
    // The account default for the region.
    r#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Admin/ops","accountId":"111122223333"},"eventTime":"2026-11-03T10:05:00Z","eventSource":"ec2.amazonaws.com","eventName":"ModifyInstanceMetadataDefaults","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","requestParameters":{"ModifyInstanceMetadataDefaultsRequest":{"HttpTokens":"optional"}},"eventID":"a2","recipientAccountId":"111122223333"}"#,
    // A launch template that allows IMDSv1.
    r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Deploy/ci"},"eventTime":"2026-11-03T10:06:00Z","eventSource":"ec2.amazonaws.com","eventName":"CreateLaunchTemplateVersion","sourceIPAddress":"203.0.113.10","requestParameters":{"CreateLaunchTemplateVersionRequest":{"LaunchTemplateName":"web","LaunchTemplateData":{"MetadataOptions":{"HttpTokens":"optional"}}}},"eventID":"a3"}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    // Hardening: IMDSv2 required, hop limit 1.
    r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ops"},"eventTime":"2026-11-03T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"ModifyInstanceMetadataOptions","sourceIPAddress":"198.51.100.7","requestParameters":{"ModifyInstanceMetadataOptionsRequest":{"InstanceId":"i-0123456789abcdef0","HttpTokens":"required","HttpPutResponseHopLimit":1}},"eventID":"b1"}"#,
    // The weakening call failed.
    r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ops"},"eventTime":"2026-11-03T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"ModifyInstanceMetadataOptions","sourceIPAddress":"198.51.100.7","errorCode":"Client.UnauthorizedOperation","requestParameters":{"ModifyInstanceMetadataOptionsRequest":{"InstanceId":"i-0123456789abcdef0","HttpTokens":"optional"}},"eventID":"b2"}"#,
    // A launch that sets no metadata options.
    r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/ops"},"eventTime":"2026-11-03T10:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","sourceIPAddress":"198.51.100.7","requestParameters":{"instancesSet":{"items":[{"imageId":"ami-0abc"}]}},"eventID":"b3"}"#,
];
