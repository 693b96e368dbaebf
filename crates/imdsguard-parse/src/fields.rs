//! Field access over the shapes records come in: JSON objects, and `Name=value` pairs read from
//! XML EventData. Values are read as text whatever their JSON type, and the placeholders Windows
//! writes for "none" (`-`, empty) read as absent.

use std::borrow::Cow;

use crate::json::{Map, Value};

/// Named fields of one record.
pub(crate) trait Fields {
    /// The field's text, if present.
    fn raw(&self, name: &str) -> Option<Cow<'_, str>>;

    /// Every field with a scalar value, in record order. The value is read as text only when the
    /// caller asks ([`Scalar::text`]): most callers keep a few names and skip the rest.
    fn each(&self, f: &mut dyn FnMut(&str, Scalar<'_>));

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

/// A field's value as a record holds it, turned into text on demand.
#[derive(Clone, Copy)]
pub(crate) enum Scalar<'v> {
    /// A JSON string, number or boolean.
    Json(&'v Value<'v>),
    /// Text read from elsewhere.
    Text(&'v str),
}

impl<'v> Scalar<'v> {
    /// The value as text: borrowed for strings, written out for numbers and booleans.
    pub(crate) fn text(self) -> Cow<'v, str> {
        match self {
            Scalar::Json(Value::String(s)) => Cow::Borrowed(s.as_str()),
            Scalar::Json(Value::Number(n)) => Cow::Owned(n.text()),
            Scalar::Json(Value::Bool(b)) => Cow::Owned(b.to_string()),
            Scalar::Json(_) => Cow::Borrowed(""),
            Scalar::Text(t) => Cow::Borrowed(t),
        }
    }
}

/// One member of a record's data, as text: scalars, and the values of unnamed EventData
/// (`<Data>a</Data><Data>b</Data>` renders as a list or as `{"#text": [...]}`), each kept under
/// the key.
fn member<'v>(k: &str, v: &'v Value<'v>, f: &mut dyn FnMut(&str, Scalar<'_>)) {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => f(k, Scalar::Json(v)),
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

impl Fields for Map<'_> {
    fn each(&self, f: &mut dyn FnMut(&str, Scalar<'_>)) {
        for (k, v) in self.iter() {
            member(k, v, f);
        }
    }

    fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.get(name)? {
            Value::String(s) => Some(Cow::Borrowed(s)),
            Value::Number(n) => Some(Cow::Owned(n.text())),
            Value::Bool(b) => Some(Cow::Owned(b.to_string())),
            _ => None,
        }
    }
}

fn scalar<'v>(k: &str, v: &'v Value<'v>, f: &mut dyn FnMut(&str, Scalar<'_>)) {
    if let Value::String(_) | Value::Number(_) | Value::Bool(_) = v {
        f(k, Scalar::Json(v))
    }
}

/// The fields of a Windows record's `UserData`, which nests them in an element named for the
/// event (`{"LogFileCleared": {"SubjectUserName": ...}}`, sometimes deeper): every leaf under
/// its own name, as EventData's are, the elements' XML attributes left out.
pub(crate) struct Nested<'a>(pub &'a Map<'a>);

impl Nested<'_> {
    fn walk<'v>(m: &'v Map<'v>, depth: u8, f: &mut dyn FnMut(&str, Scalar<'_>)) {
        for (k, v) in m.iter() {
            match v {
                Value::Object(o) if k != "#attributes" && !o.contains_key("#text") => {
                    if depth < MAX_NESTING {
                        Self::walk(o, depth + 1, f);
                    }
                }
                Value::Array(items) if items.iter().any(|x| x.as_object().is_some()) => {
                    for o in items.iter().filter_map(Value::as_object) {
                        if depth < MAX_NESTING {
                            Self::walk(o, depth + 1, f);
                        }
                    }
                }
                _ if k == "#attributes" => {}
                _ => member(k, v, f),
            }
        }
    }
}

