//! The correlation layer: what single events cannot show.
//!
//! - [`imds`]: the built-in correlations over metadata requests — the IMDSv2 token sequence
//!   (IMDS-101), a process reaching the service for the first time on a host against a learned
//!   baseline (IMDS-102), a request rate above the process's own baseline (IMDS-103), and
//!   enumeration of many metadata paths (IMDS-104).
//! - [`sigma`]: Sigma correlation rules (`event_count`, `value_count`, `temporal`,
//!   `temporal_ordered`) over the hits of the rules they name.
//! - [`incident`]: alerts of one host grouped into incidents with a timeline, the attack-chain
//!   stages and a severity for the whole chain.
//! - [`triage`]: the SOC playbook for T1552.005 on every alert and incident — the four questions answered
//!   with evidence, the escalation decision, containment with commands.
//!
//! [`Engine`] drives all three over [`Observation`]s — one per event that raised an alert or
//! reached the metadata service — fed in time order. All mutable state of the pipeline lives
//! here; the compiled rule set stays immutable and shared. Output depends only on the
//! observations and their order, which the caller makes total (time, then input order), so the
//! same input gives the same alerts and incidents whatever the thread count.

pub mod cloud;
pub mod containment;
mod host;
pub mod imds;
pub mod incident;
pub mod sigma;
pub mod triage;
mod triage_cloud;

use std::sync::Arc;

use imdsguard_event::Severity;
use imdsguard_rules::{stable_hash, Alert};

pub use host::{Hosts, Resolved};
pub use imds::{Baselines, Config, Context, Touch, Windows};
pub use incident::{Incident, Incidents, Stage};
pub use sigma::{CorrelateError, Correlator, Fired, Hit};
pub use triage::{Facts, Frequency};

/// Every built-in correlation, in id order: over metadata requests (IMDS-101…104) and over
/// cloud audit logs (IMDS-105, IMDS-106).
pub fn correlations() -> impl Iterator<Item = &'static imds::Meta> {
    imds::RULES.iter().chain(cloud::RULES.iter())
}

/// A Sigma correlation rule with what its alerts need.
#[derive(Debug, Clone)]
pub struct SigmaCorrelation {
    /// The rule's id (or title when it has none).
    pub id: String,
    /// Its `name`, which another correlation may refer to it by.
    pub name: Option<String>,
    /// Its title.
    pub title: String,
    /// Severity of its alerts (from `level`).
    pub severity: Severity,
    /// The correlation.
    pub correlation: imdsguard_sigma::Correlation,
}

/// What one event brings to the correlation layer.
#[derive(Debug, Clone)]
pub struct Observation {
    /// When (ms since the epoch).
    pub time_ms: i64,
    /// The event's place in the input, which breaks ties in time.
    pub seq: u64,
    /// The alerts the event raised (those reported, for incidents).
    pub alerts: Vec<Alert>,
    /// Its metadata requests, if any.
    pub touch: Option<Touch>,
    /// A cloud API call made with an instance's credentials, if it is one.
    pub cloud: Option<Box<cloud::CloudUse>>,
    /// What triage needs beyond the alert.
    pub facts: Facts,
    /// Hits of rules that Sigma correlations name.
    pub hits: Vec<Hit>,
    /// The alert of the first such hit when it is below the reported severity (so not in
    /// `alerts`): the context a correlation alert built on it carries. Boxed: most observations
    /// have none, and an alert inline would make every held observation 936 bytes larger.
    pub hit_context: Option<Box<Alert>>,
}

/// The event context of an observation: its first alert, or its touch's context.
fn context(obs: &Observation) -> Option<Alert> {
    obs.alerts
        .first()
        .or(obs.hit_context.as_deref())
        .cloned()
        .or_else(|| {
            obs.touch.as_ref().map(|t| {
                t.context
                    .alert(Some(t.host.as_str()).filter(|h| !h.is_empty()))
            })
        })
}

