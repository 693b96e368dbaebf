//! The SOC playbook for T1552.005, applied to every alert and incident: the four questions for analysis
//! answered from the data with the evidence, the escalation decision by the playbook's rule, and
//! containment steps for this case with the commands where they can be given.
//!
//! The playbook's decision: "Escalate to T2 if access to the metadata API is detected from
//! unauthorized sources, if unauthorized credentials are being used, or if there are indications
//! of an SSRF attack from unexpected external sources. Additionally, any access patterns differing
//! significantly from normal operations warrant escalation." Each answer that is `yes` (or `no`
//! for the first question) names the part of that rule it meets. What a source cannot show (an
//! HTTP status in a process log) is answered `unknown`, saying where to look.

use std::net::IpAddr;

use imdsguard_enrich::{normalize_path, Enriched, TargetSource};
use imdsguard_event::format_time_ms;
use imdsguard_rules::{Alert, Answer, Containment, Triage};
use imdsguard_target::{HeaderRole, Kind};

/// What triage needs of an event beyond its alert: who called, from where, and what the request
/// carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `web-server` or `web-server-child`.
    pub caller: Option<&'static str>,
    /// The web server's image (the process, or its parent for a child).
    pub server: Option<String>,
    /// The client address of an HTTP request record (web and proxy logs).
    pub client_ip: Option<String>,
    /// The request's detail is known (a URL or a command line, not only a destination).
    pub http_detail: bool,
    /// Headers the provider requires that the request lacks (`Metadata-Flavor: Google`).
    pub missing_required: Vec<String>,
    /// A provider with a session-token handshake was asked without a token or a `PUT`.
    pub no_token: bool,
    /// The provider, when known.
    pub provider: Option<String>,
    /// The cloud principal named in the credential path (AWS role, GCP service account).
    pub principal: Option<String>,
    /// The HTTP status, when the record has one.
    pub status: Option<u16>,
    /// A web request whose URL carries a metadata URL inside it (a parameter, a redirect
    /// target): the SSRF payload itself, as a web or proxy log records it.
    pub nested_in: Option<String>,
}

impl Facts {
    /// The facts of an enriched event.
    pub fn of(ev: &Enriched<'_>) -> Facts {
        let e = ev.event;
        let caller = ev.caller();
        let server = match caller {
            Some(imdsguard_enrich::Caller::WebServer) => e.process.image.clone(),
            Some(imdsguard_enrich::Caller::WebServerChild) => e.parent.image.clone(),
            None => None,
        };
        let mut f = Facts {
            caller: caller.map(|c| c.as_str()),
            server,
            client_ip: (e.kind == imdsguard_event::EventKind::HttpRequest)
                .then(|| e.network.as_ref().and_then(|n| n.src_ip.clone()))
                .flatten(),
            ..Facts::default()
        };
        let Some(best) = ev.best() else {
            return f;
        };
        let t = &best.target;
        f.http_detail = matches!(best.source, TargetSource::Url | TargetSource::CommandLine);
        if best.source == TargetSource::Url
            && t.encoding.contains(imdsguard_target::Encoding::NestedUrl)
        {
            f.nested_in = e.network.as_ref().and_then(|n| n.url.clone());
        }
        f.provider = t.provider_id().map(str::to_owned);
        f.principal = t.path.as_deref().and_then(principal);
        if let (Some(p), true) = (t.provider, f.http_detail) {
            for h in &p.headers {
                if h.role == HeaderRole::Required
                    && !t.headers.iter().any(|x| x.eq_ignore_ascii_case(&h.name))
                {
                    f.missing_required.push(match &h.value {
                        Some(v) => format!("{}: {v}", h.name),
                        None => h.name.clone(),
                    });
                }
            }
            // GCP takes either of its two headers.
            if p.headers
                .iter()
                .filter(|h| h.role == HeaderRole::Required)
                .count()
                > 1
                && f.missing_required.len() == 1
            {
                f.missing_required.clear();
            }
            if let Some(tok) = &p.token {
                let asked = ev
                    .targets()
                    .iter()
                    .any(|x| x.target.method.is_some() || x.target.kind == Kind::Token);
                let has = t
                    .headers
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(&tok.header));
                f.no_token = !asked && !has;
            }
        }
        f
    }
}

/// The principal a credential path names: the AWS role (`…/security-credentials/<role>`) or the
/// GCP service account (`…/service-accounts/<account>/token`).
fn principal(path: &str) -> Option<String> {
    let after = |marker: &str| {
        let i = path.find(marker)?;
        let rest = &path[i + marker.len()..];
        let name = rest.split('/').next()?;
        (!name.is_empty()).then(|| name.to_owned())
    };
    after("/security-credentials/").or_else(|| after("/service-accounts/"))
}

