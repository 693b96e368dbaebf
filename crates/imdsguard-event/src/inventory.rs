//! The cloud instances an inventory lists (`aws ec2 describe-instances`, `az vm list -d`,
//! `gcloud compute instances list`): what ties an instance id in a cloud audit log to a host
//! name in host telemetry and to the addresses its own calls come from, and the metadata
//! settings that leave it open to credential theft.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

/// One instance (an EC2 instance, an Azure VM, a Compute Engine instance).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Instance {
    /// `aws`, `azure`, `gcp`.
    pub provider: &'static str,
    /// The provider's id: `i-0abc…`, an Azure resource id, a Compute Engine instance id.
    pub id: String,
    /// The host name its telemetry names it by (EC2's private DNS name, the VM's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A `Name` tag or display name, when it differs from the host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its private addresses (every interface).
    pub private_ips: Vec<IpAddr>,
    /// Its public addresses (elastic or ephemeral).
    pub public_ips: Vec<IpAddr>,
    /// The identity its metadata service hands out: an instance profile's ARN, a managed
    /// identity's principal id, a service account's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// AWS `HttpTokens`: `required` or `optional` (IMDSv1 allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_tokens: Option<String>,
    /// AWS `HttpPutResponseHopLimit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop_limit: Option<u32>,
    /// AWS `HttpEndpoint`: `enabled` or `disabled`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The region or zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether its tags or labels say it runs containers for a cluster (an EKS, AKS or GKE
    /// node, an ECS container instance).
    pub container_host: bool,
}

impl Instance {
    /// Whether `ip` is one of the instance's own addresses.
    pub fn owns(&self, ip: IpAddr) -> bool {
        self.private_ips.contains(&ip) || self.public_ips.contains(&ip)
    }
}

/// The instances of one or more inventory files, looked up by id, host name and address.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    instances: Vec<Instance>,
    by_id: HashMap<String, usize>,
    by_ip: HashMap<IpAddr, usize>,
    by_host: HashMap<String, usize>,
}

impl Inventory {
    /// An inventory of `instances` (a later one with the same id replaces an earlier one).
    pub fn new(instances: Vec<Instance>) -> Inventory {
        let mut inv = Inventory::default();
        for i in instances {
            inv.add(i);
        }
        inv
    }

    /// Adds (or replaces) an instance.
    pub fn add(&mut self, i: Instance) {
        let at = match self.by_id.get(&i.id.to_ascii_lowercase()) {
            Some(&at) => {
                self.instances[at] = i;
                at
            }
            None => {
                self.instances.push(i);
                self.instances.len() - 1
            }
        };
        let i = &self.instances[at];
        self.by_id.insert(i.id.to_ascii_lowercase(), at);
        for ip in i.private_ips.iter().chain(&i.public_ips) {
            self.by_ip.insert(*ip, at);
        }
        if let Some(h) = &i.host {
            self.by_host
                .insert(crate::host_key(&h.to_ascii_lowercase()).to_owned(), at);
        }
    }

    /// Every instance, in the order read.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    /// Whether it lists nothing.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The instance with this id (case-insensitive: Azure resource ids vary in case).
    pub fn by_id(&self, id: &str) -> Option<&Instance> {
        self.by_id
            .get(&id.to_ascii_lowercase())
            .map(|&i| &self.instances[i])
    }

    /// The instance that owns this address.
    pub fn by_ip(&self, ip: IpAddr) -> Option<&Instance> {
        self.by_ip.get(&ip).map(|&i| &self.instances[i])
    }

    /// The instances whose metadata service hands out this identity (a service account's email,
    /// a managed identity's principal id).
    pub fn by_identity(&self, identity: &str) -> Vec<&Instance> {
        self.instances
            .iter()
            .filter(|i| {
                i.identity
                    .as_deref()
                    .is_some_and(|x| x.eq_ignore_ascii_case(identity))
            })
            .collect()
    }

    /// The instance with this host name (its short name matches).
    pub fn by_host(&self, host: &str) -> Option<&Instance> {
        self.by_host
            .get(crate::host_key(&host.to_ascii_lowercase()))
            .map(|&i| &self.instances[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_found_by_id_address_and_short_host_name() {
        let inv = Inventory::new(vec![Instance {
            provider: "aws",
            id: "i-0abc".into(),
            host: Some("ip-10-0-1-5.ec2.internal".into()),
            private_ips: vec!["10.0.1.5".parse().unwrap()],
            public_ips: vec!["3.5.7.9".parse().unwrap()],
            ..Default::default()
        }]);
        assert_eq!(inv.by_id("I-0ABC").unwrap().id, "i-0abc");
        assert!(inv.by_ip("3.5.7.9".parse().unwrap()).is_some());
        assert!(inv.by_ip("3.5.7.8".parse().unwrap()).is_none());
        assert!(inv.by_host("IP-10-0-1-5").is_some());
        assert!(inv
            .by_id("i-0abc")
            .unwrap()
            .owns("10.0.1.5".parse().unwrap()));
    }
}