/// Puts observations back in time order, so that memory stays bounded by configuration, not by
/// input size.
///
/// An observation is held until one `lateness_ms` newer has arrived (with no lateness: until the
/// input ends), or until what is held exceeds `max_bytes` (by [`Observation::approx_bytes`]),
/// then released in (time, input order). An observation older than the last released is
/// released at once, as it comes: correlation sees it late rather than not at all. What is
/// released depends only on the input sequence, never on timing or threads.
pub struct Reorder {
    lateness_ms: Option<i64>,
    max_bytes: usize,
    held_bytes: usize,
    held: std::collections::BinaryHeap<std::cmp::Reverse<Held>>,
    newest: i64,
    /// Observations that came older than one already released.
    pub late: u64,
    /// Observations released before their time because `max_bytes` were held.
    pub early: u64,
    released_up_to: i64,
}

/// Boxed: the heap moves its entries as it sifts, and an observation is a few hundred bytes.
struct Held(Box<Observation>, usize);

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.0.time_ms, self.0.seq) == (o.0.time_ms, o.0.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0.time_ms, self.0.seq).cmp(&(o.0.time_ms, o.0.seq))
    }
}

impl Reorder {
    /// Holds observations up to `lateness_ms` behind the newest (`None`: to the end of the
    /// input), and at most `max_bytes` of them.
    pub fn new(lateness_ms: Option<i64>, max_bytes: usize) -> Reorder {
        Reorder {
            lateness_ms,
            max_bytes,
            held_bytes: 0,
            held: Default::default(),
            newest: i64::MIN,
            late: 0,
            early: 0,
            released_up_to: i64::MIN,
        }
    }

    /// Takes one observation; returns those now due, in order.
    pub fn push(&mut self, obs: Box<Observation>) -> Vec<Box<Observation>> {
        if obs.time_ms < self.released_up_to {
            self.late += 1;
            return vec![obs];
        }
        self.newest = self.newest.max(obs.time_ms);
        let bytes = obs.approx_bytes();
        self.held_bytes += bytes;
        self.held.push(std::cmp::Reverse(Held(obs, bytes)));
        let mut out = Vec::new();
        while let Some(std::cmp::Reverse(top)) = self.held.peek() {
            let in_time = self
                .lateness_ms
                .is_some_and(|l| top.0.time_ms <= self.newest.saturating_sub(l));
            let full = self.held_bytes > self.max_bytes && self.held.len() > 1;
            if !in_time && !full {
                break;
            }
            let Some(std::cmp::Reverse(Held(o, bytes))) = self.held.pop() else {
                break;
            };
            self.early += u64::from(!in_time);
            self.held_bytes -= bytes;
            self.released_up_to = o.time_ms;
            out.push(o);
        }
        out
    }

    /// The oldest observation held, if any: at the end of the input, everything held, one at a
    /// time in order.
    pub fn pop(&mut self) -> Option<Box<Observation>> {
        let std::cmp::Reverse(Held(o, bytes)) = self.held.pop()?;
        self.held_bytes -= bytes;
        self.released_up_to = o.time_ms;
        Some(o)
    }

    /// The end of the input: everything held, in order.
    pub fn finish(&mut self) -> Vec<Box<Observation>> {
        std::iter::from_fn(|| self.pop()).collect()
    }

    /// The bytes held now, as [`Observation::approx_bytes`] counts them.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }
}

impl Observation {
    /// About how many bytes the observation takes in memory, its allocations included: what
    /// the reorder buffer counts against its budget. The sum of its parts' sizes, times 1.7:
    /// what a hunt's resident memory was measured to grow by per byte of that sum (allocator
    /// rounding and headers, the heap's growth).
    pub fn approx_bytes(&self) -> usize {
        let n = self.parts_bytes();
        n + n * 7 / 10
    }

