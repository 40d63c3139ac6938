//! `eqlab kinds`: every stage kind with its parameters.

use anyhow::Result;
use eqlab::stages::Registry;
use eqlab::table::fmt_json;
use std::process::ExitCode;

/// Prints each kind, its version, description and parameter table.
pub fn exec(registry: &Registry) -> Result<ExitCode> {
    for s in registry.all() {
        outln!("{} (version {}): {}", s.kind(), s.version(), s.about());
        for prm in s.params() {
            let d = prm.default.map_or("required".to_owned(), |d| {
                // Defaults are JSON text in the source; print them as `eqlab show` prints values.
                let shown = serde_json::from_str(d).map_or_else(|_| d.to_owned(), |v| fmt_json(&v));
                format!("default {shown}")
            });
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