/// How deep `UserData` elements are followed (Windows nests them two or three levels).
const MAX_NESTING: u8 = 8;

impl Fields for Nested<'_> {
    fn each(&self, f: &mut dyn FnMut(&str, Scalar<'_>)) {
        Self::walk(self.0, 0, f);
    }

    fn raw(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut found = None;
        self.each(&mut |k, v| {
            if found.is_none() && k == name {
                found = Some(v.text().into_owned());
            }
        });
        found.map(Cow::Owned)
    }
}

/// Fields read from elsewhere (XML EventData), searched in order, then a fallback.
pub(crate) struct Layered<'a> {
    pub pairs: Vec<(String, String)>,
    pub fallback: Option<&'a Map<'a>>,
}

impl Fields for Layered<'_> {
    fn each(&self, f: &mut dyn FnMut(&str, Scalar<'_>)) {
        for (k, v) in &self.pairs {
            f(k, Scalar::Text(v));
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

/// The leaf elements of an event's `<UserData>` (`<LogFileCleared ...><SubjectUserName>x
/// </SubjectUserName>...`) as name and text, entities decoded: the fields of events that carry
/// no EventData (Security 1102, many operational channels). A namespace prefix is dropped.
pub(crate) fn xml_user_data(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(start) = xml.find("<UserData") else {
        return out;
    };
    let body = &xml[start..];
    let body = &body[..body.find("</UserData>").unwrap_or(body.len())];
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if rest.starts_with(['/', '?', '!']) {
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        if tag.ends_with('/') {
            rest = &rest[gt + 1..];
            continue;
        }
        let name = tag.split([' ', '\t', '\r', '\n']).next().unwrap_or("");
        let after = &rest[gt + 1..];
        // A leaf: text up to the next tag, which closes this one.
        let text_end = after.find('<').unwrap_or(after.len());
        let close = format!("</{name}>");
        if after[text_end..].starts_with(&close) {
            let local = name.rsplit(':').next().unwrap_or(name);
            if local != "UserData" {
                out.push((local.to_owned(), xml_unescape(after[..text_end].trim())));
            }
            rest = &after[text_end + close.len()..];
        } else {
            rest = after;
        }
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
    fn xml_user_data_leaves() {
        let xml = r#"<Event><System><EventID>1102</EventID></System><UserData><LogFileCleared xmlns="http://manifests.microsoft.com/win/2004/08/windows/eventlog"><SubjectUserSid>S-1-5-21-1</SubjectUserSid><SubjectUserName>admin01</SubjectUserName><Empty/><Nested><Inner>a&amp;b</Inner></Nested></LogFileCleared></UserData></Event>"#;
        assert_eq!(
            xml_user_data(xml),
            vec![
                ("SubjectUserSid".into(), "S-1-5-21-1".into()),
                ("SubjectUserName".into(), "admin01".into()),
                ("Inner".into(), "a&b".into()),
            ]
        );
    }

    #[test]
    fn user_data_json_is_read_as_flat_fields() {
        let m: Map<'_> = serde_json::from_str(
            r##"{"LogFileCleared":{"#attributes":{"xmlns":"x"},"SubjectUserSid":"S-1-5-21-1","SubjectUserName":"admin01","Deeper":{"Inner":7}}}"##,
        )
        .unwrap();
        let n = Nested(&m);
        let mut all = Vec::new();
        n.each(&mut |k, v| all.push((k.to_owned(), v.text().into_owned())));
        assert_eq!(
            all,
            vec![
                ("SubjectUserSid".to_owned(), "S-1-5-21-1".to_owned()),
                ("SubjectUserName".to_owned(), "admin01".to_owned()),
                ("Inner".to_owned(), "7".to_owned()),
            ]
        );
        assert_eq!(n.text(&["SubjectUserName"]), Some("admin01".into()));
        assert_eq!(n.raw("xmlns"), None);
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