    fn parts_bytes(&self) -> usize {
        let s = |v: &String| v.capacity();
        let o = |v: &Option<String>| v.as_ref().map_or(0, String::capacity);
        std::mem::size_of::<Observation>()
            + self
                .alerts
                .iter()
                .map(|a| std::mem::size_of::<Alert>() + a.heap_bytes())
                .sum::<usize>()
            + self.touch.as_ref().map_or(0, |t| {
                s(&t.host)
                    + s(&t.actor)
                    + s(&t.identity)
                    + t.requests.capacity() * std::mem::size_of::<imds::Request>()
                    + t.requests.iter().map(|r| o(&r.path)).sum::<usize>()
                    + match &t.context {
                        imds::Context::Full(a) => std::mem::size_of::<Alert>() + a.heap_bytes(),
                        imds::Context::Brief {
                            source,
                            time,
                            process,
                            ..
                        } => s(&source.path) + o(time) + o(&process.1) + o(&process.2),
                    }
            })
            + self.cloud.as_ref().map_or(0, |c| c.approx_bytes())
            + o(&self.facts.server)
            + o(&self.facts.client_ip)
            + o(&self.facts.principal)
            + o(&self.facts.provider)
            + self
                .hits
                .iter()
                .map(|h| {
                    std::mem::size_of::<Hit>()
                        + h.rule.iter().map(|r| r.capacity() + 24).sum::<usize>()
                        + h.fields
                            .iter()
                            .map(|(k, v)| k.capacity() + v.capacity() + 64)
                            .sum::<usize>()
                        + s(&h.id)
                })
                .sum::<usize>()
            + self
                .hit_context
                .as_ref()
                .map_or(0, |a| std::mem::size_of::<Alert>() + a.heap_bytes())
    }
}

/// The correlation layer's state.
pub struct Engine {
    /// Whether the built-in correlations run (the cloud ones with the others).
    builtin: bool,
    imds: Option<imds::Imds>,
    sigma: Correlator,
    sigma_rules: Vec<SigmaCorrelation>,
    incidents: Incidents,
    /// The context of the last observation with a Sigma hit, for alerts judged at the end.
    last_hit: Option<Alert>,
    /// (alert id, incident id) for each alert added to an incident since [`Engine::take_links`].
    links: Vec<(String, String)>,
    /// Correlations another one names without `generate: true`: they feed it and do not alert.
    feeding: Vec<bool>,
    /// One key per host, whatever name its records give.
    hosts: Hosts,
    /// Hosts whose baseline or windows changed since [`Engine::take_touched`].
    touched: std::collections::BTreeSet<String>,
    /// The cloud correlations and the inventory.
    cloud: cloud::Cloud,
    /// The incident key each first IMDS-105 alert joined, by alert id.
    cloud_keys: std::collections::BTreeMap<String, String>,
}

/// Whether a rule known by `names` (its id, its `name`) only feeds correlations: one of them
/// names it without `generate: true`, so its hits count and it does not alert on its own (the
/// specification's default). For detection rules and correlations alike.
pub fn only_feeds(names: &[&str], correlations: &[SigmaCorrelation]) -> bool {
    correlations.iter().any(|c| {
        !c.correlation.generate
            && c.correlation
                .rules
                .iter()
                .any(|r| names.contains(&r.as_str()))
    })
}

/// How deep correlations of correlations go (a chain longer than this is cut, not looped).
const MAX_CHAIN: usize = 8;

