//! Web servers and application servers (the SOC playbook's SSRF indicator): a process that serves HTTP has
//! no reason to read the metadata service, so its request there is most likely one an outsider
//! made it send. A process such a server started (a web shell's `curl`) is told apart.

use imdsguard_event::{Event, Process};
use regex::Regex;
use std::sync::LazyLock;

use crate::path::{basename, normalize_path};

/// How the acting process relates to web serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A web server, reverse proxy or application server (nginx, httpd, w3wp, php-fpm, Tomcat,
    /// gunicorn, a Node or Python app serving HTTP ...).
    WebServer,
    /// A process a web server or application server started.
    WebServerChild,
}

impl Caller {
    /// Every value, in output order.
    pub const ALL: &'static [Caller] = &[Caller::WebServer, Caller::WebServerChild];

    /// The name rules and outputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Caller::WebServer => "web-server",
            Caller::WebServerChild => "web-server-child",
        }
    }
}

/// Executables that serve HTTP whatever their arguments.
static SERVERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(nginx|httpd|httpd2|apache|apache2|lighttpd|caddy|w3wp|iisexpress|php-fpm[0-9.]*|php-cgi[0-9.]*|php[0-9.]*-fpm|tomcat[0-9]*|tomcat[0-9]*w|jetty|gunicorn|uwsgi|uvicorn|hypercorn|daphne|waitress-serve|puma|unicorn|passenger|phusion_passenger|thin|envoy|haproxy|traefik|squid|openresty|kestrel)(\.exe)?$",
    )
    .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// Language runtimes that are application servers when their command line says so.
static RUNTIMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(java|javaw|node|nodejs|python[0-9.]*|pythonw|ruby[0-9.]*|php[0-9.]*|dotnet|deno|bun|perl|beam\.smp|erl)(\.exe)?$")
        .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// Command-line signs of serving HTTP.
static SERVING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        gunicorn|uwsgi|uvicorn|hypercorn|daphne|waitress|wsgi|asgi
        |manage\.py\s+runserver|flask\s+run|-m\s+(flask|http\.server|django|aiohttp\.web)
        |\brails\s+s(erver)?\b|\bpuma\b|\bunicorn\b|\brackup\b|config\.ru|\bsinatra\b
        |catalina|tomcat|jetty|spring-boot|springframework\.boot|wildfly|jboss|weblogic|websphere|undertow|quarkus|micronaut
        |-jar\s+\S+\.(jar|war)\b
        |\bnext\s+start\b|\bnuxt\b|\bnpm\s+(run\s+)?start\b|\byarn\s+start\b|\bpm2\b|\bexpress\b
        |\b(server|app|index|main)\.(js|mjs|cjs|ts|py|rb|php)\b
        |\bartisan\s+serve\b|-S\s+\S+:\d+
        |aspnetcore|\.web\.dll\b|\bapi\.dll\b",
    )
    .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// Accounts web servers run as.
fn web_user(user: &str) -> bool {
    let u = user.to_ascii_lowercase();
    u.starts_with("iis apppool\\")
        || matches!(
            u.rsplit('\\').next().unwrap_or(&u),
            "www-data"
                | "apache"
                | "nginx"
                | "httpd"
                | "wwwrun"
                | "www"
                | "tomcat"
                | "jetty"
                | "nobody-web"
        )
}

fn name_of(p: &Process) -> Option<String> {
    let image = p.image.as_deref()?;
    Some(basename(&normalize_path(image)).to_owned())
}

/// The web-server classification as regular expressions over an executable's path and a command
/// line, for rule exports: (servers by file name, runtimes by file name, serving command lines).
/// Each file-name expression is anchored at a path separator, so it applies to a full path.
pub fn web_server_patterns() -> (String, String, String) {
    let file = |re: &Regex| re.as_str().replacen("(?i)^", r"(?i)(?:^|[\\/])", 1);
    // The command-line expression is written in verbose mode; exports spell it compactly.
    let serving: String = {
        let src = SERVING.as_str().replacen("(?ix)", "", 1);
        let mut out = String::new();
        let mut escaped = false;
        for c in src.chars() {
            if escaped {
                out.push(c);
                escaped = false;
            } else if c == '\\' {
                out.push(c);
                escaped = true;
            } else if !c.is_whitespace() {
                out.push(c);
            }
        }
        format!("(?i){out}")
    };
    (file(&SERVERS), file(&RUNTIMES), serving)
}

/// Whether a process serves HTTP, by name, by runtime and command line, or by account.
pub fn serves_http(p: &Process) -> bool {
    let Some(name) = name_of(p) else {
        return false;
    };
    if SERVERS.is_match(&name) {
        return true;
    }
    if RUNTIMES.is_match(&name) {
        if p.command_line
            .as_deref()
            .is_some_and(|c| SERVING.is_match(c))
        {
            return true;
        }
        if p.user.as_deref().is_some_and(web_user) {
            return true;
        }
    }
    false
}

/// The caller class of an event's acting process, if it is a web server or one's child.
pub fn caller(event: &Event) -> Option<Caller> {
    if serves_http(&event.process) {
        Some(Caller::WebServer)
    } else if serves_http(&event.parent) {
        Some(Caller::WebServerChild)
    } else {
        None
    }
}

impl serde::Serialize for Caller {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(image: &str, cl: Option<&str>, user: Option<&str>) -> Process {
        Process {
            image: Some(image.into()),
            command_line: cl.map(Into::into),
            user: user.map(Into::into),
            ..Process::default()
        }
    }

    #[test]
    fn servers_and_app_runtimes_are_recognized() {
        let yes = [
            p("/usr/sbin/nginx", None, None),
            p(r"c:\windows\system32\inetsrv\w3wp.exe", None, None),
            p(
                "/usr/sbin/php-fpm8.2",
                Some("php-fpm: pool www"),
                Some("33"),
            ),
            p(
                "/usr/bin/python3",
                Some("/usr/bin/python3 /srv/app/venv/bin/gunicorn app:app"),
                None,
            ),
            p("/usr/local/bin/node", Some("node /app/server.js"), None),
            p("/usr/bin/java", Some("java -jar /opt/app/api.jar"), None),
            p(
                "/usr/bin/java",
                Some(
                    "java -Dcatalina.base=/opt/tomcat org.apache.catalina.startup.Bootstrap start",
                ),
                None,
            ),
            p(
                "/usr/bin/ruby",
                Some("puma 5.6.4 (tcp://0.0.0.0:3000)"),
                None,
            ),
            p("/usr/bin/php", Some("php -S 0.0.0.0:8080"), None),
            p("/usr/bin/python3", Some("python3 job.py"), Some("www-data")),
        ];
        for x in &yes {
            assert!(serves_http(x), "{x:?}");
        }
        let no = [
            p("/usr/bin/curl", None, None),
            p(
                "/usr/bin/python3",
                Some("python3 -c 'import boto3'"),
                Some("ubuntu"),
            ),
            p("/usr/local/bin/node", Some("node build.js"), None),
            p(
                "/usr/bin/java",
                Some("java -cp x.jar com.example.Batch"),
                None,
            ),
            p("/usr/bin/amazon-ssm-agent", None, None),
        ];
        for x in &no {
            assert!(!serves_http(x), "{x:?}");
        }
    }
}
