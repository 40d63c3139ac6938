//! `eqlab push`: upload the results a pipeline uses now to the remote cache.

use anyhow::Result;
use eqlab::exec::transfer::{Transfer, push};
use eqlab::stages::Registry;
use eqlab::store::sync::{Published, no_remote};
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `eqlab push`.
#[derive(clap::Args)]
#[command(
    after_help = "Uploads, for every stage of the pipeline, the stored result of its current key \
(the one `eqlab run` would reuse): objects first, then the record, so the remote never shows a \
record whose objects are missing. Results the remote already has are skipped.\n\nExamples:\n  \
eqlab push pipelines/gms-exogenous.yaml\n  eqlab --remote s3://lab-cache/eqlab push pipelines/ci.yaml"
)]
pub struct Args {
    #[command(flatten)]
    pub file: super::PipelineArgs,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Pushes and prints the summary; exit 1 when the remote failed or a result differs.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = a.file.load(registry)?;
    let store = super::open_store(store_dir, &a.file.pipeline)?;
    let remote = store.remote().ok_or_else(no_remote)?;
    if !remote.writable() {
        anyhow::bail!(
            "the remote cache {} is in {} mode: push needs read-write (--remote-mode read-write)",
            remote.url(),
            remote.mode()
        );
    }
    let bar = super::transfer_bar(!a.no_progress, "push");
    let t = push(&p, registry, &store, &|_: &Published| bar.inc(1))?;
    bar.finish_and_clear();
    summarise(&t, "uploaded", "already on the remote", remote.url())?;
    super::warn_remote_trouble(&store);
    Ok(super::transfer_exit(&t, &store))
}

/// Prints a push or pull summary.
pub fn summarise(t: &Transfer, moved: &str, present: &str, url: &str) -> Result<()> {
    outln!(
        "{} stages: {} {moved} ({:.1} MB), {} {present}, {} without a result{}",
        t.stages,
        t.moved,
        t.bytes as f64 / 1e6,
        t.present,
        t.missing.len(),
        match t.missing.first() {
            Some(m) => format!(" (first: {m})"),
            None => String::new(),
        }
    );
    for (name, why) in &t.errors {
        eqlab::errln!("error: stage '{name}': {why}");
    }
    for (name, why) in &t.damaged {
        eqlab::errln!("warning: stage '{name}': {why}");
    }
    for (name, outputs) in &t.differs {
        eqlab::errln!(
            "warning: stage '{name}' is not deterministic: {url} holds its key with other outputs ({}); the remote's record is kept",
            outputs.join(", ")
        );
    }
    Ok(())
}