impl Engine {
    /// The layer with the built-in correlations (`cfg`, `None` to run none; a saved
    /// `baselines`), the Sigma correlation rules given, and incidents that open after
    /// `incident_gap_ms` of quiet on a host. Every alert joins its host's incident, whatever
    /// its severity: what is shown is the caller's choice, what is found is not.
    pub fn new(
        cfg: Option<Config>,
        baselines: Baselines,
        sigma_rules: Vec<SigmaCorrelation>,
        incident_gap_ms: i64,
    ) -> Result<Engine, CorrelateError> {
        let corr: Vec<imdsguard_sigma::Correlation> =
            sigma_rules.iter().map(|s| s.correlation.clone()).collect();
        let max = cfg
            .as_ref()
            .map_or(Config::default().max_keys, |c| c.max_keys);
        let builtin = cfg.is_some();
        Ok(Engine {
            builtin,
            imds: cfg.map(|c| imds::Imds::new(c, baselines)),
            sigma: Correlator::new(&corr)?.with_max_groups(max),
            sigma_rules,
            incidents: Incidents::new(incident_gap_ms),
            last_hit: None,
            links: Vec::new(),
            feeding: Vec::new(),
            hosts: Hosts::new(),
            cloud: cloud::Cloud::new(Default::default(), max),
            cloud_keys: Default::default(),
            touched: Default::default(),
        }
        .with_feeding()
        .with_learned_hosts())
    }

    /// Reads instance addresses, host names and metadata settings from `inventory`.
    pub fn with_inventory(mut self, inventory: Arc<imdsguard_event::Inventory>) -> Engine {
        let max = self.cloud_max();
        self.cloud = cloud::Cloud::new(inventory, max);
        self
    }

    fn cloud_max(&self) -> usize {
        Config::default().max_keys
    }

    /// Learns the host keys the saved baselines are under.
    fn with_learned_hosts(mut self) -> Engine {
        if let Some(imds) = &self.imds {
            let keys: Vec<String> = imds.baselines().keys().cloned().collect();
            self.hosts.learn(keys.iter().map(String::as_str));
        }
        self
    }

    /// The key of a host name, moving what a short name gathered under its FQDN when the two
    /// join.
    /// The incident an alert joins: its host's; for a record that names no host but a web
    /// client (access, proxy and wire logs) or a source address (flows, Zeek), the client's, so one client's attempts across
    /// servers and logs are one incident, with its first and last request.
    fn incident_key(&mut self, a: &Alert, time_ms: i64) -> String {
        // Stolen instance credentials used from an address: the instance's incident when its
        // host telemetry already shows one (credential access on the host), else the incident
        // of that address's requests to a web server or proxy when there is one (the server-side
        // request forgery that read them), else the instance's.
        if a.rule_id == "IMDS-105" {
            let host = self.host_key(a.host.as_deref().unwrap_or(""));
            if !self.incidents.joins(&host, time_ms) {
                if let Some(caller) = a.cloud.as_ref().and_then(|c| c.caller_ip.as_deref()) {
                    let client = format!("client {caller}");
                    if self.incidents.joins(&client, time_ms) {
                        return client;
                    }
                }
            }
            return host;
        }
        let client = a
            .http
            .as_ref()
            .and_then(|h| h.client.as_deref())
            .or_else(|| a.network.as_ref().and_then(|n| n.src_ip.as_deref()));
        match (a.host.as_deref().filter(|h| !h.is_empty()), client) {
            (None, Some(client)) => format!("client {client}"),
            (host, _) => self.host_key(host.unwrap_or("")),
        }
    }

    fn host_key(&mut self, name: &str) -> String {
        let r = self.hosts.resolve(name);
        if let Some((from, into)) = &r.merge {
            if let Some(imds) = &mut self.imds {
                imds.rename_host(from, into);
            }
            self.incidents.rename_host(from, into);
        }
        r.key
    }

    /// Marks the correlations that only feed another one.
    fn with_feeding(mut self) -> Engine {
        let rules = &self.sigma_rules;
        self.feeding = rules
            .iter()
            .map(|c| {
                let names: Vec<&str> = std::iter::once(c.id.as_str())
                    .chain(c.name.as_deref())
                    .collect();
                only_feeds(&names, rules)
            })
            .collect();
        self
    }

