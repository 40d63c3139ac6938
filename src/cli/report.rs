//! `eqlab report`: a self-contained HTML report of a pipeline's latest run.

use anyhow::Result;
use eqlab::spec::Override;
use eqlab::stages::Registry;
use eqlab::store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `eqlab report`.
#[derive(clap::Args)]
pub struct Args {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<Override>,
}

/// Writes the report and prints its path.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = super::load(&a.pipeline, registry, &a.set)?;
    let store = Store::open(store_dir)?;
    let path = eqlab::report::html::write_report(&p, &store)?;
    outln!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
