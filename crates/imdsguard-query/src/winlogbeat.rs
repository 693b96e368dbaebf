//! Where Winlogbeat's modules put each Sigma field of a Windows event (`data/ecs.toml`), as a
//! rewrite of the rule's tests onto ECS field names, before EQL or ES|QL writes them.
//!
//! Most fields are renamed one to one. Some are not:
//! - the Security module moves `ProcessName`, `IpAddress`, `IpPort`, `WorkstationName` and
//!   `ClientAddress` out of event data only for some event codes, so a test reads both places,
//!   the ECS one under those codes (or one place when the rule's own event ids decide);
//! - the Sysmon module writes `Initiated` as `network.direction` (`egress`/`ingress`), splits
//!   `User` at `\` into `user.domain` and `user.name`, moves registry `Details` to
//!   `registry.data.strings` with DWORD and QWORD numbers in decimal, and splits `Hashes` into
//!   `*.hash.<algorithm>` (lower-cased);
//! - image loads (Sysmon 7) keep the loaded file's version information under `file.pe.*`.
//!
//! A test no ECS field can answer as the rule means it is left out in the direction that widens
//! the query, with a note. Fields are written back as `=<ecs.field>`, which [`resolved`] reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use imdsguard_sigma::{Node, Op, Pattern, Piece, SigmaRule, Test};
use serde::Deserialize;

