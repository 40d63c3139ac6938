//! `eqlab worker` (hidden): what a Slurm array task runs — the instances of one task of a run
//! manifest written by `eqlab run --executor slurm` (see `exec::worker`).

use anyhow::{Context, Result};
use eqlab::exec::slurm::Manifest;
use eqlab::stages::Registry;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `eqlab worker`.
#[derive(clap::Args)]
pub struct Args {
    /// The run manifest (`<store>/slurm/<run>/manifest.json`).
    #[arg(long)]
    pub manifest: PathBuf,
    /// The job (chunk) of the manifest.
    #[arg(long)]
    pub job: usize,
    /// The array task (default: SLURM_ARRAY_TASK_ID).
    #[arg(long)]
    pub task: Option<usize>,
}

/// Computes the task's instances; exit 0 when all are stored, 1 when any failed, 2 when the
/// manifest or pipeline cannot be read.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let m = Manifest::read(&a.manifest)?;
    let task = match a.task {
        Some(t) => t,
        None => {
            let v = std::env::var("SLURM_ARRAY_TASK_ID")
                .context("no --task given and SLURM_ARRAY_TASK_ID is not set")?;
            v.parse()
                .with_context(|| format!("SLURM_ARRAY_TASK_ID={v:?} is not a task number"))?
        }
    };
    let p = super::load(&m.pipeline, registry, &m.overrides()?)?;
    let store = super::open_store(store_dir, &m.pipeline)?;
    let failed = eqlab::exec::worker::run_task(&p, registry, &store, &m, a.job, task)?;
    super::warn_remote_trouble(&store);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
