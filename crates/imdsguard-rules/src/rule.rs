//! Rules: a condition, a severity with escalations, and reasons; the compiled, shared [`RuleSet`].

use std::fmt;

use imdsguard_enrich::Enriched;
use imdsguard_event::{FieldSet, Severity, Sym, Technique};

use crate::doc::Doc;
use crate::error::RuleError;
use crate::field::Field;
use crate::ir::Expr;

/// A sentence with `{field.name}` placeholders, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Field(Field),
}

impl Template {
    /// Parses `text`; `{{` and `}}` are literal braces. An unknown field is an error naming it.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let field = Field::from_name(name.trim())
                        .ok_or_else(|| format!("unknown field {{{name}}} in reason {text:?}"))?;
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field(field));
                }
                '}' => return Err(format!("unmatched '}}' in reason {text:?}")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// The sentence for one event; `None` when a field it names is absent.
    pub fn render(&self, ev: &Enriched<'_>) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Field(f) => out.push_str(&f.get(ev)?.to_string()),
            }
        }
        Some(out)
    }

    /// Every field the template reads.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(*f),
            Part::Lit(_) => None,
        })
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                Part::Lit(s) => f.write_str(&s.replace('{', "{{").replace('}', "}}"))?,
                Part::Field(x) => write!(f, "{{{x}}}")?,
            }
        }
        Ok(())
    }
}

/// A reason given when its condition holds (always, without one).
#[derive(Debug, Clone)]
pub struct Reason {
    /// When to give it.
    pub when: Option<Expr>,
    /// What to say.
    pub text: Template,
}

/// A higher severity when a condition holds, with the reason for it.
#[derive(Debug, Clone)]
pub struct Escalation {
    /// The condition.
    pub when: Expr,
    /// The severity it raises the alert to.
    pub severity: Severity,
    /// Why, as a sentence.
    pub reason: Template,
}

/// One detection.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id (`IMDS-001`).
    pub id: String,
    /// One line.
    pub title: String,
    /// What it detects and why it matters.
    pub description: String,
    /// Known benign causes.
    pub false_positives: Vec<String>,
    /// ATT&CK techniques.
    pub attack: Vec<Technique>,
    /// Base severity.
    pub severity: Severity,
    /// The condition.
    pub when: Expr,
    /// Severity raises: every one whose condition holds applies, and the highest counts.
    pub escalations: Vec<Escalation>,
    /// Reasons, in order.
    pub reasons: Vec<Reason>,
    /// A built-in detection's documentation, from its source file.
    pub doc: Option<Doc>,
}

impl Rule {
    /// Every field the rule reads: its condition, its escalations and its reasons.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        self.when.fields(&mut out);
        for e in &self.escalations {
            e.when.fields(&mut out);
            out.extend(e.reason.fields());
        }
        for r in &self.reasons {
            if let Some(w) = &r.when {
                w.fields(&mut out);
            }
            out.extend(r.text.fields());
        }
        out
    }
}

/// The record fields some of these rules read (Sigma's `Image`, `EventID`, keywords), frozen
/// for the reader.
pub fn record_fields<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> FieldSet {
    record_fields_of(rules.into_iter().flat_map(Rule::fields))
}

/// The record fields among these fields.
pub fn record_fields_of(fields: impl IntoIterator<Item = Field>) -> FieldSet {
    FieldSet::of(fields.into_iter().filter_map(|f| match f {
        Field::Raw(s) | Field::RawOr(s, _) => Some(s),
        Field::Keywords => Some(Sym::ANY),
        _ => None,
    }))
}

/// A rule that matched one event.
#[derive(Debug, Clone)]
pub struct Hit<'r> {
    /// The rule.
    pub rule: &'r Rule,
    /// The severity after escalations.
    pub severity: Severity,
    /// The reasons, rendered.
    pub reasons: Vec<String>,
}

/// Builds a [`Rule`], checking templates as it goes.
#[derive(Debug)]
pub struct RuleBuilder {
    rule: Rule,
    error: Option<String>,
}

impl Rule {
    /// Starts a rule.
    pub fn builder(id: &str, title: &str, severity: Severity, when: Expr) -> RuleBuilder {
        RuleBuilder {
            rule: Rule {
                id: id.to_owned(),
                title: title.to_owned(),
                description: String::new(),
                false_positives: Vec::new(),
                attack: Vec::new(),
                severity,
                when,
                escalations: Vec::new(),
                reasons: Vec::new(),
                doc: None,
            },
            error: None,
        }
    }

