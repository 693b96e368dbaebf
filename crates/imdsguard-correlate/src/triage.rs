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

use imdsguard_enrich::{normalize_path, Caller, Enriched, TargetSource, VerdictKind};
use imdsguard_event::format_time_ms;
use imdsguard_rules::{Alert, Answer, Containment, Question, Reply, Triage};
use imdsguard_target::{HeaderRole, Kind};

use crate::containment::{Playbooks, Var, When};

/// What triage needs of an event beyond its alert: who called, from where, and what the request
/// carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `web-server` or `web-server-child`.
    pub caller: Option<Caller>,
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
            Some(Caller::WebServer) => e.process.image.clone(),
            Some(Caller::WebServerChild) => e.parent.image.clone(),
            None => None,
        };
        let mut f = Facts {
            caller,
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
        // A metadata address in the URL a web server was asked for is a payload too, nested or
        // written plainly in a parameter.
        let asked_of_a_server = e
            .http
            .as_ref()
            .is_some_and(|h| h.vantage == imdsguard_event::Vantage::Inbound)
            && t.endpoint.is_some();
        if best.source == TargetSource::Url
            && (t.encoding.contains(imdsguard_target::Encoding::NestedUrl) || asked_of_a_server)
        {
            f.nested_in = e.network.as_ref().and_then(|n| n.url.clone());
        }
        f.provider = t.provider_id().map(str::to_owned);
        f.principal = t.path.as_deref().and_then(principal);
        // The headers the request sent: read from its command line, or named by the log.
        let logged = e.http.as_ref().and_then(|h| h.header_names.as_ref());
        let sent = |name: &str| {
            t.headers.iter().any(|x| x.eq_ignore_ascii_case(name))
                || logged.is_some_and(|l| l.iter().any(|x| x.eq_ignore_ascii_case(name)))
        };
        if let (Some(p), true) = (t.provider, f.http_detail) {
            for h in &p.headers {
                if h.role == HeaderRole::Required && !sent(&h.name) {
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
                f.no_token = !asked && !sent(&tok.header);
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

/// One question answered, and the part of the playbook's escalation rule the answer meets, if
/// any.
pub(crate) struct Finding {
    pub(crate) answer: Answer,
    pub(crate) escalate_because: Option<String>,
}

impl Finding {
    pub(crate) fn plain(question: Question, reply: Reply, evidence: String) -> Finding {
        Finding {
            answer: Answer::new(question, reply, evidence),
            escalate_because: None,
        }
    }

    pub(crate) fn escalating(
        question: Question,
        reply: Reply,
        evidence: String,
        because: String,
    ) -> Finding {
        Finding {
            answer: Answer::new(question, reply, evidence),
            escalate_because: Some(because),
        }
    }
}

/// The alert's acting process, as sentences name it; for a web, proxy or wire record that names
/// no process, its client.
fn who(a: &Alert) -> String {
    let client = || {
        a.http
            .as_ref()
            .and_then(|h| h.client.as_deref())
            .map(|c| format!("client {c}"))
    };
    a.process
        .as_ref()
        .and_then(|p| p.image.clone())
        .or_else(client)
        .unwrap_or_else(|| "the process".into())
}

/// Whether the metadata playbook applies to an alert: it names a metadata target, or it is one
/// of the built-in correlations over metadata requests. A Sigma rule about something else (a
/// `bcdedit` tamper, a logon) gets no metadata questions, escalation or containment.
pub fn applies(a: &Alert) -> bool {
    a.target.is_some() || a.rule_id.starts_with("IMDS-")
}

/// The playbook's triage of an alert the playbook [`applies`] to.
pub fn triage(a: &Alert, facts: &Facts, freq: Option<&Frequency>) -> Triage {
    if let (Some(c), None) = (&a.cloud, &a.target) {
        return crate::triage_cloud::triage(a, c);
    }
    let findings = [
        authorized(a),
        frequency(a, freq),
        errors(a, facts),
        ssrf(a, facts),
    ];
    let why_escalate: Vec<&str> = findings
        .iter()
        .filter_map(|f| f.escalate_because.as_deref())
        .collect();
    let escalate = !why_escalate.is_empty();
    let escalate_reason = if escalate {
        format!("Escalate to T2: {}.", why_escalate.join("; "))
    } else {
        let said = |q: Question| findings[q as usize].answer.answer;
        format!(
            "The data shows no part of the playbook's escalation rule: authorized {}, unusual \
             frequency {}, SSRF {}.",
            said(Question::Authorized),
            said(Question::Frequency),
            said(Question::Ssrf)
        )
    };
    Triage {
        questions: findings.into_iter().map(|f| f.answer).collect(),
        escalate,
        escalate_reason,
        containment: containment(a, facts, escalate),
    }
}

/// The playbook's first question: is the caller an authorized application? Decided by the
/// allowlist's verdict on the acting process.
fn authorized(a: &Alert) -> Finding {
    let q = Question::Authorized;
    let client = a.http.as_ref().and_then(|h| h.client.as_deref());
    if let (None, Some(client)) = (&a.process, client) {
        let external = client.parse::<IpAddr>().ok().filter(|ip| is_external(*ip));
        return match external {
            Some(ip) => Finding::escalating(
                q,
                Reply::No,
                format!(
                    "The request came from {ip}, an address outside the private ranges: an \
                     outside client is never an authorized caller of the metadata service."
                ),
                format!("access from an unauthorized source ({ip})"),
            ),
            None => Finding::plain(
                q,
                Reply::Unknown,
                format!(
                    "The request came from {client}, an internal address; the log names no \
                     process. Host telemetry on {client} (Sysmon event 3, auditd connect \
                     records) names the program that sent it."
                ),
            ),
        };
    }
    let Some(p) = &a.process else {
        return Finding::plain(
            q,
            Reply::Unknown,
            "The record names no process (a network or web log); host telemetry (Sysmon \
             event 3, auditd connect records) attributes requests to processes."
                .into(),
        );
    };
    let who = who(a);
    let user = p.user.as_deref().unwrap_or("unknown user");
    let agent = p.agent.as_deref().unwrap_or("?");
    let evidence = match p.verdict {
        VerdictKind::Agent => {
            return Finding::plain(
                q,
                Reply::Yes,
                format!(
                    "{who} is the verified cloud agent {agent} (path and every other allowlist \
                     constraint hold), running as {user}."
                ),
            )
        }
        VerdictKind::Unknown => {
            return Finding::plain(
                q,
                Reply::Unknown,
                "The record names no executable, so the allowlist cannot judge it.".into(),
            )
        }
        VerdictKind::Masquerade => format!(
            "{who} is named like the cloud agent {agent} but fails its allowlist entry: a \
             masquerade, running as {user}."
        ),
        VerdictKind::Unverified => format!(
            "{who} is named like the cloud agent {agent} where it lives, but the record lacks a \
             value its entry needs; not allowed. User {user}."
        ),
        VerdictKind::Unlisted => {
            format!("{who} is not on the agent allowlist; it runs as {user}.")
        }
    };
    Finding::escalating(
        q,
        Reply::No,
        evidence,
        format!("access from an unauthorized source ({who})"),
    )
}

/// The playbook's second question: is the frequency or volume unusual? A rate or first-use
/// correlation says so itself; otherwise the host's baseline answers, or says why it cannot.
fn frequency(a: &Alert, freq: Option<&Frequency>) -> Finding {
    let q = Question::Frequency;
    let unusual = "an access pattern differing from normal operations".to_owned();
    let host = a.host.as_deref().unwrap_or("(no host)");
    // Where the baseline was learned: the host, or for web and proxy records, these logs.
    let on_host = match a.host.as_deref() {
        Some(h) => format!("on {h}"),
        None => "in these logs".to_owned(),
    };
    let who = who(a);
    if matches!(a.rule_id.as_str(), "IMDS-102" | "IMDS-103" | "IMDS-104") {
        return Finding::escalating(
            q,
            Reply::Yes,
            format!("{} ({}): {}", a.title, a.rule_id, a.reasons.join(" ")),
            unusual,
        );
    }
    let Some(f) = freq else {
        return Finding::plain(
            q,
            Reply::Unknown,
            format!("No baseline of {host} yet (built-in correlations off, or no request seen)."),
        );
    };
    let bucket_s = f.bucket_ms / 1000;
    match (f.learning, f.known_since) {
        (Some((done, total)), _) => Finding::plain(
            q,
            Reply::Unknown,
            format!(
                "{host}'s baseline is still being learned ({:.1} h of {:.1} h since {}): how \
                 often {who} usually reaches the service is not known yet.",
                done as f64 / 3.6e6,
                total as f64 / 3.6e6,
                format_time_ms(f.since_ms),
            ),
        ),
        (None, None) => Finding::escalating(
            q,
            Reply::Yes,
            format!(
                "{who} had never reached the service {on_host} since its baseline began at {}.",
                format_time_ms(f.since_ms)
            ),
            unusual,
        ),
        (None, Some(since)) if f.this_bucket > f.threshold => Finding::escalating(
            q,
            Reply::Yes,
            format!(
                "{} requests in {bucket_s} s, above {} (its busiest while learning: {}); known \
                 since {}.",
                f.this_bucket,
                f.threshold,
                f.busiest,
                format_time_ms(since)
            ),
            unusual,
        ),
        (None, Some(since)) if f.buckets < f.min_buckets => Finding::plain(
            q,
            Reply::Unknown,
            format!(
                "{who} has reached the service {on_host} since {}, but its baseline saw requests \
                 in only {} of the {} {bucket_s} s buckets needed to tell a usual rate (the logs \
                 of the learning period are thin); {} in this {bucket_s} s.",
                format_time_ms(since),
                f.buckets,
                f.min_buckets,
                f.this_bucket,
            ),
        ),
        (None, Some(since)) => Finding::plain(
            q,
            Reply::No,
            format!(
                "{who} has reached the service {on_host} since {}; {} in this {bucket_s} s, its \
                 busiest while learning {}.",
                format_time_ms(since),
                f.this_bucket,
                f.busiest
            ),
        ),
    }
}

/// The playbook's third question: do errors show failed attempts? From the HTTP status when the
/// record has one, else from what the request as written lacks.
fn errors(a: &Alert, facts: &Facts) -> Finding {
    let q = Question::Errors;
    // A web server's answer to an SSRF attempt says whether the attempt got through it.
    let inbound = a
        .http
        .as_ref()
        .filter(|h| h.request.vantage == imdsguard_event::Vantage::Inbound);
    if let Some(s) = inbound.and_then(|h| h.request.status) {
        let bytes = inbound.and_then(|h| h.request.bytes_out);
        if s >= 400 {
            return Finding::plain(
                q,
                Reply::Yes,
                format!(
                    "The web server answered {s}: the attempt failed there (a probe, or a \
                     payload the application refused)."
                ),
            );
        }
        let kind = a.target.as_ref().map(|t| t.kind);
        let sized = match bytes {
            // An AWS credential document is about 1.3 KB; Azure's and GCP's tokens 1-4 KB.
            Some(n) if kind == Some(Kind::Credentials) && (800..=6000).contains(&n) => format!(
                " with {n} bytes, the size of a credential document: the application may have \
                 returned the service's answer"
            ),
            Some(n) => format!(" with {n} bytes"),
            None => String::new(),
        };
        return Finding::plain(
            q,
            Reply::No,
            format!("The web server answered {s}{sized}; no error is recorded."),
        );
    }
    if let Some(s) = facts.status.filter(|s| *s == 401 || *s == 403) {
        return Finding::plain(
            q,
            Reply::Yes,
            format!("The service answered {s}: a refused, possibly unauthorized, attempt."),
        );
    }
    if !facts.missing_required.is_empty() {
        return Finding::plain(
            q,
            Reply::Yes,
            format!(
                "The request lacks the header {} that {} requires: the service refuses it (a \
                 failed attempt, or an SSRF that cannot set headers probing).",
                facts.missing_required.join(", "),
                facts.provider.as_deref().unwrap_or("the provider")
            ),
        );
    }
    if facts.no_token {
        return Finding::plain(
            q,
            Reply::Unknown,
            format!(
                "The request carries no session token and no token request was seen (IMDSv1 \
                 style): it fails with 401 where {} requires tokens, and succeeds where it does \
                 not. Check the instance's metadata options.",
                facts.provider.as_deref().unwrap_or("the service")
            ),
        );
    }
    if facts.http_detail {
        return Finding::plain(
            q,
            Reply::No,
            "The request as written carries what the service requires; no error is recorded."
                .into(),
        );
    }
    Finding::plain(
        q,
        Reply::Unknown,
        "This source records the connection, not the HTTP exchange: look for 401/403 answers \
         from the metadata service in a web or proxy log."
            .into(),
    )
}

/// The playbook's fourth question: do external addresses make requests indicative of SSRF? A
/// metadata URL inside a web request, an external client, or a web server (or its child) as the
/// caller says yes.
fn ssrf(a: &Alert, facts: &Facts) -> Finding {
    let q = Question::Ssrf;
    let when = a.time.as_deref().unwrap_or("the alert time");
    if let Some(url) = &facts.nested_in {
        let from = facts
            .client_ip
            .as_ref()
            .map_or_else(String::new, |ip| format!(" from {ip}"));
        return Finding::escalating(
            q,
            Reply::Yes,
            format!(
                "The metadata URL arrived inside a web request ({url}){from}: the SSRF payload \
                 itself. The client is in the same record or the front proxy's log."
            ),
            "an SSRF attempt in a web request".into(),
        );
    }
    let external = facts
        .client_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| is_external(*ip));
    if let Some(ip) = external {
        return Finding::escalating(
            q,
            Reply::Yes,
            format!("The request came from the external address {ip}."),
            format!("SSRF indication from external address {ip}"),
        );
    }
    // Relayed: the addresses a proxy wrote in X-Forwarded-For.
    let relayed_for = a
        .http
        .as_ref()
        .and_then(|h| h.request.forwarded_for.as_deref())
        .into_iter()
        .flat_map(|list| list.split(','))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .find(|ip| is_external(*ip));
    if let Some(ip) = relayed_for {
        return Finding::escalating(
            q,
            Reply::Yes,
            format!(
                "The request was relayed for the external address {ip} (X-Forwarded-For): SSRF \
                 through a proxy."
            ),
            format!("SSRF indication from external address {ip} (relayed)"),
        );
    }
    let who = who(a);
    if let Some(c) = facts.caller {
        let server = facts.server.as_deref().unwrap_or("a web server");
        let evidence = match c {
            Caller::WebServer => format!(
                "{server} serves HTTP and has no reason to read the metadata service: a request \
                 an outside client made it send (SSRF). Find the client in its access log around \
                 {when}."
            ),
            Caller::WebServerChild => format!(
                "{who} was started by the web server {server}: a web shell or command injection. \
                 Find the request in its access log around {when}."
            ),
        };
        return Finding::escalating(
            q,
            Reply::Yes,
            evidence,
            format!("SSRF indication ({} {server})", c.as_str()),
        );
    }
    if a.process.is_some() {
        return Finding::plain(
            q,
            Reply::No,
            format!(
                "{who} is not a web server nor started by one: a local process, not a relayed \
                 request."
            ),
        );
    }
    if let Some(ip) = &facts.client_ip {
        return Finding::plain(
            q,
            Reply::No,
            format!(
                "The client {ip} is an internal address and the record names no outside address \
                 it relayed for."
            ),
        );
    }
    Finding::plain(
        q,
        Reply::Unknown,
        "Neither the caller nor a client address is recorded.".into(),
    )
}

/// Whether an address is one the public internet routes: not private, loopback, link-local,
/// unspecified, broadcast or carrier-grade shared space (100.64.0.0/10), nor IPv6 unique-local.
pub(crate) fn is_external(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
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
    let verdict = p.map_or(VerdictKind::Unknown, |p| p.verdict);
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
    let kind = a.target.as_ref().map_or(Kind::Other, |t| t.kind);
    if escalate && verdict != VerdictKind::Agent {
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
            let mut why = format!(
                "{image} is not an authorized caller (verdict {}).",
                verdict.as_str()
            );
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
        let route = a
            .http
            .as_ref()
            .and_then(|h| h.request.uri.as_deref())
            .map(|u| u.split('?').next().unwrap_or(u).to_owned());
        let route = match route {
            Some(r) => format!("The route {r} ({url})"),
            None => format!("The application behind {url}"),
        };
        out.push(step(
            "Fix the SSRF",
            format!(
                "{route} fetches a URL it is given: validate outbound URLs and refuse \
                 link-local and metadata addresses and redirects to them; block the payload at \
                 the WAF meanwhile."
            ),
            None,
        ));
    }
    let vantage = a.http.as_ref().map(|h| h.request.vantage);
    let path_only = a
        .target
        .as_ref()
        .is_some_and(|t| t.endpoint.is_none() && t.path.is_some());
    if vantage == Some(imdsguard_event::Vantage::Inbound) && path_only {
        out.push(step(
            "Stop the proxy from forwarding by Host",
            format!(
                "A metadata path was asked of the site itself around {when}: make the reverse \
                 proxy or WAF in front serve only the site's own names (a default server that \
                 refuses other Host values, no proxying to addresses taken from the request)."
            ),
            None,
        ));
    }
    if vantage == Some(imdsguard_event::Vantage::Outbound) {
        out.push(step(
            "Deny metadata addresses at the forward proxy",
            "The proxy fetched the metadata URL from its own host's service: its clients must \
             never reach it through the proxy."
                .into(),
            Some(format!(
                "acl imds dst {endpoint} 169.254.170.2 fd00:ec2::254\nhttp_access deny imds  \
                 # squid.conf, before the first http_access allow"
            )),
        ));
    }
    match facts.caller {
        Some(Caller::WebServer) => out.push(step(
            "Fix the SSRF",
            format!(
                "{server} relays requests to the metadata service: validate outbound URLs, \
                 refuse link-local and metadata addresses and redirects to them, and find the \
                 request in its access log around {when}."
            ),
            None,
        )),
        Some(Caller::WebServerChild) => out.push(step(
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
    let playbook = if aws_like {
        "aws"
    } else {
        provider.unwrap_or("*")
    };
    let stolen = kind != Kind::Other && escalate;
    let steps = Playbooks::builtin().steps(playbook);
    let values = Values::of(
        a,
        facts.principal.as_deref(),
        aws_like && provider.is_none(),
    );
    for s in steps.iter().filter(|s| s.when == When::Always || stolen) {
        let fill = |v| values.get(v);
        out.push(step(
            &s.action,
            s.why.render(&fill),
            s.command.as_ref().map(|c| c.render(&fill)),
        ));
    }
    out
}

/// The values a provider's containment steps name ([`Var`]), for one alert.
struct Values {
    when: String,
    aws_unsure: bool,
    host: Option<String>,
    principal: Option<String>,
}

impl Values {
    fn of(a: &Alert, principal: Option<&str>, aws_unsure: bool) -> Values {
        Values {
            when: a.time.clone().unwrap_or_else(|| "<alert time>".into()),
            aws_unsure,
            host: a.host.clone(),
            principal: principal.map(str::to_owned),
        }
    }

    fn short_host(&self) -> &str {
        self.host
            .as_deref()
            .map_or("<the VM's name>", |h| h.split('.').next().unwrap_or(h))
    }

    /// The GCP account the path names; `default` names the VM's own account without its
    /// address, so it is looked up by the VM's name like no name at all.
    fn gcp_account(&self) -> Option<&str> {
        self.principal.as_deref().filter(|p| *p != "default")
    }

    fn get(&self, v: Var) -> String {
        let instance = || aws_instance_of(self.host.as_deref());
        match v {
            Var::When => self.when.clone(),
            Var::AwsUnsure => if self.aws_unsure {
                "If the instance is on AWS (169.254.169.254 alone does not tell the provider): "
            } else {
                ""
            }
            .into(),
            Var::AwsInstance => instance(),
            Var::Role => self.principal.clone().unwrap_or_else(|| "\"$ROLE\"".into()),
            Var::RoleLookup => match self.principal {
                Some(_) => String::new(),
                None => format!(
                    "ROLE=$(aws iam get-instance-profile --instance-profile-name \
                     \"$(aws ec2 describe-instances --instance-ids {} --query \
                     'Reservations[0].Instances[0].IamInstanceProfile.Arn' --output text \
                     | cut -d/ -f2)\" --query 'InstanceProfile.Roles[0].RoleName' \
                     --output text); ",
                    instance()
                ),
            },
            Var::RoleNamed => self
                .principal
                .clone()
                .unwrap_or_else(|| "the role of the instance's profile".into()),
            Var::Vm => self.short_host().to_owned(),
            Var::ServiceAccount => match self.gcp_account() {
                Some(sa) => sa.to_owned(),
                None => format!(
                    "$(gcloud compute instances list --filter=\"name={}\" \
                     --format=\"value(serviceAccounts[0].email)\")",
                    self.short_host()
                ),
            },
            Var::ServiceAccountNamed => self
                .gcp_account()
                .map_or_else(|| "the VM's service account".to_owned(), str::to_owned),
        }
    }
}

/// How many distinct escalation reasons an incident names; the rest are counted.
const MAX_REASONS: usize = 8;

/// `N` of a merged reason's closing `and N more`.
fn more_count(part: &str) -> Option<u64> {
    part.strip_prefix("and ")?
        .strip_suffix(" more")?
        .parse()
        .ok()
}

/// Folds an alert's triage into its incident's: an incident escalates when any of its alerts
/// does; each question keeps its most telling answer (`no` to "authorized?", `yes` elsewhere,
/// then `unknown`); each distinct containment step appears once.
pub fn merge(into: &mut Triage, from: &Triage) {
    for q in &from.questions {
        match into.questions.iter_mut().find(|x| x.key == q.key) {
            Some(x) if q.key.rank(q.answer) > x.key.rank(x.answer) => *x = q.clone(),
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
        // An incident of thousands of alerts (a scan from many addresses) names its first
        // reasons and counts the others, so the reason stays a sentence and merging stays cheap.
        let mut more: u64 = match mine.last().and_then(|l| more_count(l)) {
            Some(n) => {
                mine.pop();
                n
            }
            None => 0,
        };
        for p in parts(&from.escalate_reason) {
            if let Some(n) = more_count(&p) {
                more += n;
            } else if !mine.contains(&p) {
                if mine.len() < MAX_REASONS {
                    mine.push(p);
                } else {
                    more += 1;
                }
            }
        }
        if more > 0 {
            mine.push(format!("and {more} more"));
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
    fn an_azure_identity_token_read_by_an_unlisted_tool_gets_azures_playbook() {
        let t = triage_of(
            start(
                r"C:\Users\bob\AppData\Local\Temp\x.exe",
                "x.exe -H Metadata:true http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
                r"C:\Windows\System32\cmd.exe",
                r"CORP\bob",
            ),
            "IMDS-002",
            None,
        );
        assert!(t.escalate);
        let steps: Vec<(&str, Option<&str>)> = t
            .containment
            .iter()
            .map(|c| (c.action.as_str(), c.command.as_deref()))
            .collect();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(steps[0].0, "Block the process from the metadata service");
        assert_eq!(
            steps[1],
            (
                "Restrict the managed identity",
                Some(
                    r#"az role assignment list --all --assignee "$(az vm list --query "[?name=='web01'].identity.principalId | [0]" --output tsv)""#
                )
            )
        );
        // Azure's endpoint is 169.254.169.254 too, but the Metadata header tells the provider:
        // no AWS step.
        assert!(!t.containment.iter().any(|c| c.action.contains("IMDSv2")));
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
        assert_eq!(t.questions[2].answer, Reply::Unknown);
        assert!(t.questions[2].evidence.contains("IMDSv1"), "{t:?}");
        assert_eq!(t.questions[3].answer, Reply::No);
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
        assert_eq!(t.questions[1].answer, Reply::Yes);
        assert!(t.escalate);
        assert!(t.escalate_reason.contains("differing from normal"));
        // A baseline that saw requests in only three minutes cannot say what is usual.
        let thin = Frequency {
            buckets: 3,
            ..usual
        };
        let t = triage_of(record, "IMDS-001", Some(&thin));
        assert_eq!(t.questions[1].answer, Reply::Unknown);
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
            questions: vec![Answer::new(
                Question::Authorized,
                Reply::Yes,
                "agent".into(),
            )],
            escalate: false,
            escalate_reason: "none".into(),
            containment: Vec::new(),
        };
        let mut inc = calm.clone();
        merge(&mut inc, &web);
        assert_eq!(inc.questions[0].answer, Reply::No);
        assert!(inc.escalate);
        assert_eq!(inc.escalate_reason, web.escalate_reason);
    }

    /// An incident of thousands of alerts with a reason each (a scan from thousands of
    /// addresses) names its first reasons and counts the rest: the reason stays short and
    /// merging stays linear.
    #[test]
    fn an_incident_names_its_first_reasons_and_counts_the_rest() {
        let one = |i: u32| Triage {
            questions: Vec::new(),
            escalate: true,
            escalate_reason: format!(
                "Escalate to T2: SSRF indication from external address 198.18.0.{i}."
            ),
            containment: Vec::new(),
        };
        let mut inc = one(0);
        for i in 1..5000 {
            merge(&mut inc, &one(i));
            // The same alert again adds nothing new to the named ones.
            merge(&mut inc, &one(1));
        }
        let named = (0..MAX_REASONS as u32)
            .map(|i| format!("SSRF indication from external address 198.18.0.{i}"))
            .collect::<Vec<_>>()
            .join("; ");
        let more = 5000 - MAX_REASONS as u64;
        assert_eq!(
            inc.escalate_reason,
            format!("Escalate to T2: {named}; and {more} more.")
        );
        // An incident merged into another keeps the count.
        let mut outer = one(9999);
        merge(&mut outer, &inc);
        assert!(
            outer
                .escalate_reason
                .ends_with(&format!("; and {} more.", more + 1)),
            "{}",
            outer.escalate_reason
        );
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

    fn triage_of_line(line: &str, rule: &str) -> Triage {
        let mut events = Vec::new();
        read_reader(
            "t",
            &mut line.as_bytes(),
            &ReadOptions::default(),
            &mut Summary::default(),
            &mut |e| events.push(e),
        );
        assert_eq!(events.len(), 1, "{line}");
        let enricher = Enricher::builtin();
        let ev = enricher.enrich(&events[0]);
        let mut a = Alert::context(&ev);
        a.rule_id = rule.into();
        a.severity = Severity::High;
        triage(&a, &Facts::of(&ev), None)
    }

    /// Web and proxy logs answer from the client and the answer: an outside client is never
    /// authorized, a 4xx/5xx is a failed attempt, a 2xx with a credential-sized body may have
    /// leaked; containment names the route, the Host-forwarding proxy or the forward proxy.
    #[test]
    fn web_and_proxy_requests_are_judged_by_client_and_answer() {
        let failed = r#"203.0.113.50 - - [20/Nov/2026:09:12:09 +0000] "GET /api/preview?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/ HTTP/1.1" 500 0 "-" "python-requests/2.31.0""#;
        let t = triage_of_line(failed, "IMDS-004");
        let got = answers(&t);
        assert_eq!(got[0], ("authorized", "no"));
        assert_eq!(got[2], ("errors", "yes"));
        assert!(t.questions[2].evidence.contains("answered 500"));
        assert!(t
            .escalate_reason
            .contains("unauthorized source (203.0.113.50)"));
        let fix = t
            .containment
            .iter()
            .find(|c| c.action == "Fix the SSRF")
            .unwrap();
        assert!(
            fix.why.starts_with("The route /api/preview "),
            "{}",
            fix.why
        );

        let leaked = r#"10.0.1.40 - - [20/Nov/2026:09:12:04 +0000] "GET /api/preview?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/web-role HTTP/1.1" 200 1321 "-" "python-requests/2.31.0""#;
        let t = triage_of_line(leaked, "IMDS-004");
        let got = answers(&t);
        assert_eq!(got[0], ("authorized", "unknown"));
        assert_eq!(got[2], ("errors", "no"));
        assert!(
            t.questions[2]
                .evidence
                .contains("size of a credential document"),
            "{}",
            t.questions[2].evidence
        );

        let host_header = r#"198.51.100.23 - - [20/Nov/2026:09:20:41 +0000] "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1" 404 153 "-" "curl/8.4.0""#;
        let t = triage_of_line(host_header, "IMDS-009");
        assert!(t
            .containment
            .iter()
            .any(|c| c.action == "Stop the proxy from forwarding by Host"));

        let proxy = "1795165921.920      4 10.244.3.17 TCP_MISS/200 1321 GET http://169.254.169.254/latest/meta-data/iam/security-credentials/proxy-node-role - HIER_DIRECT/169.254.169.254 text/plain";
        let t = triage_of_line(proxy, "IMDS-010");
        let deny = t
            .containment
            .iter()
            .find(|c| c.action == "Deny metadata addresses at the forward proxy")
            .unwrap();
        assert!(deny
            .command
            .as_deref()
            .unwrap()
            .contains("acl imds dst 169.254.169.254"));
        assert_eq!(answers(&t)[0], ("authorized", "unknown"));
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