use crate::{shape, Shape};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ecs {
    pub numbers: Vec<String>,
    pub categories: BTreeMap<String, String>,
    fields: BTreeMap<String, String>,
    sysmon: BTreeMap<String, String>,
    sysmon_image_load: BTreeMap<String, String>,
    security: BTreeMap<String, String>,
    security_moved: Moved,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Moved {
    codes: BTreeSet<String>,
    fields: BTreeMap<String, String>,
}

pub(crate) static ECS: LazyLock<Ecs> = LazyLock::new(|| {
    toml::from_str::<Ecs>(include_str!("../data/ecs.toml"))
        .unwrap_or_else(|e| panic!("data/ecs.toml is checked by the tests: {e}"))
});

const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";

/// The ECS field a rewritten test names (`=process.executable`), or event data for a Sigma name
/// the rewrite did not see.
pub(crate) fn resolved(f: &str) -> String {
    match f.strip_prefix('=') {
        Some(ecs) => ecs.to_owned(),
        None => format!("winlog.event_data.{f}"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Module {
    Sysmon,
    Security,
    /// A log no Winlogbeat module processes: event data as written.
    None,
}

/// The rule's tests on the fields Winlogbeat writes.
pub(crate) struct Layout<'a> {
    module: Module,
    category: Option<&'a str>,
    /// The event codes every match of the rule has, when its condition says.
    codes: Option<BTreeSet<String>>,
}

impl<'a> Layout<'a> {
    pub(crate) fn of(rule: &'a SigmaRule, node: &Node) -> Layout<'a> {
        let channels = imdsguard_sigma::logsource_channels(&rule.logsource)
            .map(|(c, _)| c)
            .unwrap_or_default();
        let module = if channels.iter().any(|c| c == SYSMON) {
            Module::Sysmon
        } else if channels.iter().any(|c| c == "Security") {
            Module::Security
        } else {
            Module::None
        };
        Layout {
            module,
            category: rule.logsource.category.as_deref(),
            codes: codes(node),
        }
    }

    /// The rule's condition over ECS fields.
    pub(crate) fn rewrite(&self, n: Node, positive: bool, notes: &mut Vec<String>) -> Node {
        self.under(n, positive, self.codes.as_ref(), notes)
    }

    /// `known`: the event codes every match of the enclosing groups has.
    fn under(
        &self,
        n: Node,
        positive: bool,
        known: Option<&BTreeSet<String>>,
        notes: &mut Vec<String>,
    ) -> Node {
        match n {
            Node::All(xs) => {
                let here = match (codes(&Node::All(xs.clone())), known) {
                    (Some(c), Some(k)) => Some(c.intersection(k).cloned().collect()),
                    (c, k) => c.or_else(|| k.cloned()),
                };
                Node::All(
                    xs.into_iter()
                        .map(|x| self.under(x, positive, here.as_ref(), notes))
                        .collect(),
                )
            }
            Node::Any(xs) => Node::Any(
                xs.into_iter()
                    .map(|x| self.under(x, positive, known, notes))
                    .collect(),
            ),
            Node::Not(x) => Node::Not(Box::new(self.under(*x, !positive, known, notes))),
            Node::Test(t) => match self.test(t, known, notes) {
                Ok(n) => n,
                Err(why) => {
                    notes.push(format!("{why}: that test is left out (wider)"));
                    Node::All(Vec::new()).negated_if(!positive)
                }
            },
        }
    }

    /// The ECS field of a field read as it is (no value changes): `fieldref` targets.
    fn plain(&self, f: &str) -> String {
        let table = |t: &'static BTreeMap<String, String>| t.get(f).map(String::as_str);
        let hit = table(&ECS.fields).or(match self.module {
            Module::Sysmon => (self.category == Some("image_load"))
                .then(|| table(&ECS.sysmon_image_load))
                .flatten()
                .or_else(|| table(&ECS.sysmon)),
            Module::Security => table(&ECS.security),
            Module::None => None,
        });
        match hit {
            Some(e) => format!("={e}"),
            None => format!("=winlog.event_data.{f}"),
        }
    }

    fn test(
        &self,
        t: Test,
        known: Option<&BTreeSet<String>>,
        notes: &mut Vec<String>,
    ) -> Result<Node, String> {
        let Some(f) = t.field.clone() else {
            return Ok(Node::Test(t));
        };
        let op = match t.op {
            Op::FieldRef(other)
                if self.module == Module::Sysmon && (other == "User" || f == "User") =>
            {
                return Err(format!(
                    "{f} fieldref {other}: Winlogbeat splits User at `\\` into user.domain and user.name"
                ));
            }
            Op::FieldRef(other) => Op::FieldRef(self.plain(&other)),
            op => op,
        };
        if self.module == Module::Sysmon && !ECS.fields.contains_key(&f) {
            match f.as_str() {
                "Initiated" => return initiated(op),
                "User" => {
                    let (n, wider) = user(op);
                    notes.extend(wider);
                    return Ok(n);
                }
                "Details" => return details(op),
                "Hashes" => return hashes(self.hash_owner(), op),
                "Imphash" => return Ok(at(&format!("{}.pe.imphash", self.hash_owner()), op)),
                _ => {}
            }
        }
        if self.module == Module::Security {
            if let Some(ecs) = ECS.security_moved.fields.get(&f) {
                return Ok(moved(&f, ecs, op, known));
            }
        }
        Ok(Node::Test(Test {
            field: Some(self.plain(&f)),
            op,
        }))
    }

    /// Where the Sysmon module puts an event's hashes: the loaded or written file's for image
    /// and driver loads and file hashes, the process's otherwise.
    fn hash_owner(&self) -> &'static str {
        match self.category {
            Some("image_load" | "driver_load" | "create_stream_hash") => "file",
            _ => "process",
        }
    }
}

/// A Security field the module moves for some event codes only: read in event data, and in its
/// ECS field under those codes (only there, or not at all, when the rule's codes decide).
fn moved(f: &str, ecs: &str, op: Op, known: Option<&BTreeSet<String>>) -> Node {
    let kept = at(&format!("winlog.event_data.{f}"), op.clone());
    let value = match &op {
        Op::Glob { pattern, .. } => pattern.as_literal(),
        _ => None,
    };
    if value.as_deref() == Some("-") {
        // The module leaves "-" (no address, no port) in event data.
        return kept;
    }
    // A port is a number there.
    let op = match value {
        Some(v) if ECS.numbers.iter().any(|n| n == ecs) && v.parse::<u64>().is_ok() => {
            Op::Number(v)
        }
        _ => op,
    };
    let moving = &ECS.security_moved.codes;
    let guard = match known {
        Some(c) if c.iter().all(|x| moving.contains(x)) => None,
        Some(c) if !c.iter().any(|x| moving.contains(x)) => return kept,
        _ => Some(Node::Any(
            moving.iter().map(|c| at("event.code", exact(c))).collect(),
        )),
    };
    let absent = matches!(op, Op::Null | Op::Exists(false));
    let there = at(ecs, op);
    match (absent, guard) {
        (false, None) => Node::Any(vec![kept, there]),
        (false, Some(g)) => Node::Any(vec![kept, Node::All(vec![g, there])]),
        (true, None) => Node::All(vec![kept, there]),
        (true, Some(g)) => Node::All(vec![kept, Node::Any(vec![Node::Not(Box::new(g)), there])]),
    }
}

trait Negate {
    fn negated_if(self, yes: bool) -> Node;
}

impl Negate for Node {
    /// `true` stays `true` where a refused test stands positive; `false` under a negation.
    fn negated_if(self, yes: bool) -> Node {
        if yes {
            Node::Any(Vec::new())
        } else {
            self
        }
    }
}

fn at(ecs: &str, op: Op) -> Node {
    Node::Test(Test {
        field: Some(format!("={ecs}")),
        op,
    })
}

fn exact(v: &str) -> Op {
    Op::Glob {
        pattern: Pattern::literal(v),
        cased: false,
    }
}

/// The event codes every match of the condition has (`EventID` tests it requires), if it says.
fn codes(n: &Node) -> Option<BTreeSet<String>> {
    match n {
        Node::Test(Test { field: Some(f), op }) if f == "EventID" => match op {
            Op::Number(v) => Some(BTreeSet::from([v.clone()])),
            Op::Glob { pattern, .. } => match shape(pattern) {
                Shape::Exact(v) => Some(BTreeSet::from([v])),
                _ => None,
            },
            _ => None,
        },
        Node::All(xs) => xs
            .iter()
            .filter_map(codes)
            .reduce(|a, b| a.intersection(&b).cloned().collect()),
        Node::Any(xs) if !xs.is_empty() => xs
            .iter()
            .map(codes)
            .collect::<Option<Vec<_>>>()
            .map(|sets| sets.into_iter().flatten().collect()),
        _ => None,
    }
}

/// Sysmon's `Initiated` ("true"/"false"), which the module writes as `network.direction`.
fn initiated(op: Op) -> Result<Node, String> {
    match &op {
        Op::Glob { pattern, .. } => {
            let value = pattern.as_literal().unwrap_or_default().to_lowercase();
            let direction = match value.as_str() {
                "true" => "egress",
                "false" => "ingress",
                _ => {
                    return Err(format!(
                        "Initiated {pattern}: Winlogbeat keeps only network.direction (egress or ingress)"
                    ))
                }
            };
            Ok(at("network.direction", exact(direction)))
        }
        Op::Null | Op::Exists(_) => Ok(at("network.direction", op)),
        _ => Err("Initiated: Winlogbeat keeps only network.direction (egress or ingress)".into()),
    }
}

/// Sysmon's `User` (`DOMAIN\name`), which the module splits into `user.domain` and `user.name`.
/// A pattern with one literal `\` tests each side of it; one without tests either part, which is
/// exact for a substring and wider otherwise.
fn user(op: Op) -> (Node, Option<String>) {
    let Op::Glob { pattern, cased } = &op else {
        return (at("user.name", op), None);
    };
    let glob = |pieces: Vec<Piece>| Op::Glob {
        pattern: Pattern { pieces },
        cased: *cased,
    };
    let mut left = Vec::new();
    let mut pieces = pattern.pieces.iter();
    while let Some(p) = pieces.next() {
        if let Piece::Lit(s) = p {
            if let Some((before, after)) = s.split_once('\\') {
                if !before.is_empty() {
                    left.push(Piece::Lit(before.to_owned()));
                }
                let mut right: Vec<Piece> = Vec::new();
                if !after.is_empty() {
                    right.push(Piece::Lit(after.to_owned()));
                }
                right.extend(pieces.cloned());
                return (
                    Node::All(vec![
                        at("user.domain", glob(left)),
                        at("user.name", glob(right)),
                    ]),
                    None,
                );
            }
        }
        left.push(p.clone());
    }
    let wider = (!matches!(shape(pattern), Shape::Contains(_))).then(|| {
        format!(
            "User {pattern}: Winlogbeat splits User at `\\` into user.domain and user.name; \
             the value is tested against either part (wider)"
        )
    });
    (
        Node::Any(vec![at("user.domain", op.clone()), at("user.name", op)]),
        wider,
    )
}

/// Sysmon's registry `Details`, which the module moves to `registry.data.strings`, numbers in
/// decimal: `DWORD (0x00000001)` is `1` there.
fn details(op: Op) -> Result<Node, String> {
    let strings = "registry.data.strings";
    let Op::Glob { pattern, .. } = &op else {
        return Ok(at(strings, op));
    };
    let text: String = pattern
        .pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Lit(s) => Some(s.to_lowercase()),
            _ => None,
        })
        .collect();
    if let Shape::Contains(v) = shape(pattern) {
        if let Some(n) = dword(&v) {
            // Sysmon writes a DWORD value as exactly this text, so a value holding it is that
            // DWORD.
            return Ok(at(strings, exact(&n.to_string())));
        }
    }
    if let Some(v) = pattern.as_literal() {
        if let Some(n) = dword(&v) {
            return Ok(at(strings, exact(&n.to_string())));
        }
        if v.to_lowercase().starts_with("qword") {
            return Err(format!("Details {v:?}: Winlogbeat rewrites QWORD data"));
        }
        return Ok(at(strings, op));
    }
    if matches!(shape(pattern), Shape::Prefix(p) if "dword (0x".starts_with(&p.to_lowercase()) && !p.is_empty())
    {
        return Ok(at("registry.data.type", exact("SZ_DWORD")));
    }
    if text.contains("dword") || text.contains("qword") || text.contains("0x") {
        return Err(format!(
            "Details {pattern}: Winlogbeat writes DWORD and QWORD data in decimal"
        ));
    }
    Ok(at(strings, op))
}

fn dword(v: &str) -> Option<u32> {
    let hex = v
        .strip_prefix("DWORD (0x")
        .or_else(|| v.strip_prefix("dword (0x"))?
        .strip_suffix(')')?;
    (hex.len() == 8)
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Sysmon's `Hashes` (`SHA256=…,IMPHASH=…`), which the module splits into `<owner>.hash.<alg>`
/// (and `<owner>.pe.imphash`), values lower-cased. `ALG=value` inside the field is a prefix test
/// of that hash.
fn hashes(owner: &str, op: Op) -> Result<Node, String> {
    let Op::Glob { pattern, .. } = &op else {
        return Err("Hashes: Winlogbeat splits it into one field per algorithm".into());
    };
    let pair = match shape(pattern) {
        Shape::Contains(s) | Shape::Prefix(s) => s,
        Shape::Exact(s) if !s.contains(',') => s,
        _ => String::new(),
    };
    let Some((alg, value)) = pair.split_once('=') else {
        return Err(format!(
            "Hashes {pattern}: Winlogbeat splits it into one field per algorithm"
        ));
    };
    let alg = alg.to_lowercase();
    if alg.is_empty()
        || !alg.chars().all(|c| c.is_ascii_alphanumeric())
        || value.contains([',', '='])
    {
        return Err(format!(
            "Hashes {pattern}: Winlogbeat splits it into one field per algorithm"
        ));
    }
    let field = if alg == "imphash" {
        format!("{owner}.pe.imphash")
    } else {
        format!("{owner}.hash.{alg}")
    };
    Ok(at(
        &field,
        Op::Glob {
            pattern: Pattern {
                pieces: vec![Piece::Lit(value.to_lowercase()), Piece::Any],
            },
            cased: false,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(s: &str) -> Op {
        Op::Glob {
            pattern: Pattern::parse(s),
            cased: false,
        }
    }

    fn field(n: &Node) -> Vec<String> {
        match n {
            Node::Test(t) => vec![t.field.clone().unwrap_or_default()],
            Node::All(xs) | Node::Any(xs) => xs.iter().flat_map(field).collect(),
            Node::Not(x) => field(x),
        }
    }

    #[test]
    fn the_table_loads() {
        assert!(ECS.security_moved.codes.contains("4624"));
        assert!(!ECS.security_moved.codes.contains("4688"));
    }

    #[test]
    fn initiated_becomes_the_direction() {
        let n = initiated(glob("true")).unwrap();
        assert_eq!(n, at("network.direction", exact("egress")));
        let n = initiated(glob("False")).unwrap();
        assert_eq!(n, at("network.direction", exact("ingress")));
        assert!(initiated(glob("maybe")).is_err());
    }

    #[test]
    fn user_splits_at_the_backslash() {
        let (n, wider) = user(glob("NT AUTHORITY\\SYSTEM"));
        assert_eq!(wider, None);
        assert_eq!(
            n,
            Node::All(vec![
                at("user.domain", glob("NT AUTHORITY")),
                at("user.name", glob("SYSTEM")),
            ])
        );
        let (n, _) = user(glob("*\\SYSTEM"));
        assert_eq!(
            n,
            Node::All(vec![
                at("user.domain", glob("*")),
                at("user.name", glob("SYSTEM"))
            ])
        );
        // No backslash: either part.
        let (n, wider) = user(glob("*AUTHORI*"));
        assert_eq!(field(&n), ["=user.domain", "=user.name"]);
        assert_eq!(wider, None);
        // An exact name without a domain: either part, which is wider, and said.
        let (_, wider) = user(glob("SYSTEM"));
        assert!(wider.unwrap().contains("(wider)"));
    }

    #[test]
    fn details_numbers_are_decimal() {
        assert_eq!(
            details(glob("DWORD (0x00000010)")).unwrap(),
            at("registry.data.strings", exact("16"))
        );
        assert_eq!(
            details(glob("DWORD*")).unwrap(),
            at("registry.data.type", exact("SZ_DWORD"))
        );
        assert!(details(glob("*0x0000*")).is_err());
        assert_eq!(
            details(glob("*\\AppData\\*")).unwrap(),
            at("registry.data.strings", glob("*\\AppData\\*"))
        );
    }

    #[test]
    fn hashes_split_by_algorithm() {
        assert_eq!(
            hashes("process", glob("*IMPHASH=ABCD*")).unwrap(),
            at("process.pe.imphash", glob("abcd*"))
        );
        assert_eq!(
            hashes("file", glob("*SHA256=EF01*")).unwrap(),
            at("file.hash.sha256", glob("ef01*"))
        );
        assert!(hashes("process", glob("*ABCD*")).is_err());
    }

    #[test]
    fn moved_fields_follow_the_event_codes() {
        let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let kept = at("winlog.event_data.IpAddress", glob("10.0.0.1"));
        let there = at("source.ip", glob("10.0.0.1"));
        // Every code moves it: either place (event data still holds "-").
        let n = moved(
            "IpAddress",
            "source.ip",
            glob("10.0.0.1"),
            Some(&codes(&["4624"])),
        );
        assert_eq!(n, Node::Any(vec![kept.clone(), there.clone()]));
        // No code moves it: event data only.
        let n = moved(
            "IpAddress",
            "source.ip",
            glob("10.0.0.1"),
            Some(&codes(&["4663"])),
        );
        assert_eq!(n, kept);
        // Unknown: the ECS field under the module's codes.
        let n = moved("IpAddress", "source.ip", glob("10.0.0.1"), None);
        let Node::Any(parts) = n else { panic!("{n:?}") };
        assert_eq!(parts[0], kept);
        let Node::All(guarded) = &parts[1] else {
            panic!("{parts:?}")
        };
        assert_eq!(guarded[1], there);
        // "-" stays in event data; a port is a number in ECS.
        let n = moved("IpPort", "source.port", glob("-"), None);
        assert_eq!(n, at("winlog.event_data.IpPort", glob("-")));
        let n = moved(
            "IpPort",
            "source.port",
            glob("445"),
            Some(&codes(&["4624"])),
        );
        assert_eq!(
            n,
            Node::Any(vec![
                at("winlog.event_data.IpPort", glob("445")),
                at("source.port", Op::Number("445".into())),
            ])
        );
        // Absence: absent in both places.
        let n = moved("IpAddress", "source.ip", Op::Null, Some(&codes(&["4624"])));
        assert_eq!(
            n,
            Node::All(vec![
                at("winlog.event_data.IpAddress", Op::Null),
                at("source.ip", Op::Null)
            ])
        );
    }

    #[test]
    fn event_codes_of_a_condition() {
        let id = |v: &str| {
            Node::Test(Test {
                field: Some("EventID".into()),
                op: Op::Number(v.into()),
            })
        };
        let other = Node::Test(Test {
            field: Some("LogonType".into()),
            op: Op::Number("3".into()),
        });
        let n = Node::All(vec![Node::Any(vec![id("4624"), id("4625")]), other.clone()]);
        assert_eq!(
            codes(&n),
            Some(BTreeSet::from(["4624".to_string(), "4625".to_string()]))
        );
        assert_eq!(codes(&Node::Any(vec![id("4624"), other])), None);
    }
}
