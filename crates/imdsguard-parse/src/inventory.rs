//! Inventory files: what `aws ec2 describe-instances`, `az vm list -d` and
//! `gcloud compute instances list --format=json` print, read into [`Instance`]s. Each is told
//! by its shape (`Reservations[].Instances[]`; a list of VMs with `vmId` or `privateIps`; a list
//! of instances with `networkInterfaces[].networkIP`). An entry without an id is named, with its
//! place, and the rest read.

use std::net::IpAddr;
use std::path::Path;

use imdsguard_event::{Instance, Inventory};
use serde_json::Value;

use crate::InputError;

/// What an inventory file held: its instances, and the entries not read with why.
#[derive(Debug, Default)]
pub struct InventoryRead {
    /// The instances.
    pub instances: Vec<Instance>,
    /// `file: entry N: why`, one per entry not read.
    pub skipped: Vec<String>,
}

/// Whether a JSON value is an inventory of one of the shapes read.
pub fn is_inventory(v: &Value) -> bool {
    v.get("Reservations").is_some_and(Value::is_array)
        || v.as_array()
            .and_then(|a| a.first())
            .is_some_and(|f| azure_vm(f) || gcp_instance(f))
}

fn azure_vm(v: &Value) -> bool {
    v.get("vmId").is_some() || (v.get("privateIps").is_some() && v.get("id").is_some())
}

fn gcp_instance(v: &Value) -> bool {
    v.get("networkInterfaces")
        .and_then(Value::as_array)
        .and_then(|n| n.first())
        .is_some_and(|n| n.get("networkIP").is_some())
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn ip(s: &str) -> Option<IpAddr> {
    s.trim().parse().ok()
}

fn push(list: &mut Vec<IpAddr>, a: Option<IpAddr>) {
    if let Some(a) = a {
        if !list.contains(&a) {
            list.push(a);
        }
    }
}

/// Reads an inventory file.
pub fn read_inventory(path: &Path) -> Result<InventoryRead, InputError> {
    let io = |source| InputError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a JSON inventory: {e}"),
        ))
    })?;
    let name = path.display().to_string();
    parse_inventory(&name, &v).ok_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not an inventory: expected the JSON of `aws ec2 describe-instances`, `az vm list -d` \
             or `gcloud compute instances list --format=json`",
        ))
    })
}

/// The instances of an inventory value; `None` when it is of no shape read.
pub fn parse_inventory(name: &str, v: &Value) -> Option<InventoryRead> {
    let mut out = InventoryRead::default();
    if let Some(res) = v.get("Reservations").and_then(Value::as_array) {
        let mut n = 0;
        for r in res {
            for i in r
                .get("Instances")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                n += 1;
                match aws(i) {
                    Some(i) => out.instances.push(i),
                    None => out
                        .skipped
                        .push(format!("{name}: instance {n}: no InstanceId")),
                }
            }
        }
        return Some(out);
    }
    let list = v.as_array()?;
    let first = list.first()?;
    let (read, what): (fn(&Value) -> Option<Instance>, &str) = if azure_vm(first) {
        (azure, "no id")
    } else if gcp_instance(first) {
        (gcp, "no id")
    } else {
        return None;
    };
    for (n, i) in list.iter().enumerate() {
        match read(i) {
            Some(i) => out.instances.push(i),
            None => out.skipped.push(format!("{name}: entry {}: {what}", n + 1)),
        }
    }
    Some(out)
}

