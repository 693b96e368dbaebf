//! Sigma filters (the Sigma Filters Specification, v2): tuning kept apart from the rules it tunes.
//!
//! A filter document has a `logsource` and a `filter` mapping holding `rules` (ids or names, or
//! `any`), searches and one `condition`. It applies to every detection rule it names whose log
//! source it contains (each of its `category`, `product`, `service` is absent or the rule's), as
//! pySigma applies it: the filter's searches join the rule's under a prefix of their own, and the
//! rule's condition becomes `(rule condition) and (filter condition)`. The filter's condition is
//! written as it should hold for a record to stay (`not selection` to drop what the selection
//! matches); `them` in it stands for the filter's own searches. The prefix starts with `_`, so the
//! rule's own `1 of them` keeps meaning the rule's searches.

use crate::condition::Condition;
use crate::error::{ErrorKind, SigmaError};
use crate::rule::{FilterTarget, LogSource, SigmaRule};

/// What [`apply_filters`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterReport {
    /// Each filter that applied, by title, with how many rules it was added to.
    pub applied: Vec<(String, usize)>,
    /// Filters that named no loaded rule (by id or name) or whose log source contains none of
    /// them: nothing was filtered, which the user should hear about.
    pub unused: Vec<SigmaError>,
}

fn field_contains(filter: &Option<String>, rule: &Option<String>) -> bool {
    match (filter, rule) {
        (None, _) => true,
        (Some(f), Some(r)) => f.eq_ignore_ascii_case(r),
        (Some(_), None) => false,
    }
}

/// Whether a filter's log source contains a rule's: every attribute the filter gives is the
/// rule's.
fn contains(filter: &LogSource, rule: &LogSource) -> bool {
    field_contains(&filter.category, &rule.category)
        && field_contains(&filter.product, &rule.product)
        && field_contains(&filter.service, &rule.service)
}

fn names(target: &FilterTarget, rule: &SigmaRule) -> bool {
    match target {
        FilterTarget::Any => true,
        FilterTarget::Rules(refs) => refs
            .iter()
            .any(|r| rule.id.as_deref() == Some(r.as_str()) || rule.name.as_deref() == Some(r)),
    }
}

fn prefixed(c: &Condition, prefix: &str) -> Condition {
    let pattern = |p: &str| {
        if p == "them" {
            format!("{prefix}*")
        } else {
            format!("{prefix}{p}")
        }
    };
    match c {
        Condition::And(xs) => Condition::And(xs.iter().map(|x| prefixed(x, prefix)).collect()),
        Condition::Or(xs) => Condition::Or(xs.iter().map(|x| prefixed(x, prefix)).collect()),
        Condition::Not(x) => Condition::Not(Box::new(prefixed(x, prefix))),
        Condition::Ident(i) => Condition::Ident(format!("{prefix}{i}")),
        Condition::OneOf(p) => Condition::OneOf(pattern(p)),
        Condition::AllOf(p) => Condition::AllOf(pattern(p)),
    }
}