    /// A correlation that fired, as a hit of its own for the correlations that name it (by id
    /// or name): at the time of its last hit, grouped by its group's values.
    fn chained(&self, f: &Fired, alert_id: &str) -> Hit {
        let rule = &self.sigma_rules[f.correlation];
        Hit {
            rule: std::iter::once(rule.id.clone())
                .chain(rule.name.clone())
                .collect(),
            time_ms: f.last_ms,
            fields: f.group.iter().cloned().collect(),
            id: alert_id.to_owned(),
        }
    }

    /// Feeds hits, and the hits of the correlations they complete, down a chain; the alerts
    /// come with the time of their last hit.
    fn feed(&mut self, hits: Vec<Hit>, ctx: &Arc<Alert>, out: &mut Vec<(Alert, i64)>) {
        let mut pending = hits;
        for _ in 0..MAX_CHAIN {
            if pending.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for h in &pending {
                for f in self.sigma.push_with(h, Some(Arc::clone(ctx))) {
                    // A window closed by a later hit fires with its own last hit's context.
                    let own = f.context.as_deref().unwrap_or(ctx).clone();
                    let a = self.fired_alert(&f, own);
                    next.push(self.chained(&f, &a.id));
                    if !self.feeding[f.correlation] {
                        out.push((a, f.last_ms));
                    }
                }
            }
            pending = next;
        }
    }

    /// Feeds one observation (in time order); returns the correlation alerts it completes, at or
    /// above the minimum severity. Every alert, the event's own and the new ones, joins an
    /// incident.
    ///
    /// The event's own alerts get their triage here (in place); the new alerts come with theirs.
    pub fn push(&mut self, obs: &mut Observation) -> Vec<Alert> {
        let mut out = Vec::new();
        if let Some(t) = &mut obs.touch {
            t.host = self.host_key(&t.host);
        }
        if let (Some(t), Some(imds)) = (&obs.touch, &mut self.imds) {
            let own = obs.alerts.first().map(|a| a.id.as_str());
            out.extend(imds.push(t, own));
            if !self.touched.contains(&t.host) {
                self.touched.insert(t.host.clone());
            }
        }
        if let (Some(u), true) = (&obs.cloud, self.builtin) {
            out.extend(self.cloud.push(u));
        }
        for a in &mut obs.alerts {
            self.cloud.name_host(a);
        }
        if !obs.hits.is_empty() {
            let ctx = Arc::new(context(obs).expect("an observation with a hit has an alert"));
            let mut fired = Vec::new();
            self.feed(obs.hits.clone(), &ctx, &mut fired);
            out.extend(fired.into_iter().map(|(a, _)| a));
        }
        if !obs.hits.is_empty() {
            self.last_hit = context(obs);
        }
        if obs.alerts.is_empty() && out.is_empty() {
            return out;
        }
        let freq = match (&obs.touch, &self.imds) {
            (Some(t), Some(imds)) => imds.frequency(t),
            _ => None,
        };
        for a in obs.alerts.iter_mut().chain(out.iter_mut()) {
            a.triage = triage::applies(a).then(|| triage::triage(a, &obs.facts, freq.as_ref()));
        }
        // The cloud alerts of one call join the incident its first IMDS-105 alert joined; later
        // uses of the same stolen session join that one's.
        let mut cloud_key: Option<String> = None;
        for a in obs.alerts.iter().chain(out.iter()) {
            let key = match (a.rule_id.as_str(), &cloud_key) {
                ("IMDS-105", _) => {
                    let followed = a.related.first().and_then(|r| self.cloud_keys.get(r));
                    let key = match followed {
                        Some(k) => k.clone(),
                        None => self.incident_key(a, obs.time_ms),
                    };
                    if a.related.is_empty() {
                        self.cloud_keys.insert(a.id.clone(), key.clone());
                        while self.cloud_keys.len() > Config::default().max_keys {
                            self.cloud_keys.pop_first();
                        }
                    }
                    cloud_key = Some(key.clone());
                    key
                }
                ("IMDS-106", Some(k)) => k.clone(),
                _ => self.incident_key(a, obs.time_ms),
            };
            let id = self.incidents.add(a, &key, obs.time_ms);
            self.links.push((a.id.clone(), id));
        }
        out
    }

