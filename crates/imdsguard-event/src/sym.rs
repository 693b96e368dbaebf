//! Interned field names: a rule resolves each field name it reads to a [`Sym`] once, when it is
//! compiled; decoders keep a record's raw fields only under names some rule interned, so an event
//! never carries (and a rule never compares) field names as strings.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

/// An interned field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(u32);

struct Table {
    ids: HashMap<&'static str, u32>,
    names: Vec<&'static str>,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| {
    RwLock::new(Table {
        ids: HashMap::new(),
        names: Vec::new(),
    })
});

/// Names are interned by rules only (not by input), so the table is bounded by the rule set.
const MAX_NAMES: usize = 1 << 20;

impl Sym {
    /// The symbol of `name`, interning it. Called when rules compile.
    ///
    /// # Panics
    /// When more than a million distinct names are interned (a rule set far beyond any real one).
    pub fn intern(name: &str) -> Sym {
        if let Some(s) = Sym::lookup(name) {
            return s;
        }
        let mut t = TABLE.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = t.ids.get(name) {
            return Sym(id);
        }
        assert!(t.names.len() < MAX_NAMES, "too many distinct field names");
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let id = t.names.len() as u32;
        t.names.push(leaked);
        t.ids.insert(leaked, id);
        Sym(id)
    }

    /// The symbol of `name` if a rule interned it. Called by decoders per field.
    pub fn lookup(name: &str) -> Option<Sym> {
        let t = TABLE.read().unwrap_or_else(|p| p.into_inner());
        t.ids.get(name).map(|&id| Sym(id))
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        let t = TABLE.read().unwrap_or_else(|p| p.into_inner());
        t.names[self.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_lookup_does_not_intern() {
        let a = Sym::intern("Image-sym-test");
        assert_eq!(Sym::intern("Image-sym-test"), a);
        assert_eq!(Sym::lookup("Image-sym-test"), Some(a));
        assert_eq!(a.as_str(), "Image-sym-test");
        assert_eq!(Sym::lookup("never-interned-name"), None);
        assert_ne!(Sym::intern("CommandLine-sym-test"), a);
    }
}
