//! Field names of records: a rule resolves each field name it reads to a [`Sym`] once, when it is
//! compiled; the rule set then freezes the names its rules read into a [`FieldSet`], which the
//! reader is handed, so an event carries only the record fields some loaded rule reads, and
//! neither side compares field names as strings per event.
//!
//! The table behind [`Sym`] only gives names their numbers (so that the same name is the same
//! symbol in every rule set of a process); what decoders keep is decided by the `FieldSet` they
//! are given, never by what the table holds.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

/// A field name, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(u32);

#[derive(Default)]
struct Table {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(RwLock::default);

/// Names are numbered by rules only (not by input), so the table is bounded by the rule sets.
const MAX_NAMES: u32 = 1 << 20;

impl Sym {
    /// The symbol under which a record's values are kept for keyword searches, whatever their
    /// field: [`crate::Event::ANY_FIELD`].
    pub const ANY: Sym = Sym(u32::MAX);

    /// The symbol of `name`. Called when rules compile.
    ///
    /// # Panics
    /// When more than a million distinct names are numbered (a rule set far beyond any real one).
    pub fn intern(name: &str) -> Sym {
        if name == crate::Event::ANY_FIELD {
            return Sym::ANY;
        }
        if let Some(&id) = TABLE
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .get(name)
        {
            return Sym(id);
        }
        let mut t = TABLE.write().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = t.ids.get(name) {
            return Sym(id);
        }
        let id = u32::try_from(t.names.len()).unwrap_or(MAX_NAMES);
        assert!(id < MAX_NAMES, "too many distinct field names");
        let name: Arc<str> = Arc::from(name);
        t.names.push(Arc::clone(&name));
        t.ids.insert(name, id);
        Sym(id)
    }

    /// The name.
    pub fn name(self) -> Arc<str> {
        if self == Sym::ANY {
            return Arc::from(crate::Event::ANY_FIELD);
        }
        let t = TABLE.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&t.names[self.0 as usize])
    }
}

/// The record fields a rule set reads, frozen when the rule set is built and handed to the
/// reader: decoders keep a record's field when its name is here, and every other value under
/// [`Sym::ANY`] when a keyword rule reads them.
#[derive(Debug, Clone, Default)]
pub struct FieldSet {
    /// Looked up for every field of every record a decoder reads (never inserted into then):
    /// a fast hash, seeded at random.
    by_name: HashMap<Box<str>, Sym, foldhash::fast::RandomState>,
    keywords: bool,
}

impl FieldSet {
    /// The set of these symbols; [`Sym::ANY`] among them means keyword rules are loaded.
    pub fn of(syms: impl IntoIterator<Item = Sym>) -> FieldSet {
        let mut set = FieldSet::default();
        for s in syms {
            if s == Sym::ANY {
                set.keywords = true;
            } else {
                set.by_name.insert(Box::from(&*s.name()), s);
            }
        }
        set
    }

    /// The set of these names.
    pub fn of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> FieldSet {
        FieldSet::of(names.into_iter().map(Sym::intern))
    }

    /// The symbol of a field a rule reads.
    pub fn get(&self, name: &str) -> Option<Sym> {
        self.by_name.get(name).copied()
    }

    /// Where a record's field goes: under its own name when a rule reads it, else under
    /// [`Sym::ANY`] when keyword rules are loaded, else nowhere.
    pub fn place(&self, name: &str) -> Option<Sym> {
        self.get(name).or(self.keywords.then_some(Sym::ANY))
    }

    /// Whether keyword rules read every value.
    pub fn keywords(&self) -> bool {
        self.keywords
    }

    /// Whether no rule reads a record's own fields (decoders then keep none).
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty() && !self.keywords
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Adds what another set reads.
    pub fn extend(&mut self, other: &FieldSet) {
        self.keywords |= other.keywords;
        for (k, v) in &other.by_name {
            self.by_name.insert(k.clone(), *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_stable_and_a_set_holds_only_its_names() {
        let a = Sym::intern("Image-sym-test");
        assert_eq!(Sym::intern("Image-sym-test"), a);
        assert_eq!(&*a.name(), "Image-sym-test");
        assert_ne!(Sym::intern("CommandLine-sym-test"), a);
        // Numbered elsewhere, yet not in this set: a decoder given it does not keep the field.
        Sym::intern("Elsewhere-sym-test");
        let set = FieldSet::of([a]);
        assert_eq!(set.get("Image-sym-test"), Some(a));
        assert_eq!(set.place("Elsewhere-sym-test"), None);
        assert!(!set.is_empty());
        assert!(FieldSet::default().is_empty());
        let kw = FieldSet::of([a, Sym::intern(crate::Event::ANY_FIELD)]);
        assert_eq!(kw.place("Elsewhere-sym-test"), Some(Sym::ANY));
        assert_eq!(&*Sym::ANY.name(), "*");
    }
}
