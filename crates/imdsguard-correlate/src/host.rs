//! One identity per host, whatever name a record gives it.
//!
//! Windows writes a computer's short name in some records and its FQDN in others
//! (`WORKSTATION5`, `WORKSTATION5.theshire.local`); the reader has already case-folded both.
//! Baselines, correlation windows and incidents are kept under one key per host: the FQDN once
//! one is seen, the short name before. A short name joins its FQDN when exactly one FQDN with
//! that first label has been seen (the first time it is, what the short name gathered moves
//! under the FQDN); two FQDNs with the same first label (`web01.corp-a.example`,
//! `web01.corp-b.example`, or the `ip-10-0-0-5` names of two VPCs) are two hosts, and a bare
//! `web01` then stays a host of its own rather than be guessed. Addresses are keys as they are.
//! What a key becomes depends only on the order names come in, so any thread count gives the
//! same keys.

use std::collections::{BTreeMap, BTreeSet};

/// The names seen and the key each resolves to.
#[derive(Debug, Default)]
pub struct Hosts {
    /// FQDNs seen, by their first label.
    fqdns: BTreeMap<String, Vec<String>>,
    /// Short names that are keys of their own so far.
    short_keyed: BTreeSet<String>,
}

/// What resolving a name found: its key, and whether state kept under a short name must now
/// move under that key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The host's key (empty for a record that names no host).
    pub key: String,
    /// `(short, fqdn)`: the short name's state joins the FQDN's.
    pub merge: Option<(String, String)>,
}

impl Hosts {
    /// No names seen.
    pub fn new() -> Hosts {
        Hosts::default()
    }

    /// Learns the keys a store kept state under (baselines, incidents), so that a restart
    /// resolves names as the run that saved them did.
    pub fn learn<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>) {
        for k in keys {
            let _ = self.resolve(k);
        }
    }

    /// The key of a case-folded host name.
    pub fn resolve(&mut self, name: &str) -> Resolved {
        let plain = |key: &str| Resolved {
            key: key.to_owned(),
            merge: None,
        };
        if name.is_empty() || name.parse::<std::net::IpAddr>().is_ok() {
            return plain(name);
        }
        let Some((short, _)) = name.split_once('.') else {
            return match self.fqdns.get(name).map(Vec::as_slice) {
                Some([only]) => plain(only),
                _ => {
                    self.short_keyed.insert(name.to_owned());
                    plain(name)
                }
            };
        };
        let known = self.fqdns.entry(short.to_owned()).or_default();
        if known.iter().any(|f| f == name) {
            return plain(name);
        }
        known.push(name.to_owned());
        let merge = (known.len() == 1 && self.short_keyed.remove(short))
            .then(|| (short.to_owned(), name.to_owned()));
        Resolved {
            key: name.to_owned(),
            merge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_name_joins_its_one_fqdn_and_moves_what_it_gathered() {
        let mut h = Hosts::new();
        assert_eq!(h.resolve("workstation5").key, "workstation5");
        let r = h.resolve("workstation5.theshire.local");
        assert_eq!(r.key, "workstation5.theshire.local");
        assert_eq!(
            r.merge,
            Some((
                "workstation5".to_owned(),
                "workstation5.theshire.local".to_owned()
            ))
        );
        // From now on, both names are one key, and nothing moves again.
        assert_eq!(h.resolve("workstation5").key, "workstation5.theshire.local");
        assert_eq!(h.resolve("workstation5.theshire.local").merge, None);
    }

    #[test]
    fn two_domains_are_two_hosts_and_a_bare_name_is_not_guessed() {
        let mut h = Hosts::new();
        assert_eq!(h.resolve("web01.corp-a.example").merge, None);
        assert_eq!(h.resolve("web01").key, "web01.corp-a.example");
        assert_eq!(
            h.resolve("web01.corp-b.example").key,
            "web01.corp-b.example"
        );
        assert_eq!(h.resolve("web01").key, "web01");
        assert_eq!(h.resolve("10.0.0.5").key, "10.0.0.5");
        assert_eq!(h.resolve("").key, "");
    }

    #[test]
    fn learned_keys_resolve_as_before_a_restart() {
        let mut h = Hosts::new();
        h.learn(["db01.corp.example"]);
        assert_eq!(h.resolve("db01").key, "db01.corp.example");
    }
}
