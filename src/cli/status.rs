//! `eqlab status`: follow a Slurm run (one started with `eqlab run --executor slurm`, detached
//! or not) from its manifest in the store — what is done, running, pending, failed.

use anyhow::{Context, Result};
use eqlab::exec::slurm::latest_run;
use eqlab::exec::status;
use eqlab::stages::Registry;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `eqlab status`.
#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 when the run has ended and every stage is stored, 1 when a stage failed \
or was skipped, 3 while jobs are still pending or running (without --wait), 2 on errors.\n\n\
Examples:\n  eqlab run pipelines/sweep-q.yaml --executor slurm --detach\n  eqlab status pipelines/sweep-q.yaml\n  eqlab status pipelines/sweep-q.yaml --wait"
)]
pub struct Args {
    /// The pipeline file of the run (its latest Slurm run in the store is followed, with the
    /// `--set` values it was submitted with).
    pub pipeline: PathBuf,
    /// Watch until the run ends (stage lines as records appear, then the summary, as `run`
    /// prints them); Ctrl-C stops watching, the jobs go on.
    #[arg(long)]
    pub wait: bool,
}

/// Prints the run's state; see the exit statuses in the help.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    super::existing_store(store_dir)?;
    let store = super::open_store(store_dir, &a.pipeline)?;
    let run = latest_run(&store, &a.pipeline)?;
    let p = super::load(&a.pipeline, registry, &run.0.overrides()?)?;
    let cancel = Arc::new(AtomicBool::new(false));
    if a.wait {
        let c = cancel.clone();
        ctrlc::set_handler(move || {
            c.store(true, Ordering::SeqCst);
            eqlab::errln!("\nstopped watching; the jobs go on (eqlab cancel to stop them)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let slurm = super::run::slurm(&a.pipeline)?;
    let (snap, log) = slurm.follow(&p, registry, &store, run, a.wait, &cancel)?;
    if let Some(log) = log {
        return super::run::report(&log);
    }
    let count = |x: &str| snap.settled.iter().filter(|s| s.status == x).count();
    let (ran, cached) = (count(status::RAN), count(status::CACHED));
    let (failed, skipped) = (count(status::FAILED), count(status::SKIPPED));
    let running = snap.waiting.iter().filter(|w| w.state == "RUNNING").count();
    let pending = snap.waiting.len() - running;
    let set: String = snap
        .overrides
        .iter()
        .map(|o| format!(" --set {o}"))
        .collect();
    outln!("Slurm run {} of {}{set}", snap.run, a.pipeline.display());
    for w in &snap.waiting {
        let why = match w.reason.as_str() {
            "" | "None" => String::new(),
            r => format!(", {r}"),
        };
        outln!(
            "  {:<9} {} (job {}{why})",
            w.state.to_lowercase(),
            w.instance,
            w.job
        );
    }
    outln!(
        "{} stages: {} done ({ran} ran, {cached} cached), {running} running, {pending} pending, \
         {failed} failed, {skipped} skipped",
        snap.settled.len() + snap.waiting.len(),
        ran + cached
    );
    Ok(if failed + skipped > 0 {
        ExitCode::from(1)
    } else if !snap.waiting.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
