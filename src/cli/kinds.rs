//! `eqlab kinds`: every stage kind with its parameters.

use anyhow::Result;
use eqlab::stages::Registry;
use std::process::ExitCode;

/// Prints each kind, its version, description and parameter table.
pub fn exec(registry: &Registry) -> Result<ExitCode> {
    for s in registry.all() {
        outln!("{} (version {}): {}", s.kind(), s.version(), s.about());
        for prm in s.params() {
            let d = prm
                .default
                .map_or("required".to_owned(), |d| format!("default {d}"));
            outln!(
                "    {:<18} {:<16} {:<22} {}",
                prm.name,
                prm.kind.describe(),
                d,
                prm.doc
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
