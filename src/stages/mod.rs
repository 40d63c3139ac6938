//! Stage kinds: one file per kind, each a thin adapter from parameters and upstream tables to
//! the science code in `finance` (or to polars for the data stages). The [`Registry`] maps
//! kind names used in pipeline files to implementations.

pub mod describe;
#[cfg(feature = "data")]
pub mod frame;
pub mod generate;
#[cfg(feature = "data")]
pub mod load_table;

use crate::stage::Stage;
use std::collections::BTreeMap;

/// Kind name → stage implementation.
pub struct Registry {
    stages: BTreeMap<&'static str, Box<dyn Stage>>,
}

impl Registry {
    /// All built-in stage kinds.
    pub fn builtin() -> Registry {
        #[allow(unused_mut)]
        let mut all: Vec<Box<dyn Stage>> = vec![Box::new(generate::Generate), Box::new(describe::Describe)];
        #[cfg(feature = "data")]
        all.push(Box::new(load_table::LoadTable));
        Registry {
            stages: all.into_iter().map(|s| (s.kind(), s)).collect(),
        }
    }

    /// The stage of kind `kind`.
    pub fn get(&self, kind: &str) -> Option<&dyn Stage> {
        self.stages.get(kind).map(|b| b.as_ref())
    }

    /// Every kind name, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.stages.keys().copied()
    }

    /// Every stage, sorted by kind.
    pub fn all(&self) -> impl Iterator<Item = &dyn Stage> {
        self.stages.values().map(|b| b.as_ref())
    }
}
