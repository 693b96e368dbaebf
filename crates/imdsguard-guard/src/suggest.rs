//! Observe, learn, enforce: a policy written from what the audit log saw, to review before
//! enforcing it. One rule per executable (with the users and containers seen running it) allowing
//! exactly the paths it asked for; everything else denied; IMDSv2 required when every AWS
//! request seen carried a token.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// What the audit records said, gathered.
#[derive(Debug, Default)]
pub struct Observed {
    by_exe: BTreeMap<String, Seen>,
    requests: usize,
    unattributed: usize,
    aws_tokenless: BTreeSet<String>,
    aws: usize,
    /// Records whose path is no absolute path (no request the proxy forwards has one).
    odd: usize,
    first: Option<String>,
    last: Option<String>,
}

#[derive(Debug, Default)]
struct Seen {
    users: BTreeSet<String>,
    containers: BTreeSet<String>,
    outside_containers: bool,
    paths: BTreeSet<String>,
    methods: BTreeSet<String>,
}

impl Observed {
    /// Takes one audit record in.
    pub fn add(&mut self, r: &serde_json::Value) {
        self.requests += 1;
        if let Some(t) = r["time"].as_str() {
            if self.first.is_none() {
                self.first = Some(t.to_owned());
            }
            self.last = Some(t.to_owned());
        }
        let path = r["path"].as_str().unwrap_or("/").to_owned();
        if !path.starts_with('/') {
            self.odd += 1;
            return;
        }
        if r["provider"] == "aws" {
            self.aws += 1;
            if r["token"] != true && r["kind"] != "token" {
                let who = r["process"]["exe"]
                    .as_str()
                    .unwrap_or("an unattributed client");
                self.aws_tokenless.insert(who.to_owned());
            }
        }
        let Some(exe) = r["process"]["exe"].as_str() else {
            self.unattributed += 1;
            return;
        };
        let seen = self.by_exe.entry(exe.to_owned()).or_default();
        if let Some(u) = r["process"]["user"].as_str() {
            seen.users.insert(u.to_owned());
        }
        match r["process"]["container"].as_str() {
            Some(c) => {
                seen.containers.insert(c.to_owned());
            }
            None => seen.outside_containers = true,
        }
        seen.paths.insert(path);
        if let Some(m) = r["method"].as_str() {
            seen.methods.insert(m.to_owned());
        }
    }

    /// How many records were taken in.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// The policy, as TOML with comments.
    pub fn policy(&self, sources: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# Suggested by `imdsguard proxy suggest-policy` from {} requests{} in {sources}.",
            self.requests,
            match (&self.first, &self.last) {
                (Some(a), Some(b)) => format!(" ({} to {})", comment(a), comment(b)),
                _ => String::new(),
            },
            sources = comment(sources),
        );
        s.push_str("# Review it before enforcing: each rule allows what its program was seen asking for, and\n# nothing else is allowed.\n");
        s.push_str("mode = \"enforce\"\ndefault = \"deny\"\n");
        if self.aws > 0 && self.aws_tokenless.is_empty() {
            s.push_str("# Every AWS request seen carried an IMDSv2 session token.\nrequire_imdsv2 = true\n");
        } else if !self.aws_tokenless.is_empty() {
            let who: Vec<String> = self.aws_tokenless.iter().map(|w| comment(w)).collect();
            let _ = writeln!(
                s,
                "# Not required yet: IMDSv1 requests (no session token) came from {}.\nrequire_imdsv2 = false",
                who.join(", ")
            );
        }
        s.push_str("refuse_forwarded = true\n");
        if self.odd > 0 {
            let _ = writeln!(
                s,
                "# {} records with a path that is not absolute were left out.",
                self.odd
            );
        }
        if self.unattributed > 0 {
            let _ = writeln!(
                s,
                "# {} requests came from connections no process could be named for: no rule allows them.",
                self.unattributed
            );
        }
        let mut names = BTreeSet::new();
        for (exe, seen) in &self.by_exe {
            let base = match exe.rsplit('/').next().map(str::trim) {
                Some(b) if !b.is_empty() => b,
                _ => "program",
            };
            let mut name = base.to_owned();
            let mut n = 2;
            while !names.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            let list = |items: &BTreeSet<String>| {
                items
                    .iter()
                    .map(|i| toml_string(i))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                s,
                "\n[[rule]]\nname = {}\naction = \"allow\"",
                toml_string(&name)
            );
            let _ = writeln!(s, "exe = [{}]", toml_string(exe));
            if !seen.users.is_empty() {
                let _ = writeln!(s, "user = [{}]", list(&seen.users));
            }
            if !seen.containers.is_empty() && !seen.outside_containers {
                let _ = writeln!(s, "container = [{}]", list(&seen.containers));
            }
            let _ = writeln!(s, "method = [{}]", list(&seen.methods));
            let _ = writeln!(s, "path = [{}]", list(&seen.paths));
        }
        s
    }
}

