//! `imdsguard mock` over real HTTP: on loopback with curl, and in network namespaces this test
//! creates, where the mock listens on 169.254.169.254 one router away from the client so that
//! the IMDSv2 hop limit is put to the test the way an instance or a container meets it.
//!
//! The namespace test needs root and `ip netns`; without them it is skipped with one line
//! saying so, except under CI (`CI` set), where it must run.
#![cfg(feature = "guard")]

mod guard;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use guard::{curl_in as curl, ip, missing, skip, start};

#[test]
fn curl_walks_the_imdsv2_sequence_on_loopback() {
    if missing(&["curl"]).is_some() {
        return skip("curl is not installed");
    }
    let m = start(&[], &["mock", "--listen", "127.0.0.1:0", "--require-token"]);
    let base = format!("http://{}", m.addr);
    let creds = format!("{base}/latest/meta-data/iam/security-credentials/imdsguard-mock-role");
    assert_eq!(curl(&[], &[&creds]).map(|r| r.0), Some(401));
    let (status, token) = curl(
        &[],
        &[
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 21600",
            &format!("{base}/latest/api/token"),
        ],
    )
    .expect("token reply");
    assert_eq!(status, 200);
    let (status, body) = curl(
        &[],
        &["-H", &format!("X-aws-ec2-metadata-token: {token}"), &creds],
    )
    .expect("credentials reply");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("credentials are JSON");
    assert_eq!(v["Type"], "AWS-HMAC");
    // Through a proxy: the token request is refused.
    let forwarded = curl(
        &[],
        &[
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            "-H",
            "X-Forwarded-For: 203.0.113.7",
            &format!("{base}/latest/api/token"),
        ],
    );
    assert_eq!(forwarded.map(|r| r.0), Some(403));
    // GCP and Azure on the same mock (`--provider all`).
    let gcp = curl(
        &[],
        &[
            "-H",
            "Metadata-Flavor: Google",
            &format!("{base}/computeMetadata/v1/project/project-id"),
        ],
    );
    assert_eq!(gcp, Some((200, "imdsguard-mock".to_owned())));
    let azure = curl(
        &[],
        &[&format!("{base}/metadata/instance?api-version=2021-02-01")],
    );
    assert_eq!(azure.map(|r| r.0), Some(400));
}

/// Three namespaces: a client ("host"), a router, and the metadata service ("metadata"), on
/// two veth links; removed on drop.
struct Net {
    names: [String; 3],
}