/// How often the process reaches the service, as the baseline knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frequency {
    /// The host's baseline began.
    pub since_ms: i64,
    /// The host is still learning, with this much of the learning period behind it (ms).
    pub learning: Option<(i64, i64)>,
    /// The process's first request on the host, if it had one before this alert.
    pub known_since: Option<i64>,
    /// Its busiest bucket while the baseline was learned.
    pub busiest: u64,
    /// Requests in the current bucket.
    pub this_bucket: u64,
    /// The bucket length (ms).
    pub bucket_ms: i64,
    /// The rate that alerts.
    pub threshold: u64,
    /// Distinct buckets with requests the process's baseline saw while learning...
    pub buckets: u64,
    /// ... and how many it needs before its busiest bucket measures normal.
    pub min_buckets: u64,
}

const Q_AUTHORIZED: &str =
    "Are access attempts to the metadata API coming from authorized applications or systems?";
const Q_FREQUENCY: &str =
    "Is the frequency or volume of requests to the instance metadata API unusual?";
const Q_ERRORS: &str = "Are there any error logs indicating failed, potentially unauthorized, \
                        access to the metadata service?";
const Q_SSRF: &str = "Are there any external IP addresses making requests indicative of SSRF?";

fn answer(key: &str, question: &str, answer: &str, evidence: String) -> Answer {
    Answer {
        key: key.into(),
        question: question.into(),
        answer: answer.into(),
        evidence,
    }
}

/// The triage of one alert.
/// Whether the metadata playbook applies to an alert: it names a metadata target, or it is one
/// of the built-in correlations over metadata requests. A Sigma rule about something else (a
/// `bcdedit` tamper, a logon) gets no metadata questions, escalation or containment.
pub fn applies(a: &Alert) -> bool {
    a.target.is_some() || a.rule_id.starts_with("IMDS-")
}

