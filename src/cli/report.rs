//! `eqlab report`: a self-contained HTML report of a pipeline's latest run.

use anyhow::Result;
use eqlab::stages::Registry;
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `eqlab report`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::PipelineArgs,
}

/// Writes the report and prints its path.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = a.file.load(registry)?;
    super::existing_store(store_dir)?;
    let store = eqlab::store::Store::open(store_dir)?;
    let path = eqlab::report::html::write_report(&p, &store)?;
    outln!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
