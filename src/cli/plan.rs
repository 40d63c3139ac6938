//! `eqlab plan`: what `run` would do and why, without running anything.

use anyhow::Result;
use eqlab::exec::plan::{plan, reason};
use eqlab::stages::Registry;
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
    let store = super::open_store_to_read(store_dir, &a.file.pipeline, false)?;
    let planned = plan(&p, registry, &store)?;
    let w = planned
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("{:<w$}  {:<8}  why", "stage", "action");
    let (mut would_run, mut pull) = (0, 0);
    for (name, pl) in &planned {
        let (action, why) = reason(pl);
        match action.as_str() {
            "cached" => {}
            "pull" => pull += 1,
            _ => would_run += 1,
        }
        outln!("{name:<w$}  {action:<8}  {why}");
    }
    let from_remote = match (pull, store.remote()) {
        (0, _) | (_, None) => String::new(),
        (n, Some(r)) => format!("; {n} would come from the remote cache {}", r.url()),
    };
    outln!(
        "{} of {} stages would run or may run{from_remote}",
        would_run,
        planned.len()
    );
    super::warn_remote_trouble(&store);
    Ok(ExitCode::SUCCESS)
}
