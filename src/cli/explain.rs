//! `eqlab explain`: a stage's key and, if it would rerun, what changed since it was computed.

use anyhow::{Result, anyhow};
use eqlab::exec::plan::{Planned, describe_diff, plan, reason};
use eqlab::stages::Registry;
use std::path::Path;
use std::process::ExitCode;

/// Arguments of `eqlab explain`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::PipelineArgs,
    /// The stage.
    pub stage: String,
}

/// Prints the stage's action, key leaves and the diff against the nearest stored key.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = a.file.load(registry)?;
    let store = super::open_store_to_read(store_dir, &a.file.pipeline, false)?;
    eqlab::exec::one_instance(&p, &a.stage)?;
    let planned = plan(&p, registry, &store)?;
    let (_, pl) = planned
        .iter()
        .find(|(n, _)| *n == a.stage)
        .ok_or_else(|| anyhow!("no stage '{}' in {}", a.stage, a.file.pipeline.display()))?;
    let (action, why) = reason(pl);
    outln!("stage {}: {action} ({why})", a.stage);
    let prep = match pl {
        Planned::Cached(prep) | Planned::Remote(prep) | Planned::Run { prep, .. } => prep,
        Planned::Pending(_) | Planned::Error(_) => return Ok(ExitCode::SUCCESS),
    };
    outln!("key {}", prep.hash);
    for (path, value) in prep.key.leaves() {
        outln!("  {path} = {value}");
    }
    // Parameters added to a kind after results were stored are not in the key at their default.
    for (name, value) in prep.params.values() {
        if !prep.key.params.contains_key(name) {
            outln!("  ({name} = {value}: the default, left out of the key)");
        }
    }
    if let Planned::Run { nearest, .. } = pl {
        match nearest {
            None => outln!("no stored result of this stage to compare with"),
            Some((r, d)) => {
                let when = store
                    .meta(&r.key)
                    .map_or_else(|| "at an unknown time".to_owned(), |m| m.finished);
                outln!(
                    "nearest stored key {} (computed {when}), differs in:",
                    r.key
                );
                for line in describe_diff(d) {
                    outln!("  {line}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
