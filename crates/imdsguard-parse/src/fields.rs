//! Field access over the shapes records come in: JSON objects, and `Name=value` pairs read from
//! XML EventData. Values are read as text whatever their JSON type, and the placeholders Windows
//! writes for "none" (`-`, empty) read as absent.

use std::borrow::Cow;

use crate::json::{Map, Value};

/// Named fields of one record.
pub(crate) trait Fields {
    /// The field's text, if present.
    fn raw(&self, name: &str) -> Option<Cow<'_, str>>;

    /// Every field with a scalar value, in record order.
    fn each(&self, f: &mut dyn FnMut(&str, Cow<'_, str>));

    /// The first of `names` that is present, as the record holds it (no copy when it can borrow).
    fn raw_any(&self, names: &[&str]) -> Option<Cow<'_, str>> {
        names.iter().find_map(|n| self.raw(n))
    }

    /// The first of `names` that is present and not a placeholder.
    fn text(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| {
            let v = self.raw(n)?;
            let t = v.trim();
            (!t.is_empty() && t != "-").then(|| t.to_owned())
        })
    }

    /// The first of `names` read as a number: decimal, or hex with `0x` (Windows writes process
    /// ids of 4688 that way).
    fn number(&self, names: &[&str]) -> Option<u64> {
        let t = self.text(names)?;
        match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => t.parse().ok(),
        }
    }

    /// The first of `names` read as a port.
    fn port(&self, names: &[&str]) -> Option<u16> {
        self.number(names).and_then(|n| u16::try_from(n).ok())
    }
}

impl Fields for Map<'_> {
    fn each(&self, f: &mut dyn FnMut(&str, Cow<'_, str>)) {
        for (k, v) in self.iter() {
            match v {
                Value::String(s) => f(k, Cow::Borrowed(s)),
                Value::Number(n) => f(k, Cow::Owned(n.to_string())),
                Value::Bool(b) => f(k, Cow::Owned(b.to_string())),
                // Unnamed EventData (`<Data>a</Data><Data>b</Data>`) renders as a list or as
                // `{"#text": [...]}`: each value is kept under the key.
                Value::Array(items) => items.iter().for_each(|x| scalar(k, x, f)),
                Value::Object(o) => {
                    if let Some(t) = o.get("#text") {
                        match t {
                            Value::Array(items) => items.iter().for_each(|x| scalar(k, x, f)),
                            x => scalar(k, x, f),
                        }
                    }
                }
                Value::Null => {}
            }
        }
    }

    fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.get(name)? {
            Value::String(s) => Some(Cow::Borrowed(s)),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            _ => None,
        }
    }
}

fn scalar(k: &str, v: &Value<'_>, f: &mut dyn FnMut(&str, Cow<'_, str>)) {
    match v {
        Value::String(s) => f(k, Cow::Borrowed(s)),
        Value::Number(n) => f(k, Cow::Owned(n.to_string())),
        Value::Bool(b) => f(k, Cow::Owned(b.to_string())),
        _ => {}
    }
}

/// Fields read from elsewhere (XML EventData), searched in order, then a fallback.
pub(crate) struct Layered<'a> {
    pub pairs: Vec<(String, String)>,
    pub fallback: Option<&'a Map<'a>>,
}

impl Fields for Layered<'_> {
    fn each(&self, f: &mut dyn FnMut(&str, Cow<'_, str>)) {
        for (k, v) in &self.pairs {
            f(k, Cow::Borrowed(v));
        }
        if let Some(m) = self.fallback {
            m.each(f);
        }
    }

    fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_str()))
            .or_else(|| self.fallback.and_then(|m| m.raw(name)))
    }
}

/// An object member by path (`["winlog", "event_data"]`).
pub(crate) fn object<'a, 'v>(v: &'a Map<'v>, path: &[&str]) -> Option<&'a Map<'v>> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?.as_object()?;
    }
    Some(cur)
}

/// `<Data Name="X">value</Data>` pairs of an XML EventData string, entities decoded.
pub(crate) fn xml_event_data(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Data Name=") {
        rest = &rest[start + "<Data Name=".len()..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let Some(name_end) = rest[1..].find(quote) else {
            break;
        };
        let name = rest[1..1 + name_end].to_owned();
        rest = &rest[1 + name_end + 1..];
        let Some(gt) = rest.find('>') else { break };
        if rest[..gt].ends_with('/') {
            rest = &rest[gt + 1..];
            out.push((name, String::new()));
            continue;
        }
        rest = &rest[gt + 1..];
        let Some(close) = rest.find("</Data>") else {
            break;
        };
        out.push((name, xml_unescape(&rest[..close])));
        rest = &rest[close..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_read_as_text_and_skip_placeholders() {
        let m: Map<'_> =
            serde_json::from_str(r#"{"A":"-","B":" x ","N":80,"H":"0x1a2b","T":true}"#).unwrap();
        assert_eq!(m.text(&["A", "B"]), Some("x".into()));
        assert_eq!(m.port(&["N"]), Some(80));
        assert_eq!(m.number(&["H"]), Some(0x1a2b));
        assert_eq!(m.text(&["T"]), Some("true".into()));
        assert_eq!(m.text(&["Missing"]), None);
        assert_eq!(m.port(&["H"]), Some(0x1a2b));
    }

    #[test]
    fn xml_event_data_pairs() {
        let xml = r#"<EventData xmlns="x">
  <Data Name="ProcessID">7716</Data>
  <Data Name="Application">\device\harddiskvolume2\a&amp;b.exe</Data>
  <Data Name="Empty" />
  <Data Name='Q'>&lt;x&gt;</Data>
</EventData>"#;
        let pairs = xml_event_data(xml);
        assert_eq!(
            pairs,
            vec![
                ("ProcessID".into(), "7716".into()),
                (
                    "Application".into(),
                    r"\device\harddiskvolume2\a&b.exe".into()
                ),
                ("Empty".into(), String::new()),
                ("Q".into(), "<x>".into()),
            ]
        );
    }
}
