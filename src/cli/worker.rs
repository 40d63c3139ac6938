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
    #[arg(long, required_unless_present = "remote_manifest")]
    pub manifest: Option<PathBuf>,
    /// The run manifest's path in the remote cache (`runs/<run>/manifest.json`), for nodes
    /// without a shared filesystem: the pipeline and its input files come from there too.
    #[arg(long, conflicts_with = "manifest")]
    pub remote_manifest: Option<String>,
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
    let task = match a.task {
        Some(t) => t,
        None => {
            let v = std::env::var("SLURM_ARRAY_TASK_ID")
                .context("no --task given and SLURM_ARRAY_TASK_ID is not set")?;
            v.parse()
                .with_context(|| format!("SLURM_ARRAY_TASK_ID={v:?} is not a task number"))?
        }
    };
    let (m, pipeline, store) = match (&a.manifest, &a.remote_manifest) {
        (Some(path), _) => {
            let m = Manifest::read(path)?;
            let store = super::open_store(store_dir, &m.pipeline)?;
            let pipeline = m.pipeline.clone();
            (m, pipeline, store)
        }
        (None, Some(rel)) => {
            let store = super::open_store(store_dir, Path::new("."))?;
            let remote = store
                .remote()
                .ok_or_else(|| anyhow::anyhow!("--remote-manifest needs --remote URL"))?;
            let from = format!("{}/{rel}", remote.url());
            let bytes = remote
                .get_bytes(rel)?
                .ok_or_else(|| anyhow::anyhow!("the run manifest {from} does not exist"))?;
            let m = Manifest::parse(&bytes, &from)?;
            let bundle = m
                .bundle
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the run manifest {from} names no files"))?;
            let dir = store.root().join("work").join(&m.run);
            match eqlab::exec::slurm::bundle::materialise(&store, bundle, &dir) {
                Ok(pipeline) => (m, pipeline, store),
                Err(e) => {
                    eqlab::exec::worker::task_failed(&store, &m, a.job, task, &e);
                    return Err(e);
                }
            }
        }
        (None, None) => anyhow::bail!("give --manifest or --remote-manifest"),
    };
    let p = match m
        .overrides()
        .and_then(|o| super::load(&pipeline, registry, &o))
        .and_then(|p| {
            // This node computes: its devices must be usable here.
            eqlab::spec::check_machine(&p, registry).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(p)
        }) {
        Ok(p) => p,
        Err(e) => {
            eqlab::exec::worker::task_failed(&store, &m, a.job, task, &e);
            return Err(e);
        }
    };
    let failed = eqlab::exec::worker::run_task(&p, registry, &store, &m, a.job, task)?;
    super::warn_remote_trouble(&store);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
