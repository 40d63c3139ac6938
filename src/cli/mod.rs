//! One file per verb of the `eqlab` command line (cargo's `commands/` is the model): each holds
//! the verb's clap arguments and its `exec`. Shared helpers live here; the library does the work.

/// `print!` to stdout that returns the write error (a closed pipe ends the verb quietly).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($t)*)?;
    }};
}

/// `println!` to stdout that returns the write error (a closed pipe ends the verb quietly).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)?;
    }};
}

pub mod check;
pub mod explain;
pub mod gc;
pub mod graph;
pub mod hash;
pub mod kinds;
pub mod plan;
pub mod report;
pub mod run;
pub mod schema;
pub mod show;

use anyhow::{Result, anyhow};
use eqlab::spec::{self, LoadOptions, Override, Pipeline};
use eqlab::stages::Registry;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Whether an error comes from writing to a closed pipe (`eqlab kinds | head -1`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// How every verb loads pipeline files when `--max-instances` is given, set once by `main`
/// (otherwise the library's defaults and `EQLAB_MAX_INSTANCES` apply).
static LOAD_OPTIONS: OnceLock<LoadOptions> = OnceLock::new();

/// Sets the options of [`load`] from the global command-line arguments.
pub fn set_load_options(o: LoadOptions) {
    let _ = LOAD_OPTIONS.set(o);
}

/// The pipeline file and its `--set` overrides: the arguments of every verb that loads one.
#[derive(clap::Args)]
pub struct PipelineArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<Override>,
}

impl PipelineArgs {
    /// Loads and validates the pipeline with the overrides applied.
    pub fn load(&self, registry: &Registry) -> Result<Pipeline> {
        load(&self.pipeline, registry, &self.set)
    }
}

/// Loads and validates a pipeline file with `--set` overrides applied.
pub fn load(path: &Path, registry: &Registry, set: &[Override]) -> Result<Pipeline> {
    match LOAD_OPTIONS.get() {
        Some(opts) => spec::load_with(path, registry, set, opts),
        None => spec::load(path, registry, set),
    }
    .map_err(|e| anyhow!("{e}"))
}
