//! Sigma regression suites in SigmaHQ's layout: `info.yml` files, each naming rules and the event
//! samples on which they must fire (at least `match_count` times, once when not given).
//!
//! Both `info.yml` layouts SigmaHQ has used are read:
//! - `rule_metadata` + `regression_tests_info` (the rule is `rule_metadata[0]`);
//! - `rules` + `test_cases`, with a root-level `pipelines` that test cases without their own
//!   inherit (every listed rule is tested).
//!
//! Samples and how each is judged, as SigmaHQ's runner judges them:
//! - `evtx`: the real EVTX reader, the rule compiled whole (its log source scopes it to its
//!   channels and event ids), pipelines and filters ignored;
//! - `json` (one object, or one per line, or an array), `ndjson`, `jsonl` (one object per line):
//!   the rule's detection alone (SigmaHQ converts it with `sigma convert`, `--without-pipeline`
//!   unless the test names pipelines, so the log source adds nothing), after the test's Sigma
//!   filters and processing pipelines; each object is read field by field, every value under its
//!   dotted path (`Event.EventData.CommandLine`), arrays as several values.
//!
//! Nothing is skipped quietly: an `info.yml` that does not parse, a rule that is not in the rule
//! set, a sample that is missing or of an unknown type, a pipeline or filter that does not load,
//! and each bad JSON line are reported by file (and line), and the run goes on with the rest.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use imdsguard_event::{Event, EventKind, FieldSet, Format, Position, SourceRef, Sym};
use imdsguard_parse::{read_inputs, ReadOptions, Summary};
use imdsguard_sigma::{
    apply_filters, apply_pipelines, compile, compile_detection, load_dir, parse_rule, Pipeline,
    SigmaError, SigmaRule,
};
use serde::Serialize;
use yaml_rust2::Yaml;

/// The crate's error: a suite that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum RegressError {
    /// The root is not a directory.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The root given.
        path: String,
    },
    /// No `info.yml` under the root.
    #[error("{path}: no info.yml found (looked under regression_data/ and the root)")]
    NoTests {
        /// The root given.
        path: String,
    },
    /// No rule folders given, and none under the root.
    #[error("{path}: no rules* folder to find the tested rules in (give --rules DIR)")]
    NoRules {
        /// The root given.
        path: String,
    },
}

/// The kind of an event sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleKind {
    /// A Windows event log file.
    Evtx,
    /// One JSON object (or, leniently, an array of them or one per line).
    Json,
    /// One JSON object per line (`ndjson` or `jsonl`).
    Ndjson,
}

/// One test case of an `info.yml`.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// `name` (`Unnamed Test` when absent, as SigmaHQ's runner says).
    pub name: String,
    /// `type`, as written.
    pub kind: String,
    /// `path`, resolved.
    pub sample: PathBuf,
    /// `match_count` (1 when absent).
    pub want: u64,
    /// Pipelines (the test's own, or the file's).
    pub pipelines: Vec<PathBuf>,
    /// Sigma filters.
    pub filters: Vec<PathBuf>,
}

/// One `info.yml`.
#[derive(Debug, Clone)]
pub struct Info {
    /// The file.
    pub path: PathBuf,
    /// The rules it tests, by id, with the title it gives.
    pub rules: Vec<(String, String)>,
    /// Its test cases (none when they are all commented out, as SigmaHQ's Cisco test is).
    pub tests: Vec<TestCase>,
}

/// The result of one test case for one rule.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The `info.yml`.
    pub info: String,
    /// The rule id.
    pub rule: String,
    /// The rule's title (from the rule set, or from `info.yml` when the rule is missing).
    pub title: String,
    /// The test's name.
    pub test: String,
    /// The sample.
    pub sample: String,
    /// The sample's type, as written.
    #[serde(rename = "type")]
    pub kind: String,
    /// Matches wanted (at least).
    pub want: u64,
    /// Records that matched.
    pub got: u64,
    /// Records read from the sample.
    pub records: u64,
    /// Records of the sample that could not be read, each named by file and line or record.
    pub unreadable: Vec<String>,
    /// Why the test could not run, when it could not.
    pub problem: Option<String>,
}

impl Outcome {
    /// Whether the rule fired often enough.
    pub fn passed(&self) -> bool {
        self.problem.is_none() && self.got >= self.want
    }
}