impl Net {
    fn host(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.names[0]]
    }

    fn metadata(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.names[2]]
    }

    fn create() -> Result<Net, String> {
        let tag = std::process::id() % 100_000;
        let names = [
            format!("imdsg-host-{tag}"),
            format!("imdsg-rtr-{tag}"),
            format!("imdsg-md-{tag}"),
        ];
        let net = Net { names };
        let [h, r, m] = [&net.names[0], &net.names[1], &net.names[2]];
        let (vh, vr1, vr2, vm) = (
            format!("ih{tag}"),
            format!("ir{tag}"),
            format!("jr{tag}"),
            format!("jm{tag}"),
        );
        let steps: Vec<Vec<String>> = vec![
            vec!["netns", "add", h],
            vec!["netns", "add", r],
            vec!["netns", "add", m],
            vec!["link", "add", &vh, "type", "veth", "peer", "name", &vr1],
            vec!["link", "add", &vm, "type", "veth", "peer", "name", &vr2],
            vec!["link", "set", &vh, "netns", h],
            vec!["link", "set", &vr1, "netns", r],
            vec!["link", "set", &vr2, "netns", r],
            vec!["link", "set", &vm, "netns", m],
            vec!["-n", h, "addr", "add", "10.77.1.2/24", "dev", &vh],
            vec!["-n", r, "addr", "add", "10.77.1.1/24", "dev", &vr1],
            vec!["-n", r, "addr", "add", "10.77.2.1/24", "dev", &vr2],
            vec!["-n", m, "addr", "add", "10.77.2.2/24", "dev", &vm],
            vec!["-n", m, "addr", "add", "169.254.169.254/32", "dev", "lo"],
            vec!["-n", h, "link", "set", "lo", "up"],
            vec!["-n", r, "link", "set", "lo", "up"],
            vec!["-n", m, "link", "set", "lo", "up"],
            vec!["-n", h, "link", "set", &vh, "up"],
            vec!["-n", r, "link", "set", &vr1, "up"],
            vec!["-n", r, "link", "set", &vr2, "up"],
            vec!["-n", m, "link", "set", &vm, "up"],
            vec!["-n", h, "route", "add", "default", "via", "10.77.1.1"],
            vec!["-n", m, "route", "add", "default", "via", "10.77.2.1"],
            vec![
                "-n",
                r,
                "route",
                "add",
                "169.254.169.254/32",
                "via",
                "10.77.2.2",
            ],
            // The same over IPv6, to AWS's IPv6 address of the service.
            vec![
                "-n",
                h,
                "-6",
                "addr",
                "add",
                "fd77:1::2/64",
                "dev",
                &vh,
                "nodad",
            ],
            vec![
                "-n",
                r,
                "-6",
                "addr",
                "add",
                "fd77:1::1/64",
                "dev",
                &vr1,
                "nodad",
            ],
            vec![
                "-n",
                r,
                "-6",
                "addr",
                "add",
                "fd77:2::1/64",
                "dev",
                &vr2,
                "nodad",
            ],
            vec![
                "-n",
                m,
                "-6",
                "addr",
                "add",
                "fd77:2::2/64",
                "dev",
                &vm,
                "nodad",
            ],
            vec![
                "-n",
                m,
                "-6",
                "addr",
                "add",
                "fd00:ec2::254/128",
                "dev",
                "lo",
                "nodad",
            ],
            vec!["-n", h, "-6", "route", "add", "default", "via", "fd77:1::1"],
            vec!["-n", m, "-6", "route", "add", "default", "via", "fd77:2::1"],
            vec![
                "-n",
                r,
                "-6",
                "route",
                "add",
                "fd00:ec2::254/128",
                "via",
                "fd77:2::2",
            ],
        ]
        .into_iter()
        .map(|v| v.into_iter().map(str::to_owned).collect())
        .collect();
        for step in &steps {
            ip(&step.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        let fwd = Command::new("ip")
            .args([
                "netns",
                "exec",
                r,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ])
            .status()
            .map_err(|e| format!("sysctl: {e}"))?;
        if !fwd.success() {
            return Err("cannot turn on forwarding in the router namespace".to_owned());
        }
        Ok(net)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Waits until the mock answers from the client namespace (routes and links settle).
fn wait_reachable(prefix: &[&str], url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if curl(prefix, &["-g", url]).is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never answered from the client namespace");
}

#[test]
fn the_token_reply_does_not_cross_a_router_with_hop_limit_1() {
    let net = match Net::create() {
        Ok(n) if missing(&["curl"]).is_none() => n,
        Ok(_) => return skip("curl is not installed"),
        Err(why) => return skip(&format!("network namespaces unavailable ({why})")),
    };
    for hops in ["1", "2"] {
        // One mock on both families (IPv4 connections reach it as mapped addresses).
        let m = start(
            &net.metadata(),
            &[
                "mock",
                "--listen",
                "[::]:80",
                "--provider",
                "aws",
                "--hop-limit",
                hops,
            ],
        );
        assert_eq!(m.addr, "[::]:80");
        for host in ["169.254.169.254", "[fd00:ec2::254]"] {
            let token_url = format!("http://{host}/latest/api/token");
            let put = [
                "-g",
                "-X",
                "PUT",
                "-H",
                "X-aws-ec2-metadata-token-ttl-seconds: 60",
                &token_url,
            ];
            let region = format!("http://{host}/latest/meta-data/placement/region");
            wait_reachable(&net.host(), &region);
            // IMDSv1 GETs are not hop-limited: they reach the client either way.
            assert_eq!(
                curl(&net.host(), &["-g", &region]),
                Some((200, "us-east-1".to_owned())),
                "{host}"
            );
            // On the service's own host the token always arrives.
            let local = curl(&net.metadata(), &put).map(|r| r.0);
            assert_eq!(local, Some(200), "hop limit {hops}, {host}, same host");
            let remote = curl(&net.host(), &put).map(|r| r.0);
            if hops == "1" {
                assert_eq!(
                    remote, None,
                    "{host}: a hop-limit-1 token reply must die at the router"
                );
            } else {
                assert_eq!(
                    remote,
                    Some(200),
                    "{host}: a hop-limit-2 token reply crosses one router"
                );
            }
        }
    }
}

#[test]
fn bad_flags_are_refused_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .args(["mock", "--listen", "127.0.0.1:0", "--hop-limit", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--hop-limit"), "{err}");
    // A port already taken: named in the error.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_imdsguard"))
        .args(["mock", "--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    let _ = std::io::stdout().flush();
}
