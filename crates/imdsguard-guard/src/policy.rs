//! The proxy's policy: who may read what from the metadata service.
//!
//! A TOML file (the README has a complete example):
//!
//! ```toml
//! mode = "enforce"            # or "monitor": decide and record, but let everything pass
//! default = "deny"            # when no rule matches
//! require_imdsv2 = true       # AWS: token-less requests refused with 401, as HttpTokens=required does
//! refuse_forwarded = true     # X-Forwarded-For, Via or Forwarded: refused (SSRF through a proxy)
//! token_hop_limit = 1         # IP TTL / hop limit of IMDSv2 token replies leaving the proxy
//! rate_limit = 50             # requests a second per process (429 past it); none when absent
//! fail = "closed"             # proxy down: connections refused ("open": straight to the service)
//!
//! [[rule]]
//! name = "ssm-agent"
//! action = "allow"
//! exe = ["/usr/bin/amazon-ssm-agent"]      # globs: `*` any run of characters, `?` one
//! user = ["root"]
//! kind = ["credentials", "token"]          # credentials, token, identity, userdata, other
//! path = ["/latest/meta-data/iam/security-credentials/*", "/latest/api/token"]
//! ```
//!
//! A rule matches a request when every condition it gives matches (a list matches when any of
//! its entries does); the first rule that matches decides. Conditions on the process (`exe`,
//! `user`, `container`) never match a request whose process could not be named.

use std::path::Path;

use imdsguard_target::Kind;
use serde::Deserialize;

use crate::attrib::{Attribution, Process};

/// What the proxy does with a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Decide and record; let every request pass.
    Monitor,
    /// Refuse what the policy denies.
    Enforce,
}

impl Mode {
    /// The name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Monitor => "monitor",
            Mode::Enforce => "enforce",
        }
    }
}

/// What happens to connections to the service when the proxy is not running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fail {
    /// They are refused until it runs again (the redirect stays).
    Closed,
    /// They go straight to the service (the redirect is removed when the proxy stops).
    Open,
}

/// A rule's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let the request through.
    Allow,
    /// Refuse it.
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    mode: Option<Mode>,
    default: Option<Action>,
    require_imdsv2: Option<bool>,
    refuse_forwarded: Option<bool>,
    token_hop_limit: Option<u8>,
    rate_limit: Option<u32>,
    fail: Option<Fail>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    action: Action,
    #[serde(default)]
    exe: Vec<String>,
    #[serde(default)]
    user: Vec<String>,
    #[serde(default)]
    container: Vec<String>,
    #[serde(default)]
    kind: Vec<String>,
    #[serde(default)]
    path: Vec<String>,
    #[serde(default)]
    method: Vec<String>,
}

/// One rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name, quoted in decisions and refusals.
    pub name: String,
    /// What it decides.
    pub action: Action,
    exe: Globs,
    user: Globs,
    container: Globs,
    kind: Vec<Kind>,
    path: Globs,
    method: Vec<String>,
}

/// A rule's list of globs, compiled once when the policy is read: `*` matches any run of
/// characters (slashes too), `?` one character, everything else itself. No list: anything.
#[derive(Debug, Clone)]
struct Globs(Option<regex::RegexSet>);

impl Globs {
    fn new(list: &[String]) -> Result<Globs, String> {
        if list.is_empty() {
            return Ok(Globs(None));
        }
        regex::RegexSet::new(list.iter().map(|g| glob_regex(g)))
            .map(|set| Globs(Some(set)))
            .map_err(|e| format!("a pattern is too large: {e}"))
    }

    /// Whether the rule says anything here.
    fn given(&self) -> bool {
        self.0.is_some()
    }

    /// Whether `v` matches: always without a list; never for a missing value with one.
    fn hold(&self, v: Option<&str>) -> bool {
        match &self.0 {
            None => true,
            Some(set) => v.is_some_and(|v| set.is_match(v)),
        }
    }
}

/// A glob as an anchored regular expression.
fn glob_regex(glob: &str) -> String {
    let mut re = String::from("^(?s:");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    re.push_str(")$");
    re
}