/// A whole run.
#[derive(Debug, Default)]
pub struct Report {
    /// One per (test case, rule), in `info.yml` path order.
    pub outcomes: Vec<Outcome>,
    /// `info.yml` files that list no test case.
    pub empty: Vec<String>,
    /// `info.yml` files that could not be read, with why.
    pub bad_info: Vec<String>,
    /// Rules loaded from the rule directories.
    pub rules_loaded: usize,
    /// Rule files that did not load (they count only when a test names their rule).
    pub rule_errors: Vec<SigmaError>,
}

impl Report {
    /// Test cases that passed.
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.passed()).count()
    }
}

/// The `info.yml` files under `dir`, sorted.
fn info_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            info_files(&p, out);
        } else if p.file_name().is_some_and(|n| n == "info.yml") {
            out.push(p);
        }
    }
}

/// The rule directories of a SigmaHQ checkout: `rules*` and `deprecated`.
pub fn rule_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("rules") || n == "deprecated")
        })
        .collect();
    dirs.sort();
    dirs
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        _ => None,
    }
}

fn paths(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

/// A path an `info.yml` gives: from the suite's root (SigmaHQ writes `regression_data/...`), or
/// from the `info.yml`'s folder or one of its parents, as SigmaHQ's runner looks for it.
fn resolve(root: &Path, info: &Path, p: &str) -> PathBuf {
    // Written on Windows too: SigmaHQ's runner reads either separator.
    let p = p.replace('\\', "/");
    let rel = Path::new(&p);
    if rel.is_absolute() {
        return rel.to_path_buf();
    }
    let from_root = root.join(rel);
    if from_root.exists() {
        return from_root;
    }
    let mut dir = info.parent();
    while let Some(d) = dir {
        let c = d.join(rel);
        if c.exists() {
            return c;
        }
        dir = d.parent();
    }
    from_root
}

impl Info {
    /// Reads one `info.yml`; `root` is where its relative paths start.
    pub fn load(root: &Path, path: &Path) -> Result<Info, String> {
        let body = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        Info::parse(root, path, &body)
    }

    /// Reads an `info.yml`'s text; `path` is where it is (relative paths start beside it too).
    pub fn parse(root: &Path, path: &Path, body: &str) -> Result<Info, String> {
        let docs = imdsguard_sigma::yaml::load(body)?;
        let doc = docs.first().ok_or("empty file")?;
        let (rules_key, tests_key, only_first) = if !doc["rules"].is_badvalue() {
            ("rules", "test_cases", false)
        } else {
            ("rule_metadata", "regression_tests_info", true)
        };
        let Yaml::Array(listed) = &doc[rules_key] else {
            return Err(format!(
                "no `{rules_key}` list naming the rules it tests (nor `rules`)"
            ));
        };
        let mut rules = Vec::new();
        for r in listed {
            let id = text(&r["id"]).ok_or(format!("an entry of `{rules_key}` has no id"))?;
            rules.push((id, text(&r["title"]).unwrap_or_default()));
            if only_first {
                break;
            }
        }
        if rules.is_empty() {
            return Err(format!("`{rules_key}` is empty"));
        }
        let root_pipelines = paths(&doc["pipelines"]);
        let mut tests = Vec::new();
        match &doc[tests_key] {
            Yaml::Array(list) => {
                for (n, t) in list.iter().enumerate() {
                    let sample =
                        text(&t["path"]).ok_or(format!("{tests_key}[{n}] has no `path`"))?;
                    // SigmaHQ's runner wants at least one match whatever the count says.
                    let want = match &t["match_count"] {
                        Yaml::Integer(i) => (*i).max(1) as u64,
                        Yaml::BadValue | Yaml::Null => 1,
                        other => {
                            return Err(format!(
                                "{tests_key}[{n}]: match_count {other:?} is not a whole number"
                            ))
                        }
                    };
                    let own = paths(&t["pipelines"]);
                    let pipelines = if own.is_empty() && t["pipelines"].is_badvalue() {
                        root_pipelines.clone()
                    } else {
                        own
                    };
                    tests.push(TestCase {
                        name: text(&t["name"]).unwrap_or_else(|| "Unnamed Test".into()),
                        kind: text(&t["type"]).unwrap_or_else(|| "unknown".into()),
                        sample: resolve(root, path, &sample),
                        want,
                        pipelines: pipelines.iter().map(|p| resolve(root, path, p)).collect(),
                        filters: paths(&t["filters"])
                            .iter()
                            .map(|p| resolve(root, path, p))
                            .collect(),
                    });
                }
            }
            Yaml::BadValue | Yaml::Null => {}
            _ => return Err(format!("`{tests_key}` must be a list")),
        }
        Ok(Info {
            path: path.to_path_buf(),
            rules,
            tests,
        })
    }
}

/// A suite: its `info.yml` files and the rules they may name.
pub struct Suite {
    root: PathBuf,
    infos: Vec<PathBuf>,
    rules: HashMap<String, SigmaRule>,
    rules_loaded: usize,
    rule_errors: Vec<SigmaError>,
}

impl Suite {
    /// Finds the `info.yml` files under `root/regression_data` (or `root` when it has none) and
    /// loads the rules of `rule_dirs` (SigmaHQ's `rules*` folders under `root` when empty).
    pub fn open(root: &Path, rule_dirs_given: &[PathBuf]) -> Result<Suite, RegressError> {
        if !root.is_dir() {
            return Err(RegressError::NotADirectory {
                path: root.display().to_string(),
            });
        }
        let mut infos = Vec::new();
        let data = root.join("regression_data");
        info_files(if data.is_dir() { &data } else { root }, &mut infos);
        infos.sort();
        if infos.is_empty() {
            return Err(RegressError::NoTests {
                path: root.display().to_string(),
            });
        }
        let dirs = if rule_dirs_given.is_empty() {
            rule_dirs(root)
        } else {
            rule_dirs_given.to_vec()
        };
        if dirs.is_empty() {
            return Err(RegressError::NoRules {
                path: root.display().to_string(),
            });
        }
        let mut rules = HashMap::new();
        let mut rule_errors = Vec::new();
        let mut rules_loaded = 0;
        for d in &dirs {
            let (loaded, errors) = load_dir(d);
            rule_errors.extend(errors);
            rules_loaded += loaded.len();
            for r in loaded {
                // Ids are UUIDs: the same in either case.
                if let Some(id) = r.id.as_deref().map(str::to_ascii_lowercase) {
                    rules.insert(id, r);
                }
            }
        }
        Ok(Suite {
            root: root.to_path_buf(),
            infos,
            rules,
            rules_loaded,
            rule_errors,
        })
    }

    /// The `info.yml` files found.
    pub fn infos(&self) -> &[PathBuf] {
        &self.infos
    }

    /// Runs every test case of every `info.yml`.
    pub fn run(&self) -> Report {
        let mut report = Report {
            rules_loaded: self.rules_loaded,
            rule_errors: self.rule_errors.clone(),
            ..Report::default()
        };
        for path in &self.infos {
            let info = match Info::load(&self.root, path) {
                Ok(i) => i,
                Err(e) => {
                    report.bad_info.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            if info.tests.is_empty() {
                report.empty.push(path.display().to_string());
                continue;
            }
            for (id, listed_title) in &info.rules {
                for t in &info.tests {
                    report.outcomes.push(self.one(&info, id, listed_title, t));
                }
            }
        }
        report
    }

    fn one(&self, info: &Info, id: &str, listed_title: &str, t: &TestCase) -> Outcome {
        let mut o = Outcome {
            info: info.path.display().to_string(),
            rule: id.to_owned(),
            title: listed_title.to_owned(),
            test: t.name.clone(),
            sample: t.sample.display().to_string(),
            kind: t.kind.clone(),
            want: t.want,
            got: 0,
            records: 0,
            unreadable: Vec::new(),
            problem: None,
        };
        let Some(rule) = self.rules.get(&id.to_ascii_lowercase()) else {
            // SigmaHQ names a test's folder after its rule's file: a file of that name that did
            // not load is most likely why.
            let folder = info.path.parent().and_then(Path::file_name);
            let why = match self
                .rule_errors
                .iter()
                .find(|e| folder.is_some() && Path::new(&e.path).file_stem() == folder)
            {
                Some(e) => format!(": {e}"),
                None if !self.rule_errors.is_empty() => format!(
                    " ({} rule files did not load; `imdsguard sigma check` names them)",
                    self.rule_errors.len()
                ),
                None => String::new(),
            };
            o.problem = Some(format!("rule {id} is not in the rule set{why}"));
            return o;
        };
        o.title = rule.title.clone();
        if !t.sample.is_file() {
            o.problem = Some(format!("sample {} not found", t.sample.display()));
            return o;
        }
        let kind = match t.kind.to_ascii_lowercase().as_str() {
            "evtx" => SampleKind::Evtx,
            "json" => SampleKind::Json,
            "ndjson" | "jsonl" => SampleKind::Ndjson,
            other => {
                o.problem = Some(format!(
                    "sample type {other:?} is not supported (evtx, json, ndjson, jsonl)"
                ));
                return o;
            }
        };
        let result = match kind {
            SampleKind::Evtx => run_evtx(rule, &t.sample, &mut o),
            _ => run_json(rule, t, kind, &mut o),
        };
        if let Err(e) = result {
            o.problem = Some(e);
        }
        o
    }
}

fn run_evtx(rule: &SigmaRule, sample: &Path, o: &mut Outcome) -> Result<(), String> {
    let compiled = compile(rule).map_err(|e| e.to_string())?;
    let enricher = imdsguard_enrich::Enricher::builtin();
    let opts = ReadOptions {
        fields: std::sync::Arc::new(imdsguard_rules::record_fields([&compiled])),
        ..ReadOptions::default()
    };
    let mut summary = Summary::default();
    let mut got = 0;
    read_inputs(&[sample.to_path_buf()], &opts, &mut summary, &mut |e| {
        if compiled.eval(&enricher.enrich(&e)).is_some() {
            got += 1;
        }
    });
    o.got = got;
    o.records = summary.total_events();
    o.unreadable.extend(summary.input_errors.iter().cloned());
    o.unreadable
        .extend(summary.unrecognized_files.iter().cloned());
    o.unreadable
        .extend(summary.first_skips.iter().map(|s| s.to_string()));
    let unshown = (summary.total_skipped() as usize).saturating_sub(summary.first_skips.len());
    if unshown > 0 {
        o.unreadable
            .push(format!("… {unshown} more records skipped"));
    }
    Ok(())
}

fn run_json(
    rule: &SigmaRule,
    t: &TestCase,
    kind: SampleKind,
    o: &mut Outcome,
) -> Result<(), String> {
    let mut set = vec![rule.clone()];
    for f in &t.filters {
        let body =
            std::fs::read_to_string(f).map_err(|e| format!("filter {}: {e}", f.display()))?;
        let loaded = parse_rule(&body, &f.display().to_string()).map_err(|e| e.to_string())?;
        set.extend(loaded);
    }
    let (mut rules, filters) = apply_filters(set);
    if let Some(e) = filters.unused.first() {
        return Err(e.to_string());
    }
    let mut rule = rules.remove(0);
    let pipelines = t
        .pipelines
        .iter()
        .map(|p| Pipeline::load(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    apply_pipelines(&mut rule, &pipelines).map_err(|e| e.to_string())?;
    let compiled = compile_detection(&rule).map_err(|e| e.to_string())?;
    let fields = imdsguard_rules::record_fields([&compiled]);
    let enricher = imdsguard_enrich::Enricher::builtin();
    let shown = t.sample.display().to_string();
    let body = std::fs::read_to_string(&t.sample).map_err(|e| format!("{shown}: {e}"))?;
    let objects = json_objects(&body, kind, &shown, &mut o.unreadable);
    for (line, v) in objects {
        let e = json_event(&v, &shown, line, &fields);
        o.records += 1;
        if compiled.eval(&enricher.enrich(&e)).is_some() {
            o.got += 1;
        }
    }
    Ok(())
}

/// The JSON objects of a sample with the line each starts on: for `json`, the whole file as one
/// value (an object, or an array of objects), else one per line; for `ndjson`, one per non-blank
/// line. What does not read is named by file and line in `bad`.
pub fn json_objects(
    body: &str,
    kind: SampleKind,
    shown: &str,
    bad: &mut Vec<String>,
) -> Vec<(u64, serde_json::Value)> {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    if kind == SampleKind::Json {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
            return match v {
                serde_json::Value::Array(items) => {
                    let mut out = Vec::new();
                    for (i, item) in items.into_iter().enumerate() {
                        if item.is_object() {
                            out.push((1, item));
                        } else {
                            bad.push(format!("{shown}: item {i} of the array is not an object"));
                        }
                    }
                    out
                }
                v if v.is_object() => vec![(1, v)],
                _ => {
                    bad.push(format!("{shown}: not a JSON object"));
                    Vec::new()
                }
            };
        }
    }
    let mut out = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v.is_object() => out.push((n, v)),
            Ok(_) => bad.push(format!("{shown}:{n}: not a JSON object")),
            Err(e) => bad.push(format!("{shown}:{n}: {e}")),
        }
    }
    out
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::Bool(b) => out.push((prefix.to_owned(), b.to_string())),
        serde_json::Value::Number(n) => out.push((prefix.to_owned(), n.to_string())),
        serde_json::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        serde_json::Value::Array(items) => items.iter().for_each(|x| flatten(prefix, x, out)),
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, x, out);
            }
        }
    }
}