/// The playbook's triage of an alert the playbook [`applies`] to.
pub fn triage(a: &Alert, facts: &Facts, freq: Option<&Frequency>) -> Triage {
    let host = a.host.as_deref().unwrap_or("(no host)");
    let image = a.process.as_ref().and_then(|p| p.image.clone());
    let who = image.clone().unwrap_or_else(|| "the process".into());
    let mut why_escalate: Vec<String> = Vec::new();

    // 1. Authorized?
    let q1 = match &a.process {
        Some(p) => {
            let user = p.user.as_deref().unwrap_or("unknown user");
            let (ans, ev) = match p.verdict {
                "agent" => (
                    "yes",
                    format!(
                        "{who} is the verified cloud agent {} (path and every other allowlist \
                         constraint hold), running as {user}.",
                        p.agent.as_deref().unwrap_or("?")
                    ),
                ),
                "masquerade" => (
                    "no",
                    format!(
                        "{who} is named like the cloud agent {} but fails its allowlist entry: \
                         a masquerade, running as {user}.",
                        p.agent.as_deref().unwrap_or("?")
                    ),
                ),
                "unverified" => (
                    "no",
                    format!(
                        "{who} is named like the cloud agent {} where it lives, but the record \
                         lacks a value its entry needs; not allowed. User {user}.",
                        p.agent.as_deref().unwrap_or("?")
                    ),
                ),
                "unlisted" => (
                    "no",
                    format!("{who} is not on the agent allowlist; it runs as {user}."),
                ),
                _ => (
                    "unknown",
                    "The record names no executable, so the allowlist cannot judge it.".into(),
                ),
            };
            if ans == "no" {
                why_escalate.push(format!("access from an unauthorized source ({who})"));
            }
            answer("authorized", Q_AUTHORIZED, ans, ev)
        }
        None => answer(
            "authorized",
            Q_AUTHORIZED,
            "unknown",
            "The record names no process (a network or web log); the guard proxy or host \
             telemetry attributes requests to processes."
                .into(),
        ),
    };

    // 2. Unusual frequency or volume?
    let correlation_says = matches!(a.rule_id.as_str(), "IMDS-102" | "IMDS-103" | "IMDS-104");
    let q2 = match freq {
        _ if correlation_says => {
            why_escalate.push("an access pattern differing from normal operations".into());
            answer(
                "frequency",
                Q_FREQUENCY,
                "yes",
                format!("{} ({}): {}", a.title, a.rule_id, a.reasons.join(" ")),
            )
        }
        None => answer(
            "frequency",
            Q_FREQUENCY,
            "unknown",
            format!("No baseline of {host} yet (built-in correlations off, or no request seen)."),
        ),
        Some(f) => match (f.learning, f.known_since) {
            (Some((done, total)), _) => answer(
                "frequency",
                Q_FREQUENCY,
                "unknown",
                format!(
                    "{host}'s baseline is still being learned ({:.1} h of {:.1} h since {}): \
                     how often {who} usually reaches the service is not known yet.",
                    done as f64 / 3.6e6,
                    total as f64 / 3.6e6,
                    format_time_ms(f.since_ms),
                ),
            ),
            (None, None) => {
                why_escalate.push("an access pattern differing from normal operations".into());
                answer(
                    "frequency",
                    Q_FREQUENCY,
                    "yes",
                    format!(
                        "{who} had never reached the service on {host} since its baseline \
                         began at {}.",
                        format_time_ms(f.since_ms)
                    ),
                )
            }
            (None, Some(since)) if f.this_bucket > f.threshold => {
                why_escalate.push("an access pattern differing from normal operations".into());
                answer(
                    "frequency",
                    Q_FREQUENCY,
                    "yes",
                    format!(
                        "{} requests in {} s, above {} (its busiest while learning: {}); known \
                         since {}.",
                        f.this_bucket,
                        f.bucket_ms / 1000,
                        f.threshold,
                        f.busiest,
                        format_time_ms(since)
                    ),
                )
            }
            (None, Some(since)) if f.buckets < f.min_buckets => answer(
                "frequency",
                Q_FREQUENCY,
                "unknown",
                format!(
                    "{who} has reached the service on {host} since {}, but its baseline saw \
                     requests in only {} of the {} {} s buckets needed to tell a usual rate \
                     (the logs of the learning period are thin); {} in this {} s.",
                    format_time_ms(since),
                    f.buckets,
                    f.min_buckets,
                    f.bucket_ms / 1000,
                    f.this_bucket,
                    f.bucket_ms / 1000,
                ),
            ),
            (None, Some(since)) => answer(
                "frequency",
                Q_FREQUENCY,
                "no",
                format!(
                    "{who} has reached the service on {host} since {}; {} in this {} s, its \
                     busiest while learning {}.",
                    format_time_ms(since),
                    f.this_bucket,
                    f.bucket_ms / 1000,
                    f.busiest
                ),
            ),
        },
    };

    // 3. Errors showing failed attempts?
    let q3 = if let Some(s) = facts.status.filter(|s| *s == 401 || *s == 403) {
        answer(
            "errors",
            Q_ERRORS,
            "yes",
            format!("The service answered {s}: a refused, possibly unauthorized, attempt."),
        )
    } else if !facts.missing_required.is_empty() {
        answer(
            "errors",
            Q_ERRORS,
            "yes",
            format!(
                "The request lacks the header {} that {} requires: the service refuses it (a \
                 failed attempt, or an SSRF that cannot set headers probing).",
                facts.missing_required.join(", "),
                facts.provider.as_deref().unwrap_or("the provider")
            ),
        )
    } else if facts.no_token {
        answer(
            "errors",
            Q_ERRORS,
            "unknown",
            format!(
                "The request carries no session token and no token request was seen (IMDSv1 \
                 style): it fails with 401 where {} requires tokens, and succeeds where it does \
                 not. Check the instance's metadata options.",
                facts.provider.as_deref().unwrap_or("the service")
            ),
        )
    } else if facts.http_detail {
        answer(
            "errors",
            Q_ERRORS,
            "no",
            "The request as written carries what the service requires; no error is recorded."
                .into(),
        )
    } else {
        answer(
            "errors",
            Q_ERRORS,
            "unknown",
            "This source records the connection, not the HTTP exchange: look for 401/403 in the \
             guard proxy's audit log or a web/proxy log."
                .into(),
        )
    };

    // 4. External addresses, SSRF?
    let external = facts
        .client_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| is_external(*ip));
    let q4 = if let Some(url) = &facts.nested_in {
        why_escalate.push("an SSRF attempt in a web request".into());
        answer(
            "ssrf",
            Q_SSRF,
            "yes",
            format!(
                "The metadata URL arrived inside a web request ({url}){}: the SSRF payload \
                 itself. The client is in the same record or the front proxy's log.",
                match &facts.client_ip {
                    Some(ip) => format!(" from {ip}"),
                    None => String::new(),
                }
            ),
        )
    } else if let Some(ip) = external {
        why_escalate.push(format!("SSRF indication from external address {ip}"));
        answer(
            "ssrf",
            Q_SSRF,
            "yes",
            format!("The request came from the external address {ip}."),
        )
    } else if let Some(c) = facts.caller {
        let server = facts.server.as_deref().unwrap_or("a web server");
        why_escalate.push(format!("SSRF indication ({c} {server})"));
        answer(
            "ssrf",
            Q_SSRF,
            "yes",
            if c == "web-server" {
                format!(
                    "{server} serves HTTP and has no reason to read the metadata service: a \
                     request an outside client made it send (SSRF). Find the client in its \
                     access log around {}.",
                    a.time.as_deref().unwrap_or("the alert time")
                )
            } else {
                format!(
                    "{who} was started by the web server {server}: a web shell or command \
                     injection. Find the request in its access log around {}.",
                    a.time.as_deref().unwrap_or("the alert time")
                )
            },
        )
    } else if a.process.is_some() {
        answer(
            "ssrf",
            Q_SSRF,
            "no",
            format!("{who} is not a web server nor started by one: a local process, not a relayed request."),
        )
    } else {
        answer(
            "ssrf",
            Q_SSRF,
            "unknown",
            "Neither the caller nor a client address is recorded.".into(),
        )
    };

    let escalate = !why_escalate.is_empty();
    let escalate_reason = if escalate {
        format!("Escalate to T2: {}.", why_escalate.join("; "))
    } else {
        format!(
            "The data shows no part of the playbook's escalation rule: authorized {}, unusual \
             frequency {}, SSRF {}.",
            q1.answer, q2.answer, q4.answer
        )
    };
    Triage {
        questions: vec![q1, q2, q3, q4],
        escalate,
        escalate_reason,
        containment: containment(a, facts, escalate),
    }
}