/// A checked policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Monitor or enforce.
    pub mode: Mode,
    /// The verdict when no rule matches.
    pub default: Action,
    /// Refuse token-less AWS requests (IMDSv2 required).
    pub require_imdsv2: bool,
    /// Refuse requests carrying `X-Forwarded-For`, `Via` or `Forwarded`.
    pub refuse_forwarded: bool,
    /// The IP TTL / hop limit of IMDSv2 token replies.
    pub token_hop_limit: u8,
    /// Requests a second one process may make (a burst of as many), when limited; past it, 429.
    pub rate_limit: Option<u32>,
    /// When the proxy is not running: refuse (`closed`, the default) or let through (`open`).
    pub fail: Fail,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
}

impl Policy {
    /// No file: monitor mode, everything allowed and recorded.
    pub fn monitor_all() -> Self {
        Policy {
            mode: Mode::Monitor,
            default: Action::Allow,
            require_imdsv2: false,
            refuse_forwarded: true,
            token_hop_limit: 1,
            rate_limit: None,
            fail: Fail::Closed,
            rules: Vec::new(),
        }
    }

    /// The SHA-256 of a policy file's bytes, in hex (as `sha256sum` prints it): which policy is
    /// loaded, comparable across hosts.
    pub fn file_hash(path: &Path) -> std::io::Result<String> {
        use sha2::{Digest, Sha256};
        let bytes = std::fs::read(path)?;
        Ok(format!("{:x}", Sha256::digest(&bytes)))
    }

    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            path: path.display().to_string(),
            line: None,
            message: e.to_string(),
        })?;
        Policy::parse(&text, &path.display().to_string())
    }

    /// Checks a policy's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let err = |line: Option<usize>, message: String| PolicyError {
            path: origin.to_owned(),
            line,
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            err(line, e.message().to_owned())
        })?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, r) in file.rules.into_iter().enumerate() {
            let line = rule_line(text, i);
            let name = r.name.trim().to_owned();
            if name.is_empty() {
                return Err(err(line, format!("rule {}: `name` is empty", i + 1)));
            }
            if rules.iter().any(|x: &Rule| x.name == name) {
                return Err(err(
                    line,
                    format!("rule {name:?}: a rule of that name comes earlier"),
                ));
            }
            let mut kind = Vec::new();
            for k in &r.kind {
                match Kind::ALL.iter().find(|x| x.as_str() == k.trim()) {
                    Some(x) => kind.push(*x),
                    None => {
                        return Err(err(
                            line,
                            format!(
                                "rule {name:?}: unknown kind {k:?} (known: {})",
                                Kind::ALL
                                    .iter()
                                    .map(|k| k.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ))
                    }
                }
            }
            for p in &r.path {
                if !p.starts_with('/') && p != "*" {
                    return Err(err(
                        line,
                        format!("rule {name:?}: path {p:?} does not start with `/`"),
                    ));
                }
            }
            let globs = |list: &[String]| {
                Globs::new(list).map_err(|e| err(line, format!("rule {name:?}: {e}")))
            };
            let (exe, user, container, path) = (
                globs(&r.exe)?,
                globs(&r.user)?,
                globs(&r.container)?,
                globs(&r.path)?,
            );
            rules.push(Rule {
                name,
                action: r.action,
                exe,
                user,
                container,
                kind,
                path,
                method: r
                    .method
                    .iter()
                    .map(|m| m.trim().to_ascii_uppercase())
                    .collect(),
            });
        }
        let token_hop_limit = file.token_hop_limit.unwrap_or(1);
        if token_hop_limit == 0 {
            return Err(err(None, "token_hop_limit: at least 1".to_owned()));
        }
        Ok(Policy {
            mode: file.mode.unwrap_or(Mode::Enforce),
            default: file.default.unwrap_or(Action::Deny),
            require_imdsv2: file.require_imdsv2.unwrap_or(false),
            refuse_forwarded: file.refuse_forwarded.unwrap_or(true),
            token_hop_limit,
            rate_limit: match file.rate_limit {
                Some(0) => {
                    return Err(err(
                        None,
                        "rate_limit: at least 1 request a second".to_owned(),
                    ))
                }
                r => r,
            },
            fail: file.fail.unwrap_or(Fail::Closed),
            rules,
        })
    }

    /// The decision on one request.
    pub fn decide(&self, req: &Facts<'_>, who: &Attribution) -> Decision {
        if self.refuse_forwarded && !req.forwarded.is_empty() {
            return Decision::deny(
                403,
                "refuse-forwarded",
                format!("the request carries {}", req.forwarded.join(", ")),
            );
        }
        if self.require_imdsv2
            && req.provider == Some("aws")
            && !req.token
            && req.kind != Kind::Token
        {
            return Decision::deny(401, "require-imdsv2", "no IMDSv2 session token".to_owned());
        }
        let process = match who {
            Attribution::Process(p) => Some(p.as_ref()),
            Attribution::Unattributed(_) => None,
        };
        for r in &self.rules {
            if r.matches(req, process) {
                return match r.action {
                    Action::Allow => Decision::allow(&r.name),
                    Action::Deny => Decision::deny(403, &r.name, "denied by the policy".to_owned()),
                };
            }
        }
        match self.default {
            Action::Allow => Decision::allow("default"),
            Action::Deny => Decision::deny(403, "default", "no rule allows it".to_owned()),
        }
    }
}

