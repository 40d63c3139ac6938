//! eqlab: declarative, content-hashed experiment pipelines for asset pricing with transaction
//! costs.
//!
//! The engine (`spec`, `graph`, `key`, `store`, `exec`) knows nothing about finance; the
//! mathematics (`finance`) knows nothing about the engine; `stages` adapts one to the other.

#![warn(missing_docs)]

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
