//! The `eqlab` command line: parses arguments (clap) and dispatches to one file per verb in
//! `cli/`. No logic of its own.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};
use eqlab::stages::Registry;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "eqlab",
    version,
    about = "Declarative, content-hashed experiment pipelines for asset pricing with transaction costs",
    long_about = "eqlab runs a pipeline file (YAML): a DAG of stages, each a `kind` with parameters.\n\
Every stage's result is stored under a key that hashes everything it depends on (kind, version,\n\
parameters, input data, upstream outputs, seed), so a rerun only computes what changed, and\n\
switching a parameter back is instant.\n\n\
Start with:  eqlab plan pipelines/demo.yaml     (what would run, and why)\n\
             eqlab run pipelines/demo.yaml\n\
             eqlab show pipelines/demo.yaml describe\n\
             eqlab kinds                        (every stage kind and its parameters)\n\
             eqlab schema -o schema/eqlab-pipeline.schema.json   (editor validation)\n\n\
Share results between machines with a remote cache (S3 or a shared directory):\n\
             eqlab --remote s3://lab-cache/eqlab remote   (settings and access check)\n\
             eqlab run pipelines/demo.yaml --remote s3://lab-cache/eqlab\n\
or put [remote] url = \"s3://lab-cache/eqlab\" in eqlab.toml next to the pipelines."
)]
struct Cli {
    /// Artifact store directory (objects, records, run logs).
    #[arg(long, global = true, env = "EQLAB_STORE", default_value = "artifacts")]
    store: PathBuf,
    /// Most stage instances a pipeline may expand to (sweep points × replicates, all stages);
    /// a larger pipeline is refused before it is expanded [default: 100000, or
    /// EQLAB_MAX_INSTANCES].
    #[arg(long, global = true, value_name = "N", value_parser = eqlab::spec::parse_max_instances)]
    max_instances: Option<u64>,
    /// Remote cache shared between machines: s3://BUCKET/PREFIX (S3, MinIO, Ceph, R2; endpoint,
    /// region and credentials from the AWS variables and profile files) or file:///PATH.
    /// Overrides EQLAB_REMOTE and eqlab.toml's [remote] url. `eqlab gc --remote` collects it.
    #[arg(long, global = true, num_args = 0..=1, value_name = "URL")]
    remote: Option<Option<String>>,
    /// read-write (default: download hits, upload what this machine computes), read (never
    /// upload), off. Overrides EQLAB_REMOTE_MODE and eqlab.toml's [remote] mode.
    #[arg(long, global = true, value_name = "MODE")]
    remote_mode: Option<eqlab::store::remote::Mode>,
    /// Fail instead of going on locally when the remote cache cannot be reached or fails
    /// (CI that must not recompute). Also EQLAB_REMOTE_REQUIRED=1.
    #[arg(long, global = true)]
    remote_required: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a pipeline: reuse stored results, compute the rest.
    Run(cli::run::Args),
    /// Follow a Slurm run of a pipeline: what is done, running, pending, failed.
    Status(cli::status::Args),
    /// Cancel the Slurm jobs of a pipeline's runs.
    Cancel(cli::cancel::Args),
    /// Show what `run` would do and why, without running anything.
    Plan(cli::plan::Args),
    /// Print a stage's key and, if it would rerun, what changed since it was last computed.
    Explain(cli::explain::Args),
    /// Run a pipeline, then compare chosen outputs with a golden file (a CI gate).
    Check(cli::check::Args),
    /// Write a self-contained HTML report of the pipeline's latest run.
    Report(cli::report::Args),
    /// Print the stage graph.
    Graph(cli::graph::Args),
    /// Show a stage's stored outputs: its scalars and the head of its tables.
    Show(cli::show::Args),
    /// Delete objects no record references (and, with --older-than, old records).
    Gc(cli::gc::Args),
    /// Upload the results a pipeline uses now to the remote cache.
    Push(cli::push::Args),
    /// Download the results a pipeline uses now from the remote cache (computes nothing).
    Pull(cli::pull::Args),
    /// Print the remote cache's resolved settings (never a secret) and check access.
    Remote(cli::remote::Args),
    /// List every stage kind with its parameters.
    Kinds,
    /// Print the blake3 of files (as eqlab hashes input data) and the throughput.
    Hash(cli::hash::Args),
    /// Write a JSON Schema of pipeline files (editor validation and completion).
    Schema(cli::schema::Args),
    /// Compute one array task of a Slurm run (what `run --executor slurm` submits).
    #[command(hide = true)]
    Worker(cli::worker::Args),
}

fn main() -> ExitCode {
    let args = Cli::parse();
    match dispatch(args) {
        Ok(code) => code,
        // The reader went away (`| head`): stop quietly with the conventional status.
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eqlab::errln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(args: Cli) -> Result<ExitCode> {
    let registry = Registry::builtin();
    let store = args.store.as_path();
    cli::set_remote_flags(eqlab::config::RemoteFlags {
        url: args.remote.clone().flatten(),
        given: args.remote.is_some(),
        mode: args.remote_mode,
        required: args.remote_required,
    });
    if let Some(max_instances) = args.max_instances {
        cli::set_load_options(eqlab::spec::LoadOptions { max_instances });
    }
    match args.cmd {
        Cmd::Run(a) => cli::run::exec(a, store, &registry),
        Cmd::Status(a) => cli::status::exec(a, store, &registry),
        Cmd::Cancel(a) => cli::cancel::exec(a, store),
        Cmd::Plan(a) => cli::plan::exec(a, store, &registry),
        Cmd::Explain(a) => cli::explain::exec(a, store, &registry),
        Cmd::Check(a) => cli::check::exec(a, store, &registry),
        Cmd::Report(a) => cli::report::exec(a, store, &registry),
        Cmd::Graph(a) => cli::graph::exec(a, &registry),
        Cmd::Show(a) => cli::show::exec(a, store, &registry),
        Cmd::Gc(a) => cli::gc::exec(a, store),
        Cmd::Push(a) => cli::push::exec(a, store, &registry),
        Cmd::Pull(a) => cli::pull::exec(a, store, &registry),
        Cmd::Remote(a) => cli::remote::exec(a, store),
        Cmd::Kinds => cli::kinds::exec(&registry),
        Cmd::Hash(a) => cli::hash::exec(a),
        Cmd::Schema(a) => cli::schema::exec(a, &registry),
        Cmd::Worker(a) => cli::worker::exec(a, store, &registry),
    }
}
