//! `eqlab plan`: what `run` would do and why, without running anything.

use anyhow::Result;
use eqlab::exec::plan::{plan, reason};
use eqlab::stages::Registry;
use eqlab::store::Store;
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `eqlab plan`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::PipelineArgs,
}

/// Prints one line per stage: its action and the reason.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = a.file.load(registry)?;
    let store = Store::open(store_dir)?;
    let planned = plan(&p, registry, &store)?;
    let w = planned
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("{:<w$}  {:<8}  why", "stage", "action");
    let mut would_run = 0;
    for (name, pl) in &planned {
        let (action, why) = reason(pl);
        if action != "cached" {
            would_run += 1;
        }
        outln!("{name:<w$}  {action:<8}  {why}");
    }
    outln!(
        "{} of {} stages would run or may run",
        would_run,
        planned.len()
    );
    Ok(ExitCode::SUCCESS)
}