fn is_external(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.octets()[0] == 100 && (64..128).contains(&v.octets()[1]))
        }
        IpAddr::V6(v) => {
            let s = v.segments()[0];
            !(v.is_loopback()
                || v.is_unspecified()
                || (s & 0xfe00) == 0xfc00
                || (s & 0xffc0) == 0xfe80)
        }
    }
}

/// Programs many legitimate tasks on a host run as: blocking one from the metadata service
/// blocks them all (cloud SDK modules, configuration management, the agent's own scripts).
const SHARED_PROGRAMS: &[&str] = &[
    "powershell",
    "pwsh",
    "cmd",
    "wscript",
    "cscript",
    "mshta",
    "rundll32",
    "regsvr32",
    "svchost",
    "msiexec",
    "python",
    "python2",
    "python3",
    "py",
    "pythonw",
    "bash",
    "sh",
    "dash",
    "zsh",
    "ksh",
    "curl",
    "wget",
    "java",
    "javaw",
    "node",
    "perl",
    "ruby",
    "php",
    "php-fpm",
    "w3wp",
    "httpd",
    "apache2",
    "nginx",
    "tomcat",
];

/// Whether `image` is one of [`SHARED_PROGRAMS`] (any version suffix: `python3.11`, `php-fpm8.2`)
/// where the system or a package installs it: a copy in a temp or user folder is its own.
fn shared_program(image: &str) -> bool {
    if matches!(
        imdsguard_enrich::Location::of(image),
        imdsguard_enrich::Location::Deleted
            | imdsguard_enrich::Location::SharedMemory
            | imdsguard_enrich::Location::Temp
            | imdsguard_enrich::Location::Downloads
            | imdsguard_enrich::Location::UserWritable
    ) {
        return false;
    }
    let name = image
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(image)
        .to_ascii_lowercase();
    let stem = name.strip_suffix(".exe").unwrap_or(&name);
    let stem = stem.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    SHARED_PROGRAMS.contains(&stem)
}

/// A shell expression giving the AWS instance id of `host`: by its private DNS name for EC2's
/// `ip-10-0-1-15` names, else by its `Name` tag (the console's name for it).
fn aws_instance_of(host: Option<&str>) -> String {
    let filter = match host {
        Some(h) if h.starts_with("ip-") => format!(
            "Name=private-dns-name,Values={}*",
            h.split('.').next().unwrap_or(h)
        ),
        Some(h) => format!("Name=tag:Name,Values={}", h.split('.').next().unwrap_or(h)),
        None => "Name=private-ip-address,Values=<the host's private address>".into(),
    };
    format!(
        "$(aws ec2 describe-instances --filters '{filter}' --query \
         'Reservations[0].Instances[0].InstanceId' --output text)"
    )
}

