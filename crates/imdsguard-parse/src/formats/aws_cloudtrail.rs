//! AWS CloudTrail events, as AWS documents the record (`eventVersion`, `eventTime`,
//! `eventSource`, `eventName`, `userIdentity`, `sourceIPAddress`, `requestParameters` …): one
//! event a JSON record, whether it came in a log file's `Records` array (the reader takes the
//! array apart, citing each element), one event a line (CloudTrail Lake, data-lake and SIEM
//! exports, where a shipper may have put the time in `@timestamp`), or inside an EventBridge
//! event (`"detail-type": "AWS API Call via CloudTrail"`, the record in `detail`).
//!
//! What the detections need is typed in [`Cloud`]: the identity (type, ARN, the role a session
//! was issued for, the session's name — an instance id for an instance profile's credentials),
//! the access key, `sessionContext.ec2RoleDelivery` (`1.0` when the instance fetched the
//! credentials over IMDSv1), the caller's address and VPC endpoint, the error, and for calls that
//! set instance metadata options (`ModifyInstanceMetadataOptions`, `ModifyInstanceMetadataDefaults`,
//! `RunInstances`, `CreateLaunchTemplate`, `CreateLaunchTemplateVersion`) the settings they set.
//! A digest file (`digestStartTime`, `logFiles`: hashes for integrity validation, no events) is
//! skipped and said to be one.

use imdsguard_event::{Cloud, Event, Format, MetadataOptions, Principal, SourceRef};

use super::{Decoding, JsonDecoder, Skip};
use crate::error::SkipReason;
use crate::fields::{object, Fields};
use crate::json::{Map, Value};

pub(crate) const DECODER: JsonDecoder = JsonDecoder {
    format: Format::AwsCloudTrail,
    sniff,
    decode,
};

/// A CloudTrail event, an EventBridge event carrying one, or a digest file.
pub(crate) fn sniff(v: &Map<'_>) -> bool {
    (v.contains_key("eventSource") && v.contains_key("eventName") && v.contains_key("eventVersion"))
        || eventbridge(v).is_some()
        || is_digest(v)
}

/// The CloudTrail record inside an EventBridge event.
fn eventbridge<'a, 'v>(v: &'a Map<'v>) -> Option<&'a Map<'v>> {
    let kind = v.get("detail-type")?.as_str()?;
    kind.contains("via CloudTrail")
        .then(|| object(v, &["detail"]))
        .flatten()
}

fn is_digest(v: &Map<'_>) -> bool {
    v.contains_key("digestStartTime") && v.contains_key("logFiles")
}

/// Whether `s` is an EC2 instance id (`i-` and 8 or 17 hex digits).
pub(crate) fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|c| c.is_ascii_hexdigit())
    })
}

/// The kind of identity `userIdentity.type` names.
fn principal_type(t: &str) -> Principal {
    match t {
        "AssumedRole" => Principal::AssumedRole,
        "IAMUser" | "Root" | "IdentityCenterUser" => Principal::User,
        "AWSService" => Principal::Service,
        _ => Principal::Other,
    }
}

/// The metadata settings a call sets: every `HttpTokens`, `HttpPutResponseHopLimit` and
/// `HttpEndpoint` in its request parameters, whatever their case and nesting (each API spells
/// them its own way: `ModifyInstanceMetadataOptionsRequest.HttpTokens`,
/// `metadataOptions.httpTokens`, `LaunchTemplateData.MetadataOptions.HttpTokens`).
fn metadata_options(action: &str, v: &Map<'_>) -> Option<MetadataOptions> {
    const SETS: [&str; 6] = [
        "ModifyInstanceMetadataOptions",
        "ModifyInstanceMetadataDefaults",
        "RunInstances",
        "CreateLaunchTemplate",
        "CreateLaunchTemplateVersion",
        "ModifyLaunchTemplate",
    ];
    if !SETS.contains(&action) {
        return None;
    }
    let req = object(v, &["requestParameters"])?;
    let mut o = MetadataOptions::default();
    let mut ids: Vec<String> = Vec::new();
    walk(req, 0, &mut |k, val| {
        let k = k.to_ascii_lowercase();
        match k.as_str() {
            "httptokens" => o.http_tokens = Some(val.to_owned()),
            "httpputresponsehoplimit" => o.hop_limit = val.parse().ok(),
            "httpendpoint" => o.endpoint = Some(val.to_owned()),
            "instanceid" | "launchtemplatename" | "launchtemplateid" => ids.push(val.to_owned()),
            _ => {}
        }
    });
    if o.http_tokens.is_none() && o.hop_limit.is_none() && o.endpoint.is_none() {
        return None;
    }
    o.target = match action {
        "ModifyInstanceMetadataDefaults" => Some("account default".to_owned()),
        "RunInstances" => {
            // The instances launched are in the answer.
            let mut launched = Vec::new();
            if let Some(resp) = object(v, &["responseElements"]) {
                walk(resp, 0, &mut |k, val| {
                    if k.eq_ignore_ascii_case("instanceId") {
                        launched.push(val.to_owned());
                    }
                });
            }
            Some(if launched.is_empty() {
                "instances launched".to_owned()
            } else {
                launched.join(", ")
            })
        }
        _ => ids.first().cloned(),
    };
    Some(o)
}

