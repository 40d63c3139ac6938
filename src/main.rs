//! The `eqlab` command line: parses arguments (clap) and calls the library. No logic of its own
//! beyond formatting what the library returns.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use eqlab::exec::plan::{Planned, describe_diff, plan, reason};
use eqlab::exec::{RunOptions, run, status, ui};
use eqlab::graph::Dag;
use eqlab::spec::{self, Override, Pipeline};
use eqlab::stages::Registry;
use eqlab::store::{Store, gc::gc};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
             eqlab kinds                        (every stage kind and its parameters)"
)]
struct Cli {
    /// Artifact store directory (objects, records, run logs).
    #[arg(long, global = true, env = "EQLAB_STORE", default_value = "artifacts")]
    store: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a pipeline: reuse stored results, compute the rest.
    #[command(
        after_help = "Examples:\n  eqlab run pipelines/demo.yaml\n  eqlab run pipelines/demo.yaml --set params.start=2012-01-01\n  eqlab run pipelines/demo.yaml --only describe --force describe -j 2"
    )]
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Run only these stages and what they need.
        #[arg(long, num_args = 1..)]
        only: Vec<String>,
        /// Recompute these stages even if a result is stored.
        #[arg(long, num_args = 1..)]
        force: Vec<String>,
        /// Stages to run at once (default: number of cores).
        #[arg(short = 'j', long, default_value_t = 0)]
        jobs: usize,
        /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
        /// Do not draw progress bars.
        #[arg(long)]
        no_progress: bool,
    },
    /// Show what `run` would do and why, without running anything.
    Plan {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
    },
    /// Print a stage's key and, if it would rerun, what changed since it was last computed.
    Explain {
        /// The pipeline file.
        pipeline: PathBuf,
        /// The stage.
        stage: String,
        /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
    },
    /// Run a pipeline, then compare chosen outputs with a golden file (a CI gate).
    #[command(
        after_help = "The golden file lists `value: STAGE.SCALAR` (or STAGE.TABLE.COLUMN[KEY=VALUE]),\n`expected:` and a tolerance `rel:`, `abs:` and/or `se:` (standard errors, for Monte-Carlo values).\nExit code 1 when any value is off or missing. JUnit XML goes to artifacts/reports/<pipeline>/check.xml."
    )]
    Check {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Golden file (default: tests/golden/<pipeline name>.yaml next to the pipelines folder).
        #[arg(long)]
        golden: Option<PathBuf>,
        /// Rewrite the expected values with the current results (tolerances are kept).
        #[arg(long)]
        update: bool,
        /// Where to write JUnit XML.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Stages to run at once (default: number of cores).
        #[arg(short = 'j', long, default_value_t = 0)]
        jobs: usize,
        /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
    },
    /// Write a self-contained HTML report of the pipeline's latest run.
    Report {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
    },
    /// Print the stage graph.
    Graph {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Show a stage's stored outputs: its scalars and the head of its tables.
    Show {
        /// The pipeline file.
        pipeline: PathBuf,
        /// The stage.
        stage: String,
        /// One output (table or file) to show; all when omitted.
        output: Option<String>,
        /// Rows to print per table.
        #[arg(long, default_value_t = 10)]
        rows: usize,
        /// Write the output (table as CSV, file as is) to this path instead of printing.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Override a value: params.NAME=VALUE or STAGE.PARAM=VALUE.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
    },
    /// Delete objects no record references (and, with --older-than, old records).
    Gc {
        /// Also delete records older than this (e.g. 30d, 12h), except those the latest run of
        /// each pipeline used.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<std::time::Duration>,
        /// Report what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List every stage kind with its parameters.
    Kinds,
    /// Print the blake3 of files (as eqlab hashes input data) and the throughput.
    Hash {
        /// Files to hash.
        files: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn load(path: &Path, registry: &Registry, set: &[Override]) -> Result<Pipeline> {
    spec::load(path, registry, set).map_err(|e| anyhow!("{e}"))
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    let registry = Registry::builtin();
    match cli.cmd {
        Cmd::Run {
            pipeline,
            only,
            force,
            jobs,
            set,
            no_progress,
        } => {
            let p = load(&pipeline, &registry, &set)?;
            let store = Store::open(&cli.store)?;
            let cancel = Arc::new(AtomicBool::new(false));
            let c = cancel.clone();
            ctrlc::set_handler(move || {
                if c.swap(true, Ordering::SeqCst) {
                    // Second Ctrl-C: leave now. Records are written last, so nothing partial is visible.
                    std::process::exit(130);
                }
                eprintln!(
                    "\ninterrupting: waiting for running stages to stop (Ctrl-C again to quit now)"
                );
            })
            .context("installing the Ctrl-C handler")?;
            let opts = RunOptions {
                jobs,
                only,
                force,
                progress: !no_progress,
            };
            let log = run(&p, &registry, &store, &opts, cancel.clone())?;
            print!("{}", ui::summary(&log));
            let failed: Vec<_> = log
                .stages
                .iter()
                .filter(|s| s.status == status::FAILED)
                .collect();
            for f in &failed {
                eprintln!(
                    "error: stage '{}' ({}) failed: {}",
                    f.stage,
                    f.kind,
                    f.error.as_deref().unwrap_or("?")
                );
            }
            if cancel.load(Ordering::SeqCst) {
                return Ok(ExitCode::from(130));
            }
            Ok(
                if failed.is_empty() && log.stages.iter().all(|s| s.status != status::SKIPPED) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                },
            )
        }
        Cmd::Check {
            pipeline,
            golden,
            update,
            junit,
            jobs,
            set,
        } => {
            let p = load(&pipeline, &registry, &set)?;
            let golden_path = golden.unwrap_or_else(|| default_golden(&p));
            let g = eqlab::check::read_golden(&golden_path)?;
            let store = Store::open(&cli.store)?;
            let cancel = Arc::new(AtomicBool::new(false));
            let opts = RunOptions {
                jobs,
                progress: true,
                ..RunOptions::default()
            };
            let log = run(&p, &registry, &store, &opts, cancel)?;
            eprint!("{}", ui::summary(&log));
            let records = store.run_records(&log)?;
            let verdicts = eqlab::check::evaluate(&p, &store, &records, &g);
            print!("{}", eqlab::check::render(&verdicts));
            let dir = cli.store.join("reports").join(&p.name);
            std::fs::create_dir_all(&dir)?;
            let junit_path = junit.unwrap_or_else(|| dir.join("check.xml"));
            std::fs::write(&junit_path, eqlab::check::junit(&p.name, &verdicts))?;
            std::fs::write(
                dir.join("check.json"),
                serde_json::to_vec_pretty(&verdicts)?,
            )?;
            eprintln!("JUnit XML: {}", junit_path.display());
            if update {
                let mut g = g;
                for (e, v) in g.checks.iter_mut().zip(&verdicts) {
                    if let Some(got) = v.got {
                        e.expected = got;
                    }
                }
                eqlab::check::write_golden(&golden_path, &g)?;
                println!("updated {}", golden_path.display());
                return Ok(ExitCode::SUCCESS);
            }
            Ok(if verdicts.iter().all(|v| v.pass) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Report { pipeline, set } => {
            let p = load(&pipeline, &registry, &set)?;
            let store = Store::open(&cli.store)?;
            let path = eqlab::report::html::write_report(&p, &store)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Plan { pipeline, set } => {
            let p = load(&pipeline, &registry, &set)?;
            let store = Store::open(&cli.store)?;
            let planned = plan(&p, &registry, &store)?;
            let w = planned
                .iter()
                .map(|(n, _)| n.len())
                .max()
                .unwrap_or(5)
                .max(5);
            println!("{:<w$}  {:<8}  why", "stage", "action");
            let mut would_run = 0;
            for (name, pl) in &planned {
                let (action, why) = reason(pl);
                if action != "cached" {
                    would_run += 1;
                }
                println!("{name:<w$}  {action:<8}  {why}");
            }
            println!(
                "{} of {} stages would run or may run",
                would_run,
                planned.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Explain {
            pipeline,
            stage,
            set,
        } => {
            let p = load(&pipeline, &registry, &set)?;
            let store = Store::open(&cli.store)?;
            let planned = plan(&p, &registry, &store)?;
            let (_, pl) = planned
                .iter()
                .find(|(n, _)| *n == stage)
                .ok_or_else(|| anyhow!("no stage '{stage}' in {}", pipeline.display()))?;
            explain(&stage, pl);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Graph { pipeline, format } => {
            let p = load(&pipeline, &registry, &[])?;
            let dag = Dag::new(&p);
            print!(
                "{}",
                match format {
                    GraphFormat::Dot => dag.to_dot(&p),
                    GraphFormat::Mermaid => dag.to_mermaid(&p),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show {
            pipeline,
            stage,
            output,
            rows,
            export,
            set,
        } => {
            let p = load(&pipeline, &registry, &set)?;
            let store = Store::open(&cli.store)?;
            show(
                &p,
                &registry,
                &store,
                &stage,
                output.as_deref(),
                rows,
                export.as_deref(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Gc {
            older_than,
            dry_run,
        } => {
            let store = Store::open(&cli.store)?;
            let r = gc(&store, older_than, dry_run)?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            println!(
                "{verb} {} records and {} objects ({:.1} MB); {} objects kept",
                r.records,
                r.objects,
                r.bytes as f64 / 1e6,
                r.kept_objects
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Kinds => {
            for s in registry.all() {
                println!("{} (version {}): {}", s.kind(), s.version(), s.about());
                for prm in s.params() {
                    let d = prm
                        .default
                        .map_or("required".to_owned(), |d| format!("default {d}"));
                    println!(
                        "    {:<18} {:<16} {:<22} {}",
                        prm.name,
                        prm.kind.describe(),
                        d,
                        prm.doc
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Hash { files } => {
            for f in files {
                let t = std::time::Instant::now();
                let h = eqlab::store::hash_file(&f)?;
                let secs = t.elapsed().as_secs_f64();
                let len = std::fs::metadata(&f)?.len() as f64;
                println!(
                    "{h}  {}  ({:.2} GB/s)",
                    f.display(),
                    len / secs.max(1e-9) / 1e9
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `tests/golden/<name>.yaml` beside the pipelines folder.
fn default_golden(p: &Pipeline) -> PathBuf {
    p.base_dir
        .join("..")
        .join("tests")
        .join("golden")
        .join(format!("{}.yaml", p.name))
}

fn explain(stage: &str, pl: &Planned) {
    let (action, why) = reason(pl);
    println!("stage {stage}: {action} ({why})");
    let prep = match pl {
        Planned::Cached(prep, _) | Planned::Run { prep, .. } => prep,
        Planned::Pending(_) | Planned::Error(_) => return,
    };
    println!("key {}", prep.hash);
    for (path, value) in prep.key.leaves() {
        println!("  {path} = {value}");
    }
    if let Planned::Run { nearest, .. } = pl {
        match nearest {
            None => println!("no stored result of this stage to compare with"),
            Some((r, d)) => {
                println!(
                    "nearest stored key {} (computed {}), differs in:",
                    r.key, r.finished
                );
                for line in describe_diff(d) {
                    println!("  {line}");
                }
            }
        }
    }
}

fn show(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    stage: &str,
    output: Option<&str>,
    rows: usize,
    export: Option<&Path>,
) -> Result<()> {
    let planned = plan(p, registry, store)?;
    let (_, pl) = planned
        .iter()
        .find(|(n, _)| n == stage)
        .ok_or_else(|| anyhow!("no stage '{stage}' in {}", p.file.display()))?;
    let Planned::Cached(_, r) = pl else {
        bail!(
            "stage '{stage}' has no stored result for its current parameters and inputs ({}); run `eqlab run {} --only {stage}` first",
            reason(pl).1,
            p.file.display()
        );
    };
    if let Some(o) = output {
        if let Some(t) = r.tables.get(o) {
            let table = store.get_table(&t.object)?;
            return match export {
                Some(path) => {
                    std::fs::write(path, eqlab::table::to_csv(&table, usize::MAX)?)?;
                    println!("wrote {} rows to {}", table.num_rows(), path.display());
                    Ok(())
                }
                None => {
                    println!(
                        "{o}: {} rows\n{}",
                        table.num_rows(),
                        eqlab::table::to_csv(&table, rows)?
                    );
                    Ok(())
                }
            };
        }
        if let Some(f) = r.files.get(o) {
            let bytes = store.get_file(&f.object, &f.ext)?;
            let path = export.map_or_else(
                || PathBuf::from(format!("{stage}-{o}.{}", f.ext)),
                Path::to_path_buf,
            );
            std::fs::write(&path, bytes)?;
            println!("wrote {} ({} bytes)", path.display(), f.bytes);
            return Ok(());
        }
        let names: Vec<&str> = r
            .tables
            .keys()
            .chain(r.files.keys())
            .map(String::as_str)
            .collect();
        bail!(
            "stage '{stage}' has no output '{o}' (outputs: {})",
            names.join(", ")
        );
    }
    println!(
        "stage {stage} ({}), key {}, computed {} in {:.2}s",
        r.components.kind, r.key, r.finished, r.elapsed_s
    );
    if !r.scalars.is_empty() {
        println!("scalars:");
        for (k, v) in &r.scalars {
            println!("  {k:<28} {v:.10e}");
        }
    }
    for (k, t) in &r.tables {
        if k == "metrics" {
            continue;
        }
        let table = store.get_table(&t.object)?;
        println!(
            "table {k}: {} rows (first {})\n{}",
            table.num_rows(),
            rows.min(table.num_rows()),
            eqlab::table::to_csv(&table, rows)?
        );
    }
    for (k, f) in &r.files {
        println!(
            "file {k}: {} bytes ({}) at {}",
            f.bytes,
            f.ext,
            store.file_path(&f.object, &f.ext).display()
        );
    }
    Ok(())
}