fn containment(a: &Alert, facts: &Facts, escalate: bool) -> Vec<Containment> {
    let mut out = Vec::new();
    let step = |action: &str, why: String, command: Option<String>| Containment {
        action: action.into(),
        why,
        command,
    };
    let p = a.process.as_ref();
    let image = p.and_then(|p| p.image.as_deref());
    let verdict = p.map_or("unknown", |p| p.verdict);
    let provider = facts.provider.as_deref();
    // A firewall rule needs an address: a host name endpoint (metadata.google.internal) is
    // the link-local address every provider's name resolves to, but Alibaba's own.
    let endpoint = a
        .target
        .as_ref()
        .and_then(|t| t.endpoint.clone())
        .filter(|e| e.parse::<IpAddr>().is_ok())
        .unwrap_or_else(|| {
            if provider == Some("alibaba") {
                "100.100.100.200".into()
            } else {
                "169.254.169.254".into()
            }
        });
    let kind = a.target.as_ref().map_or("other", |t| t.kind);
    if escalate && verdict != "agent" {
        if let Some(image) = image {
            let windows = image.contains('\\') || image.contains(':');
            let command = if windows {
                format!(
                    "New-NetFirewallRule -DisplayName 'imdsguard: block {}' -Direction Outbound \
                     -Program '{image}' -RemoteAddress {endpoint} -Action Block",
                    image.rsplit(['\\', '/']).next().unwrap_or(image)
                )
            } else {
                let user = p.and_then(|p| p.user.as_deref()).unwrap_or("<user>");
                format!(
                    "iptables -I OUTPUT -d {endpoint} -m owner --uid-owner {user} -j REJECT  \
                     # {} by its user; or run it in a network namespace without the route",
                    normalize_path(image)
                )
            };
            let mut why = format!("{image} is not an authorized caller (verdict {verdict}).");
            let user = p.and_then(|p| p.user.as_deref()).unwrap_or("");
            if !windows && matches!(user, "root" | "0") {
                why.push_str(
                    " Careful: the rule blocks every process of root, the cloud agents among \
                     them; prefer a network namespace or a cgroup for the process.",
                );
            } else if windows && shared_program(image) {
                why.push_str(&format!(
                    " Careful: {} is a program many legitimate tasks on this host run as (cloud \
                     SDK modules, configuration management, the cloud agent's scripts); this \
                     rule blocks them all. Prefer blocking the user or the parent that ran it, \
                     and test before leaving it in place.",
                    image.rsplit(['\\', '/']).next().unwrap_or(image)
                ));
            }
            out.push(step(
                "Block the process from the metadata service",
                why,
                Some(command),
            ));
        }
    }
    let server = facts.server.as_deref().unwrap_or("the web application");
    let when = a.time.as_deref().unwrap_or("the alert time");
    if let Some(url) = &facts.nested_in {
        out.push(step(
            "Fix the SSRF",
            format!(
                "The application behind {url} fetches a URL it is given: validate outbound URLs \
                 and refuse link-local and metadata addresses and redirects to them; block the \
                 payload at the WAF meanwhile."
            ),
            None,
        ));
    }
    match facts.caller {
        Some("web-server") => out.push(step(
            "Fix the SSRF",
            format!(
                "{server} relays requests to the metadata service: validate outbound URLs, \
                 refuse link-local and metadata addresses and redirects to them, and find the \
                 request in its access log around {when}."
            ),
            None,
        )),
        Some(_) => out.push(step(
            "Remove the web shell or fix the command injection",
            format!(
                "{server} started {}: find the request that did it in its access log around \
                 {when}, then the file or parameter it used.",
                image.unwrap_or("the process")
            ),
            None,
        )),
        None => {}
    }
    let aws_like = provider == Some("aws") || (provider.is_none() && endpoint == "169.254.169.254");
    if aws_like {
        out.push(step(
            "Enforce IMDSv2 and a hop limit of 1",
            format!(
                "{}Tokens stop SSRF that cannot send a PUT with headers; a hop limit of 1 keeps \
                 containers and forwarded traffic from getting a token.",
                if provider.is_none() {
                    "If the instance is on AWS (169.254.169.254 alone does not tell the provider): "
                } else {
                    ""
                }
            ),
            Some(format!(
                "aws ec2 modify-instance-metadata-options --instance-id {} --http-tokens \
                 required --http-put-response-hop-limit 1 --http-endpoint enabled",
                aws_instance_of(a.host.as_deref())
            )),
        ));
    }
    if matches!(kind, "credentials" | "token" | "identity" | "userdata") && escalate {
        let principal = facts.principal.as_deref();
        let when = a.time.as_deref().unwrap_or("<alert time>");
        match provider {
            Some("aws") | None if aws_like => {
                // The role the path names, else the one the instance's profile holds, looked
                // up by the host's name.
                let (role, find) = match principal {
                    Some(r) => (r.to_owned(), String::new()),
                    None => (
                        "\"$ROLE\"".to_owned(),
                        format!(
                            "ROLE=$(aws iam get-instance-profile --instance-profile-name \
                             \"$(aws ec2 describe-instances --instance-ids {} --query \
                             'Reservations[0].Instances[0].IamInstanceProfile.Arn' --output text \
                             | cut -d/ -f2)\" --query 'InstanceProfile.Roles[0].RoleName' \
                             --output text); ",
                            aws_instance_of(a.host.as_deref())
                        ),
                    ),
                };
                let named = principal.map_or_else(
                    || "the role of the instance's profile".to_owned(),
                    str::to_owned,
                );
                out.push(step(
                    "Rotate the role's credentials",
                    format!(
                        "Instance-role credentials cannot be deleted, only outlived: deny every \
                         session of {named} issued before now (what the console's \"Revoke \
                         active sessions\" does), then find their use in CloudTrail since {when}."
                    ),
                    Some(format!(
                        "{find}aws iam put-role-policy --role-name {role} --policy-name \
                         AWSRevokeOlderSessions --policy-document \"{{\\\"Version\\\":\\\"2012-10-17\\\",\
                         \\\"Statement\\\":[{{\\\"Effect\\\":\\\"Deny\\\",\\\"Action\\\":\\\"*\\\",\\\"Resource\\\":\\\"*\\\",\
                         \\\"Condition\\\":{{\\\"DateLessThan\\\":{{\\\"aws:TokenIssueTime\\\":\
                         \\\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\\\"}}}}}}]}}\""
                    )),
                ));
                out.push(step(
                    "Restrict the role",
                    format!("Keep only what the instance needs of {named}'s permissions."),
                    Some(format!(
                        "{find}aws iam list-attached-role-policies --role-name {role}"
                    )),
                ));
            }
            Some("azure") => out.push(step(
                "Restrict the managed identity",
                "Managed-identity tokens cannot be revoked before they expire (up to 24 h): \
                 remove or narrow the identity's role assignments now."
                    .into(),
                Some(format!(
                    "az role assignment list --all --assignee \"$(az vm list --query \
                     \"[?name=='{}'].identity.principalId | [0]\" --output tsv)\"",
                    a.host
                        .as_deref()
                        .map_or("<the VM's name>", |h| h.split('.').next().unwrap_or(h))
                )),
            )),
            Some("gcp") => {
                // `default` names the VM's own account without its address: looked up by the
                // VM's name.
                let (named, sa) = match principal.filter(|p| *p != "default") {
                    Some(sa) => (sa.to_owned(), sa.to_owned()),
                    None => (
                        "the VM's service account".to_owned(),
                        format!(
                            "$(gcloud compute instances list --filter=\"name={}\" \
                             --format=\"value(serviceAccounts[0].email)\")",
                            a.host
                                .as_deref()
                                .map_or("<the VM's name>", |h| h.split('.').next().unwrap_or(h))
                        ),
                    ),
                };
                out.push(step(
                    "Restrict the service account",
                    format!(
                        "Access tokens of {named} live up to an hour: remove its roles or \
                         disable it if it was stolen."
                    ),
                    Some(format!(
                        "gcloud projects get-iam-policy \"$(gcloud config get-value project)\" \
                         --flatten='bindings[].members' --filter=\"bindings.members:{sa}\""
                    )),
                ));
            }
            _ => out.push(step(
                "Rotate the instance's credentials",
                "Credentials were read by an unauthorized caller: revoke them and narrow what \
                 the instance identity may do."
                    .into(),
                None,
            )),
        }
    }
    out
}

