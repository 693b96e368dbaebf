//! The agent allowlist: which processes may read the metadata service, and the verdict on a
//! process against it (`agent`, `masquerade`, `unverified`, `unlisted`, `unknown`).
//!
//! The allowlist is data (`data/allowlist.toml`, extended by `--allowlist FILE`); the file's header
//! documents every key. Entries compile once into anchored regular expressions over normalized
//! paths (lowercase, `/` separators, no drive letter or `\device\harddiskvolumeN` prefix), so a
//! verdict costs a handful of regex matches and one path normalization per event.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;

use imdsguard_event::Event;
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::error::AllowlistError;
use crate::path::{basename, normalize_path};

const BUILTIN_TOML: &str = include_str!("../data/allowlist.toml");

static BUILTIN: LazyLock<Allowlist> = LazyLock::new(|| {
    Allowlist::from_toml(BUILTIN_TOML, "built-in allowlist")
        .unwrap_or_else(|e| panic!("the bundled allowlist is checked by tests: {e}"))
});

/// One allowed agent, compiled.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Stable id (`aws-ssm-agent`).
    pub id: String,
    /// What it is, for people.
    pub name: String,
    /// Where the entry was read: `file:line`.
    pub defined_at: String,
    names: Vec<Pattern>,
    generic_names: Vec<Pattern>,
    paths: Vec<Pattern>,
    scripts: Vec<Pattern>,
    users: Vec<String>,
    parents: Vec<Pattern>,
    hosts: Vec<Pattern>,
    /// Replaces the built-in entry of the same id (`replaces = true` in a user file), and the
    /// line that says so.
    replaces: Option<usize>,
}

/// A glob as written and as compiled.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    re: Regex,
}

impl Pattern {
    fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }
}

impl Agent {
    /// Regular expressions over an executable path as a log writes it (any case, `\` or `/`,
    /// with or without a drive letter or `\device\harddiskvolumeN`) that hold for the processes
    /// this entry allows, for rule exports; `None` when the entry also constrains the script, user,
    /// parent or host, which a path test cannot say.
    pub fn image_regexes(&self) -> Option<Vec<String>> {
        if !self.scripts.is_empty()
            || !self.users.is_empty()
            || !self.parents.is_empty()
            || !self.hosts.is_empty()
        {
            return None;
        }
        let names: Vec<String> = self
            .names
            .iter()
            .chain(&self.generic_names)
            .map(|n| glob_fragment(&n.text.to_ascii_lowercase(), false))
            .collect();
        let name_re = if names.is_empty() {
            r"[^\\/]+".to_owned()
        } else {
            format!("(?:{})", names.join("|"))
        };
        const PREFIX: &str = r"(?i)^(?:[a-z]:|\\\\\?\\[a-z]:|\\device\\harddiskvolume[0-9]+)?";
        const SUFFIX: &str = r"(?:;[0-9a-f]{8})?(?: \(deleted\))?$";
        let mut out = Vec::new();
        if self.paths.is_empty() {
            out.push(format!(r"(?i)(?:^|[\\/]){name_re}{SUFFIX}"));
        }
        for p in &self.paths {
            let norm = normalize_path(&p.text);
            if norm.ends_with('/') {
                out.push(format!(
                    "{PREFIX}{}{name_re}{SUFFIX}",
                    glob_fragment(&norm, true)
                ));
            } else {
                // A full path: the file name is part of the pattern.
                out.push(format!("{PREFIX}{}{SUFFIX}", glob_fragment(&norm, true)));
            }
        }
        Some(out)
    }

    /// The path patterns as written, for messages.
    pub fn path_texts(&self) -> Vec<&str> {
        self.paths.iter().map(|p| p.text.as_str()).collect()
    }

    /// The identifying names as written.
    pub fn name_texts(&self) -> Vec<&str> {
        self.names.iter().map(|p| p.text.as_str()).collect()
    }
}

/// The compiled allowlist. Immutable; share it by reference across threads.
#[derive(Debug, Clone)]
pub struct Allowlist {
    agents: Vec<Agent>,
}

