//! The SOC playbook's four questions and containment for alerts on cloud audit records: the
//! caller is an address and an identity, not a process, and containment acts on the role's
//! sessions and the instance's metadata settings, with the ids the record names.

use std::net::IpAddr;

use imdsguard_event::Cloud;
use imdsguard_rules::{Alert, Containment, Reply, Triage};

use imdsguard_rules::Question;

use crate::triage::Finding;

/// The triage of an alert on a cloud API call.
pub(crate) fn triage(a: &Alert, c: &Cloud) -> Triage {
    let elsewhere = a.rule_id == "IMDS-105" && a.related.is_empty();
    let caller = c.caller_ip.as_deref().unwrap_or("an unrecorded address");
    let external = c
        .caller_ip
        .as_deref()
        .and_then(|s| s.parse::<IpAddr>().ok())
        .is_some_and(crate::triage::is_external);
    let who = c.principal.as_deref().unwrap_or("an unnamed identity");
    let authorized = if elsewhere {
        Finding::escalating(
            Question::Authorized,
            Reply::No,
            format!(
                "Credentials issued to instance {} were used from {caller}, which is not the \
                 instance: only the instance is authorized to use its role's session.",
                c.instance.as_deref().unwrap_or("?")
            ),
            format!("instance credentials used from {caller}"),
        )
    } else {
        Finding::plain(
            Question::Authorized,
            Reply::Unknown,
            format!("{who} made the call from {caller}; whether the change was approved is for its owner to say."),
        )
    };
    let frequency = Finding::plain(
        Question::Frequency,
        Reply::Unknown,
        "A cloud audit record says nothing of the volume of metadata requests; host telemetry or \
         the metadata proxy's audit log does."
            .into(),
    );
    let errors = match &c.error {
        Some(e) => Finding::plain(
            Question::Errors,
            Reply::Yes,
            format!("The call failed with {e}: the identity tried something it may not do."),
        ),
        None => Finding::plain(Question::Errors, Reply::No, "The call succeeded.".into()),
    };
    let ssrf = if elsewhere && external {
        Finding::escalating(
            Question::Ssrf,
            Reply::Yes,
            format!(
                "The instance's credentials came back from {caller}, an outside address: they \
                 left the instance, through the metadata service (server-side request forgery \
                 or code on the host); look for the request on the instance and in its web logs."
            ),
            format!("credentials used from an external address ({caller})"),
        )
    } else {
        Finding::plain(
            Question::Ssrf,
            Reply::Unknown,
            "The cloud audit log does not show how the credentials were read; the instance's web \
             and proxy logs do."
                .into(),
        )
    };
    let findings = [authorized, frequency, errors, ssrf];
    let why: Vec<&str> = findings
        .iter()
        .filter_map(|f| f.escalate_because.as_deref())
        .collect();
    let escalate = !why.is_empty();
    Triage {
        escalate,
        escalate_reason: if escalate {
            format!("Escalate to T2: {}.", why.join("; "))
        } else {
            "The data shows no part of the playbook's escalation rule (authorized, unusual \
             frequency, SSRF)."
                .into()
        },
        questions: findings.into_iter().map(|f| f.answer).collect(),
        containment: containment(a, c, elsewhere),
    }
}

fn containment(a: &Alert, c: &Cloud, elsewhere: bool) -> Vec<Containment> {
    let mut out = Vec::new();
    let role_name = c
        .role
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_owned);
    if elsewhere {
        if let Some(role) = &role_name {
            let now = a.time.as_deref().unwrap_or("TIME-OF-THE-ALERT");
            out.push(Containment {
                action: "Revoke the role's active sessions".into(),
                why: "Deny every session of the role issued before the alert, as the console's \
                      \"Revoke active sessions\" does with the current time: the stolen keys stop \
                      working, and the instance fetches fresh credentials."
                    .into(),
                command: Some(format!(
                    "aws iam put-role-policy --role-name {role} --policy-name AWSRevokeOlderSessions \
                     --policy-document '{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Deny\",\
                     \"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{{\"DateLessThan\":\
                     {{\"aws:TokenIssueTime\":\"{now}\"}}}}}}]}}'"
                )),
            });
        }
        if let Some(key) = &c.access_key {
            out.push(Containment {
                action: "List what the stolen key did".into(),
                why: "Every call made with the key, from every address, is the scope of the \
                      breach (the data read, the resources made)."
                    .into(),
                command: Some(format!(
                    "aws cloudtrail lookup-events --lookup-attributes \
                     AttributeKey=AccessKeyId,AttributeValue={key}"
                )),
            });
        }
    }
    let target = c
        .metadata_options
        .as_ref()
        .and_then(|o| o.target.clone())
        .or_else(|| c.instance.clone());
    match target.as_deref() {
        Some("account default") => out.push(Containment {
            action: "Restore the account's IMDSv2 default".into(),
            why: "New instances in the region get IMDSv2 and a hop limit of 1 again.".into(),
            command: Some(region(
                "aws ec2 modify-instance-metadata-defaults --http-tokens required \
                 --http-put-response-hop-limit 1",
                c,
            )),
        }),
        Some(t) if t.starts_with("i-") => out.push(Containment {
            action: "Enforce IMDSv2 and a hop limit of 1".into(),
            why: "Tokens stop server-side request forgery that cannot send a PUT with headers; a \
                  hop limit of 1 keeps containers and forwarded traffic from getting a token."
                .into(),
            command: Some(region(
                &format!(
                    "aws ec2 modify-instance-metadata-options --instance-id {t} --http-tokens \
                     required --http-put-response-hop-limit 1 --http-endpoint enabled"
                ),
                c,
            )),
        }),
        Some(t) => out.push(Containment {
            action: "Require IMDSv2 in the launch template".into(),
            why: format!("Instances launched from {t} get IMDSv2 and a hop limit of 1."),
            command: Some(region(
                &format!(
                    "aws ec2 create-launch-template-version --launch-template-name {t} \
                     --source-version '$Latest' --launch-template-data \
                     '{{\"MetadataOptions\":{{\"HttpTokens\":\"required\",\"HttpPutResponseHopLimit\":1}}}}'"
                ),
                c,
            )),
        }),
        None => {}
    }
    out
}

fn region(cmd: &str, c: &Cloud) -> String {
    match &c.region {
        Some(r) => format!("{cmd} --region {r}"),
        None => cmd.to_owned(),
    }
}