    /// Starts a built-in detection from its source file (`include_str!` of the file itself):
    /// id, title, description and false positives come from the file's module comment
    /// ([`Doc`]), written once.
    pub fn documented(source: &'static str, severity: Severity, when: Expr) -> RuleBuilder {
        match Doc::from_source(source) {
            Ok(doc) => {
                let mut b = Rule::builder(doc.id, doc.title, severity, when);
                b.rule.description = doc.section("What").unwrap_or_default().replace("\n\n", " ");
                b.rule.false_positives = doc
                    .section("False positives")
                    .map(|t| t.split("\n\n").map(str::to_owned).collect())
                    .unwrap_or_default();
                b.rule.doc = Some(doc);
                b
            }
            Err(e) => {
                let mut b = Rule::builder("?", "?", severity, when);
                b.error = Some(format!("its documentation: {e}"));
                b
            }
        }
    }

    /// Evaluates the rule on one event.
    pub fn eval(&self, ev: &Enriched<'_>) -> Option<Hit<'_>> {
        if !self.when.eval(ev) {
            return None;
        }
        let mut severity = self.severity;
        let mut reasons = Vec::new();
        for r in &self.reasons {
            if r.when.as_ref().is_none_or(|w| w.eval(ev)) {
                if let Some(s) = r.text.render(ev) {
                    reasons.push(s);
                }
            }
        }
        for e in &self.escalations {
            if e.when.eval(ev) {
                severity = severity.max(e.severity);
                if let Some(s) = e.reason.render(ev) {
                    reasons.push(s);
                }
            }
        }
        Some(Hit {
            rule: self,
            severity,
            reasons,
        })
    }
}

impl RuleBuilder {
    fn template(&mut self, text: &str) -> Template {
        match Template::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.error.get_or_insert(e);
                Template { parts: Vec::new() }
            }
        }
    }

    /// What it detects and why.
    pub fn description(mut self, text: &str) -> Self {
        self.rule.description = text.trim().to_owned();
        self
    }

    /// A known benign cause.
    pub fn false_positive(mut self, text: &str) -> Self {
        self.rule.false_positives.push(text.to_owned());
        self
    }

    /// An ATT&CK technique.
    pub fn attack(mut self, id: &str) -> Self {
        match Technique::new(id) {
            Ok(t) => self.rule.attack.push(t),
            Err(e) => {
                self.error.get_or_insert(e.to_string());
            }
        }
        self
    }

    /// A reason always given.
    pub fn reason(mut self, text: &str) -> Self {
        let text = self.template(text);
        self.rule.reasons.push(Reason { when: None, text });
        self
    }

    /// A reason given when `when` holds.
    pub fn reason_if(mut self, when: Expr, text: &str) -> Self {
        let text = self.template(text);
        self.rule.reasons.push(Reason {
            when: Some(when),
            text,
        });
        self
    }

    /// Raise to `severity` when `when` holds, saying why.
    pub fn escalate(mut self, when: Expr, severity: Severity, why: &str) -> Self {
        let reason = self.template(why);
        self.rule.escalations.push(Escalation {
            when,
            severity,
            reason,
        });
        self
    }

    /// The rule, or what is wrong with it.
    pub fn build(self) -> Result<Rule, RuleError> {
        let id = self.rule.id.clone();
        let err = |message: String| RuleError {
            rule: id.clone(),
            message,
        };
        if let Some(e) = self.error {
            return Err(err(e));
        }
        if self.rule.description.is_empty() {
            return Err(err("no description".into()));
        }
        if let Some(doc) = &self.rule.doc {
            let named = doc.techniques();
            if let Some(t) = self
                .rule
                .attack
                .iter()
                .find(|t| !named.iter().any(|n| n == t.as_str()))
            {
                return Err(err(format!(
                    "ATT&CK {} is not in its documentation's *ATT&CK.* section",
                    t.as_str()
                )));
            }
            if self.rule.attack.is_empty() {
                return Err(err("no ATT&CK technique".into()));
            }
        }
        if self.rule.reasons.iter().all(|r| r.when.is_some()) {
            return Err(err("no reason that is always given".into()));
        }
        let r = &self.rule;
        r.when.check_domains().map_err(&err)?;
        for e in &r.escalations {
            e.when.check_domains().map_err(&err)?;
        }
        for w in r.reasons.iter().filter_map(|x| x.when.as_ref()) {
            w.check_domains().map_err(&err)?;
        }
        Ok(self.rule)
    }
}

/// The compiled rules: immutable, shared by reference across threads.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: crate::index::Index,
    prefilter: crate::prefilter::Prefilter,
    record_fields: std::sync::Arc<FieldSet>,
}

