//! pySigma processing pipelines, the part that says where a rule's fields are: the YAML files
//! `sigma convert -p FILE` takes (`name`, `priority`, `transformations`), as SigmaHQ's regression
//! suite uses them to point rule fields at the paths of its JSON samples.
//!
//! Applied: `field_name_mapping` (a name to one name, or to several: any of them),
//! `field_name_prefix_mapping`, `field_name_prefix`, `field_name_suffix` and `add_condition`
//! (field tests every rule it applies to must also hold), each under `rule_conditions` of type
//! `logsource` (the condition's log source contains the rule's), `tag` or `is_sigma_rule`, joined
//! by `rule_cond_op` (`and` unless `or`) and negated by `rule_cond_not`. Everything else in a
//! pipeline changes query text, not what a rule matches (`postprocessing`, `finalizers`, `vars`),
//! and is ignored; any other transformation or condition type is an error naming it, since
//! leaving it out would change what the rule matches.

use std::path::Path;

use yaml_rust2::Yaml;

use crate::error::{ErrorKind, SigmaError};
use crate::parse::{parse_tests, string as text};
use crate::rule::{FieldTest, LogSource, Modifier, Search, SigmaRule};
use crate::value::{Pattern, SigmaValue};
use crate::Condition;

/// A processing pipeline, read from its YAML file.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// `name`
    pub name: String,
    /// `priority`: pipelines apply in ascending order (0 when absent).
    pub priority: i64,
    /// The file.
    pub path: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone)]
struct Item {
    id: String,
    action: Action,
    conditions: Vec<RuleCondition>,
    any: bool,
    negate: bool,
}

#[derive(Debug, Clone)]
enum Action {
    Map(Vec<(String, Vec<String>)>),
    PrefixMap(Vec<(String, String)>),
    Prefix(String),
    Suffix(String),
    AddCondition(Vec<FieldTest>),
}

#[derive(Debug, Clone)]
enum RuleCondition {
    LogSource(LogSource),
    Tag(String),
    IsSigmaRule,
}

impl Pipeline {
    /// A pipeline of one field-name mapping that applies to every rule.
    pub(crate) fn field_mapping(
        name: &str,
        map: &std::collections::BTreeMap<String, String>,
    ) -> Pipeline {
        Pipeline {
            name: name.to_owned(),
            priority: 0,
            path: name.to_owned(),
            items: vec![Item {
                id: "fields".into(),
                action: Action::Map(
                    map.iter()
                        .map(|(k, v)| (k.clone(), vec![v.clone()]))
                        .collect(),
                ),
                conditions: Vec::new(),
                any: false,
                negate: false,
            }],
        }
    }

