//! `eqlab hash`: the blake3 of files, as eqlab hashes input data, and the throughput.

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `eqlab hash`.
#[derive(clap::Args)]
pub struct Args {
    /// Files to hash.
    pub files: Vec<PathBuf>,
}

/// Prints `HASH  FILE  (GB/s)` per file.
pub fn exec(a: Args) -> Result<ExitCode> {
    for f in a.files {
        let t = std::time::Instant::now();
        let h = eqlab::store::hash_file(&f)?;
        let secs = t.elapsed().as_secs_f64();
        let len = std::fs::metadata(&f)?.len() as f64;
        outln!(
            "{h}  {}  ({:.2} GB/s)",
            f.display(),
            len / secs.max(1e-9) / 1e9
        );
    }
    Ok(ExitCode::SUCCESS)
}