impl RuleSet {
    /// A rule set; ids must be unique.
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            if !seen.insert(r.id.as_str()) {
                return Err(RuleError {
                    rule: r.id.clone(),
                    message: "the id is used twice".into(),
                });
            }
        }
        let conditions: Vec<&Expr> = rules.iter().map(|r| &r.when).collect();
        let mut index = crate::index::Index::build(&conditions);
        let prefilter = crate::prefilter::Prefilter::build(&conditions);
        index.attach(&|rules| prefilter.wanted(rules));
        let record_fields = std::sync::Arc::new(record_fields(&rules));
        Ok(RuleSet {
            rules,
            index,
            prefilter,
            record_fields,
        })
    }

    /// The record fields these rules read, for the reader: it keeps those and no others.
    pub fn record_fields(&self) -> &std::sync::Arc<FieldSet> {
        &self.record_fields
    }

    /// Rules evaluated for every event, and the number of index keys for the others.
    pub fn index_stats(&self) -> (usize, usize) {
        self.index.stats()
    }

    /// Rules that need a literal in a field before they are evaluated, and literals in all.
    pub fn prefilter_stats(&self) -> (usize, usize) {
        self.prefilter.stats()
    }

    /// Every rule that matches the event, in rule order, evaluating every rule: the reference
    /// the indexed [`RuleSet::eval`] must agree with.
    pub fn eval_reference<'r>(&'r self, ev: &Enriched<'_>) -> Vec<Hit<'r>> {
        self.rules.iter().filter_map(|r| r.eval(ev)).collect()
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule with this id (case-insensitive).
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id.eq_ignore_ascii_case(id))
    }

    /// Every rule that matches the event, in rule order; only the rules the index says the event
    /// can match, and whose needed literals occur in it, are evaluated.
    pub fn eval<'r>(&'r self, ev: &Enriched<'_>) -> Vec<Hit<'r>> {
        let (mut candidates, wanted) = self.index.candidates(ev);
        self.prefilter.retain(&mut candidates, &wanted, ev);
        let mut hits = Vec::new();
        for (w, &word) in candidates.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                if let Some(hit) = self.rules[i].eval(ev) {
                    hits.push(hit);
                }
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_fields_and_reject_unknown_ones() {
        let t = Template::parse("{process.name} reached {target.endpoint} {{literally}}").unwrap();
        assert_eq!(
            t.fields().collect::<Vec<_>>(),
            [Field::ProcessName, Field::TargetEndpoint]
        );
        assert_eq!(
            t.to_string(),
            "{process.name} reached {target.endpoint} {{literally}}"
        );
        let e = Template::parse("{process.nmae} did").unwrap_err();
        assert!(e.contains("unknown field {process.nmae}"), "{e}");
        assert!(Template::parse("a } b").is_err());
    }

    #[test]
    fn builders_refuse_incomplete_rules() {
        let r = Rule::builder("X-1", "t", Severity::Low, Expr::True).build();
        assert!(r.unwrap_err().to_string().contains("no description"));
        let r = Rule::builder("X-1", "t", Severity::Low, Expr::True)
            .description("d")
            .attack("T1552.005")
            .reason("{bogus}")
            .build();
        assert!(r
            .unwrap_err()
            .to_string()
            .starts_with("rule X-1: unknown field"));
    }

    #[test]
    fn a_test_no_value_of_a_closed_field_meets_is_refused() {
        use crate::ir::on;
        let build = |when: Expr| {
            Rule::builder("X-1", "t", Severity::Low, when)
                .description("d")
                .attack("T1552.005")
                .reason("r")
                .build()
        };
        let e = build(on(Field::ProcessVerdict).is("agnet"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("agnet") && e.contains("agent, masquerade"),
            "{e}"
        );
        // Negated, in a list, or in an escalation: still a typo.
        let e = build(Expr::Not(Box::new(
            on(Field::TargetKind).any_of(&["credentials", "creds"]),
        )));
        assert!(e.unwrap_err().to_string().contains("creds"));
        let e = build(on(Field::EventKind).is("networkconnect")).unwrap_err();
        assert!(e.to_string().contains("network-connect"), "{e}");
        // Every real value, any letter case, prefixes of real values and fields without a closed
        // set build.
        for v in ["agent", "UNLISTED", "masquerade"] {
            build(on(Field::ProcessVerdict).is(v)).unwrap();
        }
        build(on(Field::TargetKind).starts_with_any(&["cred"])).unwrap();
        build(on(Field::ProcessName).is("anything.exe")).unwrap();
        build(on(Field::TargetMethod).exists()).unwrap();
    }
}