/// An instance of `aws ec2 describe-instances`.
fn aws(v: &Value) -> Option<Instance> {
    let mut i = Instance {
        provider: "aws",
        id: text(v, "InstanceId")?,
        host: text(v, "PrivateDnsName"),
        ..Default::default()
    };
    let tags: Vec<(String, String)> = v
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((text(t, "Key")?, text(t, "Value").unwrap_or_default())))
        .collect();
    i.name = tags
        .iter()
        .find(|(k, _)| k == "Name")
        .map(|(_, v)| v.clone());
    i.container_host = tags.iter().any(|(k, _)| {
        k.starts_with("kubernetes.io/cluster/")
            || matches!(
                k.as_str(),
                "eks:cluster-name"
                    | "aws:eks:cluster-name"
                    | "eks:nodegroup-name"
                    | "AmazonECSManaged"
            )
    });
    push(
        &mut i.private_ips,
        text(v, "PrivateIpAddress").and_then(|s| ip(&s)),
    );
    push(
        &mut i.public_ips,
        text(v, "PublicIpAddress").and_then(|s| ip(&s)),
    );
    for n in v
        .get("NetworkInterfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in n
            .get("PrivateIpAddresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push(
                &mut i.private_ips,
                text(p, "PrivateIpAddress").and_then(|s| ip(&s)),
            );
            if let Some(a) = p.get("Association") {
                push(&mut i.public_ips, text(a, "PublicIp").and_then(|s| ip(&s)));
            }
        }
        for p in n
            .get("Ipv6Addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push(
                &mut i.public_ips,
                text(p, "Ipv6Address").and_then(|s| ip(&s)),
            );
        }
    }
    if let Some(m) = v.get("MetadataOptions") {
        i.http_tokens = text(m, "HttpTokens");
        i.hop_limit = m
            .get("HttpPutResponseHopLimit")
            .and_then(Value::as_u64)
            .and_then(|h| u32::try_from(h).ok());
        i.endpoint = text(m, "HttpEndpoint");
    }
    i.identity = v.get("IamInstanceProfile").and_then(|p| text(p, "Arn"));
    i.region = v.get("Placement").and_then(|p| text(p, "AvailabilityZone"));
    Some(i)
}

/// A VM of `az vm list -d` (`privateIps` and `publicIps` are comma-separated).
fn azure(v: &Value) -> Option<Instance> {
    let mut i = Instance {
        provider: "azure",
        id: text(v, "id").or_else(|| text(v, "vmId"))?,
        host: text(v, "name").or_else(|| v.get("osProfile").and_then(|o| text(o, "computerName"))),
        ..Default::default()
    };
    for a in text(v, "privateIps").unwrap_or_default().split(',') {
        push(&mut i.private_ips, ip(a));
    }
    for a in text(v, "publicIps").unwrap_or_default().split(',') {
        push(&mut i.public_ips, ip(a));
    }
    i.identity = v.get("identity").and_then(|id| text(id, "principalId"));
    i.container_host = v
        .get("tags")
        .and_then(Value::as_object)
        .is_some_and(|t| t.keys().any(|k| k.starts_with("aks-managed-")));
    i.region = text(v, "location");
    Some(i)
}

/// An instance of `gcloud compute instances list --format=json`.
fn gcp(v: &Value) -> Option<Instance> {
    let mut i = Instance {
        provider: "gcp",
        id: text(v, "id").or_else(|| v.get("id").and_then(Value::as_u64).map(|n| n.to_string()))?,
        host: text(v, "name"),
        ..Default::default()
    };
    for n in v
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push(
            &mut i.private_ips,
            text(n, "networkIP").and_then(|s| ip(&s)),
        );
        for a in n
            .get("accessConfigs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push(&mut i.public_ips, text(a, "natIP").and_then(|s| ip(&s)));
        }
    }
    i.identity = v
        .get("serviceAccounts")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
        .and_then(|s| text(s, "email"));
    i.region = text(v, "zone").map(|z| z.rsplit('/').next().unwrap_or(&z).to_owned());
    i.container_host = v
        .get("labels")
        .and_then(Value::as_object)
        .is_some_and(|l| l.contains_key("goog-gke-node"));
    Some(i)
}

/// The inputs that are inventory files, told by their first 4 KiB and confirmed by reading them
/// whole (named files only, not directories' members), and the rest in order: so an inventory
/// given among the logs is used as one.
pub fn split_inputs(
    inputs: &[std::path::PathBuf],
) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    let mut logs = Vec::new();
    let mut inventories = Vec::new();
    for p in inputs {
        if looks_like_inventory(p) && read_inventory(p).is_ok() {
            inventories.push(p.clone());
        } else {
            logs.push(p.clone());
        }
    }
    (logs, inventories)
}

