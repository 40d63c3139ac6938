//! The Slurm executor: `eqlab run PIPELINE --executor slurm`. Slurm schedules; eqlab plans,
//! submits and watches. The store is the truth (a record exists ⇒ the instance is done);
//! Slurm only tells liveness.
//!
//! 1. **Plan** once, before submitting: walking the DAG in topological order, an instance with
//!    a stored result is cached (never a job); one without is submitted; one whose key depends
//!    on the outputs of an instance that will be computed is submitted too, after it.
//! 2. **Submit** with `sbatch --parsable` (no FFI): the instances of one declared stage form
//!    one job array, packed `pack` instances per array task and split into chunks that respect
//!    the cluster's `MaxArraySize` (`scontrol show config`); a chunk waits for the chunks that
//!    hold its upstream instances (`--dependency=afterok:…`, `--kill-on-invalid-dep=yes`). The
//!    run's manifest (`<store>/slurm/<run>/manifest.json`: pipeline file, its hash, `--set`
//!    values, each array task's instances and expected keys) is written before the first job;
//!    each task runs `eqlab worker` on it (see `worker`).
//! 3. **Watch**: poll `squeue` (liveness) then the store (records); an instance whose record
//!    appears ran; one whose job is gone without a record failed (its log tail is the error),
//!    or was skipped when a job it waited for failed. Ctrl-C cancels the run's jobs
//!    (`scancel`). The per-stage lines, summary, run log and exit codes are the local run's.

use super::prepare::{Lookup, kind_of, lookup, prepare};
use super::{RunOptions, executor::Executor, instance_names, selection, status, ui};
use crate::config::SlurmSection;
use crate::graph::Dag;
use crate::spec::{Pipeline, StageDecl};
use crate::stages::Registry;
use crate::store::record::{host_name, now_rfc3339};
use crate::store::{RunLog, RunStage, Store};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
    /// One entry per submitted job (a chunk of a job array).
    pub jobs: Vec<JobSpec>,
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
    /// Reads and checks a manifest file (version, non-empty jobs).
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the run manifest {}", path.display()))?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("the run manifest {} is not valid", path.display()))?;
        if m.version != MANIFEST_VERSION {
            bail!(
                "the run manifest {} has version {}, this eqlab reads version {MANIFEST_VERSION}",
                path.display(),
                m.version
            );
        }
        Ok(m)
    }
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

/// The Slurm executor with its settings (`[executor.slurm]` in `eqlab.toml`).
pub struct Slurm {
    /// Cluster settings.
    pub settings: SlurmSection,
    /// The `eqlab` binary the jobs run (a path every node can reach).
    pub exe: PathBuf,
}

/// Runs a Slurm client command and returns its stdout; errors name the command and carry its
/// stderr. A missing command means Slurm is not installed.
fn slurm_cmd(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "Slurm is not installed here: `{}` was not found on PATH (--executor slurm submits \
             with sbatch and watches with squeue; run without --executor to compute locally)",
            cmd.get_program().to_string_lossy()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot start `{shown}`")),
    };
    if !out.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cluster's `MaxArraySize` (from `scontrol show config`); this also checks that Slurm is
/// installed and its controller answers.
pub fn max_array_size() -> Result<usize> {
    let text = slurm_cmd(Command::new("scontrol").args(["show", "config"]))?;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == "MaxArraySize"
        {
            return v
                .trim()
                .parse::<usize>()
                .map_err(|e| anyhow!("`scontrol show config` gives MaxArraySize = {v:?}: {e}"));
        }
    }
    Ok(1001) // Slurm's default
}

/// Quotes a string for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One instance the run submits.
struct Job {
    /// Position in the selection's topological order.
    pos: usize,
    /// Index of the submitted job (chunk) and the array task in it.
    chunk: usize,
    task: usize,
    /// The key, once its upstream results are known.
    hash: Option<String>,
}

/// What the plan found for one instance.
enum Plan {
    /// Stored: its record is in `done`.
    Cached(String),
    /// Must run (the key, when known).
    Submit(Option<String>),
    /// Cannot run: its parameters or input files are invalid.
    Failed(String),
    /// An upstream instance cannot run.
    Skipped(String),
}