/// Folds an alert's triage into its incident's: an incident escalates when any of its alerts
/// does; each question keeps its most telling answer (`no` to "authorized?", `yes` elsewhere,
/// then `unknown`); each distinct containment step appears once.
pub fn merge(into: &mut Triage, from: &Triage) {
    let rank = |key: &str, a: &str| match (key, a) {
        ("authorized", "no") => 2,
        ("authorized", "yes") => 0,
        (_, "yes") => 2,
        (_, "unknown") => 1,
        _ => 0,
    };
    for q in &from.questions {
        match into.questions.iter_mut().find(|x| x.key == q.key) {
            Some(x) if rank(&q.key, &q.answer) > rank(&x.key, &x.answer) => *x = q.clone(),
            Some(_) => {}
            None => into.questions.push(q.clone()),
        }
    }
    if from.escalate {
        let parts = |t: &str| -> Vec<String> {
            t.trim_start_matches("Escalate to T2: ")
                .trim_end_matches('.')
                .split("; ")
                .map(str::to_owned)
                .collect()
        };
        let mut mine = if into.escalate {
            parts(&into.escalate_reason)
        } else {
            Vec::new()
        };
        for p in parts(&from.escalate_reason) {
            if !mine.contains(&p) {
                mine.push(p);
            }
        }
        into.escalate = true;
        into.escalate_reason = format!("Escalate to T2: {}.", mine.join("; "));
    }
    for c in &from.containment {
        if !into
            .containment
            .iter()
            .any(|x| x.action == c.action && x.command == c.command)
        {
            into.containment.push(c.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_enrich::Enricher;
    use imdsguard_event::Severity;
    use imdsguard_parse::{read_reader, ReadOptions, Summary};
    use serde_json::json;

    /// The triage of one NXLog record, as an alert of `rule` with the given frequency.
    fn decoded(record: serde_json::Value) -> imdsguard_event::Event {
        let mut events = Vec::new();
        read_reader(
            "t",
            &mut record.to_string().as_bytes(),
            &ReadOptions::default(),
            &mut Summary::default(),
            &mut |e| events.push(e),
        );
        assert_eq!(events.len(), 1, "{record}");
        events.remove(0)
    }

    fn triage_of(record: serde_json::Value, rule: &str, freq: Option<&Frequency>) -> Triage {
        let mut events = Vec::new();
        read_reader(
            "t",
            &mut record.to_string().as_bytes(),
            &ReadOptions::default(),
            &mut Summary::default(),
            &mut |e| events.push(e),
        );
        assert_eq!(events.len(), 1, "{record}");
        let enricher = Enricher::builtin();
        let ev = enricher.enrich(&events[0]);
        let mut a = Alert::context(&ev);
        a.rule_id = rule.into();
        a.severity = Severity::High;
        triage(&a, &Facts::of(&ev), freq)
    }

    fn start(image: &str, cmd: &str, parent: &str, user: &str) -> serde_json::Value {
        json!({"EventTime": "2026-11-20 10:00:00", "Hostname": "web01", "EventID": 1,
               "SourceModuleType": "im_msvistalog",
               "Channel": "Microsoft-Windows-Sysmon/Operational", "ProcessId": "7001",
               "Image": image, "CommandLine": cmd, "User": user, "ParentProcessId": "5120",
               "ParentImage": parent})
    }

    fn answers(t: &Triage) -> Vec<(&str, &str)> {
        t.questions
            .iter()
            .map(|q| (q.key.as_str(), q.answer.as_str()))
            .collect()
    }

    #[test]
    fn a_web_shell_reading_gcp_without_its_header_escalates_with_the_evidence() {
        let t = triage_of(
            start(
                r"C:\Windows\System32\curl.exe",
                "curl.exe http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token",
                r"C:\Windows\System32\inetsrv\w3wp.exe",
                r"CORP\svc-web",
            ),
            "IMDS-004",
            None,
        );
        assert_eq!(
            answers(&t),
            [
                ("authorized", "no"),
                ("frequency", "unknown"),
                // No Metadata-Flavor header: GCP refuses it, a failed attempt.
                ("errors", "yes"),
                ("ssrf", "yes"),
            ]
        );
        assert!(t.questions[2].evidence.contains("Metadata-Flavor: Google"));
        assert!(t.questions[3].evidence.contains("w3wp.exe"));
        assert!(t.escalate);
        assert!(t.escalate_reason.contains("unauthorized source"));
        assert!(t.escalate_reason.contains("SSRF indication"));
        let actions: Vec<&str> = t.containment.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "Block the process from the metadata service",
                "Remove the web shell or fix the command injection",
                "Restrict the service account",
            ]
        );
        assert!(t.containment[0]
            .command
            .as_deref()
            .unwrap()
            .contains(r"-Program 'C:\Windows\System32\curl.exe'"));
        // curl.exe in System32 is shared by the host's tasks: blocking it says what it costs.
        assert!(
            t.containment[0].why.contains("Careful: curl.exe"),
            "{}",
            t.containment[0].why
        );
        // `default` is the VM's own account, looked up by its name.
        assert!(t.containment[2]
            .command
            .as_deref()
            .unwrap()
            .contains(r#"gcloud compute instances list --filter="name=web01""#));
    }

    #[test]
    fn alerts_not_about_the_metadata_service_get_no_metadata_playbook() {
        // A Sigma rule on bcdedit: no target, not a built-in correlation.
        let mut a = Alert::context(&Enricher::builtin().enrich(&decoded(start(
            r"C:\Windows\System32\bcdedit.exe",
            "bcdedit /set {default} recoveryenabled no",
            r"C:\Windows\System32\cmd.exe",
            r"CORP\admin",
        ))));
        a.rule_id = "1444443e-6757-43e4-9ea4-c8fc705f79a2".into();
        assert!(a.target.is_none());
        assert!(!applies(&a));
        a.rule_id = "IMDS-103".into();
        assert!(applies(&a));
    }

    #[test]
    fn a_role_nobody_named_is_looked_up_not_left_as_a_placeholder() {
        let t = triage_of(
            start(
                "/usr/bin/curl",
                "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                "/bin/bash",
                "www-data",
            ),
            "IMDS-004",
            None,
        );
        let commands: Vec<&str> = t
            .containment
            .iter()
            .filter_map(|c| c.command.as_deref())
            .collect();
        assert!(!commands.is_empty());
        for c in &commands {
            assert!(!c.contains("<role>") && !c.contains("<instance-id>"), "{c}");
        }
        assert!(
            commands
                .iter()
                .any(|c| c.contains("ROLE=$(aws iam get-instance-profile")),
            "{commands:#?}"
        );
    }

    #[test]
    fn an_imdsv1_credential_read_names_the_role_to_rotate() {
        let t = triage_of(
            start(
                "/usr/bin/curl",
                "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role",
                "/bin/bash",
                "ubuntu",
            ),
            "IMDS-004",
            None,
        );
        assert_eq!(t.questions[2].answer, "unknown");
        assert!(t.questions[2].evidence.contains("IMDSv1"), "{t:?}");
        assert_eq!(t.questions[3].answer, "no");
        let rotate = t
            .containment
            .iter()
            .find(|c| c.action == "Rotate the role's credentials")
            .expect("rotation");
        assert!(rotate
            .command
            .as_deref()
            .unwrap()
            .contains("--role-name web-role"));
        let block = &t.containment[0];
        assert!(block
            .command
            .as_deref()
            .unwrap()
            .contains("--uid-owner ubuntu"));
    }

    #[test]
    fn a_verified_agent_at_its_usual_rate_does_not_escalate() {
        let record = json!({"EventTime": "2026-11-21 10:00:00", "Hostname": "web01",
            "SourceModuleType": "im_msvistalog", "EventID": 3,
            "Channel": "Microsoft-Windows-Sysmon/Operational", "ProcessId": "2120",
            "Image": r"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe",
            "User": r"NT AUTHORITY\SYSTEM", "Protocol": "tcp", "Initiated": "true",
            "SourceIp": "10.0.1.15", "SourcePort": "49811",
            "DestinationIp": "169.254.169.254", "DestinationPort": "80"});
        let usual = Frequency {
            since_ms: 0,
            learning: None,
            known_since: Some(1000),
            busiest: 2,
            this_bucket: 1,
            bucket_ms: 60_000,
            threshold: 30,
            buckets: 60,
            min_buckets: 10,
        };
        let t = triage_of(record.clone(), "IMDS-001", Some(&usual));
        assert_eq!(
            answers(&t),
            [
                ("authorized", "yes"),
                ("frequency", "no"),
                ("errors", "unknown"),
                ("ssrf", "no"),
            ]
        );
        assert!(!t.escalate, "{}", t.escalate_reason);
        // The same agent in a burst far above its baseline: unusual, escalate.
        let burst = Frequency {
            this_bucket: 90,
            ..usual
        };
        let t = triage_of(record.clone(), "IMDS-001", Some(&burst));
        assert_eq!(t.questions[1].answer, "yes");
        assert!(t.escalate);
        assert!(t.escalate_reason.contains("differing from normal"));
        // A baseline that saw requests in only three minutes cannot say what is usual.
        let thin = Frequency {
            buckets: 3,
            ..usual
        };
        let t = triage_of(record, "IMDS-001", Some(&thin));
        assert_eq!(t.questions[1].answer, "unknown");
        assert!(
            t.questions[1].evidence.contains("only 3 of the 10"),
            "{}",
            t.questions[1].evidence
        );
    }

    #[test]
    fn an_incident_keeps_the_most_telling_answers_and_each_step_once() {
        let web = triage_of(
            start(
                "/usr/bin/curl",
                "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/r",
                "/usr/sbin/nginx",
                "www-data",
            ),
            "IMDS-004",
            None,
        );
        let mut all = web.clone();
        merge(&mut all, &web);
        assert_eq!(all, web, "merging a triage with itself changes nothing");
        let calm = Triage {
            questions: vec![answer("authorized", Q_AUTHORIZED, "yes", "agent".into())],
            escalate: false,
            escalate_reason: "none".into(),
            containment: Vec::new(),
        };
        let mut inc = calm.clone();
        merge(&mut inc, &web);
        assert_eq!(inc.questions[0].answer, "no");
        assert!(inc.escalate);
        assert_eq!(inc.escalate_reason, web.escalate_reason);
    }

    /// An SSRF payload as a web log records it (ECS `url.full`): the metadata URL inside a
    /// parameter. No process, no client address; the URL itself is the indication.
    #[test]
    fn a_metadata_url_inside_a_web_request_is_an_ssrf_attempt() {
        let mut events = Vec::new();
        let line = json!({"@timestamp": "2026-11-20T11:00:00.100Z", "ecs": {"version": "8.11.0"},
            "event": {"category": ["web"]}, "host": {"name": "gke-node-1"},
            "url": {"full": "http://shop.example/api/preview?src=http%3A%2F%2Fmetadata.google.internal%2FcomputeMetadata%2Fv1%2Finstance%2Fservice-accounts%2Fdefault%2Ftoken"},
            "destination": {"ip": "10.8.0.12", "port": 8080}});
        read_reader(
            "t",
            &mut line.to_string().as_bytes(),
            &ReadOptions::default(),
            &mut Summary::default(),
            &mut |e| events.push(e),
        );
        let enricher = Enricher::builtin();
        let ev = enricher.enrich(&events[0]);
        let facts = Facts::of(&ev);
        assert!(facts.nested_in.is_some());
        let mut a = Alert::context(&ev);
        a.rule_id = "IMDS-005".into();
        let t = triage(&a, &facts, None);
        assert_eq!(
            answers(&t),
            [
                ("authorized", "unknown"),
                ("frequency", "unknown"),
                // Through a URL parameter the header GCP requires cannot be sent: refused.
                ("errors", "yes"),
                ("ssrf", "yes"),
            ]
        );
        assert!(t.escalate);
        assert!(t.containment.iter().any(|c| c.action == "Fix the SSRF"));
    }

    #[test]
    fn external_addresses_are_public_ones() {
        for ip in [
            "10.1.2.3",
            "192.168.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.100.100.200",
            "fd00:ec2::254",
            "fe80::1",
            "::1",
        ] {
            assert!(!is_external(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "52.94.1.1", "2600:1f18::1"] {
            assert!(is_external(ip.parse().unwrap()), "{ip}");
        }
    }
}