/// Every scalar under `m`, by its own key, to a depth of 8.
fn walk(m: &Map<'_>, depth: u8, f: &mut dyn FnMut(&str, &str)) {
    for (k, v) in m.iter() {
        match v {
            Value::Object(o) if depth < 8 => walk(o, depth + 1, f),
            Value::Array(items) if depth < 8 => {
                for x in items {
                    match x {
                        Value::Object(o) => walk(o, depth + 1, f),
                        Value::String(s) => f(k, s),
                        _ => {}
                    }
                }
            }
            Value::String(s) => f(k, s),
            Value::Number(n) => f(k, &n.to_string()),
            Value::Bool(b) => f(k, if *b { "true" } else { "false" }),
            _ => {}
        }
    }
}

pub(crate) fn decode(v: &Map<'_>, source: SourceRef, how: Decoding<'_>) -> Result<Event, Skip> {
    if is_digest(v) {
        return Err((
            SkipReason::UnknownShape,
            "a CloudTrail digest file (hashes of log files for integrity validation; it holds no events)"
                .into(),
        ));
    }
    let v = eventbridge(v).unwrap_or(v);
    let action = v
        .text(&["eventName"])
        .ok_or_else(|| super::missing("eventName"))?;
    let time = v
        .text(&["eventTime", "@timestamp"])
        .ok_or_else(|| super::missing("eventTime"))?;
    let who = object(v, &["userIdentity"]);
    let ctx = who.and_then(|w| object(w, &["sessionContext"]));
    let principal_type = who
        .and_then(|w| w.text(&["type"]))
        .map(|t| principal_type(&t));
    let principal = who.and_then(|w| w.text(&["arn"]));
    // The session's name: the last part of an assumed role's ARN
    // (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`), else what follows the colon of its
    // principal id (`AROA…:SESSION`).
    let session = (principal_type == Some(Principal::AssumedRole))
        .then(|| {
            principal
                .as_deref()
                .and_then(|a| a.split_once(":assumed-role/"))
                .and_then(|(_, rest)| rest.split_once('/'))
                .map(|(_, s)| s.to_owned())
                .or_else(|| {
                    who.and_then(|w| w.text(&["principalId"]))
                        .and_then(|p| p.split_once(':').map(|(_, s)| s.to_owned()))
                })
        })
        .flatten();
    let delivery = ctx.and_then(|c| c.text(&["ec2RoleDelivery"]));
    let instance = session.clone().filter(|s| is_instance_id(s));
    let caller = v.text(&["sourceIPAddress"]);
    let issued = (action == "AssumeRole")
        .then(|| {
            let name = object(v, &["requestParameters"])?.text(&["roleSessionName"])?;
            let key = object(v, &["responseElements", "credentials"])?.text(&["accessKeyId"])?;
            Some((name, key))
        })
        .flatten();
    let metadata_options = metadata_options(&action, v);
    // The host the record is about: the instance whose credentials made the call, else the
    // instance whose metadata settings it changes.
    let host = instance.clone().or_else(|| {
        metadata_options
            .as_ref()
            .and_then(|o| o.target.clone())
            .filter(|t| is_instance_id(t))
    });
    let cloud = Cloud {
        provider: "aws",
        service: v.text(&["eventSource"]),
        metadata_options,
        action: Some(action.clone()),
        user_agent: v.text(&["userAgent"]),
        principal_type,
        principal,
        role: ctx
            .and_then(|c| object(c, &["sessionIssuer"]))
            .and_then(|i| i.text(&["arn"])),
        session,
        instance: instance.clone(),
        access_key: who.and_then(|w| w.text(&["accessKeyId"])),
        delivery,
        invoked_by: who.and_then(|w| w.text(&["invokedBy"])),
        vpc_endpoint: v.text(&["vpcEndpointId"]),
        error: v.text(&["errorCode"]),
        account: v
            .text(&["recipientAccountId"])
            .or_else(|| who.and_then(|w| w.text(&["accountId"]))),
        region: v.text(&["awsRegion"]),
        caller_ip: caller,
        issued,
    };
    let mut e = super::cloud_fields::call_event(
        source,
        Format::AwsCloudTrail,
        time,
        v.text(&["eventID"]),
        host,
        None,
        cloud,
    );
    super::cloud_fields::keep(&mut e, v, how.fields, &[], false);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::Position;

    fn read(line: &str) -> Result<Event, Skip> {
        let v: Value = serde_json::from_str(line).unwrap();
        let fields = imdsguard_event::FieldSet::default();
        decode(
            v.as_object().unwrap(),
            SourceRef {
                path: "t.json".into(),
                position: Position::Line(1),
            },
            Decoding { fields: &fields },
        )
    }

    #[test]
    fn an_instance_role_session_names_its_instance_and_delivery() {
        let e = read(r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-0317f6c6b66ae9c40","arn":"arn:aws:sts::123456789123:assumed-role/WebRole/i-0317f6c6b66ae9c40","accountId":"123456789123","accessKeyId":"ASIA5FLZVX4OPVKKVBMX","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::123456789123:role/WebRole"},"ec2RoleDelivery":"1.0"}},"eventTime":"2020-09-14T01:00:04Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","userAgent":"aws-cli/1.18.136","eventID":"e1","recipientAccountId":"123456789123"}"#).unwrap();
        let c = e.cloud.as_deref().unwrap();
        assert_eq!(e.kind, imdsguard_event::EventKind::CloudCall);
        assert_eq!(c.instance.as_deref(), Some("i-0317f6c6b66ae9c40"));
        assert_eq!(e.host.as_deref(), Some("i-0317f6c6b66ae9c40"));
        assert_eq!(c.delivery.as_deref(), Some("1.0"));
        assert_eq!(
            c.role.as_deref(),
            Some("arn:aws:iam::123456789123:role/WebRole")
        );
        assert_eq!(c.access_key.as_deref(), Some("ASIA5FLZVX4OPVKKVBMX"));
        assert_eq!(c.principal_type, Some(Principal::AssumedRole));
        assert_eq!(
            e.network.as_ref().unwrap().src_ip.as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(e.record_id.as_deref(), Some("e1"));
    }

    #[test]
    fn a_session_that_is_no_instance_names_none() {
        let e = read(r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/Admin/alice@example.com"},"eventTime":"2020-09-14T01:00:04Z","eventSource":"iam.amazonaws.com","eventName":"ListRoles","sourceIPAddress":"iam.amazonaws.com"}"#).unwrap();
        let c = e.cloud.as_deref().unwrap();
        assert_eq!(c.session.as_deref(), Some("alice@example.com"));
        assert_eq!(c.instance, None);
        // A service name where an address goes is no address.
        assert!(e.network.is_none());
    }

    #[test]
    fn metadata_settings_are_read_whatever_the_api_calls_them() {
        let e = read(r#"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob"},"eventTime":"2024-01-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"ModifyInstanceMetadataOptions","requestParameters":{"ModifyInstanceMetadataOptionsRequest":{"HttpTokens":"optional","InstanceId":"i-0abc1234","HttpPutResponseHopLimit":3}}}"#).unwrap();
        let o = e.cloud.unwrap().metadata_options.unwrap();
        assert_eq!(o.http_tokens.as_deref(), Some("optional"));
        assert_eq!(o.hop_limit, Some(3));
        assert_eq!(o.target.as_deref(), Some("i-0abc1234"));
        assert_eq!(o.weakens(), vec!["imdsv1-allowed", "hop-limit-raised"]);
        let e = read(r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","requestParameters":{"instancesSet":{"items":[{"imageId":"ami-1"}]},"metadataOptions":{"httpTokens":"required","httpPutResponseHopLimit":1}},"responseElements":{"instancesSet":{"items":[{"instanceId":"i-0123456789abcdef0"}]}}}"#).unwrap();
        let o = e.cloud.unwrap().metadata_options.unwrap();
        assert_eq!(o.target.as_deref(), Some("i-0123456789abcdef0"));
        assert!(o.weakens().is_empty());
        // A call that sets nothing of the kind has no settings.
        let e = read(r#"{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","requestParameters":{"instancesSet":{}}}"#).unwrap();
        assert!(e.cloud.unwrap().metadata_options.is_none());
    }

    #[test]
    fn an_eventbridge_event_is_read_as_its_record_and_a_digest_is_named() {
        let e = read(r#"{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.ec2","detail":{"eventVersion":"1.08","eventTime":"2024-01-01T00:00:00Z","eventSource":"ec2.amazonaws.com","eventName":"ModifyInstanceMetadataDefaults","requestParameters":{"ModifyInstanceMetadataDefaultsRequest":{"HttpTokens":"optional"}}}}"#).unwrap();
        let o = e.cloud.unwrap().metadata_options.unwrap();
        assert_eq!(o.target.as_deref(), Some("account default"));
        let (_, why) = read(r#"{"awsAccountId":"1","digestStartTime":"2024-01-01T00:00:00Z","digestEndTime":"2024-01-01T01:00:00Z","logFiles":[]}"#).unwrap_err();
        assert!(why.contains("digest"), "{why}");
    }

    #[test]
    fn an_assumed_role_for_an_instance_says_what_it_issued() {
        let e = read(r#"{"eventVersion":"1.08","userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com"},"eventTime":"2024-10-08T10:15:32Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","sourceIPAddress":"ec2.amazonaws.com","requestParameters":{"roleArn":"arn:aws:iam::1:role/r","roleSessionName":"i-0123456789abcdef0"},"responseElements":{"credentials":{"accessKeyId":"ASIAEXAMPLEEXAMPLE01"}}}"#).unwrap();
        let c = e.cloud.unwrap();
        assert_eq!(
            c.issued,
            Some(("i-0123456789abcdef0".into(), "ASIAEXAMPLEEXAMPLE01".into()))
        );
        assert_eq!(c.principal_type, Some(Principal::Service));
        assert_eq!(c.invoked_by.as_deref(), Some("ec2.amazonaws.com"));
    }
}
