//! eqlab: declarative, content-hashed experiment pipelines for asset pricing with transaction
//! costs.
//!
//! The engine (`spec`, `graph`, `key`, `store`, `exec`) knows nothing about finance; the
//! mathematics (`finance`) knows nothing about the engine; `stages` adapts one to the other.

#![warn(missing_docs)]

/// `eprintln!` that never panics: a closed stderr (`eqlab run … 2>&1 | head`) must not stop
/// a run halfway; what cannot be written is dropped.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod check;
pub mod config;
pub mod deep;
pub mod exec;
pub mod finance;
pub mod graph;
pub mod key;
pub mod report;
pub mod spec;
pub mod stage;
pub mod stages;
pub mod store;
pub mod table;
