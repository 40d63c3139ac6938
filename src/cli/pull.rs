//! `eqlab pull`: download the results a pipeline uses now from the remote cache.

use anyhow::Result;
use eqlab::exec::transfer::pull;
use eqlab::stages::Registry;
use eqlab::store::sync::{Pulled, no_remote};
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `eqlab pull`.
#[derive(clap::Args)]
#[command(
    after_help = "Walks the pipeline as `eqlab run` would and, for every stage whose current \
result the local store lacks, downloads the record and its objects from the remote cache \
(each object verified against its blake3 as it streams in; the record written last). Nothing \
is computed: a stage the remote lacks, and the stages below it, are listed as without a result.\n\n\
Examples:\n  eqlab pull pipelines/gms-exogenous.yaml\n  eqlab --remote s3://lab-cache/eqlab pull pipelines/ci.yaml && eqlab run pipelines/ci.yaml"
)]
pub struct Args {
    #[command(flatten)]
    pub file: super::PipelineArgs,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Pulls and prints the summary; exit 1 when the remote failed or a result was damaged.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = a.file.load(registry)?;
    let store = super::open_store(store_dir, &a.file.pipeline)?;
    let remote = store.remote().ok_or_else(no_remote)?;
    let bar = super::transfer_bar(!a.no_progress, "pull");
    let t = pull(&p, registry, &store, &|_: &Pulled| bar.inc(1))?;
    bar.finish_and_clear();
    super::push::summarise(&t, "downloaded", "already local", remote.url())?;
    super::warn_remote_trouble(&store);
    Ok(super::transfer_exit(&t, &store))
}