/// Text for a comment line: control characters (a newline would end the comment) written as
/// escapes.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:04X}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrib::{Attribution, Process};
    use crate::policy::{Facts, Policy};
    use imdsguard_target::Kind;
    use std::sync::Arc;

    fn rec(
        exe: Option<&str>,
        user: &str,
        method: &str,
        path: &str,
        token: bool,
    ) -> serde_json::Value {
        let mut r = serde_json::json!({
            "time": "2026-12-07T10:00:00Z", "method": method, "path": path, "provider": "aws",
            "kind": if path.ends_with("/token") { "token" } else { "other" }, "token": token,
        });
        if let Some(e) = exe {
            r["process"] = serde_json::json!({ "exe": e, "user": user, "container": null });
        }
        r
    }

    fn who(exe: &str, user: &str) -> Attribution {
        Attribution::Process(Arc::new(Process {
            pid: 1,
            exe: Some(exe.to_owned()),
            cmdline: Vec::new(),
            uid: 0,
            user: Some(user.to_owned()),
            cgroup: None,
            container: None,
        }))
    }

    #[test]
    fn the_suggestion_allows_what_was_seen_and_nothing_else() {
        let mut o = Observed::default();
        for r in [
            rec(
                Some("/usr/bin/amazon-ssm-agent"),
                "root",
                "PUT",
                "/latest/api/token",
                false,
            ),
            rec(
                Some("/usr/bin/amazon-ssm-agent"),
                "root",
                "GET",
                "/latest/meta-data/iam/security-credentials/ssm",
                true,
            ),
            rec(
                Some("/opt/app/bin/server"),
                "app",
                "GET",
                "/latest/meta-data/placement/region",
                true,
            ),
            rec(
                Some("/opt/other/bin/server"),
                "app",
                "GET",
                "/latest/meta-data/placement/region",
                true,
            ),
            rec(None, "", "GET", "/latest/meta-data/", true),
        ] {
            o.add(&r);
        }
        let text = o.policy("audit.jsonl");
        let p = Policy::parse(&text, "suggested.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(p.require_imdsv2, "{text}");
        assert_eq!(p.rules.len(), 3);
        assert!(text.contains("name = \"server-2\""), "{text}");
        assert!(text.contains("1 requests came from connections no process could be named for"));
        let f = |m, path, kind, token| Facts {
            method: m,
            path,
            provider: Some("aws"),
            kind,
            token,
            forwarded: Vec::new(),
        };
        let ssm = who("/usr/bin/amazon-ssm-agent", "root");
        let creds = f(
            "GET",
            "/latest/meta-data/iam/security-credentials/ssm",
            Kind::Credentials,
            true,
        );
        assert!(p.decide(&creds, &ssm).allow);
        // Another program, or the same one as another user: denied.
        assert!(!p.decide(&creds, &who("/opt/app/bin/server", "app")).allow);
        assert!(
            !p.decide(&creds, &who("/usr/bin/amazon-ssm-agent", "nobody"))
                .allow
        );
        let userdata = f("GET", "/latest/user-data", Kind::Userdata, true);
        assert!(!p.decide(&userdata, &ssm).allow);
        // IMDSv1 seen: not required, and the comment says who.
        let mut o = Observed::default();
        o.add(&rec(
            Some("/usr/bin/curl"),
            "root",
            "GET",
            "/latest/meta-data/",
            false,
        ));
        let text = o.policy("a");
        assert!(
            text.contains("came from /usr/bin/curl.\nrequire_imdsv2 = false"),
            "{text}"
        );
    }

    #[test]
    fn strings_are_quoted_for_toml() {
        assert_eq!(toml_string("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\u0001\"");
    }
}
