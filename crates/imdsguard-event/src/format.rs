//! The registry of input formats: every format's name, the platform whose telemetry it carries,
//! whether `--format` can force it, and one line saying what it is. `--format`'s help and
//! parsing, the summaries, and Sigma's typed reading of a log source's product all derive from
//! this table; the decoder of each format is one file of `imdsguard-parse`'s `formats/`, named
//! after it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The operating system whose telemetry a format carries, as Sigma's `logsource.product` names
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// `windows`.
    Windows,
    /// `linux`.
    Linux,
}

impl Platform {
    /// Sigma's product name.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Windows => "windows",
            Platform::Linux => "linux",
        }
    }

    /// The platform Sigma's product names.
    pub fn from_product(product: &str) -> Option<Platform> {
        match product {
            "windows" => Some(Platform::Windows),
            "linux" => Some(Platform::Linux),
            _ => None,
        }
    }
}

/// What the registry says of one format.
#[derive(Debug, Clone, Copy)]
pub struct FormatInfo {
    /// The format.
    pub format: Format,
    /// The kebab-case name used in summaries, alerts and `--format`.
    pub name: &'static str,
    /// The platforms whose telemetry it carries.
    pub platforms: &'static [Platform],
    /// Whether `--format` can force it (a format read only by the regression runner cannot).
    pub selectable: bool,
    /// One line for help texts.
    pub about: &'static str,
}

use Platform::{Linux, Windows};

macro_rules! formats {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, [$($p:ident),*], $sel:literal, $about:literal; )*) => {
        /// Which decoder read the record, and so which field names it had. Serialized as
        /// [`Format::as_str`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Format {
            $( $(#[$doc])* $variant, )*
        }

        impl Format {
            /// Every format, in the registry's order.
            pub const ALL: &'static [FormatInfo] = &[$(FormatInfo {
                format: Format::$variant,
                name: $name,
                platforms: &[$($p),*],
                selectable: $sel,
                about: $about,
            },)*];
        }
    };
}

formats! {
    /// Windows events as JSON from the evtx crate or `evtx_dump` (`Event.System`,
    /// `Event.EventData`); EVTX files are read into this form.
    EvtxJson = "evtx-json", [Windows], true,
        "Windows events as JSON (evtx_dump, the evtx crate); .evtx files";
    /// Windows events flattened by NXLog `im_msvistalog` (and similar flat exports).
    NxlogJson = "nxlog-json", [Windows], true,
        "Windows events flattened by NXLog im_msvistalog";
    /// Microsoft Sentinel `WindowsEvent` rows (EventData as a JSON string).
    SentinelWindowsEvent = "sentinel-windowsevent", [Windows], true,
        "Microsoft Sentinel WindowsEvent rows";
    /// Microsoft Sentinel `SecurityEvent` rows (EventData as an XML string).
    SentinelSecurityEvent = "sentinel-securityevent", [Windows], true,
        "Microsoft Sentinel SecurityEvent rows";
    /// Winlogbeat / Elastic Agent (`winlog.event_id`, `winlog.event_data`).
    Winlogbeat = "winlogbeat", [Windows], true,
        "Winlogbeat and Elastic Agent Windows events";
    /// Microsoft Defender XDR advanced-hunting rows (export or query results).
    DefenderJson = "defender-json", [Windows], true,
        "Microsoft Defender XDR advanced-hunting rows as JSON";
    /// Microsoft Defender XDR streaming API records (`category`, `properties`).
    DefenderStreaming = "defender-streaming", [Windows], true,
        "Microsoft Defender XDR streaming API records";
    /// Microsoft Defender XDR advanced-hunting CSV export.
    DefenderCsv = "defender-csv", [Windows], true,
        "Microsoft Defender XDR advanced-hunting CSV exports";
    /// Elastic Common Schema NDJSON.
    Ecs = "ecs", [Windows, Linux], true,
        "Elastic Common Schema NDJSON (process, destination, url, dns, host.name)";
    /// Linux audit logs (auditd raw and enriched), records grouped into events by serial.
    Auditd = "auditd", [Linux], true,
        "Linux audit logs (raw and enriched), records grouped by serial";
    /// Microsoft Sentinel `Syslog` rows: Sysmon for Linux (XML message) and auoms (audit pairs).
    SentinelSyslog = "sentinel-syslog", [Linux], true,
        "Microsoft Sentinel Syslog rows (Sysmon for Linux, auoms)";
    /// Windows events as XML: `wevtutil qe /f:xml` output and Event Viewer's "Save as XML"
    /// (`<Events><Event>...`, UTF-8 or UTF-16).
    WindowsXml = "windows-xml", [Windows], true,
        "Windows events as XML (wevtutil qe /f:xml, Event Viewer's Save as XML)";
    /// Zeek's `http.log`, as JSON lines or in Zeek's TSV: HTTP requests seen on the wire.
    ZeekHttp = "zeek-http", [], true,
        "Zeek http.log, JSON lines or TSV (requests seen on the wire)";
    /// Zeek's `conn.log`, as JSON lines or in Zeek's TSV: connections seen on the wire.
    ZeekConn = "zeek-conn", [], true,
        "Zeek conn.log, JSON lines or TSV (connections seen on the wire)";
    /// Zeek's `dns.log`, as JSON lines or in Zeek's TSV: name lookups seen on the wire.
    ZeekDns = "zeek-dns", [], true,
        "Zeek dns.log, JSON lines or TSV (lookups seen on the wire)";
    /// Web server access logs: nginx and Apache `common`, `combined` and `vhost_combined`.
    WebAccess = "web-access", [], true,
        "nginx and Apache access logs (common, combined, vhost_combined)";
    /// W3C extended logs (`#Fields:` header): IIS's and CloudFront's access logs.
    W3c = "w3c", [], true,
        "W3C extended logs with a #Fields header: IIS, Amazon CloudFront";
    /// HAProxy's HTTP log, with or without its syslog header.
    Haproxy = "haproxy", [], true,
        "HAProxy HTTP logs (option httplog), with or without the syslog header";
    /// `imdsguard proxy`'s audit log: each request to the metadata service with the process
    /// behind it and the decision.
    ImdsguardProxy = "imdsguard-proxy", [], true,
        "imdsguard proxy audit logs (each metadata request, its process and decision)";
    /// Squid's access log, native or combined: requests a forward proxy sent on.
    Squid = "squid", [], true,
        "Squid forward-proxy access logs (native, combined)";
    /// AWS Application and Classic Load Balancer access logs.
    AwsAlb = "aws-alb", [], true,
        "AWS Application and Classic Load Balancer access logs";
    /// AWS WAF logs (JSON, with the request's headers).
    AwsWaf = "aws-waf", [], true,
        "AWS WAF logs (JSON, the request's headers included)";
    /// Azure Application Gateway and Front Door access logs (diagnostic JSON, Log Analytics).
    AzureHttp = "azure-http", [], true,
        "Azure Application Gateway and Front Door access logs (JSON)";
    /// Google Cloud Logging entries with an `httpRequest`: load balancers, Cloud Run, App Engine.
    GcpHttp = "gcp-http", [], true,
        "Google Cloud HTTP(S) load balancer and other request logs (JSON)";
    /// Amazon VPC flow logs, versions 2 to 5, with or without their header line.
    AwsVpcFlow = "aws-vpc-flow", [], true,
        "Amazon VPC flow logs, versions 2-5 (no metadata-service traffic: AWS does not record it)";
    /// AWS CloudTrail events: log files with a `Records` array (gzip, as delivered to S3),
    /// one event a line (CloudTrail Lake, data-lake and SIEM exports), EventBridge events.
    AwsCloudTrail = "aws-cloudtrail", [], true,
        "AWS CloudTrail (Records files, gzip or not; one event a line; EventBridge)";
    /// Azure Activity Log records: diagnostic settings (storage, Event Hub), the REST API and
    /// `az monitor activity-log list`, Log Analytics `AzureActivity` rows.
    AzureActivity = "azure-activity", [], true,
        "Azure Activity Log (diagnostic export, REST/az CLI, Log Analytics AzureActivity)";
    /// Microsoft Entra ID sign-in (users, service principals, managed identities) and audit logs,
    /// as diagnostic settings and Log Analytics write them.
    AzureEntra = "azure-entra", [], true,
        "Microsoft Entra ID sign-in and audit logs (diagnostic export, Log Analytics)";
    /// Google Cloud Audit Logs (LogEntries with an `AuditLog` payload).
    GcpAudit = "gcp-audit", [], true,
        "Google Cloud Audit Logs (LogEntry with protoPayload AuditLog)";
    /// Any JSON object read field by field, each value under its dotted path
    /// (`Event.EventData.CommandLine`): how Sigma's regression suite reads its JSON samples.
    JsonFields = "json-fields", [], false,
        "any JSON object, field by field (Sigma regression samples)";
}

