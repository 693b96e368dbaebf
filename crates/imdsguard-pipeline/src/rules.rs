//! The rules a run evaluates: the built-in pack and the Sigma rules given, with what the
//! correlation layer needs to know of them.

use std::collections::{BTreeMap, HashMap, HashSet};

use imdsguard_correlate::SigmaCorrelation;
use imdsguard_rules::{Field, RuleSet};
use imdsguard_sigma::SigmaError;

use crate::config::RulesConfig;
use crate::error::PipelineError;

/// The rules to run, immutable and shared by the workers.
pub struct Rules {
    pub(crate) set: RuleSet,
    /// Sigma correlation rules, for the correlation layer.
    pub(crate) correlations: Vec<SigmaCorrelation>,
    /// Rule id → the names Sigma correlations may use for it, for the rules they name.
    pub(crate) referenced: HashMap<String, Vec<String>>,
    /// Sigma rules that only feed correlations (named by one without `generate: true`): their
    /// hits count, they do not alert on their own.
    pub(crate) feeding: HashSet<String>,
    /// The fields correlations group or count by, resolved once.
    pub(crate) fields: Vec<(String, Field)>,
    /// Whether the built-in pack runs (and so the built-in correlations).
    pub(crate) builtin: bool,
    /// The record fields the rules and correlations read.
    record_fields: std::sync::Arc<imdsguard_event::FieldSet>,
}

/// What loading the rules found, for the caller to show.
#[derive(Debug, Default)]
pub struct RulesReport {
    /// Sigma detection rules loaded and compiled.
    pub sigma_rules: usize,
    /// Sigma correlation rules.
    pub correlations: usize,
    /// Sigma filters that applied, with how many rules each tunes.
    pub filters: Vec<(String, usize)>,
    /// Files or rules that did not load, each with its path, rule and reason.
    pub errors: Vec<SigmaError>,
    /// Rules the selection left out, by why (`status deprecated`, `level`, `tag`, `id`).
    pub left_out: BTreeMap<&'static str, usize>,
}

/// The rules [`crate::config::Selection`] keeps; counts the others by why. Rules named by a
/// correlation that is kept stay.
fn select(
    all: Vec<imdsguard_sigma::SigmaRule>,
    sel: &crate::config::Selection,
    left_out: &mut BTreeMap<&'static str, usize>,
) -> Vec<imdsguard_sigma::SigmaRule> {
    use imdsguard_sigma::Status;
    let why = |r: &imdsguard_sigma::SigmaRule| -> Option<&'static str> {
        match r.status {
            Some(Status::Deprecated) if !sel.deprecated => return Some("status deprecated"),
            Some(Status::Unsupported) if !sel.unsupported => return Some("status unsupported"),
            _ => {}
        }
        let level = imdsguard_sigma::severity(r.level);
        if sel.min_level.is_some_and(|m| level < m) || sel.exact_level.is_some_and(|e| level != e) {
            return Some("level");
        }
        if !sel.tags.is_empty()
            && !r
                .tags
                .iter()
                .any(|t| sel.tags.iter().any(|w| w.eq_ignore_ascii_case(t)))
        {
            return Some("tag");
        }
        if !sel.ids.is_empty()
            && !r
                .id
                .as_deref()
                .is_some_and(|id| sel.ids.iter().any(|w| w.eq_ignore_ascii_case(id)))
        {
            return Some("id");
        }
        None
    };
    let verdicts: Vec<Option<&'static str>> = all.iter().map(why).collect();
    // Names the kept correlations count by.
    let named: HashSet<String> = all
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| v.is_none())
        .filter_map(|(r, _)| r.correlation.as_ref())
        .flat_map(|c| c.rules.iter().map(|n| n.to_ascii_lowercase()))
        .collect();
    all.into_iter()
        .zip(verdicts)
        .filter_map(|(r, v)| {
            let needed = [r.id.as_deref(), r.name.as_deref()]
                .into_iter()
                .flatten()
                .any(|n| named.contains(&n.to_ascii_lowercase()));
            match v {
                Some(why) if !needed => {
                    *left_out.entry(why).or_default() += 1;
                    None
                }
                _ => Some(r),
            }
        })
        .collect()
}

impl RulesReport {
    /// Failures by reason.
    pub fn failed_by_reason(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for e in &self.errors {
            *out.entry(e.kind.as_str()).or_default() += 1;
        }
        out
    }
}

