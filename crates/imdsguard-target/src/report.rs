//! What `imdsguard target` prints: one [`TargetReport`] per input, as JSON or as a table row.
//!
//! The JSON shape is a contract (see `docs/ARCHITECTURE.md`): `input`, `metadata`, `provider`,
//! `endpoint`, `path`, `kind`, `encoding`, plus `port`, `query`, `headers`, `method` when known and,
//! when the input holds more than one target, the others under `targets`.

use serde::Serialize;

use crate::{Encodings, Kind, Normalizer, Target};

/// The report for one input string.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport<'a> {
    /// The input as given.
    pub input: &'a str,
    /// Whether the input points at a metadata service.
    pub metadata: bool,
    /// The most severe target's fields (all `null` when there is none).
    #[serde(flatten)]
    pub best: TargetJson<'a>,
    /// The other targets, most severe first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetJson<'a>>,
    /// What a non-target address is, when the catalog names it (`Amazon Time Sync Service`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbour: Option<&'a str>,
}

/// One target as JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetJson<'a> {
    /// Provider id.
    pub provider: Option<&'a str>,
    /// Canonical endpoint.
    pub endpoint: Option<&'a str>,
    /// Port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Normalized path.
    pub path: Option<String>,
    /// Decoded query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// What the path hands out.
    pub kind: Option<Kind>,
    /// Non-canonical forms seen.
    pub encoding: Encodings,
    /// Metadata headers present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<&'a str>,
    /// `PUT` for a token request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
}

impl<'a> From<&Target<'a>> for TargetJson<'a> {
    fn from(t: &Target<'a>) -> Self {
        TargetJson {
            provider: t.provider.map(|p| p.id.as_str()),
            endpoint: t.endpoint.map(|e| e.text.as_str()),
            port: t.port,
            path: t.path.clone(),
            query: t.query.clone(),
            kind: Some(t.kind),
            encoding: t.encoding,
            headers: t.headers.clone(),
            method: t.method,
        }
    }
}

impl<'a> TargetReport<'a> {
    /// Classifies `input` and builds its report.
    pub fn build(normalizer: &Normalizer<'a>, input: &'a str) -> TargetReport<'a> {
        Self::build_as(normalizer, input, crate::ReadAs::Text)
    }

    /// The report of `input` read as `how` says (a host, a URL, free text).
    pub fn build_as(
        normalizer: &Normalizer<'a>,
        input: &'a str,
        how: crate::ReadAs,
    ) -> TargetReport<'a> {
        let found = normalizer.find_as(input, how);
        let neighbour = if found.is_empty() {
            input
                .trim()
                .parse()
                .ok()
                .and_then(|a| normalizer.catalog().neighbour(a))
                .map(|n| n.name.as_str())
        } else {
            None
        };
        let mut all = found.iter().map(TargetJson::from);
        TargetReport {
            input,
            metadata: !found.is_empty(),
            best: all.next().unwrap_or_default(),
            targets: all.collect(),
            neighbour,
        }
    }

    /// One line for people: `input  provider  endpoint  kind  path  encodings`.
    pub fn table_row(&self, width: usize) -> String {
        let input = shorten(self.input, width);
        if !self.metadata {
            let note = self
                .neighbour
                .map(|n| format!("not metadata ({n})"))
                .unwrap_or_else(|| "not metadata".into());
            return format!("{input:<width$}  no    {note}");
        }
        let b = &self.best;
        let mut row = format!(
            "{input:<width$}  yes   {:<20}  {:<24}  {:<11}  {}",
            b.provider.unwrap_or("?"),
            b.endpoint.unwrap_or("?"),
            b.kind.map_or("", Kind::as_str),
            b.path.as_deref().unwrap_or("-"),
        );
        if !b.encoding.is_empty() {
            row.push_str(&format!("  [{}]", b.encoding));
        }
        if !self.targets.is_empty() {
            row.push_str(&format!("  (+{} more)", self.targets.len()));
        }
        row
    }
}

/// The table header matching [`TargetReport::table_row`].
pub fn table_header(width: usize) -> String {
    format!(
        "{:<width$}  META  {:<20}  {:<24}  {:<11}  PATH  [ENCODING]",
        "INPUT", "PROVIDER", "ENDPOINT", "KIND"
    )
}

fn shorten(s: &str, width: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= width {
        return one_line;
    }
    let mut out: String = one_line.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}