impl Rule {
    fn matches(&self, req: &Facts<'_>, p: Option<&Process>) -> bool {
        let needs_process = self.exe.given() || self.user.given() || self.container.given();
        if needs_process && p.is_none() {
            return false;
        }
        self.exe.hold(p.and_then(|p| p.exe.as_deref()))
            && self.user.hold(p.and_then(|p| p.user.as_deref()))
            && self.container.hold(p.and_then(|p| p.container.as_deref()))
            && (self.kind.is_empty() || self.kind.contains(&req.kind))
            && self.path.hold(Some(req.path))
            && (self.method.is_empty() || self.method.iter().any(|m| m == req.method))
    }
}

/// What the proxy knows of a request when it decides.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// `GET`, `PUT` …
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The provider the catalog names for the path, if any.
    pub provider: Option<&'a str>,
    /// What the path hands out.
    pub kind: Kind,
    /// Whether an IMDSv2 session token came with it.
    pub token: bool,
    /// Forwarding headers present (`X-Forwarded-For`, `Via`, `Forwarded`).
    pub forwarded: Vec<&'static str>,
}

/// A decision: allow, or refuse with a status, naming the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the policy lets it through.
    pub allow: bool,
    /// The status a refusal gets (401 or 403, as the service itself would answer).
    pub status: u16,
    /// The rule that decided (`default`, `refuse-forwarded` and `require-imdsv2` for the
    /// built-in ones).
    pub rule: String,
    /// Why, in a few words.
    pub why: String,
}

impl Decision {
    fn allow(rule: &str) -> Self {
        Decision {
            allow: true,
            status: 200,
            rule: rule.to_owned(),
            why: String::new(),
        }
    }

    pub(crate) fn deny(status: u16, rule: &str, why: String) -> Self {
        Decision {
            allow: false,
            status,
            rule: rule.to_owned(),
            why,
        }
    }
}

/// A policy file that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct PolicyError {
    /// The file.
    pub path: String,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// The line of the `i`-th `[[rule]]` table.