    /// Which incident each alert joined, since the last call: what the store links.
    pub fn take_links(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.links)
    }

    /// Triage for the alerts of an event left out of correlation (its time could not be read):
    /// the questions are answered without a baseline.
    pub fn triage_only(alerts: &mut [Alert], facts: &Facts) {
        for a in alerts {
            a.triage = triage::applies(a).then(|| triage::triage(a, facts, None));
        }
    }

    /// The end of the input: Sigma correlations with an upper bound are judged; their alerts
    /// carry the context of the last hit seen.
    pub fn finish(&mut self) -> Vec<Alert> {
        let mut out = Vec::new();
        let Some(last) = self.last_hit.take() else {
            return out;
        };
        let last = Arc::new(last);
        let mut alerts = Vec::new();
        for _ in 0..MAX_CHAIN {
            let fired = self.sigma.finish();
            if fired.is_empty() {
                break;
            }
            // What closes here may complete correlations of correlations, judged in turn; each
            // window fires with the context of its own last hit (its host, its process).
            for f in fired {
                let ctx = f.context.clone().unwrap_or_else(|| Arc::clone(&last));
                let a = self.fired_alert(&f, (*ctx).clone());
                let chained = self.chained(&f, &a.id);
                if !self.feeding[f.correlation] {
                    alerts.push((a, f.last_ms));
                }
                self.feed(vec![chained], &ctx, &mut alerts);
            }
        }
        for (mut a, t) in alerts {
            a.triage = triage::applies(&a).then(|| triage::triage(&a, &Facts::default(), None));
            let key = self.incident_key(&a, t);
            let id = self.incidents.add(&a, &key, t);
            self.links.push((a.id.clone(), id));
            out.push(a);
        }
        out
    }

    /// The incidents so far.
    pub fn incidents(&self) -> &Incidents {
        &self.incidents
    }

    /// Takes back the open incidents of an earlier run ([`Incidents::restore`]).
    pub fn restore_incidents(&mut self, saved: Vec<Incident>) {
        self.incidents.restore(saved);
    }

    /// Takes in the saved baselines of hosts this engine has not seen (a worker taking over a
    /// partition of a stream restores its hosts'); a host it has keeps its own.
    pub fn restore_baselines(&mut self, saved: Baselines) {
        self.hosts.learn(saved.keys().map(String::as_str));
        if let Some(imds) = &mut self.imds {
            imds.restore_baselines(saved);
        }
    }

    /// The baselines and open windows of the hosts the correlations touched since the last
    /// call: what a `watch` commit saves with each batch, so that a restart or the worker taking
    /// those hosts over goes on exactly where this one stopped.
    pub fn take_touched(&mut self) -> (Baselines, Vec<(String, imds::Windows)>) {
        let hosts = std::mem::take(&mut self.touched);
        let Some(imds) = &self.imds else {
            return (Baselines::new(), Vec::new());
        };
        let mut baselines = Baselines::new();
        let mut windows = Vec::new();
        for h in hosts {
            if let Some(b) = imds.baselines().get(&h) {
                baselines.insert(h.clone(), b.clone());
            }
            windows.push((h.clone(), imds.windows(&h)));
        }
        (baselines, windows)
    }

    /// Takes back hosts' saved windows ([`Engine::take_touched`]).
    pub fn restore_windows(&mut self, saved: Vec<(String, imds::Windows)>) {
        if let Some(imds) = &mut self.imds {
            for (h, w) in saved {
                imds.restore_windows(&h, w);
            }
        }
    }

    /// Drops the baselines and open incidents of the hosts `gone` names, once saved: a worker
    /// giving a stream's partition to another keeps nothing of its hosts it could write over
    /// the new reader's.
    pub fn forget_hosts(&mut self, gone: &dyn Fn(&str) -> bool) {
        if let Some(imds) = &mut self.imds {
            imds.forget(gone);
        }
        self.incidents.forget(gone);
    }

    /// The incidents, to hand over closed ones ([`Incidents::take_closed`]).
    pub fn incidents_mut(&mut self) -> &mut Incidents {
        &mut self.incidents
    }

    /// The baselines learned so far (the store saves them).
    pub fn baselines(&self) -> Option<&Baselines> {
        self.imds.as_ref().map(|i| i.baselines())
    }

    /// Keys and groups dropped to keep the state bounded.
    pub fn evicted(&self) -> u64 {
        self.imds.as_ref().map_or(0, |i| i.evicted) + self.sigma.evicted() + self.cloud.evicted
    }

    fn fired_alert(&self, f: &Fired, mut a: Alert) -> Alert {
        let rule = &self.sigma_rules[f.correlation];
        let mut parts: Vec<&str> = vec![&rule.id];
        parts.extend(f.hits.iter().map(String::as_str));
        a.id = format!("{:016x}", stable_hash(&parts));
        a.rule_id = rule.id.clone();
        a.title = rule.title.clone();
        a.severity = rule.severity;
        let group = if f.group.is_empty() {
            "all events".to_owned()
        } else {
            f.group
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        a.reasons = vec![format!(
            "Sigma correlation \"{}\" ({:?}) held with value {} for {group}, between {} and {}.",
            rule.title,
            rule.correlation.kind,
            f.value,
            imdsguard_event::format_time_ms(f.first_ms),
            imdsguard_event::format_time_ms(f.last_ms),
        )];
        a.related = f.hits.clone();
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(time_ms: i64, seq: u64) -> Box<Observation> {
        Box::new(Observation {
            time_ms,
            seq,
            alerts: Vec::new(),
            touch: None,
            cloud: None,
            facts: Facts::default(),
            hits: Vec::new(),
            hit_context: None,
        })
    }

    fn order(r: &mut Reorder, input: &[(i64, u64)]) -> Vec<(i64, u64)> {
        let mut out: Vec<(i64, u64)> = Vec::new();
        for &(t, s) in input {
            out.extend(r.push(obs(t, s)).iter().map(|o| (o.time_ms, o.seq)));
        }
        out.extend(r.finish().iter().map(|o| (o.time_ms, o.seq)));
        out
    }

    #[test]
    fn records_within_the_lateness_come_out_in_time_order() {
        let mut r = Reorder::new(Some(10), usize::MAX);
        let got = order(&mut r, &[(5, 1), (3, 2), (20, 3), (12, 4), (40, 5), (5, 6)]);
        // (5, 6) came after 20 and 40 released everything up to 30: it is late, passed on as
        // it comes, and counted.
        assert_eq!(got, [(3, 2), (5, 1), (12, 4), (20, 3), (5, 6), (40, 5)]);
        assert_eq!(r.late, 1);
    }

    #[test]
    fn ties_keep_input_order_and_the_buffer_is_bounded() {
        let one = obs(7, 1).approx_bytes();
        assert!(one >= std::mem::size_of::<Observation>());
        let mut r = Reorder::new(Some(1_000_000), 2 * one);
        let got = order(&mut r, &[(7, 1), (7, 2), (7, 3), (1, 4)]);
        // Never more than 2 held: the third push releases the first; (1, 4) is then late.
        assert_eq!(got, [(7, 1), (1, 4), (7, 2), (7, 3)]);
        assert_eq!((r.late, r.early), (1, 1));
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn without_a_lateness_the_whole_input_comes_out_in_time_order() {
        let mut r = Reorder::new(None, usize::MAX);
        let input: Vec<(i64, u64)> = (0..1000u64)
            .map(|i| (((i * 7919) % 1000) as i64 * 86_400_000, i))
            .collect();
        let got = order(&mut r, &input);
        let mut want = input.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!((r.late, r.early), (0, 0));
    }
}
