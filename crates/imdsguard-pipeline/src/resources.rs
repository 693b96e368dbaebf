//! The catalog and the agent allowlist a run reads against: the built-in ones, or extended by
//! the user's files. Owned here, borrowed by everything that reads them; nothing is leaked to
//! make it live long enough.

use imdsguard_enrich::{Allowlist, Enricher};
use imdsguard_target::{Catalog, Normalizer};

use crate::config::ResourceConfig;
use crate::error::PipelineError;

/// The built-in value, or one the user's file extended.
#[derive(Debug)]
enum Owned<T: 'static> {
    Builtin(&'static T),
    Extended(Box<T>),
}

impl<T> std::ops::Deref for Owned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Owned::Builtin(t) => t,
            Owned::Extended(t) => t,
        }
    }
}

/// Catalog and allowlist for one run.
#[derive(Debug)]
pub struct Resources {
    catalog: Owned<Catalog>,
    allowlist: Owned<Allowlist>,
    inventory: std::sync::Arc<imdsguard_event::Inventory>,
    inventory_skipped: Vec<String>,
}

impl Resources {
    /// The built-in catalog and allowlist, extended by the files `cfg` names. A file that does
    /// not load is an error naming its line.
    pub fn load(cfg: &ResourceConfig) -> Result<Resources, PipelineError> {
        let read = |what: &'static str, path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|source| PipelineError::Read {
                what,
                path: path.to_path_buf(),
                source,
            })
        };
        let catalog = match &cfg.catalog {
            None => Owned::Builtin(Catalog::builtin()),
            Some(p) => Owned::Extended(Box::new(
                Catalog::builtin_extended(&read("catalog", p)?, &p.display().to_string())
                    .map_err(Box::new)?,
            )),
        };
        let allowlist = match &cfg.allowlist {
            None => Owned::Builtin(Allowlist::builtin()),
            Some(p) => Owned::Extended(Box::new(
                Allowlist::builtin_extended(&read("allowlist", p)?, &p.display().to_string())
                    .map_err(Box::new)?,
            )),
        };
        let (inventory, inventory_skipped) =
            imdsguard_parse::inventory::load_inventories(&cfg.inventory)?;
        Ok(Resources {
            catalog,
            allowlist,
            inventory: std::sync::Arc::new(inventory),
            inventory_skipped,
        })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The instances the inventory files list.
    pub fn inventory(&self) -> &std::sync::Arc<imdsguard_event::Inventory> {
        &self.inventory
    }

    /// The inventory entries not read, each with its file, place and why.
    pub fn inventory_skipped(&self) -> &[String] {
        &self.inventory_skipped
    }

    /// The allowlist.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// A normalizer over the catalog.
    pub fn normalizer(&self) -> Normalizer<'_> {
        Normalizer::new(&self.catalog)
    }

    /// The enrich stage over `normalizer` (from [`Resources::normalizer`]) and the allowlist.
    pub fn enricher<'a>(&'a self, normalizer: &'a Normalizer<'a>) -> Enricher<'a> {
        Enricher::new(normalizer, &self.allowlist)
    }
}