impl Format {
    /// What the registry says of this format.
    pub fn info(self) -> &'static FormatInfo {
        // The table lists every variant in declaration order.
        &Format::ALL[self as usize]
    }

    /// The kebab-case name used in summaries and `--format`.
    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// The formats that carry a platform's telemetry.
    pub fn of_platform(p: Platform) -> impl Iterator<Item = Format> {
        Format::ALL
            .iter()
            .filter(move |i| i.platforms.contains(&p))
            .map(|i| i.format)
    }

    /// The formats `--format` can force.
    pub fn selectable() -> impl Iterator<Item = &'static FormatInfo> {
        Format::ALL.iter().filter(|i| i.selectable)
    }
}

/// A name that is no selectable format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Format::selectable().map(|i| i.name).collect();
        write!(
            f,
            "unknown format {:?}; formats: {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    /// A selectable format by its name.
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::selectable()
            .find(|i| i.name == s)
            .map(|i| i.format)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_declaration_order_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (i, info) in Format::ALL.iter().enumerate() {
            assert_eq!(info.format as usize, i, "{}", info.name);
            assert!(seen.insert(info.name), "{} twice", info.name);
            assert_eq!(info.format.as_str(), info.name);
            if info.selectable {
                assert_eq!(info.name.parse::<Format>(), Ok(info.format));
            }
        }
    }

    #[test]
    fn unknown_and_unselectable_names_are_refused_with_the_list() {
        let e = "evtx".parse::<Format>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown format \"evtx\"; formats: evtx-json, "),
            "{e}"
        );
        assert!(!e.contains("json-fields"));
        assert!("json-fields".parse::<Format>().is_err());
    }

    #[test]
    fn platforms_are_sigma_products() {
        let linux: Vec<&str> = Format::of_platform(Platform::Linux)
            .map(Format::as_str)
            .collect();
        assert_eq!(linux, ["ecs", "auditd", "sentinel-syslog"]);
        assert!(Format::of_platform(Platform::Windows).any(|f| f == Format::DefenderCsv));
        assert_eq!(Platform::from_product("windows"), Some(Platform::Windows));
        assert_eq!(Platform::from_product("macos"), None);
    }
}
