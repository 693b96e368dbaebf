//! A webhook destination: the URL alerts are POSTed to, which may carry a secret (`user:pass@`,
//! `?token=…`), and the name the store's outbox keys them by, which never does. Every message
//! shows the URL with its secrets masked; the store holds the name only.

use std::fmt;

/// Where new alerts go.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    url: String,
    name: String,
}

/// A URL's parts, as far as naming and masking need them.
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn of(url: &'a str) -> Option<Parts<'a>> {
        let (scheme, rest) = url.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return None;
        }
        let tail = tail.split('#').next().unwrap_or("");
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        Some(Parts {
            scheme,
            userinfo,
            host,
            path,
            query,
        })
    }

    /// Scheme, host and path: what names a destination.
    fn name(&self) -> String {
        format!(
            "{}://{}{}",
            self.scheme.to_ascii_lowercase(),
            self.host.to_ascii_lowercase(),
            self.path
        )
    }

    /// The URL with its user information and every query value masked.
    fn masked(&self) -> String {
        let mut s = format!("{}://", self.scheme);
        if self.userinfo.is_some() {
            s.push_str("***@");
        }
        s.push_str(self.host);
        s.push_str(self.path);
        if let Some(q) = self.query {
            let masked: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => "***".to_owned(),
                })
                .collect();
            s.push('?');
            s.push_str(&masked.join("&"));
        }
        s
    }

    /// The secret pieces a message may quote: the user information, its password, each query
    /// value.
    fn secrets(&self) -> Vec<&'a str> {
        let mut out = Vec::new();
        if let Some(u) = self.userinfo {
            out.push(u);
            if let Some((_, pass)) = u.split_once(':') {
                out.push(pass);
            }
        }
        if let Some(q) = self.query {
            for kv in q.split('&') {
                out.push(kv.split_once('=').map_or(kv, |(_, v)| v));
            }
        }
        out.retain(|s| s.len() >= 3);
        // Longest first, so a piece inside another is not replaced first.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }
}

impl Webhook {
    /// A destination for `url` (http or https), named `name` or else by the URL's scheme, host
    /// and path. `env:VAR` reads the URL from the environment variable `VAR`, so that a secret
    /// need not appear on a command line.
    pub fn new(url: &str, name: Option<&str>) -> Result<Webhook, String> {
        let url = match url.strip_prefix("env:") {
            Some(var) => std::env::var(var).map_err(|_| {
                format!("--webhook env:{var}: the environment variable {var} is not set")
            })?,
            None => url.to_owned(),
        };
        let parts = Parts::of(&url).ok_or_else(|| {
            format!(
                "--webhook {}: give an http:// or https:// URL",
                mask_any(&url)
            )
        })?;
        let name = match name {
            Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
            Some(_) => return Err("--webhook-name: give a name".into()),
            None => parts.name(),
        };
        Ok(Webhook { url, name })
    }

    /// The URL to POST to (with its secret: never to be shown). Only the sender reads it.
    #[cfg_attr(not(feature = "webhook"), allow(dead_code))]
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The name the outbox keys its alerts by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL as it may be shown: its secrets masked.
    pub fn shown(&self) -> String {
        Parts::of(&self.url).map_or_else(|| "***".into(), |p| p.masked())
    }

    /// `text` (an error message, say) with this URL and each of its secrets masked.
    pub fn redact(&self, text: &str) -> String {
        let Some(parts) = Parts::of(&self.url) else {
            return text.to_owned();
        };
        let mut s = text.replace(&self.url, &parts.masked());
        for secret in parts.secrets() {
            s = s.replace(secret, "***");
        }
        s
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.shown())
            .finish()
    }
}

/// The name an outbox entry written under a full URL (before destinations had names) now goes
/// by: that URL's scheme, host and path. Anything else is already a name.
pub(crate) fn name_of_stored(target: &str) -> String {
    Parts::of(target).map_or_else(|| target.to_owned(), |p| p.name())
}

/// `url` masked when it reads as one, else wholly.
fn mask_any(url: &str) -> String {
    Parts::of(url).map_or_else(|| "***".into(), |p| p.masked())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_never_in_the_name() {
        let w = Webhook::new(
            "https://bot:hunter22@Hooks.Example.com:8443/imds?token=s3cr3t&x=1#f",
            None,
        )
        .unwrap();
        assert_eq!(w.name(), "https://hooks.example.com:8443/imds");
        assert_eq!(
            w.shown(),
            "https://***@Hooks.Example.com:8443/imds?token=***&x=***"
        );
        let said = w.redact(&format!(
            "{}: connection refused (bot:hunter22, token s3cr3t, password hunter22)",
            w.url()
        ));
        assert!(
            !said.contains("hunter22") && !said.contains("s3cr3t"),
            "{said}"
        );
        assert!(
            said.starts_with("https://***@Hooks.Example.com:8443/imds?token=***"),
            "{said}"
        );
        assert!(!format!("{w:?}").contains("s3cr3t"));
        let named = Webhook::new("http://127.0.0.1:9/x?token=abc", Some("soc")).unwrap();
        assert_eq!(named.name(), "soc");
    }

    #[test]
    fn only_http_urls_are_destinations_and_errors_do_not_quote_secrets() {
        let e = Webhook::new("ftp://u:topsecret@h/x", None).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
        assert!(Webhook::new("http://", None).is_err());
        std::env::set_var("IMDSGUARD_TEST_HOOK", "http://h:1/p?key=zzz");
        let w = Webhook::new("env:IMDSGUARD_TEST_HOOK", None).unwrap();
        assert_eq!(w.name(), "http://h:1/p");
        assert!(Webhook::new("env:IMDSGUARD_TEST_HOOK_UNSET", None).is_err());
    }

    #[test]
    fn outbox_entries_stored_under_a_url_go_by_its_name() {
        assert_eq!(name_of_stored("http://u:p@h:1/x?t=1"), "http://h:1/x");
        assert_eq!(name_of_stored("soc"), "soc");
    }
}
