//! What a Slurm run leaves in the store for its workers and for `eqlab status` / `eqlab cancel`:
//! `<store>/slurm/<run>/manifest.json` (the pipeline, its hash, `--set` values, each array
//! task's instances and expected keys), `<store>/slurm/<run>/jobs.json` (the Slurm job id of
//! each chunk, written as each is submitted) and `<store>/logs/<run>/<instance>.log`. No
//! submitting or watching here.

use crate::store::Store;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the manifest format (a worker refuses others).
pub const MANIFEST_VERSION: u32 = 1;

/// What the submitter tells its workers: written into the store before the first job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The run's id (`<store>/slurm/<run>/`, `<store>/logs/<run>/`).
    pub run: String,
    /// The pipeline file (absolute).
    pub pipeline: PathBuf,
    /// Blake3 of the pipeline file's text at submission: a worker refuses another text.
    pub file_hash: String,
    /// The `--set` arguments of the run, as given.
    pub overrides: Vec<String>,
    /// When the run started (RFC 3339, UTC): a forced instance's result is a record written
    /// after it.
    #[serde(default)]
    pub started: String,
    /// The run's `--only` stages (none: the whole pipeline), for `eqlab status`.
    #[serde(default)]
    pub only: Vec<String>,
    /// One entry per submitted job (a chunk of a job array).
    pub jobs: Vec<JobSpec>,
    /// Without a shared filesystem: the pipeline and input files, in the remote cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<super::bundle::Bundle>,
}

/// One submitted job: a chunk of one stage's job array.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    /// The declared stage name.
    pub stage: String,
    /// Array task → the instances it runs, in order (a pack).
    pub tasks: Vec<Vec<Task>>,
}

/// One stage instance to compute.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// The instance name.
    pub instance: String,
    /// The key the submitter derived, when it could (its upstream results were stored); a
    /// worker that derives another refuses to compute.
    pub key: Option<String>,
    /// Recompute even if a result is stored (`--force`).
    #[serde(default)]
    pub force: bool,
}

impl Manifest {
    /// Reads and checks a manifest file (its version).
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the run manifest {}", path.display()))?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Parses and checks a manifest's bytes; `from` names where they came from.
    pub fn parse(bytes: &[u8], from: &str) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes)
            .with_context(|| format!("the run manifest {from} is not valid"))?;
        if m.version != MANIFEST_VERSION {
            bail!(
                "the run manifest {from} has version {}, this eqlab reads version {MANIFEST_VERSION}",
                m.version
            );
        }
        Ok(m)
    }

    /// The run's `--set` values, parsed.
    pub fn overrides(&self) -> Result<Vec<crate::spec::Override>> {
        self.overrides
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e: String| anyhow::anyhow!("--set {s} in the run manifest: {e}"))
            })
            .collect()
    }
}

/// The directory of run `run`'s manifest and job ids: `<store>/slurm/<run>/`.
pub fn run_dir(store_root: &Path, run: &str) -> PathBuf {
    store_root.join("slurm").join(run)
}

/// Saves the Slurm job id of each chunk (`None`: not submitted) of run `run`.
pub fn write_job_ids(store: &Store, root: &Path, run: &str, ids: &[Option<String>]) -> Result<()> {
    store.write_atomic(
        &run_dir(root, run).join("jobs.json"),
        &serde_json::to_vec(ids)?,
    )
}

/// The Slurm job id of each chunk of run `run` (empty when nothing was submitted).
pub fn read_job_ids(store_root: &Path, run: &str) -> Result<Vec<Option<String>>> {
    let path = run_dir(store_root, run).join("jobs.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("the job list {} is not valid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The Slurm runs of pipeline file `pipeline` (absolute) in the store, oldest first (run ids
/// start with the submission time, so they sort by it).
pub fn runs_of(store_root: &Path, pipeline: &Path) -> Result<Vec<Manifest>> {
    let dir = store_root.join("slurm");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let path = dir.join(&n).join("manifest.json");
        // A run whose manifest was never completed, or another format, is not followable.
        if let Ok(m) = Manifest::read(&path)
            && m.pipeline == pipeline
        {
            out.push(m);
        }
    }
    Ok(out)
}

/// The log of one instance in run `run`: `<store>/logs/<run>/<instance>.log`, the name made
/// safe for a file system (characters other than letters, digits, `_-.=,` become `_`, and a
/// short hash of the real name keeps two instances apart).
pub fn log_path(store_root: &Path, run: &str, instance: &str) -> PathBuf {
    let safe: String = instance
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.=,".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let name = if safe == instance {
        safe
    } else {
        let h = blake3::hash(instance.as_bytes()).to_hex();
        format!("{safe}-{}", &h[..8])
    };
    store_root
        .join("logs")
        .join(run)
        .join(format!("{name}.log"))
}

/// The remote path of an instance's log, put there by a worker without a shared filesystem
/// when the instance failed: `logs/<run>/<file>` with the file name of [`log_path`].
pub fn log_rel(run: &str, instance: &str) -> String {
    log_path(Path::new(""), run, instance)
        .to_string_lossy()
        .replace('\\', "/")
}

/// How many lines of a log a failure shows.
pub const TAIL_LINES: usize = 12;

/// The last lines of an instance's log (or of Slurm's output of its array task, when the
/// worker never started), formatted to follow an error message.
pub fn log_tail(root: &Path, run: &str, instance: &str, job: &str, task: usize) -> String {
    let mine = log_path(root, run, instance);
    let slurm = root
        .join("logs")
        .join(run)
        .join(format!("slurm-{job}_{task}.out"));
    for path in [mine, slurm] {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
            if !tail.trim().is_empty() {
                return format!("; the tail of {}:\n{tail}", path.display());
            }
        }
    }
    format!(
        "; no log at {} (see Slurm's logs)",
        log_path(root, run, instance).display()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_names_are_safe_and_distinct() {
        let root = std::path::Path::new("/s");
        let a = super::log_path(root, "r", "ode[q=1.5,rep=2]");
        let b = super::log_path(root, "r", "ode_q=1.5,rep=2_");
        assert_ne!(a, b);
        assert!(a.starts_with("/s/logs/r"));
        let c = super::log_path(root, "r", "../../etc/passwd");
        assert_eq!(c.parent(), Some(std::path::Path::new("/s/logs/r")));
        assert_eq!(
            super::log_path(root, "r", "plain"),
            root.join("logs/r/plain.log")
        );
    }
}