/// What the allowlist says of an event's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// A verified agent: name, path and every other constraint of the entry hold.
    Agent(&'a Agent),
    /// Named like an agent, but a value the record carries contradicts the entry.
    Masquerade {
        /// The agent it is named like.
        agent: &'a Agent,
        /// Which constraint failed, as a sentence.
        why: String,
    },
    /// Named like an agent where the agent lives, but the record lacks a value the entry needs
    /// (user, parent, script); not allowed.
    Unverified {
        /// The agent it is named like.
        agent: &'a Agent,
        /// What could not be checked.
        why: String,
    },
    /// No entry allows it.
    Unlisted,
    /// The record names no executable.
    Unknown,
}

impl PartialEq for Agent {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Agent {}

/// A verdict without what it refers to: what alerts carry and rules test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerdictKind {
    /// [`Verdict::Agent`].
    Agent,
    /// [`Verdict::Masquerade`].
    Masquerade,
    /// [`Verdict::Unverified`].
    Unverified,
    /// [`Verdict::Unlisted`].
    Unlisted,
    /// [`Verdict::Unknown`].
    Unknown,
}

impl VerdictKind {
    /// Every verdict.
    pub const ALL: &'static [VerdictKind] = &[
        VerdictKind::Agent,
        VerdictKind::Masquerade,
        VerdictKind::Unverified,
        VerdictKind::Unlisted,
        VerdictKind::Unknown,
    ];

    /// The verdict's name, as rules and outputs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Agent => "agent",
            VerdictKind::Masquerade => "masquerade",
            VerdictKind::Unverified => "unverified",
            VerdictKind::Unlisted => "unlisted",
            VerdictKind::Unknown => "unknown",
        }
    }
}

