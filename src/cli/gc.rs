//! `eqlab gc`: delete objects no record references, records that fail verification, set-aside
//! records, and (with --older-than) old records that no pipeline file still uses.

use anyhow::Result;
use eqlab::store::{Store, gc::gc};
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `eqlab gc`.
#[derive(clap::Args)]
pub struct Args {
    /// Also delete records older than this (e.g. 30d, 12h), except the current result of each
    /// stage of each pipeline file (the key its latest run used).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// Report what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Collects garbage and prints what was (or would be) deleted.
pub fn exec(a: Args, store_dir: &Path) -> Result<ExitCode> {
    let store = Store::open(store_dir)?;
    let r = gc(&store, a.older_than, a.dry_run)?;
    let verb = if a.dry_run { "would delete" } else { "deleted" };
    outln!(
        "{verb} {} records and {} objects ({:.1} MB); {} objects kept",
        r.records,
        r.objects,
        r.bytes as f64 / 1e6,
        r.kept_objects
    );
    Ok(ExitCode::SUCCESS)
}
