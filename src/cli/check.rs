//! `eqlab check`: run a pipeline, then compare chosen outputs with a golden file (a CI gate).

use anyhow::{Context, Result};
use eqlab::exec::{RunOptions, run, ui};
use eqlab::spec::Pipeline;
use eqlab::stages::Registry;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Arguments of `eqlab check`.
#[derive(clap::Args)]
#[command(
    after_help = "The golden file lists `value: STAGE.SCALAR` (or STAGE.TABLE.COLUMN[KEY=VALUE]),\n`expected:` and a tolerance `rel:`, `abs:` and/or `se:` (standard errors, for Monte-Carlo values).\nExit code 1 when any value is off or missing. JUnit XML goes to <store>/reports/<pipeline>-<id>/check.xml."
)]
pub struct Args {
    #[command(flatten)]
    pub file: super::PipelineArgs,
    /// Golden file (default: tests/golden/<pipeline name>.yaml next to the pipelines folder).
    #[arg(long)]
    pub golden: Option<PathBuf>,
    /// Rewrite the expected values with the current results (tolerances are kept).
    #[arg(long)]
    pub update: bool,
    /// Where to write JUnit XML.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Stages to run at once (default: number of cores).
    #[arg(short = 'j', long, default_value_t = 0)]
    pub jobs: usize,
}

/// Runs the gate; exit 1 when any value is off or missing.
pub fn exec(a: Args, store_dir: &Path, registry: &Registry) -> Result<ExitCode> {
    let p = a.file.load(registry)?;
    let golden_path = a.golden.unwrap_or_else(|| default_golden(&p));
    let g = eqlab::check::read_golden(&golden_path)?;
    let store = super::open_store(store_dir, &a.file.pipeline)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        jobs: a.jobs,
        progress: true,
        ..RunOptions::default()
    };
    let log = run(&p, registry, &store, &opts, cancel)?;
    {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "{}", ui::summary(&log));
    }
    super::warn_remote_trouble(&store);
    let records = store.run_records(&log)?;
    let verdicts = eqlab::check::evaluate(&p, &store, &records, &g);
    out!("{}", eqlab::check::render(&verdicts));
    let dir = eqlab::exec::report_dir(&store, &p);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let junit_path = a.junit.unwrap_or_else(|| dir.join("check.xml"));
    std::fs::write(&junit_path, eqlab::check::junit(&p.name, &verdicts))
        .with_context(|| format!("cannot write {}", junit_path.display()))?;
    let json = dir.join("check.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&verdicts)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    eqlab::errln!("JUnit XML: {}", junit_path.display());
    if a.update {
        let missing: Vec<&str> = g
            .checks
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| v.got.is_none())
            .map(|(e, _)| e.value.as_str())
            .collect();
        if !missing.is_empty() {
            eqlab::errln!(
                "error: not updated: {} entr{} of {} could not be evaluated: {}",
                missing.len(),
                if missing.len() == 1 { "y" } else { "ies" },
                golden_path.display(),
                missing.join(", ")
            );
            return Ok(ExitCode::from(1));
        }
        let mut g = g;
        for (e, v) in g.checks.iter_mut().zip(&verdicts) {
            if let Some(got) = v.got {
                e.expected = got;
            }
        }
        eqlab::check::write_golden(&golden_path, &g)?;
        outln!("updated {}", golden_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    Ok(if verdicts.iter().all(|v| v.pass) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `tests/golden/<name>.yaml` beside the pipelines folder.
fn default_golden(p: &Pipeline) -> PathBuf {
    p.base_dir
        .join("..")
        .join("tests")
        .join("golden")
        .join(format!("{}.yaml", p.name))
}