/// Whether a named file's first bytes look like an inventory: a JSON object whose first member
/// is `Reservations`, or a list whose first entry has `vmId` or `networkInterfaces`.
fn looks_like_inventory(p: &Path) -> bool {
    use std::io::Read;
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if !meta.is_file() || meta.len() > 256 * 1024 * 1024 {
        return false;
    }
    let mut head = [0u8; 4096];
    let Ok(n) = std::fs::File::open(p).and_then(|mut f| f.read(&mut head)) else {
        return false;
    };
    let head = String::from_utf8_lossy(&head[..n]);
    let t = head.trim_start();
    (t.starts_with('{') && t[1..].trim_start().starts_with("\"Reservations\""))
        || (t.starts_with('[') && (t.contains("\"vmId\"") || t.contains("\"networkInterfaces\"")))
}

/// Reads every inventory file into one inventory; what was not read is in the second value.
pub fn load_inventories(
    paths: &[std::path::PathBuf],
) -> Result<(Inventory, Vec<String>), InputError> {
    let mut inv = Inventory::default();
    let mut skipped = Vec::new();
    for p in paths {
        let r = read_inventory(p)?;
        for i in r.instances {
            inv.add(i);
        }
        skipped.extend(r.skipped);
    }
    Ok((inv, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_instances_gives_addresses_metadata_options_and_profile() {
        let v: Value = serde_json::from_str(r#"{"Reservations":[{"Instances":[{"InstanceId":"i-0317f6c6b66ae9c40","PrivateDnsName":"ip-10-0-0-5.ec2.internal","PrivateIpAddress":"10.0.0.5","PublicIpAddress":"35.174.154.220","NetworkInterfaces":[{"PrivateIpAddresses":[{"PrivateIpAddress":"10.0.0.5","Association":{"PublicIp":"35.174.154.220"}},{"PrivateIpAddress":"10.0.0.6"}],"Ipv6Addresses":[{"Ipv6Address":"2600:1f18::5"}]}],"MetadataOptions":{"State":"applied","HttpTokens":"optional","HttpPutResponseHopLimit":2,"HttpEndpoint":"enabled"},"IamInstanceProfile":{"Arn":"arn:aws:iam::1:instance-profile/web"},"Tags":[{"Key":"Name","Value":"proxy"},{"Key":"kubernetes.io/cluster/prod","Value":"owned"}]},{"PrivateIpAddress":"10.0.0.9"}]}]}"#).unwrap();
        let r = parse_inventory("inv.json", &v).unwrap();
        assert_eq!(r.instances.len(), 1);
        assert_eq!(r.skipped, vec!["inv.json: instance 2: no InstanceId"]);
        let i = &r.instances[0];
        assert_eq!(i.private_ips.len(), 2);
        assert_eq!(i.public_ips.len(), 2);
        assert_eq!(i.http_tokens.as_deref(), Some("optional"));
        assert_eq!(i.hop_limit, Some(2));
        assert_eq!(i.name.as_deref(), Some("proxy"));
        assert!(i.container_host);
        assert_eq!(
            i.identity.as_deref(),
            Some("arn:aws:iam::1:instance-profile/web")
        );
    }

    #[test]
    fn azure_and_google_lists_are_told_by_shape() {
        let v: Value = serde_json::from_str(r#"[{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web1","name":"web1","vmId":"0000","privateIps":"10.1.0.4,10.1.0.5","publicIps":"20.1.2.3","location":"westeurope","identity":{"type":"SystemAssigned","principalId":"p-1"}}]"#).unwrap();
        let r = parse_inventory("az.json", &v).unwrap();
        assert_eq!(r.instances[0].provider, "azure");
        assert_eq!(r.instances[0].private_ips.len(), 2);
        assert_eq!(r.instances[0].identity.as_deref(), Some("p-1"));
        let v: Value = serde_json::from_str(r#"[{"id":"123","name":"gke-node-1","zone":"https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a","networkInterfaces":[{"networkIP":"10.128.0.2","accessConfigs":[{"natIP":"34.1.2.3"}]}],"serviceAccounts":[{"email":"sa@p.iam.gserviceaccount.com"}]}]"#).unwrap();
        let r = parse_inventory("gcp.json", &v).unwrap();
        assert_eq!(r.instances[0].provider, "gcp");
        assert_eq!(r.instances[0].region.as_deref(), Some("us-central1-a"));
        assert_eq!(r.instances[0].public_ips[0].to_string(), "34.1.2.3");
        assert!(parse_inventory("x.json", &serde_json::json!([{"a": 1}])).is_none());
    }
}