impl Rules {
    /// Loads and compiles the rules on `threads` threads: the built-in pack unless
    /// `cfg.builtin` is false, and every Sigma path (all load first: a Sigma filter in one
    /// folder tunes rules of another). A Sigma file that does not load or compile is reported,
    /// and the rest run.
    pub fn load(cfg: &RulesConfig, threads: usize) -> Result<(Rules, RulesReport), PipelineError> {
        let mut rules = if cfg.builtin {
            imdsguard_detections::pack().rules().to_vec()
        } else {
            Vec::new()
        };
        let builtin = rules.len();
        let mut ids: HashSet<String> = rules.iter().map(|r| r.id.clone()).collect();
        let mut report = RulesReport::default();
        let mut correlations = Vec::new();
        // Rule id → the names a correlation may refer to it by (its `name`, its `id`).
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        let mut all = Vec::new();
        for p in &cfg.sigma {
            if !p.exists() {
                return Err(PipelineError::NoSigmaRules(p.clone()));
            }
            let (loaded, errors) = imdsguard_sigma::load_dir_with(p, threads);
            report.errors.extend(errors);
            all.extend(loaded);
        }
        let (all, filter_report) = imdsguard_sigma::apply_filters(all);
        report.errors.extend(filter_report.unused);
        report.filters = filter_report.applied;
        let mut all = select(all, &cfg.select, &mut report.left_out);
        // Each parsed detection is released as soon as it is compiled, and the rest of each
        // parsed rule once its compiled form is kept: the parsed set is not held beside the rule
        // set being built (a fifth of the peak memory of loading SigmaHQ's rules).
        let compiled = imdsguard_sigma::compile_all_releasing(&mut all, threads);
        for (r, compiled) in all.into_iter().zip(compiled) {
            if let Some(c) = &r.correlation {
                correlations.push(SigmaCorrelation {
                    name: r.name.clone(),
                    id: r.id.clone().unwrap_or_else(|| r.title.clone()),
                    title: r.title.clone(),
                    severity: imdsguard_sigma::severity(r.level),
                    correlation: c.clone(),
                });
                continue;
            }
            match compiled {
                Ok(c) if !ids.insert(c.id.clone()) => report.errors.push(SigmaError {
                    path: r.path.clone(),
                    rule: Some(r.title.clone()),
                    kind: imdsguard_sigma::ErrorKind::Duplicate,
                    message: format!("rule id {} is already loaded", c.id),
                }),
                Ok(c) => {
                    let n = names.entry(c.id.clone()).or_default();
                    n.extend(r.name.iter().cloned());
                    n.push(c.id.clone());
                    rules.push(c);
                }
                Err(e) => report.errors.push(e),
            }
        }
        report.sigma_rules = rules.len() - builtin;
        report.correlations = correlations.len();
        let named: HashSet<&str> = correlations
            .iter()
            .flat_map(|c| c.correlation.rules.iter().map(String::as_str))
            .collect();
        let referenced: HashMap<String, Vec<String>> = names
            .into_iter()
            .filter(|(_, ns)| ns.iter().any(|n| named.contains(n.as_str())))
            .collect();
        let feeding = referenced
            .iter()
            .filter(|(_, ns)| {
                let ns: Vec<&str> = ns.iter().map(String::as_str).collect();
                imdsguard_correlate::only_feeds(&ns, &correlations)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut field_names: Vec<String> = correlations
            .iter()
            .flat_map(|c| {
                c.correlation
                    .group_by
                    .iter()
                    .chain(c.correlation.field.iter())
                    .chain(
                        c.correlation
                            .aliases
                            .iter()
                            .flat_map(|(_, m)| m.iter().map(|(_, f)| f)),
                    )
                    .cloned()
            })
            .collect();
        field_names.sort();
        field_names.dedup();
        let fields: Vec<(String, Field)> = field_names
            .into_iter()
            .map(|n| {
                let f = imdsguard_sigma::sigma_field(&n);
                (n, f)
            })
            .collect();
        let set = RuleSet::new(rules).map_err(Box::new)?;
        // What the reader keeps: the fields the rules test and those correlations group by,
        // count or alias.
        let mut read = imdsguard_event::FieldSet::clone(set.record_fields());
        read.extend(&imdsguard_rules::record_fields_of(
            fields.iter().map(|(_, f)| *f),
        ));
        Ok((
            Rules {
                set,
                record_fields: std::sync::Arc::new(read),
                correlations,
                referenced,
                feeding,
                fields,
                builtin: cfg.builtin,
            },
            report,
        ))
    }

    /// Refuses a rule set with nothing to run (`--no-builtin` and every Sigma file failed to
    /// load, or none given): a run with it would analyse nothing and look clean.
    pub(crate) fn require_some(&self, report: &RulesReport) -> Result<(), PipelineError> {
        if self.builtin || report.sigma_rules > 0 || report.correlations > 0 {
            return Ok(());
        }
        Err(PipelineError::NoRules {
            failed: report.errors.len(),
        })
    }

    /// The title of a rule or correlation by id: a detection, a built-in correlation or a
    /// Sigma correlation.
    pub fn title(&self, id: &str) -> Option<&str> {
        self.set
            .get(id)
            .map(|r| r.title.as_str())
            .or_else(|| {
                imdsguard_correlate::correlations()
                    .find(|m| m.id() == id)
                    .map(|m| m.title())
            })
            .or_else(|| {
                self.correlations
                    .iter()
                    .find(|c| c.id == id)
                    .map(|c| c.title.as_str())
            })
    }

    /// The record fields the rules read (Sigma rules do; the built-in pack reads only the typed
    /// ones), which the reader keeps and no others.
    pub fn record_fields(&self) -> &std::sync::Arc<imdsguard_event::FieldSet> {
        &self.record_fields
    }

    /// The correlation engine these rules feed, starting from saved `baselines`.
    pub(crate) fn engine(
        &self,
        cfg: &crate::config::CorrelateConfig,
        baselines: imdsguard_correlate::Baselines,
    ) -> Result<imdsguard_correlate::Engine, PipelineError> {
        imdsguard_correlate::Engine::new(
            self.builtin.then(|| cfg.imds.clone()),
            baselines,
            self.correlations.clone(),
            cfg.incident_gap_ms,
        )
        .map_err(|e| {
            let c = &self.correlations[e.correlation];
            PipelineError::Correlation {
                id: c.id.clone(),
                title: c.title.clone(),
                message: e.message,
            }
        })
    }
}