    /// Reads a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline, SigmaError> {
        let shown = path.display().to_string();
        let body = std::fs::read_to_string(path).map_err(|e| SigmaError {
            path: shown.clone(),
            rule: None,
            kind: ErrorKind::Io,
            message: e.to_string(),
        })?;
        Pipeline::parse(&body, &shown)
    }

    /// Reads a pipeline's text; `path` names it in errors.
    pub fn parse(body: &str, path: &str) -> Result<Pipeline, SigmaError> {
        let err = |message: String| SigmaError {
            path: path.to_owned(),
            rule: None,
            kind: ErrorKind::Pipeline,
            message,
        };
        let docs = crate::yaml::load(body).map_err(|message| SigmaError {
            path: path.to_owned(),
            rule: None,
            kind: ErrorKind::Yaml,
            message,
        })?;
        let doc = docs
            .into_iter()
            .next()
            .ok_or_else(|| err("the file holds no pipeline".into()))?;
        let name = text(&doc["name"]).unwrap_or_else(|| path.to_owned());
        let priority = match &doc["priority"] {
            Yaml::Integer(i) => *i,
            Yaml::BadValue | Yaml::Null => 0,
            _ => return Err(err("`priority` must be an integer".into())),
        };
        let mut items = Vec::new();
        let list = match &doc["transformations"] {
            Yaml::Array(a) => a.clone(),
            Yaml::BadValue | Yaml::Null => Vec::new(),
            _ => return Err(err("`transformations` must be a list".into())),
        };
        for (n, t) in list.iter().enumerate() {
            let id = text(&t["id"]).unwrap_or_else(|| format!("#{}", n + 1));
            let bad = |m: &str| err(format!("transformation {id}: {m}"));
            for key in [
                "field_name_conditions",
                "field_name_cond_op",
                "detection_item_conditions",
                "detection_item_cond_op",
                "rule_cond_expr",
            ] {
                if !t[key].is_badvalue() {
                    return Err(bad(&format!(
                        "`{key}` is not supported (imdsguard applies transformations to whole rules)"
                    )));
                }
            }
            let kind = text(&t["type"]).ok_or_else(|| bad("no `type`"))?;
            let action = match kind.as_str() {
                "field_name_mapping" => {
                    let Yaml::Hash(h) = &t["mapping"] else {
                        return Err(bad("`mapping` must be a mapping"));
                    };
                    let mut m = Vec::new();
                    for (k, v) in h {
                        let from = text(k).ok_or_else(|| bad("a mapped name is not a string"))?;
                        let to: Vec<String> = match v {
                            Yaml::Array(a) => a.iter().filter_map(text).collect(),
                            other => text(other).into_iter().collect(),
                        };
                        if to.is_empty() {
                            return Err(bad(&format!("{from:?} maps to no field name")));
                        }
                        m.push((from, to));
                    }
                    Action::Map(m)
                }
                "field_name_prefix_mapping" => {
                    let Yaml::Hash(h) = &t["mapping"] else {
                        return Err(bad("`mapping` must be a mapping"));
                    };
                    let mut m = Vec::new();
                    for (k, v) in h {
                        match (text(k), text(v)) {
                            (Some(a), Some(b)) => m.push((a, b)),
                            _ => return Err(bad("prefixes must be strings")),
                        }
                    }
                    Action::PrefixMap(m)
                }
                "field_name_prefix" => {
                    Action::Prefix(text(&t["prefix"]).ok_or_else(|| bad("no `prefix`"))?)
                }
                "field_name_suffix" => {
                    Action::Suffix(text(&t["suffix"]).ok_or_else(|| bad("no `suffix`"))?)
                }
                "add_condition" => {
                    let Yaml::Hash(h) = &t["conditions"] else {
                        return Err(bad("`conditions` must be a mapping"));
                    };
                    let tests = parse_tests("add_condition", h, path).map_err(|e| {
                        bad(&e.message)
                    })?;
                    Action::AddCondition(tests)
                }
                other => {
                    return Err(bad(&format!(
                        "transformation type {other:?} is not supported (supported: field_name_mapping, field_name_prefix_mapping, field_name_prefix, field_name_suffix, add_condition)"
                    )))
                }
            };
            let mut conditions = Vec::new();
            let conds = match &t["rule_conditions"] {
                Yaml::Array(a) => a.clone(),
                Yaml::BadValue | Yaml::Null => Vec::new(),
                _ => return Err(bad("`rule_conditions` must be a list")),
            };
            for c in &conds {
                conditions.push(match text(&c["type"]).as_deref() {
                    Some("logsource") => RuleCondition::LogSource(LogSource {
                        category: text(&c["category"]),
                        product: text(&c["product"]),
                        service: text(&c["service"]),
                    }),
                    Some("tag") => RuleCondition::Tag(
                        text(&c["tag"]).ok_or_else(|| bad("a tag condition names no `tag`"))?,
                    ),
                    Some("is_sigma_rule") => RuleCondition::IsSigmaRule,
                    other => {
                        return Err(bad(&format!(
                            "rule condition type {other:?} is not supported (supported: logsource, tag, is_sigma_rule)"
                        )))
                    }
                });
            }
            let any = match text(&t["rule_cond_op"]).as_deref() {
                None | Some("and") => false,
                Some("or") => true,
                Some(o) => return Err(bad(&format!("`rule_cond_op` {o:?} is not and/or"))),
            };
            let negate = matches!(t["rule_cond_not"], Yaml::Boolean(true));
            items.push(Item {
                id,
                action,
                conditions,
                any,
                negate,
            });
        }
        Ok(Pipeline {
            name,
            priority,
            path: path.to_owned(),
            items,
        })
    }
}

fn holds(c: &RuleCondition, r: &SigmaRule) -> bool {
    let has = |want: &Option<String>, got: &Option<String>| match want {
        None => true,
        Some(w) => got.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(w)),
    };
    match c {
        RuleCondition::LogSource(ls) => {
            has(&ls.category, &r.logsource.category)
                && has(&ls.product, &r.logsource.product)
                && has(&ls.service, &r.logsource.service)
        }
        RuleCondition::Tag(t) => r.tags.iter().any(|x| x.eq_ignore_ascii_case(t)),
        RuleCondition::IsSigmaRule => r.correlation.is_none(),
    }
}

