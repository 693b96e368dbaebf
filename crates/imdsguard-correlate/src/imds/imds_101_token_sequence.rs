//! **IMDS-101 — IMDSv2 token request followed by a credential read.**
//!
//! *What.* A process (by host, pid and image; for a process start, the parent that ran it, since a
//! shell running `curl -X PUT …/latest/api/token` then `curl …/security-credentials/role` is one
//! actor) asks for a session token and, within the token window (60 s by default), reads role
//! credentials. One command doing both counts too.
//!
//! *Why.* The detection guidance on metadata-service abuse (after AWS's IMDSv2 documentation) names this sequence as the signature of token acquisition, and IMDSv2 does not
//! stop a process on the instance: it only adds the PUT. A process that is not a verified cloud
//! agent running the whole handshake is stealing the instance role.
//!
//! *False positives.* In-house tools and SDK-based applications that fetch their own credentials
//! (every AWS SDK does the handshake): allowlist them and they are skipped. Agents verified by the
//! allowlist are never reported.
//!
//! *ATT&CK.* T1552.005 (Cloud Instance Metadata API).

use imdsguard_event::{format_time_ms, Severity};
use imdsguard_rules::Alert;
use imdsguard_target::Kind;

use super::{correlated, Imds, Meta, Ref, Touch};

/// IMDS-101.
pub const META: Meta = Meta {
    source: include_str!("imds_101_token_sequence.rs"),
    severity: Severity::High,
};

impl Imds {
    pub(super) fn token_sequence(&mut self, t: &Touch, own: &Ref, out: &mut Vec<Alert>) {
        if t.agent || !(t.has(Kind::Token) || t.has(Kind::Credentials)) {
            return;
        }
        let key = (t.host.clone(), t.actor.clone());
        let window = self.cfg.token_window_ms;
        if let Some(q) = self.tokens.get_mut(&key) {
            while q.front().is_some_and(|(ms, _, _)| t.time_ms - ms > window) {
                q.pop_front();
            }
        }
        if t.has(Kind::Credentials) {
            let token = self
                .tokens
                .get_mut(&key)
                .and_then(|q| q.pop_front())
                .or_else(|| {
                    // One command that asks for the token and then the credentials.
                    t.has(Kind::Token).then(|| {
                        (
                            t.time_ms,
                            t.path_of(Kind::Token).unwrap_or("").to_owned(),
                            own.to_owned(),
                        )
                    })
                });
            if let Some((token_ms, token_path, token_alert)) = token {
                let creds = t.path_of(Kind::Credentials).unwrap_or("(credentials)");
                let gap = (t.time_ms - token_ms) as f64 / 1000.0;
                let mut reasons =
                    vec![format!(
                    "{} asked for an IMDSv2 session token ({}) at {} and read role credentials \
                     ({creds}) {gap:.1} s later: the token handshake an attacker runs before \
                     stealing the instance role.",
                    t.actor,
                    if token_path.is_empty() { "PUT" } else { &token_path },
                    format_time_ms(token_ms),
                )];
                reasons.push(
                    "The process is not a verified cloud agent (allowlist verdict: not agent)."
                        .into(),
                );
                let related = if token_alert == *own {
                    vec![own.to_owned()]
                } else {
                    vec![token_alert, own.to_owned()]
                };
                out.push(correlated(&META, META.severity, t, reasons, related));
                return;
            }
        }
        if t.has(Kind::Token) {
            let q = self.tokens.entry(key).or_default();
            q.push_back((
                t.time_ms,
                t.path_of(Kind::Token).unwrap_or("").to_owned(),
                own.to_owned(),
            ));
            super::bound(&mut self.tokens, self.cfg.max_keys, &mut self.evicted);
        }
    }
}

#[cfg(test)]
const TOKEN: &str = "-s -X PUT http://169.254.169.254/latest/api/token \
                     -H \"X-aws-ec2-metadata-token-ttl-seconds: 21600\"";
#[cfg(test)]
const CREDS: &str = "-s -H \"X-aws-ec2-metadata-token: AQAEAB\" \
                     http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role";

/// A proxy's record (ECS) of a request from `client` for `url` at second `secs`.
#[cfg(test)]
fn proxied(secs: u32, client: &str, url: &str) -> String {
    serde_json::json!({
        "@timestamp": format!("2026-11-20T08:00:{secs:02}.000Z"), "ecs": {"version": "8.11.0"},
        "event": {"category": ["web"]}, "host": {"name": "proxy01"},
        "url": {"full": url}, "source": {"ip": client},
        "destination": {"ip": "169.254.169.254", "port": 80},
    })
    .to_string()
}

#[cfg(test)]
const TOKEN_URL: &str = "http://169.254.169.254/latest/api/token";
#[cfg(test)]
const CREDS_URL: &str = "http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role";

#[cfg(test)]
pub(super) fn positive() -> Vec<Vec<String>> {
    use super::fixtures::*;
    vec![
        // A web or proxy log: the same client asks for the token, then the credentials.
        vec![
            proxied(1, "10.0.3.7", TOKEN_URL),
            proxied(2, "10.0.3.7", CREDS_URL),
        ],
        // Two curl runs from one shell, 3 s apart.
        vec![
            curl(&at(0), 7001, 6900, TOKEN),
            curl(&at(3), 7002, 6900, CREDS),
        ],
        // One PowerShell command doing both (Atomic Red Team T1552.005 test 1's shape).
        vec![start(
            &at(0),
            6644,
            r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            "powershell.exe -c \"$t = iwr -Method PUT -Uri http://169.254.169.254/latest/api/token \
             -Headers @{'X-aws-ec2-metadata-token-ttl-seconds'='21600'}; iwr -Uri \
             http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role \
             -Headers @{'X-aws-ec2-metadata-token'=$t.Content}\"",
            5120,
            r"C:\Windows\System32\cmd.exe",
        )],
    ]
}

#[cfg(test)]
pub(super) fn negative() -> Vec<Vec<String>> {
    use super::fixtures::*;
    vec![
        // Two clients of one proxy: neither ran the whole handshake.
        vec![
            proxied(1, "10.0.3.7", TOKEN_URL),
            proxied(2, "10.0.3.8", CREDS_URL),
        ],
        // Outside the 60 s window.
        vec![
            curl(&at(0), 7001, 6900, TOKEN),
            curl(&at(300), 7002, 6900, CREDS),
        ],
        // Two different shells.
        vec![
            curl(&at(0), 7001, 6900, TOKEN),
            curl(&at(3), 7002, 7100, CREDS),
        ],
        // A credential read with no token (IMDSv1): IMDS-004's case, not this one.
        vec![curl(&at(3), 7002, 6900, CREDS)],
        // A token and then something other than credentials.
        vec![
            curl(&at(0), 7001, 6900, TOKEN),
            curl(
                &at(2),
                7002,
                6900,
                "-s http://169.254.169.254/latest/meta-data/instance-id",
            ),
        ],
    ]
}