impl Executor for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn run(
        &self,
        p: &Pipeline,
        registry: &Registry,
        store: &Store,
        opts: &RunOptions,
        cancel: Arc<AtomicBool>,
    ) -> Result<RunLog> {
        let max_array = max_array_size()?.max(1);
        let _shared = store.store_lock(false)?;
        let dag = Dag::new(p);
        let order = selection(p, &dag, &opts.only, &opts.force)?;
        let forced: HashSet<String> = instance_names(p, &opts.force)?.into_iter().collect();
        let ui = ui::Ui::new(false);
        let started = now_rfc3339();
        let t0 = Instant::now();
        let decls: Vec<&StageDecl> = order
            .iter()
            .map(|s| p.stage(s).ok_or_else(|| anyhow!("stage '{s}' vanished")))
            .collect::<Result<_>>()?;
        let pos: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();

        // 1. Plan.
        let mut done = std::collections::BTreeMap::new();
        let mut plan: Vec<Plan> = Vec::with_capacity(order.len());
        for (i, decl) in decls.iter().enumerate() {
            let stage = kind_of(registry, decl)?;
            let mut after = false;
            let mut blocked = None;
            for n in &decl.needs {
                match pos.get(n.as_str()).and_then(|&j| plan.get(j)) {
                    Some(Plan::Submit(_)) => after = true,
                    Some(Plan::Failed(_) | Plan::Skipped(_)) => blocked = Some(n.clone()),
                    _ => {}
                }
            }
            let planned = if let Some(b) = blocked {
                Plan::Skipped(format!("upstream stage '{b}' did not finish"))
            } else if after {
                Plan::Submit(None)
            } else {
                match prepare(p, decl, stage, &done, store) {
                    Err(e) => Plan::Failed(format!("{e:#}")),
                    Ok(prep) => {
                        let hit = if forced.contains(&order[i]) {
                            None
                        } else {
                            match lookup(store, &prep.hash, true)? {
                                Lookup::Hit(r) => Some(r),
                                Lookup::Damaged(why) => {
                                    ui.warn(&format!(
                                        "stored result of stage '{}' is damaged: {why}; recomputing",
                                        order[i]
                                    ));
                                    None
                                }
                                Lookup::Miss => None,
                            }
                        };
                        match hit {
                            Some(r) => {
                                done.insert(order[i].clone(), *r);
                                Plan::Cached(prep.hash)
                            }
                            None => Plan::Submit(Some(prep.hash)),
                        }
                    }
                }
            };
            plan.push(planned);
        }
        let mut outcome: Vec<Option<RunStage>> = (0..order.len()).map(|_| None).collect();
        for (i, pl) in plan.iter().enumerate() {
            let (name, kind) = (&order[i], &decls[i].kind);
            let o = match pl {
                Plan::Cached(h) => RunStage::new(name, kind, status::CACHED).key(h),
                Plan::Failed(e) => RunStage::new(name, kind, status::FAILED).error(e.clone()),
                Plan::Skipped(e) => RunStage::new(name, kind, status::SKIPPED).error(e.clone()),
                Plan::Submit(_) => continue,
            };
            ui.finished(&o);
            outcome[i] = Some(o);
        }

        // 2. Group into job-array chunks: per declared stage, `pack` instances per task,
        // at most `max_array` tasks per chunk.
        let pack = self.settings.pack.unwrap_or(1).max(1) as usize;
        let mut by_stage: Vec<(String, Vec<usize>)> = Vec::new();
        let mut stage_ix: HashMap<&str, usize> = HashMap::new();
        for (i, pl) in plan.iter().enumerate() {
            if let Plan::Submit(_) = pl {
                let base = decls[i].base.as_str();
                let g = *stage_ix.entry(base).or_insert_with(|| {
                    by_stage.push((base.to_owned(), Vec::new()));
                    by_stage.len() - 1
                });
                by_stage[g].1.push(i);
            }
        }
        let mut jobs: Vec<Job> = Vec::new();
        let mut job_of: HashMap<usize, usize> = HashMap::new(); // position → index in `jobs`
        let mut specs: Vec<JobSpec> = Vec::new();
        for (base, members) in &by_stage {
            for chunk in members.chunks(pack * max_array) {
                let c = specs.len();
                let mut tasks = Vec::new();
                for (t, packed) in chunk.chunks(pack).enumerate() {
                    let mut list = Vec::new();
                    for &i in packed {
                        let key = match &plan[i] {
                            Plan::Submit(k) => k.clone(),
                            _ => None,
                        };
                        list.push(Task {
                            instance: order[i].clone(),
                            key: key.clone(),
                            force: forced.contains(&order[i]),
                        });
                        job_of.insert(i, jobs.len());
                        jobs.push(Job {
                            pos: i,
                            chunk: c,
                            task: t,
                            hash: key,
                        });
                    }
                    tasks.push(list);
                }
                specs.push(JobSpec {
                    stage: base.clone(),
                    tasks,
                });
            }
        }
        // The chunks each chunk waits for.
        let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); specs.len()];
        for j in &jobs {
            for n in &decls[j.pos].needs {
                if let Some(&u) = pos.get(n.as_str()).and_then(|q| job_of.get(q))
                    && jobs[u].chunk != j.chunk
                {
                    deps[j.chunk].insert(jobs[u].chunk);
                }
            }
        }

        // 3. Manifest, then submit (chunks of upstream stages first: `by_stage` follows the
        // topological order of first instances, and a chunk only waits for earlier stages).
        let run_id = format!(
            "{}-{}",
            started.replace([':', '.'], "").replace('-', ""),
            std::process::id()
        );
        let root = std::path::absolute(store.root())
            .with_context(|| format!("cannot resolve the store path {}", store.root().display()))?;
        let run_dir = root.join("slurm").join(&run_id);
        let log_dir = root.join("logs").join(&run_id);
        let mut job_ids: Vec<String> = Vec::new();
        let mut submitted_all = true;
        if !specs.is_empty() {
            for d in [&run_dir, &log_dir] {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
            }
            let manifest = Manifest {
                version: MANIFEST_VERSION,
                run: run_id.clone(),
                pipeline: std::fs::canonicalize(&p.file)
                    .with_context(|| format!("cannot resolve {}", p.file.display()))?,
                file_hash: p.file_hash.clone(),
                overrides: p.overrides.clone(),
                jobs: specs.clone(),
            };
            let manifest_path = run_dir.join("manifest.json");
            store.write_atomic(&manifest_path, &serde_json::to_vec_pretty(&manifest)?)?;
            let script = run_dir.join("worker.sh");
            let text = format!(
                "#!/bin/sh\n# One array task of eqlab run {run_id}: eqlab worker computes its instances.\nexec {} --store {} worker --manifest {} --job \"$1\"\n",
                sh_quote(&self.exe.to_string_lossy()),
                sh_quote(&root.to_string_lossy()),
                sh_quote(&manifest_path.to_string_lossy()),
            );
            store.write_atomic(&script, text.as_bytes())?;
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            let mut ids: Vec<Option<String>> = vec![None; specs.len()];
            for c in submit_order(&deps) {
                let spec = &specs[c];
                if cancel.load(Ordering::SeqCst) {
                    break;
                }
                let res = decls
                    .iter()
                    .find(|d| d.base == spec.stage)
                    .map(|d| d.resources.clone())
                    .unwrap_or_default();
                let mut cmd = Command::new("sbatch");
                cmd.arg("--parsable")
                    .arg(format!("--job-name=eqlab:{}:{}", p.name, spec.stage))
                    .arg(format!(
                        "--array=0-{}{}",
                        spec.tasks.len() - 1,
                        self.settings
                            .max_jobs
                            .map(|k| format!("%{k}"))
                            .unwrap_or_default()
                    ))
                    .arg(format!(
                        "--output={}",
                        log_dir.join("slurm-%A_%a.out").display()
                    ))
                    .arg(format!("--chdir={}", cwd.display()))
                    .arg("--kill-on-invalid-dep=yes");
                if !deps[c].is_empty() {
                    let after: Vec<&str> =
                        deps[c].iter().filter_map(|&d| ids[d].as_deref()).collect();
                    cmd.arg(format!("--dependency=afterok:{}", after.join(":")));
                }
                let s = &self.settings;
                for (flag, v) in [
                    ("partition", &s.partition),
                    ("account", &s.account),
                    ("qos", &s.qos),
                ] {
                    if let Some(v) = v {
                        cmd.arg(format!("--{flag}={v}"));
                    }
                }
                if let Some(n) = res.cpus {
                    cmd.arg(format!("--cpus-per-task={n}"));
                }
                if let Some(m) = &res.mem {
                    cmd.arg(format!("--mem={m}"));
                }
                if let Some(t) = &res.time {
                    cmd.arg(format!("--time={t}"));
                }
                if let Some(g) = res.gpus.filter(|&g| g > 0) {
                    cmd.arg(format!("--gpus={g}"));
                }
                cmd.args(&s.sbatch_flags).arg(&script).arg(c.to_string());
                let out = match slurm_cmd(&mut cmd) {
                    Ok(o) => o,
                    Err(e) => {
                        let before: Vec<String> = ids.iter().flatten().cloned().collect();
                        cancel_jobs(&before);
                        return Err(e.context(format!(
                            "submitting stage '{}'; the {} jobs submitted before were cancelled",
                            spec.stage,
                            before.len()
                        )));
                    }
                };
                let id = out.trim().split(';').next().unwrap_or("").to_owned();
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                    cancel_jobs(&ids.iter().flatten().cloned().collect::<Vec<_>>());
                    bail!("sbatch --parsable printed {out:?}, not a job id");
                }
                ids[c] = Some(id);
            }
            submitted_all = ids.iter().all(Option::is_some);
            job_ids = ids.into_iter().flatten().collect();
            store.write_atomic(
                &run_dir.join("jobs.json"),
                &serde_json::to_vec_pretty(&job_ids)?,
            )?;
        }
        eprintln!(
            "slurm: submitted {} jobs for {} instances (run {run_id}{})",
            job_ids.len(),
            jobs.len(),
            if job_ids.is_empty() {
                String::new()
            } else {
                format!(", job ids {}", job_ids.join(" "))
            }
        );

        // 4. Watch.
        let poll = Duration::from_millis(self.settings.poll_ms.unwrap_or(500).max(50));
        let mut settled = vec![false; jobs.len()];
        let mut chunk_failed = vec![false; specs.len()];
        let ok_at = |outcome: &[Option<RunStage>], i: usize| {
            outcome[i]
                .as_ref()
                .map(|o| o.status == status::RAN || o.status == status::CACHED)
        };
        let mut squeue_trouble = false;
        loop {
            if cancel.load(Ordering::SeqCst) || !submitted_all {
                cancel_jobs(&job_ids);
                for (j, job) in jobs.iter().enumerate() {
                    if !settled[j] {
                        let d = decls[job.pos];
                        let o = RunStage::new(&d.name, &d.kind, status::INTERRUPTED)
                            .error("interrupted: its job was cancelled");
                        ui.finished(&o);
                        outcome[job.pos] = Some(o);
                        settled[j] = true;
                    }
                }
                break;
            }
            // Liveness first, then the store: a job missing from this snapshot that has no
            // record afterwards really ended without one.
            let alive = match alive_tasks(&job_ids) {
                Ok(a) => Some(a),
                Err(e) => {
                    if !squeue_trouble {
                        ui.warn(&format!(
                            "cannot ask Slurm which jobs live: {e:#}; retrying"
                        ));
                        squeue_trouble = true;
                    }
                    None
                }
            };
            let mut progress = true;
            while progress {
                progress = false;
                for (j, job) in jobs.iter_mut().enumerate() {
                    if settled[j] {
                        continue;
                    }
                    let decl = decls[job.pos];
                    let (name, kind) = (&decl.name, &decl.kind);
                    let mut need_missing = false;
                    let mut need_failed = None;
                    for n in &decl.needs {
                        if let Some(&q) = pos.get(n.as_str()) {
                            match ok_at(&outcome, q) {
                                None => need_missing = true,
                                Some(false) => need_failed = Some(n.clone()),
                                Some(true) => {}
                            }
                        }
                    }
                    let upstream_failed = deps[job.chunk].iter().any(|&d| chunk_failed[d]);
                    let mut settle = |o: RunStage, ok: bool| {
                        ui.finished(&o);
                        outcome[job.pos] = Some(o);
                        settled[j] = true;
                        if !ok {
                            chunk_failed[job.chunk] = true;
                        }
                    };
                    if let Some(b) = need_failed {
                        settle(
                            RunStage::new(name, kind, status::SKIPPED)
                                .error(format!("upstream stage '{b}' did not finish")),
                            false,
                        );
                        progress = true;
                        continue;
                    }
                    if job.hash.is_none() && !need_missing {
                        let stage = kind_of(registry, decl)?;
                        match prepare(p, decl, stage, &done, store) {
                            Ok(prep) => job.hash = Some(prep.hash),
                            Err(e) => {
                                settle(
                                    RunStage::new(name, kind, status::FAILED)
                                        .error(format!("{e:#}")),
                                    false,
                                );
                                progress = true;
                                continue;
                            }
                        }
                    }
                    let Some(hash) = &job.hash else { continue };
                    if let Lookup::Hit(r) = lookup(store, hash, false)? {
                        let secs = store.meta(hash).map_or(0.0, |m| m.elapsed_s);
                        done.insert(name.clone(), *r);
                        settle(
                            RunStage::new(name, kind, status::RAN)
                                .key(hash)
                                .seconds(secs),
                            true,
                        );
                        progress = true;
                        continue;
                    }
                    let Some(alive) = &alive else { continue };
                    let Some(id) = job_ids.get(job.chunk) else {
                        continue;
                    };
                    if alive.contains(&(id.clone(), job.task.to_string())) {
                        continue;
                    }
                    // Gone without a record.
                    if upstream_failed {
                        settle(
                            RunStage::new(name, kind, status::SKIPPED).error(format!(
                                "job {id}_{} was cancelled: a job it waited for failed",
                                job.task
                            )),
                            false,
                        );
                    } else {
                        let tail = log_tail(&root, &run_id, name, id, job.task);
                        settle(
                            RunStage::new(name, kind, status::FAILED).error(format!(
                                "job {id}_{} ended without a result{tail}",
                                job.task
                            )),
                            false,
                        );
                    }
                    progress = true;
                }
            }
            if settled.iter().all(|&s| s) {
                break;
            }
            std::thread::sleep(poll);
        }
        // Nothing of this run may stay queued (e.g. a chunk whose other tasks were settled as
        // skipped while Slurm had not yet cancelled it).
        if let Ok(alive) = alive_tasks(&job_ids)
            && !alive.is_empty()
        {
            cancel_jobs(&job_ids);
        }

        let mut log = RunLog {
            pipeline: p.name.clone(),
            file: p.file.display().to_string(),
            file_id: super::pipeline_id(p),
            file_hash: p.file_hash.clone(),
            started,
            seconds: t0.elapsed().as_secs_f64(),
            eqlab_version: env!("CARGO_PKG_VERSION").into(),
            host: host_name(),
            stages: outcome.into_iter().flatten().collect(),
            not_saved: None,
            scheduler_steps: 0,
        };
        store.save_state();
        if let Err(e) = store.put_run(&log) {
            log.not_saved = Some(format!("the run log could not be saved: {e:#}"));
        }
        Ok(log)
    }
}

