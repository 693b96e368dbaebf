//! `imdsguard audit` as a user runs it: hardening findings from an inventory in the cloud's own
//! schema, and from CloudTrail and the bundled samples, each with its fix.

use std::path::PathBuf;
use std::process::{Command, Output};

use imdsguard_testdata::shared_data;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run imdsguard")
}

fn temp(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imdsguard-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, contents).unwrap();
    f
}

/// Two EC2 instances as `aws ec2 describe-instances` prints them: a web proxy that allows
/// IMDSv1, an EKS node with a hop limit of 2, and one that is hardened.
const INVENTORY: &str = r#"{"Reservations":[{"Instances":[
{"InstanceId":"i-0317f6c6b66ae9c40","PrivateDnsName":"ip-10-0-0-12.ec2.internal","PrivateIpAddress":"10.0.0.12","PublicIpAddress":"35.174.154.220","Placement":{"AvailabilityZone":"us-east-1a"},"MetadataOptions":{"State":"applied","HttpTokens":"optional","HttpPutResponseHopLimit":1,"HttpEndpoint":"enabled"},"IamInstanceProfile":{"Arn":"arn:aws:iam::123456789123:instance-profile/BankingWAF","Id":"AIPAEXAMPLE"}},
{"InstanceId":"i-044b1baf4c96e1b62","PrivateDnsName":"ip-10-0-0-20.ec2.internal","PrivateIpAddress":"10.0.0.20","Placement":{"AvailabilityZone":"us-east-1b"},"MetadataOptions":{"HttpTokens":"required","HttpPutResponseHopLimit":2,"HttpEndpoint":"enabled"},"Tags":[{"Key":"eks:cluster-name","Value":"prod"}]},
{"InstanceId":"i-0aaaaaaaaaaaaaaaa","PrivateIpAddress":"10.0.0.30","MetadataOptions":{"HttpTokens":"required","HttpPutResponseHopLimit":1,"HttpEndpoint":"enabled"}}
]}]}"#;

fn findings(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_inventory_alone_names_imdsv1_and_hop_limits_with_their_fixes() {
    let inv = temp("inv.json", INVENTORY);
    let out = run(&["audit", "--inventory", inv.to_str().unwrap(), "-f", "jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<(String, String, String)> = findings(&out)
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["instance"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "imdsv1-allowed".into(),
                "i-0317f6c6b66ae9c40".into(),
                "high".into()
            ),
            (
                "hop-limit".into(),
                "i-044b1baf4c96e1b62".into(),
                "high".into()
            ),
        ]
    );
    let f = &findings(&out)[0];
    assert_eq!(
        f["fix"],
        "aws ec2 modify-instance-metadata-options --instance-id i-0317f6c6b66ae9c40 --http-tokens required --http-endpoint enabled --region us-east-1"
    );
    // --fail-on turns findings into the exit status.
    let out = run(&[
        "audit",
        "--inventory",
        inv.to_str().unwrap(),
        "--fail-on",
        "high",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn an_unreadable_inventory_is_named_and_nothing_is_audited() {
    let bad = temp("bad.json", r#"{"Reservations": ["#);
    let out = run(&["audit", "--inventory", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json") && err.contains("not a JSON inventory"),
        "{err}"
    );
    let other = temp("other.json", r#"[{"a": 1}]"#);
    let out = run(&["audit", "--inventory", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("describe-instances"));
}

/// With OTRF's CloudTrail and the bundled samples: the breached proxy's role delivered over
/// IMDSv1, its profile used only from elsewhere, and the IMDSv1 callers the samples record.
#[test]
fn with_cloudtrail_and_samples_it_names_delivery_unused_profiles_and_imdsv1_callers() {
    let ct = shared_data!("cloud/otrf_aws_ec2_proxy_s3_exfiltration_2020-09-14011940.json");
    let inv = temp("inv2.json", INVENTORY);
    let out = run(&[
        "audit",
        "--inventory",
        inv.to_str().unwrap(),
        ct.to_str().unwrap(),
        "samples/logs",
        "-f",
        "jsonl",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = findings(&out);
    let of = |c: &str| -> Vec<&Value> { all.iter().filter(|f| f["check"] == c).collect() };
    // OTRF's breached proxy, and the bundled CloudTrail's shop server.
    let delivered = of("imdsv1-delivered");
    let instances: Vec<&str> = delivered
        .iter()
        .map(|f| f["instance"].as_str().unwrap())
        .collect();
    assert_eq!(instances, ["i-0317f6c6b66ae9c40", "i-0c0ffee1234567890"]);
    assert!(delivered[0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("11 calls"));
    let unused = of("unused-identity");
    assert_eq!(unused.len(), 1, "{unused:#?}");
    assert_eq!(unused[0]["severity"], "high");
    assert!(unused[0]["detail"]
        .as_str()
        .unwrap()
        .contains("from other addresses"));
    // The Zeek record of an IMDSv1 credential read names its client and user agent.
    let callers = of("imdsv1-caller");
    assert!(
        callers.iter().any(
            |f| f["host"] == "10.42.0.23" && f["evidence"][0] == "samples/logs/zeek-http.log:4"
        ),
        "{callers:#?}"
    );
}
