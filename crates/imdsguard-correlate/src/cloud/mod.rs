//! Correlations over cloud audit logs: an instance's role credentials used from an address that
//! is not the instance's (IMDS-105), and credentials an instance still fetches over IMDSv1
//! (IMDS-106). Both follow the instance a role session belongs to — the session name CloudTrail
//! records for an instance profile is the instance id — and read the inventory, when given, for
//! the instance's addresses and host name.

mod imds_105_credentials_elsewhere;
mod imds_106_imdsv1_delivery;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use imdsguard_enrich::Enriched;
use imdsguard_event::{Inventory, Severity, Technique};
use imdsguard_rules::{stable_hash, Alert};

use crate::imds::Meta;

/// The cloud correlations, in id order.
pub const RULES: [Meta; 2] = [
    imds_105_credentials_elsewhere::META,
    imds_106_imdsv1_delivery::META,
];

/// What a cloud API call made with an instance's credentials brings to the correlations.
#[derive(Debug, Clone)]
pub struct CloudUse {
    /// When (ms since the epoch).
    pub time_ms: i64,
    /// The instance whose credentials made the call (an EC2 instance id, an Azure VM's resource
    /// id), or, when [`CloudUse::by_identity`], the workload identity the call names (a Google
    /// Cloud service account), which the inventory ties to instances.
    pub instance: String,
    /// Whether `instance` is an identity, not an instance.
    pub by_identity: bool,
    /// The role's ARN, when the record names it.
    pub role: Option<String>,
    /// The caller's address (`None` when the provider wrote a service name there).
    pub caller: Option<IpAddr>,
    /// Whether the call came through a VPC endpoint.
    pub vpc_endpoint: bool,
    /// The service that made the call on the caller's behalf.
    pub invoked_by: Option<String>,
    /// `ec2RoleDelivery`.
    pub delivery: Option<String>,
    /// The record's identity, for alert ids.
    pub record: u64,
    /// [`key`] of the call.
    pub key: u64,
    /// The record, without the fields kept for Sigma rules: what the alerts built from it
    /// show (its source, time, host, caller and cloud call). A call is held until the input
    /// is in time order, and most calls of a large audit log are such calls: an event is a
    /// fraction of a whole alert context.
    pub context: Box<imdsguard_event::Event>,
}

impl CloudUse {
    /// The use an event records, for a call made with an instance's role session.
    pub fn of(ev: &Enriched<'_>, time_ms: i64) -> Option<CloudUse> {
        let c = ev.event.cloud.as_deref()?;
        let (instance, by_identity) = match &c.instance {
            Some(i) => (i.clone(), false),
            None if c.principal_type == Some(imdsguard_event::Principal::Workload) => {
                (c.principal.clone()?, true)
            }
            None => return None,
        };
        Some(CloudUse {
            time_ms,
            instance,
            by_identity,
            role: c.role.clone(),
            caller: c.caller_ip.as_deref().and_then(|a| a.parse().ok()),
            vpc_endpoint: c.vpc_endpoint.is_some(),
            invoked_by: c.invoked_by.clone(),
            delivery: c.delivery.clone(),
            record: ev.event.identity(),
            key: key(c)?,
            context: Box::new(imdsguard_event::Event {
                fields: Vec::new(),
                ..ev.event.clone()
            }),
        })
    }

    /// About how many bytes it takes, for the reorder buffer's budget.
    pub fn approx_bytes(&self) -> usize {
        let o = |v: &Option<String>| v.as_ref().map_or(0, String::capacity);
        let e = &self.context;
        std::mem::size_of::<CloudUse>()
            + std::mem::size_of::<imdsguard_event::Event>()
            + self.instance.capacity()
            + o(&self.role)
            + o(&self.delivery)
            + e.source.path.capacity()
            + o(&e.time)
            + o(&e.host)
            + o(&e.native_id)
            + o(&e.record_id)
            + e.network
                .as_ref()
                .map_or(0, |n| std::mem::size_of_val(n) + o(&n.src_ip))
            + e.cloud
                .as_ref()
                .map_or(0, |c| std::mem::size_of_val(&**c) + c.heap_bytes())
    }
}

