//! `eqlab cancel`: cancel the Slurm jobs of a pipeline's runs (`scancel`). Nothing partial is
//! left: a cancelled job writes no record, and the next `eqlab run` computes what is missing.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `eqlab cancel`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  eqlab cancel pipelines/sweep-q.yaml")]
pub struct Args {
    /// The pipeline file whose Slurm runs (in this store) to cancel.
    pub pipeline: PathBuf,
}

/// Cancels every job of the pipeline's Slurm runs that Slurm still lists.
pub fn exec(a: Args, store_dir: &Path) -> Result<ExitCode> {
    super::existing_store(store_dir)?;
    let store = eqlab::store::Store::open(store_dir)?;
    let cancelled = eqlab::exec::slurm::cancel(&store, &a.pipeline)?;
    if cancelled.is_empty() {
        outln!(
            "no job of a Slurm run of {} is pending or running",
            a.pipeline.display()
        );
    }
    for (run, ids) in &cancelled {
        outln!("cancelled run {run}: jobs {}", ids.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