fn rule_line(text: &str, i: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[rule]]"))
        .nth(i)
        .map(|(n, _)| n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const EXAMPLE: &str = r#"
mode = "enforce"
default = "deny"
require_imdsv2 = true

[[rule]]
name = "ssm-agent"
action = "allow"
exe = ["/usr/bin/amazon-ssm-agent"]
user = ["root"]
kind = ["credentials", "token"]

[[rule]]
name = "region-for-all"
action = "allow"
path = ["/latest/meta-data/placement/region", "/latest/api/token"]

[[rule]]
name = "no-userdata"
action = "deny"
kind = ["userdata"]
"#;

    fn proc(exe: &str, user: &str) -> Attribution {
        Attribution::Process(Arc::new(Process {
            pid: 42,
            exe: Some(exe.to_owned()),
            cmdline: vec![exe.to_owned()],
            uid: 0,
            user: Some(user.to_owned()),
            cgroup: None,
            container: None,
        }))
    }

    fn facts<'a>(method: &'a str, path: &'a str, kind: Kind, token: bool) -> Facts<'a> {
        Facts {
            method,
            path,
            provider: Some("aws"),
            kind,
            token,
            forwarded: Vec::new(),
        }
    }

    #[test]
    fn per_identity_path_allowlists() {
        let p = Policy::parse(EXAMPLE, "policy.toml").unwrap();
        let creds = facts(
            "GET",
            "/latest/meta-data/iam/security-credentials/web",
            Kind::Credentials,
            true,
        );
        let ssm = proc("/usr/bin/amazon-ssm-agent", "root");
        let curl = proc("/usr/bin/curl", "www-data");
        assert_eq!(p.decide(&creds, &ssm).rule, "ssm-agent");
        assert!(p.decide(&creds, &ssm).allow);
        let d = p.decide(&creds, &curl);
        assert_eq!(
            (d.allow, d.status, d.rule.as_str()),
            (false, 403, "default")
        );
        let region = facts(
            "GET",
            "/latest/meta-data/placement/region",
            Kind::Other,
            true,
        );
        assert_eq!(p.decide(&region, &curl).rule, "region-for-all");
        // Unattributed: identity rules never match; path rules still do.
        let nobody = Attribution::Unattributed("gone".to_owned());
        assert!(!p.decide(&creds, &nobody).allow);
        assert!(p.decide(&region, &nobody).allow);
        // IMDSv2 required: a token-less GET is refused with 401, the token PUT is not.
        let v1 = facts(
            "GET",
            "/latest/meta-data/placement/region",
            Kind::Other,
            false,
        );
        let d = p.decide(&v1, &ssm);
        assert_eq!(
            (d.allow, d.status, d.rule.as_str()),
            (false, 401, "require-imdsv2")
        );
        let put = facts("PUT", "/latest/api/token", Kind::Token, false);
        assert!(p.decide(&put, &curl).allow);
        // Forwarded: refused before any rule.
        let mut fwd = creds.clone();
        fwd.forwarded = vec!["X-Forwarded-For"];
        let d = p.decide(&fwd, &ssm);
        assert_eq!((d.allow, d.rule.as_str()), (false, "refuse-forwarded"));
    }

    #[test]
    fn bad_files_are_refused_naming_the_line() {
        let e = Policy::parse(
            "mode = \"enforce\"\n[[rule]]\nname = \"x\"\naction = \"maybe\"\n",
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("p.toml:4: "), "{e}");
        let e = Policy::parse("[[rule]]\nname = \"a\"\naction = \"allow\"\n\n[[rule]]\nname = \"b\"\naction = \"allow\"\nkind = [\"secrets\"]\n", "p.toml")
            .unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("unknown kind \"secrets\""), "{e}");
        let e = Policy::parse("modes = \"enforce\"\n", "p.toml").unwrap_err();
        assert!(e.message.contains("modes"), "{e}");
        let e = Policy::parse("[[rule]]\nname = \"a\"\naction = \"allow\"\n[[rule]]\nname = \"a\"\naction = \"deny\"\n", "p.toml").unwrap_err();
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn the_readme_example_is_a_valid_policy() {
        let readme = include_str!("../../../README.md");
        let after = readme
            .split_once("A complete policy:")
            .expect("the README shows a complete policy")
            .1;
        let block = after
            .split_once("```toml\n")
            .and_then(|(_, rest)| rest.split_once("```"))
            .expect("a toml block")
            .0;
        let p = Policy::parse(block, "README.md").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.rules.len(), 3);
        assert!(p.require_imdsv2 && p.refuse_forwarded && p.mode == Mode::Enforce);
        let ssm = proc("/snap/amazon-ssm-agent/7628/amazon-ssm-agent", "root");
        let creds = facts(
            "GET",
            "/latest/meta-data/iam/security-credentials/r",
            Kind::Credentials,
            true,
        );
        assert_eq!(p.decide(&creds, &ssm).rule, "ssm-agent");
    }

    fn glob(pattern: &str, text: &str) -> bool {
        Globs::new(&[pattern.to_owned()]).unwrap().hold(Some(text))
    }

    #[test]
    fn globs() {
        assert!(glob("/usr/bin/*", "/usr/bin/curl"));
        assert!(glob(
            "*/security-credentials/*",
            "/latest/meta-data/iam/security-credentials/r"
        ));
        assert!(glob(
            "/snap/*/amazon-ssm-agent",
            "/snap/amazon-ssm-agent/7628/amazon-ssm-agent"
        ));
        assert!(glob("curl?", "curl7"));
        assert!(!glob("/usr/bin/*", "/tmp/usr/bin/curl"));
        assert!(!glob("curl", "curl2"));
        assert!(glob("*", ""));
        // Regex syntax in a pattern is itself, and `?` is one character, not one byte.
        assert!(glob("/opt/a+b/(x)", "/opt/a+b/(x)") && !glob("/opt/a+b", "/opt/aab"));
        assert!(glob("caf?", "café") && !glob("caf?", "cafés"));
        // No list: anything, even nothing; a list: never a missing value.
        assert!(Globs::new(&[]).unwrap().hold(None));
        assert!(!Globs::new(&["*".to_owned()]).unwrap().hold(None));
    }
}