/// What the cloud correlations can learn from a call, as a number: the instance (or workload
/// identity), the caller's address, the operation, the role, how its credentials were delivered,
/// whether a service made it and whether it came through a VPC endpoint. A later call with the
/// same key, at the same time or after, adds nothing to them (the same address, an operation
/// already followed), so a pipeline may leave it out before it is held for time order. `None`
/// for a call no cloud correlation follows. Stable within a process (not across builds).
pub fn key(c: &imdsguard_event::Cloud) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let holder = match &c.instance {
        Some(i) => i,
        None if c.principal_type == Some(imdsguard_event::Principal::Workload) => {
            c.principal.as_ref()?
        }
        None => return None,
    };
    let mut h = std::hash::DefaultHasher::new();
    (
        holder,
        &c.caller_ip,
        &c.action,
        &c.role,
        &c.delivery,
        &c.invoked_by,
        c.vpc_endpoint.is_some(),
    )
        .hash(&mut h);
    Some(h.finish())
}

/// The cloud correlations' state: per instance, the addresses its own calls came from, and what
/// was already reported.
pub struct Cloud {
    inventory: Arc<Inventory>,
    /// Addresses an instance's sessions were seen using, when the inventory does not list it.
    learned: BTreeMap<String, Vec<IpAddr>>,
    /// (instance, address) found elsewhere: the first alert's id and the calls reported.
    elsewhere: BTreeMap<(String, IpAddr), (String, BTreeSet<String>)>,
    /// (instance, role) reported as fetching credentials over IMDSv1.
    imdsv1: BTreeSet<(String, String)>,
    max_keys: usize,
    /// Keys dropped to keep the state bounded.
    pub evicted: u64,
}

impl Cloud {
    /// Empty state over an inventory (empty when none was given).
    pub fn new(inventory: Arc<Inventory>, max_keys: usize) -> Cloud {
        Cloud {
            inventory,
            learned: BTreeMap::new(),
            elsewhere: BTreeMap::new(),
            imdsv1: BTreeSet::new(),
            max_keys,
            evicted: 0,
        }
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Feeds one call (in time order); returns the alerts it raises.
    pub fn push(&mut self, u: &CloudUse) -> Vec<Alert> {
        let mut out = Vec::new();
        self.elsewhere(u, &mut out);
        self.imdsv1(u, &mut out);
        for a in &mut out {
            if a.host.is_none() && u.by_identity {
                if let [i] = self.inventory.by_identity(&u.instance)[..] {
                    a.host = Some(i.host.clone().unwrap_or_else(|| i.id.clone()));
                }
            }
            self.name_host(a);
        }
        bound(&mut self.learned, self.max_keys, &mut self.evicted);
        bound(&mut self.elsewhere, self.max_keys, &mut self.evicted);
        while self.imdsv1.len() > self.max_keys {
            self.imdsv1.pop_first();
            self.evicted += 1;
        }
        out
    }

    /// Names an alert's host as the inventory does, when its host is an instance id the
    /// inventory lists: so a cloud audit record joins the incident of the host telemetry and web
    /// logs of the same machine.
    pub fn name_host(&self, a: &mut Alert) {
        let Some(h) = a.host.as_deref() else {
            return;
        };
        if let Some(name) = self
            .inventory
            .by_id(h)
            .and_then(|i| i.host.clone().or_else(|| i.name.clone()))
        {
            a.host = Some(name);
        }
    }
}

/// Drops the smallest keys past the bound, deterministically; the count says how often.
fn bound<K: Ord, V>(map: &mut BTreeMap<K, V>, max: usize, evicted: &mut u64) {
    while map.len() > max {
        map.pop_first();
        *evicted += 1;
    }
}

/// An alert of a cloud correlation, on the context of `u`'s record.
fn alert(
    meta: &Meta,
    severity: Severity,
    u: &CloudUse,
    reasons: Vec<String>,
    related: Vec<String>,
) -> Alert {
    let mut a = Alert::record(&u.context);
    a.id = format!(
        "{:016x}",
        stable_hash(&[meta.id(), &format!("{:016x}", u.record)])
    );
    a.rule_id = meta.id().to_owned();
    a.title = meta.title().to_owned();
    a.severity = severity;
    a.attack = meta
        .doc()
        .techniques()
        .iter()
        .filter_map(|t| Technique::new(t).ok())
        .collect();
    a.reasons = reasons;
    a.related = related;
    a
}

#[cfg(test)]
mod fixtures;