impl Item {
    fn applies(&self, r: &SigmaRule) -> bool {
        let v = if self.conditions.is_empty() {
            true
        } else if self.any {
            self.conditions.iter().any(|c| holds(c, r))
        } else {
            self.conditions.iter().all(|c| holds(c, r))
        };
        v != self.negate
    }

    /// The names a field becomes (itself when the item leaves it).
    fn names(&self, field: &str) -> Vec<String> {
        match &self.action {
            Action::Map(m) => m
                .iter()
                .find(|(k, _)| k == field)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| vec![field.to_owned()]),
            Action::PrefixMap(m) => vec![m
                .iter()
                .find_map(|(a, b)| {
                    field
                        .strip_prefix(a.as_str())
                        .map(|rest| format!("{b}{rest}"))
                })
                .unwrap_or_else(|| field.to_owned())],
            Action::Prefix(p) => vec![format!("{p}{field}")],
            Action::Suffix(s) => vec![format!("{field}{s}")],
            Action::AddCondition(_) => vec![field.to_owned()],
        }
    }
}

/// One map (AND of tests) with its fields renamed: several maps (any of them) when a field maps
/// to several names.
fn rename_map(tests: &[FieldTest], item: &Item) -> Result<Vec<Vec<FieldTest>>, String> {
    let mut out: Vec<Vec<FieldTest>> = vec![Vec::new()];
    for t in tests {
        let mut t = t.clone();
        if t.modifiers.contains(&Modifier::FieldRef) {
            for v in &mut t.values {
                if let SigmaValue::Str(p) = v {
                    let lit = p.as_literal().unwrap_or_default();
                    match item.names(&lit).as_slice() {
                        [one] => *p = Pattern::literal(one),
                        _ => {
                            return Err(format!(
                                "the field reference {lit:?} maps to several fields"
                            ))
                        }
                    }
                }
            }
        }
        let names = match &t.field {
            Some(f) => item.names(f),
            None => {
                out.iter_mut().for_each(|m| m.push(t.clone()));
                continue;
            }
        };
        if names.len() > 1 && t.modifiers.contains(&Modifier::Neq) {
            return Err(format!(
                "a `neq` test of {:?} maps to several fields",
                t.field.as_deref().unwrap_or_default()
            ));
        }
        let mut next = Vec::new();
        for m in &out {
            for n in &names {
                let mut m = m.clone();
                let mut t = t.clone();
                t.field = Some(n.clone());
                m.push(t);
                next.push(m);
            }
        }
        out = next;
    }
    Ok(out)
}

fn one_search(mut maps: Vec<Vec<FieldTest>>) -> Search {
    if maps.len() == 1 {
        Search::Map(maps.remove(0))
    } else {
        Search::AnyOf(maps)
    }
}

