//! `eqlab graph`: the stage graph as Mermaid or Graphviz dot.

use anyhow::Result;
use clap::ValueEnum;
use eqlab::graph::Dag;
use eqlab::stages::Registry;
use std::path::PathBuf;
use std::process::ExitCode;

/// Output format of `eqlab graph`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Arguments of `eqlab graph`.
#[derive(clap::Args)]
pub struct Args {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    pub format: Format,
}

/// Prints the graph.
pub fn exec(a: Args, registry: &Registry) -> Result<ExitCode> {
    let p = super::load(&a.pipeline, registry, &[])?;
    let dag = Dag::new(&p);
    out!(
        "{}",
        match a.format {
            Format::Dot => dag.to_dot(&p),
            Format::Mermaid => dag.to_mermaid(&p),
        }
    );
    Ok(ExitCode::SUCCESS)
}