impl serde::Serialize for VerdictKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Verdict<'_> {
    /// The verdict without what it refers to.
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Agent(_) => VerdictKind::Agent,
            Verdict::Masquerade { .. } => VerdictKind::Masquerade,
            Verdict::Unverified { .. } => VerdictKind::Unverified,
            Verdict::Unlisted => VerdictKind::Unlisted,
            Verdict::Unknown => VerdictKind::Unknown,
        }
    }

    /// The verdict's name, as rules and outputs spell it.
    pub fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The agent entry involved, if any.
    pub fn agent(&self) -> Option<&Agent> {
        match self {
            Verdict::Agent(a) | Verdict::Masquerade { agent: a, .. } => Some(a),
            Verdict::Unverified { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// A sentence saying why, for alert reasons.
    pub fn explain(&self, event: &Event) -> String {
        let image = event.process.image.as_deref().unwrap_or("?");
        match self {
            Verdict::Agent(a) => format!("{image} is {} (allowlist entry {})", a.name, a.id),
            Verdict::Masquerade { agent, why } => {
                format!("{image} is named like {} but {why}", agent.name)
            }
            Verdict::Unverified { agent, why } => format!(
                "{image} is named like {} but could not be verified: {why}",
                agent.name
            ),
            Verdict::Unlisted => format!("{image} is not a known cloud agent"),
            Verdict::Unknown => "The record does not name the process".to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    agent: Vec<AgentToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentToml {
    id: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    names: Vec<Spanned<String>>,
    #[serde(default)]
    generic_names: Vec<Spanned<String>>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    scripts: Vec<Spanned<String>>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    parents: Vec<Spanned<String>>,
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    replaces: Option<Spanned<bool>>,
}

struct Loader<'t> {
    text: &'t str,
    origin: &'t str,
}

impl Loader<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&self, span: Option<Range<usize>>, message: impl Into<String>) -> AllowlistError {
        AllowlistError {
            origin: self.origin.to_owned(),
            line: span.map(|s| self.line(&s)),
            message: message.into(),
        }
    }

    fn names(
        &self,
        id: &str,
        key: &str,
        v: &[Spanned<String>],
    ) -> Result<Vec<Pattern>, AllowlistError> {
        v.iter()
            .map(|s| {
                let t = s.get_ref().trim();
                if t.is_empty() || t.contains(['/', '\\']) {
                    return Err(self.err(
                        Some(s.span()),
                        format!("agent {id:?}: {key} entry {t:?} must be a file name, without a directory"),
                    ));
                }
                Ok(Pattern {
                    text: t.to_owned(),
                    re: name_glob(t),
                })
            })
            .collect()
    }

    fn paths(
        &self,
        id: &str,
        key: &str,
        v: &[Spanned<String>],
    ) -> Result<Vec<Pattern>, AllowlistError> {
        v.iter()
            .map(|s| {
                let t = s.get_ref().trim();
                if t.is_empty() {
                    return Err(
                        self.err(Some(s.span()), format!("agent {id:?}: empty {key} entry"))
                    );
                }
                let n = normalize_path(t);
                if n == "/" {
                    return Err(self.err(
                        Some(s.span()),
                        format!("agent {id:?}: {key} entry {t:?} would allow every path"),
                    ));
                }
                Ok(Pattern {
                    text: t.to_owned(),
                    re: path_glob(&n),
                })
            })
            .collect()
    }
}

/// A glob as a regex fragment over a path as written: `/` stands for either separator, `**/` any
/// number of directories, `*` a run within one level (`paths`) or any run (`names`).
fn glob_fragment(glob: &str, path: bool) -> String {
    let mut re = String::new();
    let b = glob.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if path && b[i] == b'*' && b.get(i + 1) == Some(&b'*') {
            if b.get(i + 2) == Some(&b'/') {
                re.push_str(r"(?:.*[\\/])?");
                i += 3;
            } else {
                re.push_str(".*");
                i += 2;
            }
            continue;
        }
        let c = glob[i..].chars().next().unwrap_or('\0');
        match c {
            '*' if path => re.push_str(r"[^\\/]*"),
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '/' if path => re.push_str(r"[\\/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += c.len_utf8();
    }
    re
}

/// A file-name glob: `*` any run of characters, case-insensitive, anchored.
fn name_glob(glob: &str) -> Regex {
    let mut re = String::from("(?i)^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).unwrap_or_else(|e| panic!("an escaped glob is a valid regex: {e}"))
}

/// A path glob over a normalized path: `**/` any number of directories, `*` within one, a
/// trailing `/` the directory's direct children.
fn path_glob(norm: &str) -> Regex {
    let mut re = String::from("^");
    let b = norm.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'*' && b.get(i + 1) == Some(&b'*') {
            if b.get(i + 2) == Some(&b'/') {
                re.push_str("(?:.*/)?");
                i += 3;
            } else {
                re.push_str(".*");
                i += 2;
            }
            continue;
        }
        let c = norm[i..].chars().next().unwrap_or('\0');
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += c.len_utf8();
    }
    if norm.ends_with('/') {
        re.push_str("[^/]+");
    }
    re.push('$');
    Regex::new(&re).unwrap_or_else(|e| panic!("an escaped glob is a valid regex: {e}"))
}

impl Allowlist {
    /// The bundled allowlist.
    pub fn builtin() -> &'static Allowlist {
        &BUILTIN
    }

    /// The bundled allowlist's TOML source.
    pub fn builtin_toml() -> &'static str {
        BUILTIN_TOML
    }

    /// An allowlist from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Allowlist, AllowlistError> {
        let l = Loader { text, origin };
        let file: FileToml =
            toml::from_str(text).map_err(|e| l.err(e.span(), e.message().trim().to_owned()))?;
        let mut seen = HashSet::new();
        let mut agents = Vec::with_capacity(file.agent.len());
        for a in &file.agent {
            let id = a.id.get_ref().trim();
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            {
                return Err(l.err(
                    Some(a.id.span()),
                    format!("agent id {id:?} must be letters, digits, '-' or '_'"),
                ));
            }
            if !seen.insert(id.to_owned()) {
                return Err(l.err(
                    Some(a.id.span()),
                    format!("agent id {id:?} is defined twice"),
                ));
            }
            if a.name.get_ref().trim().is_empty() {
                return Err(l.err(Some(a.name.span()), format!("agent {id:?}: name is empty")));
            }
            if a.names.is_empty() && a.generic_names.is_empty() && a.paths.is_empty() {
                return Err(l.err(
                    Some(a.id.span()),
                    format!("agent {id:?} allows nothing: give names, generic_names or paths"),
                ));
            }
            let users = a
                .users
                .iter()
                .map(|u| {
                    let t = u.get_ref().trim();
                    if t.is_empty() {
                        Err(l.err(Some(u.span()), format!("agent {id:?}: empty user")))
                    } else {
                        Ok(t.to_owned())
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            agents.push(Agent {
                id: id.to_owned(),
                name: a.name.get_ref().trim().to_owned(),
                defined_at: format!("{origin}:{}", l.line(&a.id.span())),
                names: l.names(id, "names", &a.names)?,
                generic_names: l.names(id, "generic_names", &a.generic_names)?,
                paths: l.paths(id, "paths", &a.paths)?,
                scripts: l.paths(id, "scripts", &a.scripts)?,
                users,
                parents: l.names(id, "parents", &a.parents)?,
                replaces: a
                    .replaces
                    .as_ref()
                    .filter(|r| *r.get_ref())
                    .map(|r| l.line(&r.span())),
                hosts: a
                    .hosts
                    .iter()
                    .map(|h| Pattern {
                        text: h.get_ref().clone(),
                        re: name_glob(h.get_ref().trim()),
                    })
                    .collect(),
            });
        }
        Ok(Allowlist { agents })
    }

    /// The built-in allowlist extended by a user file: the user's entries come first. An entry
    /// whose id is a built-in one's replaces it only when it says `replaces = true`; otherwise the
    /// clash is an error (a file meant to add an agent must not silently drop a built-in one), as
    /// is `replaces = true` on an id the built-in list does not have.
    pub fn builtin_extended(text: &str, origin: &str) -> Result<Allowlist, AllowlistError> {
        let user = Allowlist::from_toml(text, origin)?;
        let builtin = &Allowlist::builtin().agents;
        let line_of = |a: &Agent| a.defined_at.rsplit(':').next().and_then(|l| l.parse().ok());
        for u in &user.agents {
            let clash = builtin.iter().any(|b| b.id == u.id);
            match (clash, u.replaces) {
                (true, None) => {
                    return Err(AllowlistError {
                        origin: origin.to_owned(),
                        line: line_of(u),
                        message: format!(
                            "agent id {:?} is a built-in entry: give the new entry another id to \
                             add an agent, or `replaces = true` to replace the built-in one",
                            u.id
                        ),
                    })
                }
                (false, Some(line)) => {
                    return Err(AllowlistError {
                        origin: origin.to_owned(),
                        line: Some(line),
                        message: format!(
                            "agent {:?} says `replaces = true`, but no built-in entry has that id \
                             (`imdsguard allowlist` lists them)",
                            u.id
                        ),
                    })
                }
                _ => {}
            }
        }
        let mut agents = user.agents;
        for a in builtin {
            if !agents.iter().any(|u| u.id == a.id) {
                agents.push(a.clone());
            }
        }
        Ok(Allowlist { agents })
    }

    /// Every entry, in the order they are tried.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The verdict on an event's acting process.
    pub fn verdict(&self, event: &Event) -> Verdict<'_> {
        let Some(image) = event
            .process
            .image
            .as_deref()
            .filter(|i| !i.trim().is_empty())
        else {
            return Verdict::Unknown;
        };
        let path = normalize_path(image);
        let name = basename(&path);
        let mut masquerade: Option<Verdict<'_>> = None;
        let mut unverified: Option<Verdict<'_>> = None;
        for a in &self.agents {
            if !a.hosts.is_empty() {
                match event.host.as_deref() {
                    Some(h) if a.hosts.iter().any(|p| p.is_match(h)) => {}
                    _ => continue,
                }
            }
            let named = a.names.iter().any(|p| p.is_match(name));
            let generic = a.generic_names.iter().any(|p| p.is_match(name));
            let unnamed = a.names.is_empty() && a.generic_names.is_empty();
            if !(named || generic || unnamed) {
                continue;
            }
            let path_ok = a.paths.is_empty() || a.paths.iter().any(|p| p.is_match(&path));
            if !path_ok {
                if named && masquerade.is_none() {
                    masquerade = Some(Verdict::Masquerade {
                        agent: a,
                        why: format!(
                            "runs from {image}; the agent lives in {}",
                            a.path_texts().join(", ")
                        ),
                    });
                }
                continue;
            }
            let checks = [
                (!a.scripts.is_empty()).then(|| self.script_check(a, event)),
                (!a.users.is_empty()).then(|| user_check(a, event)),
                (!a.parents.is_empty()).then(|| parent_check(a, event)),
            ];
            let mut failed = None;
            for c in checks.into_iter().flatten() {
                if let Err(f) = c {
                    failed = Some(f);
                    break;
                }
            }
            match failed {
                None => return Verdict::Agent(a),
                Some(Failure::Contradicts(why)) if named => {
                    masquerade.get_or_insert(Verdict::Masquerade { agent: a, why });
                }
                Some(Failure::Missing(why)) if named => {
                    unverified.get_or_insert(Verdict::Unverified { agent: a, why });
                }
                Some(_) => {}
            }
        }
        masquerade.or(unverified).unwrap_or(Verdict::Unlisted)
    }

    fn script_check(&self, a: &Agent, event: &Event) -> Result<(), Failure> {
        let p = &event.process;
        if let Some(cl) = p.command_line.as_deref() {
            return match script_argument(cl) {
                Some(s) if a.scripts.iter().any(|g| g.is_match(&normalize_path(s))) => Ok(()),
                _ => Err(Failure::Other),
            };
        }
        if let Some(comm) = p.comm.as_deref() {
            // The kernel keeps the first 15 bytes of the file name.
            let known = a.scripts.iter().any(|g| {
                let norm = normalize_path(&g.text);
                let base = basename(&norm);
                !base.contains('*')
                    && base.as_bytes()[..base.len().min(15)].eq_ignore_ascii_case(comm.as_bytes())
            });
            return if known { Ok(()) } else { Err(Failure::Other) };
        }
        Err(Failure::Missing(
            "the record has neither the command line nor the process name to show the script it runs".into(),
        ))
    }
}

enum Failure {
    /// A value the record carries contradicts the entry.
    Contradicts(String),
    /// The record lacks the value.
    Missing(String),
    /// Not allowed, but not a sign of masquerade either (an interpreter running another script).
    Other,
}

fn user_check(a: &Agent, event: &Event) -> Result<(), Failure> {
    let Some(user) = event.process.user.as_deref() else {
        return Err(Failure::Missing(
            "the record does not say which user runs it".into(),
        ));
    };
    let short = user.rsplit('\\').next().unwrap_or(user);
    if a.users
        .iter()
        .any(|u| u.eq_ignore_ascii_case(user) || u.eq_ignore_ascii_case(short))
    {
        Ok(())
    } else {
        Err(Failure::Contradicts(format!(
            "runs as {user}; the agent runs as {}",
            a.users.join(" or ")
        )))
    }
}

fn parent_check(a: &Agent, event: &Event) -> Result<(), Failure> {
    let Some(parent) = event.parent.image.as_deref() else {
        return Err(Failure::Missing(
            "the record does not name its parent process".into(),
        ));
    };
    let norm = normalize_path(parent);
    if a.parents.iter().any(|p| p.is_match(basename(&norm))) {
        Ok(())
    } else {
        let allowed: Vec<&str> = a.parents.iter().map(|p| p.text.as_str()).collect();
        Err(Failure::Contradicts(format!(
            "its parent is {parent}; the agent is started by {}",
            allowed.join(" or ")
        )))
    }
}

/// The script an interpreter command line runs: the first argument after the program that is not
/// an option. `-c`, `-e` and `-m` (inline code, a module) mean no script file.
pub fn script_argument(command_line: &str) -> Option<&str> {
    let mut args = split_args(command_line).into_iter().skip(1);
    while let Some(a) = args.next() {
        if a == "-c" || a == "-e" || a == "-m" {
            return None;
        }
        if matches!(a, "-W" | "-X" | "-Q") {
            args.next();
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        return Some(a);
    }
    None
}

/// Splits a command line at white space outside double or single quotes; the quotes are kept out
/// of the pieces when they wrap a whole piece.
fn split_args(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut quote = None;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c.is_ascii_whitespace() => break,
                None => {}
            }
            i += 1;
        }
        let piece = &s[start..i];
        let trimmed = piece
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .or_else(|| piece.strip_prefix('\'').and_then(|p| p.strip_suffix('\'')))
            .unwrap_or(piece);
        out.push(trimmed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdsguard_event::{Format, Position, Process, SourceRef};

    fn ev(image: &str) -> Event {
        let source = SourceRef {
            path: "t".into(),
            position: Position::Line(1),
        };
        Event {
            process: Process {
                image: Some(image.into()),
                ..Process::default()
            },
            ..Event::empty(
                source,
                Format::Ecs,
                imdsguard_event::EventKind::NetworkConnect,
            )
        }
    }

    #[test]
    fn the_builtin_allowlist_loads() {
        assert!(Allowlist::builtin().agents().len() > 15);
    }

    #[test]
    fn agents_are_verified_by_name_and_path() {
        let a = Allowlist::builtin();
        let cases = [
            (
                r"\device\harddiskvolume2\windowsazure\guestagent_2.7.41491.993_2020-09-17_150914\guestagent\windowsazureguestagent.exe",
                "agent",
            ),
            (
                r"\device\harddiskvolume2\packages\plugins\microsoft.azure.networkwatcher.networkwatcheragentwindows\1.4.1587.1\networkwatcheragent\networkwatcheragent.exe",
                "agent",
            ),
            (r"C:\Program Files\Amazon\cfn-bootstrap\winhup.exe", "agent"),
            (
                r"\device\harddiskvolume2\program files\amazon\ec2configservice\ec2config.exe",
                "agent",
            ),
            ("/usr/bin/amazon-ssm-agent", "agent"),
            ("/snap/amazon-ssm-agent/7628/amazon-ssm-agent", "agent"),
            ("/usr/bin/google_guest_agent", "agent"),
            ("/tmp/amazon-ssm-agent", "masquerade"),
            (r"C:\Users\Public\WindowsAzureGuestAgent.exe", "masquerade"),
            (
                r"C:\Packages\Plugins\Microsoft.Compute.CustomScriptExtension\1.10\Downloads\0\evil.exe",
                "unlisted",
            ),
            ("/usr/bin/curl", "unlisted"),
            ("/usr/bin/python3", "unlisted"),
        ];
        for (image, want) in cases {
            assert_eq!(a.verdict(&ev(image)).as_str(), want, "{image}");
        }
        assert_eq!(Allowlist::builtin().verdict(&ev("  ")).as_str(), "unknown");
    }

    #[test]
    fn interpreters_are_judged_by_their_script() {
        let a = Allowlist::builtin();
        let mut e = ev("/usr/bin/python3.10");
        e.process.command_line = Some("python3 -u /usr/sbin/waagent -run-exthandlers".into());
        assert_eq!(a.verdict(&e).as_str(), "agent");
        e.process.command_line = Some("python3 -c 'import urllib.request'".into());
        assert_eq!(a.verdict(&e).as_str(), "unlisted");
        e.process.command_line = Some("python3 /tmp/waagent".into());
        assert_eq!(a.verdict(&e).as_str(), "unlisted");
        // The real GCE record: a deleted, prelinked interpreter whose comm is the daemon's name.
        let mut g = ev("/usr/bin/python2.7;58d1ccfb (deleted)");
        g.process.comm = Some("google_accounts".into());
        assert_eq!(a.verdict(&g).as_str(), "agent");
        g.process.comm = Some("python2.7".into());
        assert_eq!(a.verdict(&g).as_str(), "unlisted");
    }

    #[test]
    fn user_and_parent_constraints_contradict_or_go_unverified() {
        let toml = r#"
[[agent]]
id = "ssm"
name = "SSM"
names = ["amazon-ssm-agent"]
paths = ["/usr/bin/"]
users = ["root"]

[[agent]]
id = "eic"
name = "EC2 Instance Connect"
generic_names = ["curl"]
paths = ["/usr/bin/"]
parents = ["eic_run_authorized_keys"]
"#;
        let a = Allowlist::from_toml(toml, "t.toml").unwrap();
        let mut e = ev("/usr/bin/amazon-ssm-agent");
        assert_eq!(a.verdict(&e).as_str(), "unverified");
        e.process.user = Some("root".into());
        assert_eq!(a.verdict(&e).as_str(), "agent");
        e.process.user = Some("www-data".into());
        let v = a.verdict(&e);
        assert_eq!(v.as_str(), "masquerade");
        assert!(
            v.explain(&e).contains("runs as www-data"),
            "{}",
            v.explain(&e)
        );
        let mut c = ev("/usr/bin/curl");
        assert_eq!(a.verdict(&c).as_str(), "unlisted");
        c.parent.image = Some("/usr/share/ec2-instance-connect/eic_run_authorized_keys".into());
        assert_eq!(a.verdict(&c).as_str(), "agent");
        c.parent.image = Some("/bin/bash".into());
        assert_eq!(
            a.verdict(&c).as_str(),
            "unlisted",
            "curl is a generic name: never a masquerade"
        );
    }

    #[test]
    fn bad_files_name_the_line() {
        let cases = [
            ("[[agent]]\nid = \"x\"\nname = \"X\"\n", "allows nothing"),
            ("[[agent]]\nid = \"x\"\nname = \"X\"\nnames = [\"/usr/bin/x\"]\n", "without a directory"),
            ("[[agent]]\nid = \"x\"\nname = \"X\"\npaths = [\"/\"]\n", "every path"),
            ("[[agent]]\nid = \"x\"\nname = \"X\"\npaths = [\"/a/\"]\nbogus = 1\n", "unknown field"),
            ("[[agent]]\nid = \"x\"\nname = \"X\"\npaths = [\"/a/\"]\n[[agent]]\nid = \"x\"\nname = \"Y\"\npaths = [\"/b/\"]\n", "defined twice"),
        ];
        for (text, want) in cases {
            let e = Allowlist::from_toml(text, "user.toml").unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("user.toml:"), "{msg}");
            assert!(msg.contains(want), "{msg}");
            assert!(e.line.is_some(), "{msg}");
        }
    }

    #[test]
    fn user_entries_replace_builtin_ones_only_when_they_say_so() {
        let entry = "[[agent]]\nid = \"aws-ssm-agent\"\nname = \"SSM here\"\nnames = [\"amazon-ssm-agent\"]\npaths = [\"/opt/ssm/\"]\n";
        let e = Allowlist::builtin_extended(entry, "u.toml").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("is a built-in entry"), "{e}");
        let e = Allowlist::builtin_extended(
            "[[agent]]\nid = \"mine\"\nname = \"Mine\"\nnames = [\"x\"]\nreplaces = true\n",
            "u.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("no built-in entry"), "{e}");
        let a =
            Allowlist::builtin_extended(&format!("{entry}replaces = true\n"), "u.toml").unwrap();
        assert_eq!(a.agents().len(), Allowlist::builtin().agents().len());
        assert_eq!(
            a.verdict(&ev("/usr/bin/amazon-ssm-agent")).as_str(),
            "masquerade"
        );
        assert_eq!(
            a.verdict(&ev("/opt/ssm/amazon-ssm-agent")).as_str(),
            "agent"
        );
    }

    #[test]
    fn exported_image_regexes_agree_with_verdicts_on_plain_entries() {
        let a = Allowlist::builtin();
        let images = [
            r"\device\harddiskvolume2\windowsazure\guestagent_2.7.41491.993_2020-09-17_150914\guestagent\windowsazureguestagent.exe",
            r"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe",
            "/snap/amazon-ssm-agent/7628/amazon-ssm-agent",
            "/usr/bin/google_guest_agent",
            "/tmp/amazon-ssm-agent",
            r"C:\Users\Public\WindowsAzureGuestAgent.exe",
            "/usr/bin/curl",
            r"C:\Packages\Plugins\Microsoft.Azure.NetworkWatcher.NetworkWatcherAgentWindows\1.4.1587.1\NetworkWatcherAgent\NetworkWatcherAgent.exe",
        ];
        for image in images {
            let e = ev(image);
            let verdict = a.verdict(&e);
            let by_regex = a.agents().iter().any(|ag| {
                ag.image_regexes()
                    .is_some_and(|rs| rs.iter().any(|r| Regex::new(r).unwrap().is_match(image)))
            });
            assert_eq!(
                by_regex,
                verdict.as_str() == "agent",
                "{image}: {verdict:?}"
            );
        }
    }

    #[test]
    fn script_argument_skips_options() {
        assert_eq!(
            script_argument("python3 -u /usr/sbin/waagent -run-exthandlers"),
            Some("/usr/sbin/waagent")
        );
        assert_eq!(
            script_argument("\"C:\\py\\python.exe\" -X utf8 \"C:\\a b\\s.py\""),
            Some("C:\\a b\\s.py")
        );
        assert_eq!(script_argument("python -c print(1)"), None);
        assert_eq!(script_argument("python"), None);
    }
}
