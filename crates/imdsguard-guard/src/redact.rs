//! Keeping secrets out of the audit log: a client's command line often carries the very token
//! or key it sends (`curl -H "X-aws-ec2-metadata-token: …"`, `AWS_SECRET_ACCESS_KEY=… aws …`).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::attrib::Process;

/// What replaces a secret.
const MASK: &str = "[redacted]";

/// A header or variable whose value is a secret, and the value: up to a quote, whitespace or
/// the end.
static NAMED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(x-aws-ec2-metadata-token|authorization|x-amz-security-token|x-identity-header|aws_secret_access_key|aws_session_token|aws_security_token|aws_container_authorization_token)(["']?\s*[:=]\s*["']?)(?:bearer\s+|basic\s+)?[^"'\s,}]+"#,
    )
    .expect("valid pattern")
});

/// Access key ids (`AKIA…`, `ASIA…`) and IMDSv2 tokens (`AQAE…`), wherever they stand.
static SHAPED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?:AKIA|ASIA)[A-Z0-9]{16}|AQAE[A-Za-z0-9+/=_-]{20,})").expect("valid pattern")
});

/// `text` with every occurrence of `secrets` masked.
fn exact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// `text` with named and secret-shaped values masked.
fn shaped(text: &str) -> String {
    let out = NAMED.replace_all(text, |c: &regex::Captures<'_>| {
        format!("{}{}{MASK}", &c[1], &c[2])
    });
    SHAPED.replace_all(&out, MASK).into_owned()
}

/// The process with named and secret-shaped values in its command line masked: once per
/// connection, when it is attributed.
pub(crate) fn process(p: &Process) -> Process {
    Process {
        cmdline: p.cmdline.iter().map(|a| shaped(a)).collect(),
        ..p.clone()
    }
}

/// The (already masked) process with the secrets one request carried masked too, copied only
/// when its command line holds one of them.
pub(crate) fn request<'p>(p: &'p Process, secrets: &[String]) -> Cow<'p, Process> {
    if !p
        .cmdline
        .iter()
        .any(|a| secrets.iter().any(|s| a.contains(s.as_str())))
    {
        return Cow::Borrowed(p);
    }
    Cow::Owned(Process {
        cmdline: p.cmdline.iter().map(|a| exact(a, secrets)).collect(),
        ..p.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both steps on one text, as the audit log sees it.
    fn text(text: &str, secrets: &[String]) -> String {
        shaped(&exact(text, secrets))
    }

    #[test]
    fn tokens_and_keys_never_reach_the_log() {
        let token = "AQAEAEXdV324E5c3EFyKnnpcK3WrIjSGbDDSVVi2Pb/30ZcL28HRozyz==";
        let cases = [
            (
                format!("X-aws-ec2-metadata-token: {token}"),
                "X-aws-ec2-metadata-token: [redacted]".to_owned(),
            ),
            (
                format!("r=u.Request(url,headers={{'X-aws-ec2-metadata-token':'{token}'}})"),
                "r=u.Request(url,headers={'X-aws-ec2-metadata-token':'[redacted]'})".to_owned(),
            ),
            (
                "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln".to_owned(),
                "Authorization: [redacted]".to_owned(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws s3 ls"
                    .to_owned(),
                "AWS_SECRET_ACCESS_KEY=[redacted] aws s3 ls".to_owned(),
            ),
            (
                "--key ASIAT5STJLDC6JWUOLXN".to_owned(),
                "--key [redacted]".to_owned(),
            ),
            // Not secrets: left alone.
            (
                "X-aws-ec2-metadata-token-ttl-seconds: 21600".to_owned(),
                "X-aws-ec2-metadata-token-ttl-seconds: 21600".to_owned(),
            ),
            (
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/web".to_owned(),
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/web".to_owned(),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(&input, &[]), want, "{input}");
        }
        // A token of any shape is masked when the request carried it.
        let odd = "tok3n-of-another-shape-1234";
        assert_eq!(
            text(&format!("client --t {odd}"), &[odd.to_owned()]),
            "client --t [redacted]"
        );
    }
}