/// Takes the filters out of `rules` and adds each to the detection rules it applies to, in the
/// order the filters come. Correlation rules are left as they are (pySigma does the same).
pub fn apply_filters(rules: Vec<SigmaRule>) -> (Vec<SigmaRule>, FilterReport) {
    let (filters, mut rules): (Vec<SigmaRule>, Vec<SigmaRule>) =
        rules.into_iter().partition(|r| r.filter.is_some());
    let mut report = FilterReport::default();
    for (n, f) in filters.iter().enumerate() {
        let (Some(target), Some(fdet)) = (&f.filter, &f.detection) else {
            continue;
        };
        let prefix = format!("_filter{n}_");
        let condition = prefixed(&fdet.condition, &prefix);
        let mut count = 0;
        for r in rules.iter_mut() {
            if r.correlation.is_some() || !contains(&f.logsource, &r.logsource) || !names(target, r)
            {
                continue;
            }
            let Some(det) = r.detection.as_mut() else {
                continue;
            };
            det.searches.extend(
                fdet.searches
                    .iter()
                    .map(|(name, s)| (format!("{prefix}{name}"), s.clone())),
            );
            let rule_condition = std::mem::replace(&mut det.condition, Condition::And(Vec::new()));
            det.condition = Condition::And(vec![rule_condition, condition.clone()]);
            count += 1;
        }
        if count == 0 {
            report.unused.push(SigmaError {
                path: f.path.clone(),
                rule: Some(f.title.clone()),
                kind: ErrorKind::Filter,
                message: match target {
                    FilterTarget::Any => {
                        "the filter's log source contains no loaded rule's; it filters nothing"
                            .into()
                    }
                    FilterTarget::Rules(refs) => format!(
                        "no loaded rule with a log source the filter contains has the id or name {}; it filters nothing",
                        refs.join(", ")
                    ),
                },
            });
        } else {
            report.applied.push((f.title.clone(), count));
        }
    }
    (rules, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_rule;

    const RULE: &str = "title: Rar
id: 6f3e2987-db24-4c78-a860-b4f4095a7095
name: rar_compress
logsource: {category: process_creation, product: windows}
detection:
    selection: {Image|endswith: '\\rar.exe'}
    filter_main: {CommandLine|contains: ' l '}
    condition: selection and not 1 of filter_*
";

    fn one(text: &str) -> SigmaRule {
        parse_rule(text, "t.yml").unwrap().remove(0)
    }

    #[test]
    fn a_filter_adds_its_condition_under_its_own_names() {
        let f = one("title: Admins
logsource: {product: windows}
filter:
    rules: [6f3e2987-db24-4c78-a860-b4f4095a7095]
    selection: {User|startswith: 'adm_'}
    condition: not selection
");
        assert_eq!(
            f.filter,
            Some(FilterTarget::Rules(vec![
                "6f3e2987-db24-4c78-a860-b4f4095a7095".into()
            ]))
        );
        let (rules, report) = apply_filters(vec![one(RULE), f]);
        assert_eq!(rules.len(), 1);
        assert_eq!(report.applied, vec![("Admins".to_string(), 1)]);
        let det = rules[0].detection.as_ref().unwrap();
        assert_eq!(
            det.condition.to_string(),
            "((selection and not 1 of filter_*) and not _filter0_selection)"
        );
        assert!(det.search("_filter0_selection").is_some());
        // The rule's own patterns do not take in the filter's searches.
        assert_eq!(det.expand("filter_*"), vec!["filter_main"]);
        assert_eq!(det.expand("them").len(), 2);
    }

    #[test]
    fn by_name_any_and_them() {
        let f = one("title: By name
logsource: {category: process_creation}
filter:
    rules: rar_compress
    a: {User: x}
    b: {User: y}
    condition: not 1 of them
");
        let (rules, _) = apply_filters(vec![one(RULE), f]);
        let det = rules[0].detection.as_ref().unwrap();
        assert!(
            det.condition.to_string().ends_with("not 1 of _filter0_*)"),
            "{}",
            det.condition
        );
        let any = one("title: Any\nlogsource: {product: windows}\nfilter:\n    rules: any\n    s: {User: x}\n    condition: not s\n");
        assert_eq!(any.filter, Some(FilterTarget::Any));
        let (_, report) = apply_filters(vec![one(RULE), any]);
        assert_eq!(report.applied.len(), 1);
    }

    #[test]
    fn a_filter_for_another_log_source_or_rule_filters_nothing_and_says_so() {
        let linux = one("title: Linux\nlogsource: {product: linux}\nfilter:\n    rules: any\n    s: {User: x}\n    condition: not s\n");
        let other = one("title: Other\nlogsource: {product: windows}\nfilter:\n    rules: [nope]\n    s: {User: x}\n    condition: not s\n");
        let (rules, report) = apply_filters(vec![one(RULE), linux, other]);
        assert_eq!(rules[0].detection, one(RULE).detection);
        assert!(report.applied.is_empty());
        assert_eq!(report.unused.len(), 2);
        assert!(
            report.unused[1].message.contains("nope"),
            "{}",
            report.unused[1]
        );
    }

    #[test]
    fn bad_filters_are_errors_naming_why() {
        for (text, why) in [
            ("title: F\nlogsource: {product: windows}\nfilter:\n    s: {User: x}\n    condition: not s\n", "filter.rules"),
            ("title: F\nlogsource: {product: windows}\nfilter:\n    rules: any\n    s: {User: x}\n    condition: [not s, s]\n", "one condition"),
            ("title: F\nlogsource: {product: windows}\nfilter:\n    rules: any\n    s: {User: x}\n    condition: not t\n", "\"t\""),
        ] {
            let e = parse_rule(text, "f.yml").unwrap_err();
            assert!(e.message.contains(why), "{e}");
        }
        let f = one("title: F\nlogsource: {product: windows}\nfilter:\n    rules: any\n    s: {User: x}\n    condition: not s\n");
        assert_eq!(crate::compile(&f).unwrap_err().kind, ErrorKind::Filter);
    }
}