/// The chunks in an order where each comes after those it waits for (Kahn; the graph of
/// chunks is acyclic because the stage graph is).
fn submit_order(deps: &[BTreeSet<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (c, d) in deps.iter().enumerate() {
        for &u in d {
            users[u].push(c);
        }
    }
    let mut ready: Vec<usize> = (0..deps.len()).filter(|&c| waiting[c] == 0).rev().collect();
    let mut out = Vec::with_capacity(deps.len());
    while let Some(c) = ready.pop() {
        out.push(c);
        for &u in &users[c] {
            waiting[u] -= 1;
            if waiting[u] == 0 {
                ready.push(u);
            }
        }
    }
    out
}

/// The (job id, array task id) pairs of `ids` that Slurm still lists (pending or running).
fn alive_tasks(ids: &[String]) -> Result<HashSet<(String, String)>> {
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let text = slurm_cmd(Command::new("squeue").args(["-h", "-r", "-o", "%F %K %T"]))?;
    let mut alive = HashSet::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if let (Some(job), Some(task)) = (f.next(), f.next())
            && wanted.contains(job)
        {
            alive.insert((job.to_owned(), task.to_owned()));
        }
    }
    Ok(alive)
}

/// Cancels jobs (best effort: a job that already ended is no error).
fn cancel_jobs(ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    if let Err(e) = slurm_cmd(Command::new("scancel").args(ids)) {
        eprintln!("warning: {e:#}");
    }
}

/// The last lines of an instance's log (or of Slurm's output of its array task, when the
/// worker never started), formatted to follow an error message.
fn log_tail(root: &Path, run: &str, instance: &str, job: &str, task: usize) -> String {
    const LINES: usize = 12;
    let mine = log_path(root, run, instance);
    let slurm = root
        .join("logs")
        .join(run)
        .join(format!("slurm-{job}_{task}.out"));
    for path in [mine, slurm] {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
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

    #[test]
    fn shell_quoting() {
        assert_eq!(super::sh_quote("a b"), "'a b'");
        assert_eq!(super::sh_quote("it's"), r"'it'\''s'");
    }
}
