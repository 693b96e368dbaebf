//! YAML documents read with bounds: a file larger than [`MAX_BYTES`], or whose aliases would
//! expand it past [`MAX_NODES`] nodes (a "billion laughs": each alias is a copy of what its
//! anchor holds, so ten nested aliases of ten make ten billion), is refused before it is built,
//! whatever key the aliases sit under.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::{Yaml, YamlLoader};

/// The largest YAML text read (SigmaHQ's largest rule file is under 300 KB).
pub const MAX_BYTES: usize = 8 << 20;

/// The most nodes the documents may hold once every alias is expanded (SigmaHQ's largest rule
/// has a few thousand).
pub const MAX_NODES: u64 = 1_000_000;

/// The documents of a YAML text, or why they are refused (too large, aliases expanding past the
/// limit, or not YAML).
pub fn load(text: &str) -> Result<Vec<Yaml>, String> {
    if text.len() > MAX_BYTES {
        return Err(format!(
            "{} bytes, more than the {MAX_BYTES} a YAML file may hold here",
            text.len()
        ));
    }
    // Without an anchor (`&`) there is no alias to expand: most rule files are read once.
    if !text.contains('&') {
        return YamlLoader::load_from_str(text).map_err(|e| e.to_string());
    }
    let mut count = Count::default();
    Parser::new_from_str(text)
        .load(&mut count, true)
        .map_err(|e| e.to_string())?;
    if count.nodes > MAX_NODES {
        return Err(format!(
            "its aliases expand it to more than {MAX_NODES} nodes (an alias bomb?); refused"
        ));
    }
    YamlLoader::load_from_str(text).map_err(|e| e.to_string())
}

/// Counts the nodes the documents hold with every alias expanded, without building them.
#[derive(Default)]
struct Count {
    nodes: u64,
    /// Open collections: their anchor and the count when they began.
    open: Vec<(usize, u64)>,
    /// Each anchor's expanded size.
    sizes: std::collections::HashMap<usize, u64>,
}

impl MarkedEventReceiver for Count {
    fn on_event(&mut self, ev: Event, _: Marker) {
        match ev {
            Event::Scalar(_, _, anchor, _) => {
                self.nodes = self.nodes.saturating_add(1);
                if anchor > 0 {
                    self.sizes.insert(anchor, 1);
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((anchor, self.nodes));
                self.nodes = self.nodes.saturating_add(1);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, start)) = self.open.pop() {
                    if anchor > 0 {
                        self.sizes.insert(anchor, self.nodes - start);
                    }
                }
            }
            Event::Alias(id) => {
                let size = self.sizes.get(&id).copied().unwrap_or(1);
                self.nodes = self.nodes.saturating_add(size);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nine levels of ten aliases each: 10^9 nodes from a few hundred bytes.
    fn bomb(levels: usize) -> String {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..levels {
            let p = i - 1;
            s.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        s
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_is_built() {
        let e = load(&bomb(9)).unwrap_err();
        assert!(e.contains("alias bomb"), "{e}");
        // Small uses of aliases read as before.
        let docs = load(&bomb(3)).unwrap();
        assert_eq!(docs[0]["a2"].as_vec().unwrap().len(), 10);
    }

    #[test]
    fn a_text_too_large_is_refused() {
        let e = load(&"#".repeat(MAX_BYTES + 1)).unwrap_err();
        assert!(e.contains("more than"), "{e}");
    }
}
