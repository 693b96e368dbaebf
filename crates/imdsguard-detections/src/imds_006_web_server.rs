//! **IMDS-006 — Web server or application server reaching the metadata service (SSRF indicator).**
//!
//! *What.* nginx, httpd, IIS `w3wp`, php-fpm, Tomcat and other Java servers, gunicorn/uwsgi and
//! other Python app servers, Node and Ruby app servers, reverse proxies — or a process one of them
//! started — connecting to or requesting a metadata endpoint.
//!
//! *Why.* The SOC playbook for T1552.005: a web application has no business reading instance metadata; when it does, an
//! outsider most likely made it (server-side request forgery, the Capital One breach). A child of
//! the server (a web shell's `curl`) is command injection on the same path.
//!
//! *False positives.* Web applications that call cloud APIs with the instance's role through an
//! SDK: the SDK reads the credentials path. Prefer allowing the application's path to silencing
//! the rule; better, give the app its own credentials and block the service with a hop limit of 1.
//!
//! *ATT&CK.* T1552.005, T1190 (Exploit Public-Facing Application).

use imdsguard_event::Severity;
use imdsguard_rules::{on, Expr, Field, Rule};

use crate::common::*;

/// The detection.
pub fn rule() -> Rule {
    let when = Expr::All(vec![has_target(), web_caller(), not_agent(), !masquerade()]);
    let b = Rule::documented(include_str!("imds_006_web_server.rs"), Severity::High, when)
    .attack("T1552.005")
    .attack("T1190")
    .reason_if(
        on(Field::ProcessCaller).is("web-server"),
        "{process.name} serves web requests and reached the metadata service at {target.endpoint}: a server-side request forgery indicator.",
    )
    .reason_if(
        on(Field::ProcessCaller).is("web-server-child"),
        "{process.name} was started by the web server {parent.name} and reached the metadata service at {target.endpoint}: command injection or a web shell.",
    )
    .reason("{process.verdict_reason}.");
    finish(critical_on_credentials(standard_reasons(b)))
}

#[cfg(test)]
pub(crate) const POSITIVE: &[&str] = &[
    "type=SYSCALL msg=audit(1700000000.200:12): arch=c000003e syscall=42 success=yes exit=0 a0=9 a1=7ffd a2=10 a3=0 items=0 ppid=900 pid=1422 auid=4294967295 uid=33 gid=33 euid=33 suid=33 fsuid=33 egid=33 sgid=33 fsgid=33 tty=(none) ses=4294967295 comm=\"php-fpm8.2\" exe=\"/usr/sbin/php-fpm8.2\" key=(null)\ntype=SOCKADDR msg=audit(1700000000.200:12): saddr=02000050A9FEA9FE0000000000000000\ntype=EOE msg=audit(1700000000.200:12):",
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"iis1"},"process":{"executable":"c:\\windows\\system32\\inetsrv\\w3wp.exe"},"user":{"name":"DefaultAppPool","domain":"IIS APPPOOL"},"destination":{"ip":"169.254.169.254","port":80}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["process"]},"host":{"name":"iis1"},"process":{"executable":"C:\\Windows\\System32\\curl.exe","command_line":"curl.exe http://169.254.169.254/latest/meta-data/iam/security-credentials/","parent":{"executable":"c:\\windows\\system32\\inetsrv\\w3wp.exe"}}}"#,
];

#[cfg(test)]
pub(crate) const NEGATIVE: &[&str] = &[
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/sbin/php-fpm8.2"},"destination":{"ip":"10.0.0.5","port":3306}}"#,
    r#"{"@timestamp":"2026-11-20T10:00:00Z","event":{"category":["network"]},"host":{"name":"web01"},"process":{"executable":"/usr/local/bin/node","command_line":"node build.js"},"destination":{"ip":"169.254.169.254","port":80}}"#,
];