/// A JSON object as an event of its fields alone: each value under its dotted path, kept only
/// under names the rules read (`read`), and under [`Sym::ANY`] when keyword rules are loaded.
pub fn json_event(v: &serde_json::Value, shown: &str, line: u64, read: &FieldSet) -> Event {
    let mut pairs = Vec::new();
    flatten("", v, &mut pairs);
    let mut fields: Vec<(Sym, String)> = pairs
        .into_iter()
        .filter_map(|(k, v)| read.place(&k).map(|s| (s, v)))
        .collect();
    // The evaluator reads a name's values as one run.
    fields.sort_by_key(|(s, _)| *s);
    Event {
        source: SourceRef {
            path: shown.to_owned(),
            position: Position::Line(line),
        },
        format: Format::JsonFields,
        kind: EventKind::Other,
        channel: None,
        native_id: None,
        record_id: None,
        time: None,
        clock: Default::default(),
        host: None,
        process: Default::default(),
        parent: Default::default(),
        network: None,
        http: None,
        cloud: None,
        dns_query: None,
        container: None,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_read_whole_per_line_or_from_an_array_and_bad_lines_are_named() {
        let mut bad = Vec::new();
        let pretty = "{\n  \"a\": {\"b\": [1, 2]},\n  \"c\": null\n}\n";
        assert_eq!(
            json_objects(pretty, SampleKind::Json, "p.json", &mut bad).len(),
            1
        );
        let arr = "[{\"a\": 1}, 3, {\"a\": 2}]";
        assert_eq!(
            json_objects(arr, SampleKind::Json, "a.json", &mut bad).len(),
            2
        );
        assert_eq!(bad, ["a.json: item 1 of the array is not an object"]);
        bad.clear();
        let lines = "{\"a\": 1}\n\nnot json\n[1]\n{\"a\": 2}\n";
        let got = json_objects(lines, SampleKind::Ndjson, "l.json", &mut bad);
        assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 5]);
        assert_eq!(bad.len(), 2);
        assert!(bad[0].starts_with("l.json:3: "), "{bad:?}");
        assert_eq!(bad[1], "l.json:4: not a JSON object");
        // A `json` sample that is several objects, one per line, still reads.
        bad.clear();
        assert_eq!(
            json_objects(lines, SampleKind::Json, "l.json", &mut bad).len(),
            2
        );
    }

    #[test]
    fn fields_are_dotted_paths_with_arrays_as_several_values() {
        let a = Sym::intern("Event.EventData.Tags");
        let b = Sym::intern("Event.System.EventID");
        let v: serde_json::Value = serde_json::from_str(
            r#"{"Event": {"EventData": {"Tags": ["x", "y"], "Null": null}, "System": {"EventID": 4688, "Other": true}}}"#,
        )
        .unwrap();
        let e = json_event(&v, "t.json", 1, &FieldSet::of([a, b]));
        let mine: Vec<_> = e
            .fields
            .iter()
            .map(|(s, v)| format!("{}={v}", s.name()))
            .collect();
        // Only the names the rules read: `Null` and `Other` are not kept.
        assert_eq!(
            mine,
            [
                "Event.EventData.Tags=x",
                "Event.EventData.Tags=y",
                "Event.System.EventID=4688"
            ]
        );
        assert_eq!(e.format, Format::JsonFields);
    }
}