/// Applies pipelines to a rule, in ascending priority (files given first win ties).
pub fn apply_pipelines(rule: &mut SigmaRule, pipelines: &[Pipeline]) -> Result<(), SigmaError> {
    let mut order: Vec<&Pipeline> = pipelines.iter().collect();
    order.sort_by_key(|p| p.priority);
    for p in order {
        for item in &p.items {
            if !item.applies(rule) {
                continue;
            }
            let err = |m: String| SigmaError {
                path: rule.path.clone(),
                rule: Some(rule.title.clone()),
                kind: ErrorKind::Pipeline,
                message: format!("pipeline {} ({}), {}: {m}", p.name, p.path, item.id),
            };
            let Some(det) = rule.detection.as_mut() else {
                continue;
            };
            if let Action::AddCondition(tests) = &item.action {
                let name = format!("_pipeline_{}_{}", det.searches.len(), item.id);
                det.searches
                    .push((name.clone(), Search::Map(tests.clone())));
                let c = std::mem::replace(&mut det.condition, Condition::And(Vec::new()));
                det.condition = Condition::And(vec![c, Condition::Ident(name)]);
                continue;
            }
            for (_, s) in det.searches.iter_mut() {
                *s = match s {
                    Search::Map(tests) => one_search(rename_map(tests, item).map_err(err)?),
                    Search::AnyOf(maps) => {
                        let mut all = Vec::new();
                        for m in maps.iter() {
                            all.extend(rename_map(m, item).map_err(err)?);
                        }
                        Search::AnyOf(all)
                    }
                    Search::Keywords(t) => Search::Keywords(t.clone()),
                };
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_rule;

    const SIGMAHQ: &str = "name: process_creation_fieldmapping
priority: 100
transformations:
    - id: field_mapping_process_creation
      type: field_name_mapping
      mapping:
          CommandLine: Event.EventData.CommandLine
          Image: Event.EventData.Image
      rule_conditions:
          - type: logsource
            category: process_creation
            product: windows
";

    fn rule(category: &str) -> SigmaRule {
        parse_rule(
            &format!("title: t\nlogsource: {{product: windows, category: {category}}}\ndetection:\n    s:\n        Image|endswith: '\\cmd.exe'\n        CommandLine|contains: x\n    k: [word]\n    condition: s and k\n"),
            "r.yml",
        )
        .unwrap()
        .remove(0)
    }

    fn fields(r: &SigmaRule) -> Vec<Vec<String>> {
        r.detection
            .as_ref()
            .unwrap()
            .searches
            .iter()
            .map(|(_, s)| match s {
                Search::Map(ts) => ts
                    .iter()
                    .map(|t| t.field.clone().unwrap_or_default())
                    .collect(),
                Search::AnyOf(ms) => ms
                    .iter()
                    .flatten()
                    .map(|t| t.field.clone().unwrap_or_default())
                    .collect(),
                Search::Keywords(_) => vec!["<keywords>".into()],
            })
            .collect()
    }

    #[test]
    fn sigmahq_field_mapping_applies_to_its_log_source_only() {
        let p = Pipeline::parse(SIGMAHQ, "p.yml").unwrap();
        let mut r = rule("process_creation");
        apply_pipelines(&mut r, std::slice::from_ref(&p)).unwrap();
        assert_eq!(
            fields(&r),
            [
                vec!["Event.EventData.Image", "Event.EventData.CommandLine"],
                vec!["<keywords>"]
            ]
        );
        let mut other = rule("registry_set");
        apply_pipelines(&mut other, &[p]).unwrap();
        assert_eq!(fields(&other)[0], ["Image", "CommandLine"]);
    }

    #[test]
    fn one_to_many_means_any_and_prefixes_and_conditions_apply_in_priority_order() {
        let many = Pipeline::parse(
            "name: m\npriority: 20\ntransformations:\n  - type: field_name_mapping\n    mapping: {Image: [a.image, b.image]}\n",
            "m.yml",
        )
        .unwrap();
        let prefix = Pipeline::parse(
            "name: p\npriority: 10\ntransformations:\n  - type: field_name_prefix_mapping\n    mapping: {Command: proc.Command}\n  - id: scope\n    type: add_condition\n    conditions: {Channel: Security}\n    rule_conditions: [{type: logsource, product: windows}]\n",
            "p.yml",
        )
        .unwrap();
        let mut r = rule("process_creation");
        apply_pipelines(&mut r, &[many, prefix]).unwrap();
        let det = r.detection.as_ref().unwrap();
        let Search::AnyOf(maps) = &det.searches[0].1 else {
            panic!("{:?}", det.searches[0])
        };
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0][0].field.as_deref(), Some("a.image"));
        assert_eq!(maps[1][0].field.as_deref(), Some("b.image"));
        assert_eq!(maps[0][1].field.as_deref(), Some("proc.CommandLine"));
        assert_eq!(
            det.condition.to_string(),
            "((s and k) and _pipeline_2_scope)"
        );
    }

    #[test]
    fn what_would_change_the_match_unsaid_is_an_error() {
        for (body, why) in [
            ("transformations:\n  - type: drop_detection_item\n", "drop_detection_item"),
            ("transformations:\n  - type: field_name_mapping\n    mapping: {A: B}\n    field_name_conditions: [{type: include_fields, fields: [A]}]\n", "field_name_conditions"),
            ("transformations:\n  - type: field_name_mapping\n    mapping: {A: B}\n    rule_conditions: [{type: contains_detection_item, field: A}]\n", "contains_detection_item"),
        ] {
            let e = Pipeline::parse(body, "x.yml").unwrap_err();
            assert!(e.message.contains(why), "{e}");
            assert_eq!(e.kind, ErrorKind::Pipeline);
        }
    }
}
