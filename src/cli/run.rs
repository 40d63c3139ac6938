//! `eqlab run`: reuse stored results, compute the rest, print the summary.

use anyhow::{Context, Result, bail};
use eqlab::exec::executor::{Executor, Local};
use eqlab::exec::slurm::Slurm;
use eqlab::exec::{RunOptions, status, ui};
use eqlab::stages::Registry;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `eqlab run`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  eqlab run pipelines/demo.yaml\n  eqlab run pipelines/demo.yaml --set params.start=2012-01-01\n  eqlab run pipelines/demo.yaml --only describe --force describe -j 2\n\nOn a Slurm cluster (settings in eqlab.toml's [executor.slurm]):\n  eqlab run pipelines/sweep-q.yaml --executor slurm            submit, watch, Ctrl-C cancels\n  eqlab run pipelines/sweep-q.yaml --executor slurm --dry-run  what would be submitted\n  eqlab run pipelines/sweep-q.yaml --executor slurm --detach   submit and return\n  eqlab status pipelines/sweep-q.yaml [--wait]                 follow a run\n  eqlab cancel pipelines/sweep-q.yaml                          cancel its jobs"
)]
pub struct Args {
    #[command(flatten)]
    pub file: super::PipelineArgs,
    /// Run only these stages and what they need.
    #[arg(long, num_args = 1..)]
    pub only: Vec<String>,
    /// Recompute these stages even if a result is stored.
    #[arg(long, num_args = 1..)]
    pub force: Vec<String>,
    /// Stages to run at once (default: number of cores).
    #[arg(short = 'j', long, default_value_t = 0)]
    pub jobs: usize,
    /// Do not draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Where stages compute: `local` (this machine's cores) or `slurm` (one job array per
    /// stage, submitted with sbatch; settings in eqlab.toml's [executor.slurm]).
    #[arg(long, value_enum, default_value_t = Which::Local)]
    pub executor: Which,
    /// With --executor slurm: submit the jobs and return at once; they run on. Follow them
    /// with `eqlab status PIPELINE`, stop them with `eqlab cancel PIPELINE`.
    #[arg(long)]
    pub detach: bool,
    /// With --executor slurm: plan and group the job arrays, say what would be submitted,
    /// submit nothing (the store is not written).
    #[arg(long)]
    pub dry_run: bool,
}

/// The executors `--executor` chooses from.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// This process's threads.
    Local,
    /// Jobs on a Slurm cluster (needs sbatch, squeue, scancel, scontrol, a shared store).
    Slurm,
}

/// The Slurm executor with the `[executor.slurm]` settings for `pipeline`, running this
/// binary on the nodes (unless the settings name another), and the remote cache's endpoint
/// and region for nodes without a shared filesystem.
pub fn slurm(pipeline: &Path) -> Result<Slurm> {
    let (settings, settings_file) = eqlab::config::slurm_settings(pipeline)?;
    let mut node_env = Vec::new();
    if let Some(r) = super::remote_settings(pipeline)? {
        for (var, s) in [("AWS_ENDPOINT_URL", &r.endpoint), ("AWS_REGION", &r.region)] {
            if let Some(s) = s {
                node_env.push((var.to_owned(), s.value.clone()));
            }
        }
    }
    Ok(Slurm {
        settings,
        settings_file,
        exe: std::env::current_exe().context("cannot find the eqlab binary the jobs should run")?,
        node_env,
    })
}

/// Runs the pipeline; exit 0 when every stage is cached or ran, 1 when any failed or was
/// skipped, 130 after Ctrl-C.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    if (a.detach || a.dry_run) && a.executor != Which::Slurm {
        bail!(
            "--{} needs --executor slurm (a local run computes in this process; `eqlab plan` \
             says what it would do)",
            if a.detach { "detach" } else { "dry-run" }
        );
    }
    let p = a.file.load(registry)?;
    let store = super::open_store(store_dir, &a.file.pipeline)?;
    let opts = RunOptions {
        jobs: a.jobs,
        only: a.only,
        force: a.force,
        progress: !a.no_progress,
    };
    let executor: Box<dyn Executor> = match a.executor {
        Which::Local => {
            // This machine computes: its devices must be usable (a cluster job checks on its node).
            eqlab::spec::check_machine(&p, registry).map_err(|e| anyhow::anyhow!("{e}"))?;
            Box::new(Local)
        }
        Which::Slurm if a.detach || a.dry_run => {
            let s = slurm(&a.file.pipeline)?.submit(&p, registry, &store, &opts, a.dry_run)?;
            let failed = s
                .settled
                .iter()
                .any(|o| o.status == status::FAILED || o.status == status::SKIPPED);
            if a.dry_run {
                // What would be submitted is on stderr; nothing runs.
            } else if s.jobs > 0 {
                let f = a.file.pipeline.display();
                outln!(
                    "detached: {} run on in {} (run {}).\n  follow:  eqlab status {f} [--wait]\n  cancel:  eqlab cancel {f}",
                    eqlab::exec::ui::counted(s.instances, "instance"),
                    eqlab::exec::ui::counted(s.jobs, "job"),
                    s.run
                );
            } else {
                outln!("nothing to submit: every stage is stored or cannot run");
            }
            return Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        Which::Slurm => Box::new(slurm(&a.file.pipeline)?),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    ctrlc::set_handler(move || {
        if c.swap(true, Ordering::SeqCst) {
            // Second Ctrl-C: leave now. Records are written last, so nothing partial is visible.
            std::process::exit(130);
        }
        eqlab::errln!(
            "\ninterrupting: waiting for running stages to stop (Ctrl-C again to quit now)"
        );
    })
    .context("installing the Ctrl-C handler")?;
    let log = executor.run(&p, registry, &store, &opts, cancel.clone())?;
    super::warn_remote_trouble(&store);
    if cancel.load(Ordering::SeqCst) {
        report(&log)?;
        return Ok(ExitCode::from(130));
    }
    report(&log)
}

/// Prints a finished run's summary and its errors; exit 0 when every stage is cached or ran,
/// 1 otherwise.
pub fn report(log: &eqlab::store::RunLog) -> Result<ExitCode> {
    out!("{}", ui::summary(log));
    let failed: Vec<_> = log
        .stages
        .iter()
        .filter(|s| s.status == status::FAILED)
        .collect();
    for f in &failed {
        eqlab::errln!(
            "error: stage '{}' ({}) failed: {}",
            f.stage,
            f.kind,
            f.error.as_deref().unwrap_or("?")
        );
    }
    if let Some(why) = &log.not_saved {
        eqlab::errln!("error: {why}");
    }
    Ok(
        if failed.is_empty()
            && log.not_saved.is_none()
            && log.stages.iter().all(|s| s.status != status::SKIPPED)
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
