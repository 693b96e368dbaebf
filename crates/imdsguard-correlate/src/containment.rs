//! Containment playbooks per cloud provider, as data (`data/containment.toml`): the steps an
//! analyst takes once an alert is triaged, with each provider's own commands. The steps every
//! provider shares (block the process, fix the SSRF, remove the web shell) follow from the
//! alert's facts and stay in [`crate::triage`].

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;

const BUILTIN_TOML: &str = include_str!("../data/containment.toml");

/// A playbook file that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybookError {
    /// The file, or `built-in`.
    pub origin: String,
    /// What is wrong, naming the provider and step.
    pub message: String,
}

impl fmt::Display for PlaybookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

impl std::error::Error for PlaybookError {}

/// When a provider's step applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Every alert the playbook applies to on the provider.
    Always,
    /// The alert escalates and its target hands out something of value.
    Stolen,
}

/// A value of the alert a template names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// `{when}`
    When,
    /// `{aws_unsure}`
    AwsUnsure,
    /// `{aws_instance}`
    AwsInstance,
    /// `{role}`
    Role,
    /// `{role_lookup}`
    RoleLookup,
    /// `{role_named}`
    RoleNamed,
    /// `{vm}`
    Vm,
    /// `{service_account}`
    ServiceAccount,
    /// `{service_account_named}`
    ServiceAccountNamed,
}

impl Var {
    const ALL: [(Var, &'static str); 9] = [
        (Var::When, "when"),
        (Var::AwsUnsure, "aws_unsure"),
        (Var::AwsInstance, "aws_instance"),
        (Var::Role, "role"),
        (Var::RoleLookup, "role_lookup"),
        (Var::RoleNamed, "role_named"),
        (Var::Vm, "vm"),
        (Var::ServiceAccount, "service_account"),
        (Var::ServiceAccountNamed, "service_account_named"),
    ];
}

/// A text with `{name}` holes, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

impl Template {
    /// Parses `{name}` holes and `{{`/`}}` escapes.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut out = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(i) = rest.find(['{', '}']) {
            text.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{") {
                text.push('{');
                rest = after;
            } else if let Some(after) = tail.strip_prefix("}}") {
                text.push('}');
                rest = after;
            } else if tail.starts_with('}') {
                return Err(format!("a lone `}}` in {s:?} (write `}}}}` for a brace)"));
            } else {
                let end = tail
                    .find('}')
                    .ok_or_else(|| format!("an unclosed `{{` in {s:?}"))?;
                let name = &tail[1..end];
                let var = Var::ALL
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(v, _)| *v)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Var::ALL.iter().map(|(_, n)| *n).collect();
                        format!(
                            "unknown value {{{name}}}: the values are {}",
                            names.join(", ")
                        )
                    })?;
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(Piece::Var(var));
                rest = &tail[end + 1..];
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            out.push(Piece::Text(text));
        }
        Ok(Template(out))
    }

    /// The text with each hole filled by `value`.
    pub fn render(&self, value: &dyn Fn(Var) -> String) -> String {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Var(v) => s.push_str(&value(*v)),
            }
        }
        s
    }
}

/// One step of a provider's playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When it applies.
    pub when: When,
    /// What to do.
    pub action: String,
    /// Why, for this case.
    pub why: Template,
    /// The command, where one can be given.
    pub command: Option<Template>,
}

/// The playbooks of every provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playbooks {
    providers: Vec<(String, Vec<Step>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    provider: Vec<ProviderToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderToml {
    id: String,
    #[serde(default)]
    step: Vec<StepToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepToml {
    when: When,
    action: String,
    why: String,
    command: Option<String>,
}

impl Playbooks {
    /// The built-in playbooks, parsed once.
    pub fn builtin() -> &'static Playbooks {
        static BUILTIN: OnceLock<Playbooks> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Playbooks::parse(BUILTIN_TOML, "built-in containment playbooks")
                .expect("the built-in containment playbooks parse (tested)")
        })
    }

    /// Playbooks from a TOML text in the built-in file's format; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Playbooks, PlaybookError> {
        let err = |message: String| PlaybookError {
            origin: origin.to_owned(),
            message,
        };
        let file: FileToml = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut providers: Vec<(String, Vec<Step>)> = Vec::new();
        for p in file.provider {
            if providers.iter().any(|(id, _)| *id == p.id) {
                return Err(err(format!("provider {} is listed twice", p.id)));
            }
            let mut steps = Vec::new();
            for (i, s) in p.step.into_iter().enumerate() {
                let at = |m: String| {
                    err(format!(
                        "provider {} step {} ({}): {m}",
                        p.id,
                        i + 1,
                        s.action
                    ))
                };
                steps.push(Step {
                    when: s.when,
                    why: Template::parse(&s.why).map_err(at)?,
                    command: s
                        .command
                        .as_deref()
                        .map(Template::parse)
                        .transpose()
                        .map_err(at)?,
                    action: s.action,
                });
            }
            providers.push((p.id, steps));
        }
        Ok(Playbooks { providers })
    }

    /// The steps for `provider`: its own, else those of `*`.
    pub fn steps(&self, provider: &str) -> &[Step] {
        let find = |id: &str| {
            self.providers
                .iter()
                .find(|(p, _)| p == id)
                .map(|(_, s)| s.as_slice())
        };
        find(provider).or_else(|| find("*")).unwrap_or(&[])
    }

    /// The providers with a playbook of their own, in file order.
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.providers.iter().map(|(p, _)| p.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_playbooks_parse_and_name_catalog_providers() {
        let p = Playbooks::parse(BUILTIN_TOML, "built-in").unwrap();
        let catalog = imdsguard_target::Catalog::builtin();
        for id in p.providers().filter(|id| *id != "*") {
            assert!(
                catalog.providers().iter().any(|c| c.id == id),
                "{id} is not a catalog provider"
            );
        }
        assert_eq!(p.steps("aws").len(), 3);
        assert_eq!(p.steps("oracle"), p.steps("*"));
    }

    #[test]
    fn templates_fill_holes_keep_escaped_braces_and_refuse_unknown_names() {
        let t = Template::parse("{{\"a\":\"{role}\"}} since {when}").unwrap();
        let s = t.render(&|v| match v {
            Var::Role => "r".into(),
            Var::When => "now".into(),
            _ => "?".into(),
        });
        assert_eq!(s, "{\"a\":\"r\"} since now");
        let e = Template::parse("by {rol}").unwrap_err();
        assert!(
            e.contains("unknown value {rol}") && e.contains("role_named"),
            "{e}"
        );
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("a { b").is_err());
    }

    #[test]
    fn a_bad_playbook_names_the_provider_and_step() {
        let e = Playbooks::parse(
            "[[provider]]\nid = \"aws\"\n[[provider.step]]\nwhen = \"stolen\"\naction = \"x\"\nwhy = \"{nope}\"\n",
            "mine.toml",
        )
        .unwrap_err();
        assert_eq!(e.origin, "mine.toml");
        assert!(
            e.message
                .starts_with("provider aws step 1 (x): unknown value {nope}"),
            "{e}"
        );
        let e = Playbooks::parse("[[provider]]\nid = \"aws\"\n[[provider.step]]\nwhen = \"sometimes\"\naction = \"x\"\nwhy = \"y\"\n", "m").unwrap_err();
        assert!(e.message.contains("sometimes"), "{e}");
    }
}
