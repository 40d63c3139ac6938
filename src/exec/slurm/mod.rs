//! The Slurm executor: `eqlab run PIPELINE --executor slurm`, and following its runs with
//! `eqlab status` / `eqlab cancel`. Slurm schedules; eqlab plans, submits and watches. The
//! store is the truth (a record exists ⇒ the instance is done); Slurm only tells liveness.
//!
//! 1. **Plan** once, before submitting: walking the DAG in topological order, an instance with
//!    a stored result is cached (never a job); one without is submitted; one whose key depends
//!    on the outputs of an instance that will be computed is submitted too, after it.
//! 2. **Submit** with `sbatch --parsable` (see `commands`): the instances of one declared stage
//!    form one job array, packed several instances per array task (`pack` in `eqlab.toml`, or
//!    from the timings of earlier runs) and split into chunks that respect the cluster's
//!    `MaxArraySize`; a chunk waits for the chunks that hold its upstream instances
//!    (`--dependency=afterok:…`, `--kill-on-invalid-dep=yes`). The run's manifest (see
//!    `manifest`) is written before the first job; each task runs `eqlab worker` on it.
//! 3. **Watch**: poll `squeue` (liveness) then the store (records); an instance whose record
//!    appears ran; one whose job is gone without a record failed (its log tail is the error),
//!    or was skipped when a job it waited for failed. Ctrl-C cancels the run's jobs unless the
//!    run was detached; `eqlab status` follows a run from its manifest the same way.
//!
//! Without a shared filesystem (`shared_fs = false`) the files travel through the remote
//! cache (see `bundle`), and results come back as pulls when their tasks end.

pub mod bundle;
mod commands;
mod manifest;

pub use commands::max_array_size;
pub use manifest::{JobSpec, MANIFEST_VERSION, Manifest, Task, log_path, log_rel};

use super::prepare::{Lookup, input_files, kind_of, lookup, prepare};
use super::ui::counted;
use super::{RunOptions, executor::Executor, instance_names, selection, status, ui};
use crate::config::SlurmSection;
use crate::graph::Dag;
use crate::spec::resources::Resources;
use crate::spec::{Pipeline, StageDecl};
use crate::stages::Registry;
use crate::store::record::{host_name, now_rfc3339};
use crate::store::{Record, RunLog, RunStage, Store};
use anyhow::{Context, Result, anyhow, bail};
use commands::{TaskState, alive_tasks, cancel_jobs, sh_quote, slurm_cmd, task_states};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Seconds of work an automatically packed array task aims at: starting a Slurm job and an
/// `eqlab worker` costs about a second, so cheaper instances are packed until a task does
/// about this much.
pub const PACK_TARGET_S: f64 = 30.0;

/// The most instances one array task runs when packing automatically.
pub const PACK_MAX: usize = 1000;

/// How many jobs a dry run lists.
const DRY_RUN_JOBS_SHOWN: usize = 20;

/// How many of the store's most recent run logs automatic packing reads.
const PACK_HISTORY_RUNS: usize = 20;

/// The Slurm executor with its settings (`[executor.slurm]` in `eqlab.toml`).
pub struct Slurm {
    /// Cluster settings.
    pub settings: SlurmSection,
    /// The `eqlab` binary the jobs run (a path every node can reach).
    pub exe: PathBuf,
    /// The project file the settings came from, for messages.
    pub settings_file: Option<PathBuf>,
    /// Variables the jobs need beyond what sbatch exports, for nodes without a shared
    /// filesystem (the remote cache's endpoint and region from `eqlab.toml`; never secrets).
    pub node_env: Vec<(String, String)>,
}

/// What a submission did (or, in a dry run, would do).
pub struct Submission {
    /// The run's id (`<store>/slurm/<run>/`).
    pub run: String,
    /// Jobs (job-array chunks) submitted.
    pub jobs: usize,
    /// Instances they compute.
    pub instances: usize,
    /// Instances already stored (cached) or failing before submission.
    pub settled: Vec<RunStage>,
}

/// A look at a Slurm run without waiting (`eqlab status`).
pub struct Snapshot {
    /// The run's id.
    pub run: String,
    /// The run's `--set` values.
    pub overrides: Vec<String>,
    /// Instances settled: cached, ran, failed or skipped.
    pub settled: Vec<RunStage>,
    /// Instances still waiting.
    pub waiting: Vec<Waiting>,
}

/// An instance whose job has not ended.
pub struct Waiting {
    /// The instance.
    pub instance: String,
    /// Slurm's state of its task: `PENDING`, `RUNNING`, … (`WAITING` when Slurm does not list
    /// it yet).
    pub state: String,
    /// Why it is pending (Slurm's reason), if it is.
    pub reason: String,
    /// Its array task, `JOB_TASK`.
    pub job: String,
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
    /// Recomputed although stored (`--force`): only a record written after the run started
    /// counts.
    force: bool,
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

/// How [`Batch::watch`] follows the jobs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// Until every instance is settled; Ctrl-C cancels the jobs (a run).
    Run,
    /// Until every instance is settled; Ctrl-C only stops watching (`status --wait`).
    Attach,
    /// One look (`status`).
    Once,
}

/// One Slurm run, from plan to the last record.
struct Batch<'a> {
    p: &'a Pipeline,
    registry: &'a Registry,
    store: &'a Store,
    ui: ui::Ui,
    /// The instances considered, in topological order, and their declarations.
    order: Vec<String>,
    decls: Vec<&'a StageDecl>,
    pos: HashMap<String, usize>,
    plan: Vec<Plan>,
    /// Records of the settled instances (upstream results for later keys).
    done: BTreeMap<String, Record>,
    outcome: Vec<Option<RunStage>>,
    jobs: Vec<Job>,
    specs: Vec<JobSpec>,
    /// The chunks each chunk waits for.
    deps: Vec<BTreeSet<usize>>,
    /// The Slurm job id of each chunk, once submitted.
    ids: Vec<Option<String>>,
    /// Jobs Slurm would never start, with its reason (cancelled by the watcher).
    hopeless: HashMap<String, String>,
    /// Print only failed and skipped instances (`status` without `--wait`).
    quiet: bool,
    /// The run's `--only` stages.
    only: Vec<String>,
    /// The store's absolute path (what workers are given).
    root: PathBuf,
    /// Whether the nodes share this machine's files; without, results arrive as pulls from
    /// the remote cache.
    shared: bool,
    run_id: String,
    started: String,
    t0: Instant,
}

impl<'a> Batch<'a> {
    fn new(
        p: &'a Pipeline,
        registry: &'a Registry,
        store: &'a Store,
        order: Vec<String>,
        run_id: String,
        started: String,
        progress: bool,
    ) -> Result<Batch<'a>> {
        let decls: Vec<&StageDecl> = order
            .iter()
            .map(|s| p.stage(s).ok_or_else(|| anyhow!("stage '{s}' vanished")))
            .collect::<Result<_>>()?;
        let pos = order
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i))
            .collect();
        let root = std::path::absolute(store.root())
            .with_context(|| format!("cannot resolve the store path {}", store.root().display()))?;
        let n = order.len();
        Ok(Batch {
            p,
            registry,
            store,
            ui: ui::Ui::new(progress),
            order,
            decls,
            pos,
            plan: Vec::with_capacity(n),
            done: BTreeMap::new(),
            outcome: (0..n).map(|_| None).collect(),
            jobs: Vec::new(),
            specs: Vec::new(),
            deps: Vec::new(),
            ids: Vec::new(),
            hopeless: HashMap::new(),
            quiet: false,
            only: Vec::new(),
            root,
            shared: true,
            run_id,
            started,
            t0: Instant::now(),
        })
    }

    /// Step 1, plan: decides, per instance, cached / submit / failed / skipped, and settles all but the
    /// submitted ones. `followed`: when following an earlier run, its instances and the keys
    /// it expected; any other instance must then be stored already.
    fn plan(
        &mut self,
        forced: &HashSet<String>,
        followed: Option<&HashMap<String, Option<String>>>,
    ) -> Result<()> {
        for i in 0..self.order.len() {
            let (name, decl) = (&self.order[i], self.decls[i]);
            let stage = kind_of(self.registry, decl)?;
            let mut after = false;
            let mut blocked = None;
            for n in &decl.needs {
                match self.pos.get(n).and_then(|&j| self.plan.get(j)) {
                    Some(Plan::Submit(_)) => after = true,
                    Some(Plan::Failed(_) | Plan::Skipped(_)) => blocked = Some(n.clone()),
                    _ => {}
                }
            }
            let not_in_run = || {
                Plan::Failed(format!(
                    "it has no stored result and is not part of Slurm run {}: run `eqlab run` \
                     again",
                    self.run_id
                ))
            };
            let planned = if let Some(key) = followed.and_then(|f| f.get(name)) {
                Plan::Submit(key.clone())
            } else if let Some(b) = blocked {
                Plan::Skipped(format!("upstream stage '{b}' did not finish"))
            } else if after {
                match followed {
                    Some(_) => not_in_run(),
                    None => Plan::Submit(None),
                }
            } else {
                match prepare(self.p, decl, stage, &self.done, self.store) {
                    Err(e) => Plan::Failed(format!("{e:#}")),
                    Ok(prep) => {
                        let hit = if forced.contains(name) {
                            None
                        } else {
                            match lookup(self.store, &prep.hash, true)? {
                                Lookup::Hit(r) => Some(r),
                                Lookup::Damaged(why) => {
                                    self.ui.warn(&format!(
                                        "stored result of stage '{name}' is damaged: {why}; recomputing"
                                    ));
                                    None
                                }
                                Lookup::Miss => None,
                            }
                        };
                        match (hit, followed) {
                            (Some(r), _) => {
                                self.done.insert(name.clone(), *r);
                                Plan::Cached(prep.hash)
                            }
                            (None, Some(_)) => not_in_run(),
                            (None, None) => Plan::Submit(Some(prep.hash)),
                        }
                    }
                }
            };
            self.plan.push(planned);
        }
        for (i, pl) in self.plan.iter().enumerate() {
            let (name, kind) = (&self.order[i], &self.decls[i].kind);
            let o = match pl {
                Plan::Cached(h) => RunStage::new(name, kind, status::CACHED).key(h),
                Plan::Failed(e) => RunStage::new(name, kind, status::FAILED).error(e.clone()),
                Plan::Skipped(e) => RunStage::new(name, kind, status::SKIPPED).error(e.clone()),
                Plan::Submit(_) => continue,
            };
            self.show(&o);
            self.outcome[i] = Some(o);
        }
        Ok(())
    }

    /// Step 2: groups the instances to submit into job-array chunks: per declared stage, `packs`
    /// instances per task (1 when absent), at most `max_array` tasks per chunk.
    fn group(
        &mut self,
        forced: &HashSet<String>,
        packs: &HashMap<String, usize>,
        max_array: usize,
    ) {
        let mut by_stage: Vec<(String, Vec<usize>)> = Vec::new();
        let mut stage_ix: HashMap<&str, usize> = HashMap::new();
        for (i, pl) in self.plan.iter().enumerate() {
            if let Plan::Submit(_) = pl {
                let base = self.decls[i].base.as_str();
                let g = *stage_ix.entry(base).or_insert_with(|| {
                    by_stage.push((base.to_owned(), Vec::new()));
                    by_stage.len() - 1
                });
                by_stage[g].1.push(i);
            }
        }
        for (base, members) in &by_stage {
            let pack = packs.get(base).copied().unwrap_or(1).max(1);
            for chunk in members.chunks(pack * max_array) {
                let c = self.specs.len();
                let mut tasks = Vec::new();
                for (t, packed) in chunk.chunks(pack).enumerate() {
                    let mut list = Vec::new();
                    for &i in packed {
                        let key = match &self.plan[i] {
                            Plan::Submit(k) => k.clone(),
                            _ => None,
                        };
                        list.push(Task {
                            instance: self.order[i].clone(),
                            key: key.clone(),
                            force: forced.contains(&self.order[i]),
                        });
                        self.jobs.push(Job {
                            pos: i,
                            chunk: c,
                            task: t,
                            hash: key,
                            force: forced.contains(&self.order[i]),
                        });
                    }
                    tasks.push(list);
                }
                self.specs.push(JobSpec {
                    stage: base.clone(),
                    tasks,
                });
            }
        }
        self.link();
    }

    /// Takes the chunks of a submitted run from its manifest (following it).
    fn adopt(&mut self, m: &Manifest, ids: Vec<Option<String>>) {
        for (c, spec) in m.jobs.iter().enumerate() {
            for (t, list) in spec.tasks.iter().enumerate() {
                for task in list {
                    if let Some(&i) = self.pos.get(&task.instance)
                        && let Plan::Submit(key) = &self.plan[i]
                    {
                        self.jobs.push(Job {
                            pos: i,
                            chunk: c,
                            task: t,
                            hash: key.clone(),
                            force: task.force,
                        });
                    }
                }
            }
        }
        self.specs = m.jobs.clone();
        self.shared = m.bundle.is_none();
        if !m.started.is_empty() {
            self.started = m.started.clone();
        }
        self.ids = ids;
        self.ids.resize(self.specs.len(), None);
        self.link();
    }

    /// Computes which chunks each chunk waits for.
    fn link(&mut self) {
        let job_of: HashMap<usize, usize> = self
            .jobs
            .iter()
            .enumerate()
            .map(|(j, job)| (job.pos, j))
            .collect();
        self.deps = vec![BTreeSet::new(); self.specs.len()];
        for j in &self.jobs {
            for n in &self.decls[j.pos].needs {
                if let Some(&u) = self.pos.get(n).and_then(|q| job_of.get(q))
                    && self.jobs[u].chunk != j.chunk
                {
                    self.deps[j.chunk].insert(self.jobs[u].chunk);
                }
            }
        }
    }

    /// The manifest of the grouped chunks.
    fn manifest(&self) -> Result<Manifest> {
        Ok(Manifest {
            version: MANIFEST_VERSION,
            run: self.run_id.clone(),
            pipeline: std::fs::canonicalize(&self.p.file)
                .with_context(|| format!("cannot resolve {}", self.p.file.display()))?,
            file_hash: self.p.file_hash.clone(),
            overrides: self.p.overrides.clone(),
            started: self.started.clone(),
            only: self.only.clone(),
            jobs: self.specs.clone(),
            bundle: None,
        })
    }

    /// Step 3: writes the manifest and the worker script, then submits every chunk (upstream
    /// chunks first), saving the job ids as they come. On an sbatch failure the chunks
    /// submitted before are cancelled.
    fn submit(&mut self, slurm: &Slurm, cancel: &AtomicBool) -> Result<()> {
        let s = &slurm.settings;
        self.ids = vec![None; self.specs.len()];
        if self.specs.is_empty() {
            return Ok(());
        }
        self.shared = s.shared_fs.unwrap_or(true);
        let run_dir = manifest::run_dir(&self.root, &self.run_id);
        let log_dir = self.root.join("logs").join(&self.run_id);
        for d in [&run_dir, &log_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let mut m = self.manifest()?;
        if !self.shared {
            // Every stage's files: a worker checks them all when it loads the pipeline.
            let mut inputs = BTreeSet::new();
            for d in &self.p.stages {
                inputs.extend(input_files(self.p, d, kind_of(self.registry, d)?));
            }
            m.bundle = Some(bundle::upload(self.store, &self.p.file, &inputs)?);
        }
        let bytes = serde_json::to_vec(&m)?;
        let manifest_path = run_dir.join("manifest.json");
        self.store.write_atomic(&manifest_path, &bytes)?;
        let exe = sh_quote(&s.eqlab.as_deref().unwrap_or(&slurm.exe).to_string_lossy());
        let (text, output, chdir) = if self.shared {
            let text = format!(
                "#!/bin/sh\n# One array task of eqlab run {}: eqlab worker computes its instances.\nexec {exe} --store {} worker --manifest {} --job \"$1\"\n",
                self.run_id,
                sh_quote(&self.root.to_string_lossy()),
                sh_quote(&manifest_path.to_string_lossy()),
            );
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            (text, log_dir.join("slurm-%A_%a.out"), cwd)
        } else {
            let remote = self
                .store
                .remote()
                .ok_or_else(|| anyhow!("no remote cache for a run without a shared filesystem"))?;
            let rel = bundle::manifest_rel(&self.run_id);
            remote
                .put_bytes(&rel, bytes)
                .with_context(|| format!("putting the run manifest on {}", remote.url()))?;
            let env: String = slurm
                .node_env
                .iter()
                .map(|(k, v)| format!("export {k}={}\n", sh_quote(v)))
                .collect();
            let text = format!(
                "#!/bin/sh\n# One array task of eqlab run {} on a node without this machine's files: the\n# pipeline, its inputs and upstream results come from the remote cache, results go back to it.\n{env}exec {exe} --store \"${{TMPDIR:-/tmp}}/eqlab-node-store-$(id -u)\" --remote {} --remote-mode read-write --remote-required worker --remote-manifest {} --job \"$1\"\n",
                self.run_id,
                sh_quote(remote.url()),
                sh_quote(&rel),
            );
            let tmp = PathBuf::from("/tmp");
            (text, tmp.join("eqlab-slurm-%A_%a.out"), tmp)
        };
        let script = run_dir.join("worker.sh");
        self.store.write_atomic(&script, text.as_bytes())?;
        for c in submit_order(&self.deps) {
            if cancel.load(Ordering::SeqCst) {
                break;
            }
            let spec = &self.specs[c];
            let res = self.resources(&spec.stage);
            let mut cmd = Command::new("sbatch");
            cmd.arg("--parsable")
                .arg(format!("--job-name=eqlab:{}:{}", self.p.name, spec.stage))
                .arg(format!(
                    "--array=0-{}{}",
                    spec.tasks.len() - 1,
                    s.max_jobs.map(|k| format!("%{k}")).unwrap_or_default()
                ))
                .arg(format!("--output={}", output.display()))
                .arg(format!("--chdir={}", chdir.display()))
                .arg("--kill-on-invalid-dep=yes");
            if !self.deps[c].is_empty() {
                let after: Vec<&str> = self.deps[c]
                    .iter()
                    .filter_map(|&d| self.ids[d].as_deref())
                    .collect();
                cmd.arg(format!("--dependency=afterok:{}", after.join(":")));
            }
            for (flag, v) in [
                ("partition", &s.partition),
                ("account", &s.account),
                ("qos", &s.qos),
            ] {
                if let Some(v) = v {
                    cmd.arg(format!("--{flag}={v}"));
                }
            }
            cmd.args(resource_flags(&res))
                .args(&s.sbatch_flags)
                .arg(&script)
                .arg(c.to_string());
            let submitted = slurm_cmd(&mut cmd).and_then(|out| {
                let id = out.trim().split(';').next().unwrap_or("").to_owned();
                if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                    bail!("sbatch --parsable printed {out:?}, not a job id");
                }
                Ok(id)
            });
            match submitted {
                Ok(id) => self.ids[c] = Some(id),
                Err(e) => {
                    let before = self.submitted_ids();
                    let cancelled = if before.is_empty() {
                        "nothing had been submitted".to_owned()
                    } else {
                        cancel_jobs(&before).map_or_else(
                            |e| {
                                format!(
                                    "cancelling the {} submitted before failed: {e:#}",
                                    counted(before.len(), "job")
                                )
                            },
                            |()| {
                                format!(
                                    "the {} submitted before {} cancelled",
                                    counted(before.len(), "job"),
                                    if before.len() == 1 { "was" } else { "were" }
                                )
                            },
                        )
                    };
                    let _ =
                        manifest::write_job_ids(self.store, &self.root, &self.run_id, &self.ids);
                    return Err(
                        e.context(format!("submitting stage '{}'; {cancelled}", spec.stage))
                    );
                }
            }
            manifest::write_job_ids(self.store, &self.root, &self.run_id, &self.ids)?;
        }
        Ok(())
    }

    /// A declared stage's resources: the pipeline's `resources:`, field by field over its
    /// kind's defaults for the parameters of its first instance (e.g. a GPU for a GPU device).
    fn resources(&self, base: &str) -> Resources {
        let Some(d) = self.decls.iter().find(|d| d.base == base) else {
            return Resources::default();
        };
        let params = self
            .registry
            .get(&d.kind)
            .and_then(|stage| crate::spec::instantiate(self.p, d, stage, None).ok())
            .flatten();
        d.resources
            .clone()
            .over(&self.registry.resources(&d.kind, params.as_ref()))
    }

    /// The number of array tasks of all chunks.
    fn tasks(&self) -> usize {
        self.specs.iter().map(|s| s.tasks.len()).sum()
    }

    /// The ids of the chunks submitted so far.
    fn submitted_ids(&self) -> Vec<String> {
        self.ids.iter().flatten().cloned().collect()
    }

    /// Step 4: follows the jobs (see [`Follow`]), settling each instance as its record appears or
    /// its job ends without one.
    fn watch(&mut self, poll: Duration, cancel: &AtomicBool, follow: Follow) -> Result<()> {
        let mut settled = vec![false; self.jobs.len()];
        let mut chunk_failed = vec![false; self.specs.len()];
        let mut squeue_trouble = false;
        let ids = self.submitted_ids();
        // One bar for the whole run (terminals only): instances settled of those submitted.
        let bar = if follow == Follow::Once || self.jobs.is_empty() || !self.ui.draws() {
            crate::stage::Progress::hidden()
        } else {
            self.ui.start("slurm", &format!("run {}", self.run_id))
        };
        bar.set_len(self.jobs.len() as u64);
        loop {
            if cancel.load(Ordering::SeqCst) {
                if follow == Follow::Run {
                    cancel_jobs(&ids).unwrap_or_else(|e| self.ui.warn(&format!("{e:#}")));
                    for (j, job) in self.jobs.iter().enumerate() {
                        if !settled[j] {
                            let d = self.decls[job.pos];
                            let o = RunStage::new(&d.name, &d.kind, status::INTERRUPTED)
                                .error("interrupted: its job was cancelled");
                            self.ui.finished(&o);
                            self.outcome[job.pos] = Some(o);
                            settled[j] = true;
                        }
                    }
                }
                return Ok(());
            }
            // Liveness first, then the store: a job missing from this snapshot that has no
            // record afterwards really ended without one.
            let states = match task_states(&ids) {
                Ok(a) => Some(a),
                Err(e) if follow == Follow::Once => return Err(e),
                Err(e) => {
                    if !squeue_trouble {
                        self.ui.warn(&format!(
                            "cannot ask Slurm which jobs live: {e:#}; retrying"
                        ));
                        squeue_trouble = true;
                    }
                    None
                }
            };
            // A job Slurm will never start (it asks for more than the partition has, an
            // unknown account…) is cancelled and failed rather than waited for forever.
            if follow != Follow::Once
                && let Some(states) = &states
            {
                let mut stuck: Vec<String> = Vec::new();
                for ((id, _), t) in states {
                    if t.never_starts() && !self.hopeless.contains_key(id) {
                        self.hopeless.insert(id.clone(), t.reason.clone());
                        stuck.push(id.clone());
                    }
                }
                if !stuck.is_empty() {
                    cancel_jobs(&stuck).unwrap_or_else(|e| self.ui.warn(&format!("{e:#}")));
                }
            }
            let mut progress = true;
            while progress {
                progress = false;
                for j in 0..self.jobs.len() {
                    if settled[j] {
                        continue;
                    }
                    if let Some(ok) = self.settle(j, states.as_ref(), &chunk_failed)? {
                        bar.inc(1);
                        settled[j] = true;
                        if !ok {
                            chunk_failed[self.jobs[j].chunk] = true;
                        }
                        progress = true;
                    }
                }
            }
            if follow == Follow::Once || settled.iter().all(|&s| s) {
                break;
            }
            std::thread::sleep(poll);
        }
        drop(bar);
        self.ui.clear();
        // Nothing of this run may stay queued (e.g. a chunk whose other tasks were settled as
        // skipped while Slurm had not yet cancelled it).
        if follow != Follow::Once
            && let Ok(alive) = alive_tasks(&ids)
            && !alive.is_empty()
        {
            cancel_jobs(&ids).unwrap_or_else(|e| self.ui.warn(&format!("{e:#}")));
        }
        Ok(())
    }

    /// Settles job `j` if it can be: `Some(true)` ran, `Some(false)` failed or skipped, `None`
    /// still waiting. `states`: what Slurm lists of the array tasks (None: unknown right now).
    fn settle(
        &mut self,
        j: usize,
        states: Option<&HashMap<(String, String), TaskState>>,
        chunk_failed: &[bool],
    ) -> Result<Option<bool>> {
        let (at, chunk, task) = (self.jobs[j].pos, self.jobs[j].chunk, self.jobs[j].task);
        let decl = self.decls[at];
        let (name, kind) = (&decl.name, &decl.kind);
        let mut need_missing = false;
        let mut need_failed = None;
        for n in &decl.needs {
            if let Some(&q) = self.pos.get(n) {
                match self.outcome[q].as_ref().map(|o| o.status.as_str()) {
                    None => need_missing = true,
                    Some(status::RAN | status::CACHED) => {}
                    Some(_) => need_failed = Some(n.clone()),
                }
            }
        }
        let outcome = if let Some(b) = need_failed {
            RunStage::new(name, kind, status::SKIPPED)
                .error(format!("upstream stage '{b}' did not finish"))
        } else {
            if self.jobs[j].hash.is_none() && !need_missing {
                let stage = kind_of(self.registry, decl)?;
                match prepare(self.p, decl, stage, &self.done, self.store) {
                    Ok(prep) => self.jobs[j].hash = Some(prep.hash),
                    Err(e) => {
                        return Ok(Some(self.finish(
                            at,
                            RunStage::new(name, kind, status::FAILED).error(format!("{e:#}")),
                        )));
                    }
                }
            }
            let Some(hash) = self.jobs[j].hash.clone() else {
                return Ok(None);
            };
            let meta = self.store.meta(&hash);
            // A forced instance's old record is not its result: only one written since.
            let fresh =
                !self.jobs[j].force || meta.as_ref().is_some_and(|m| m.finished >= self.started);
            if fresh && let Lookup::Hit(r) = lookup(self.store, &hash, false)? {
                return Ok(Some(self.ran(at, &hash, *r)));
            }
            let Some(states) = states else {
                return Ok(None);
            };
            let Some(id) = self.ids.get(chunk).cloned() else {
                return Ok(None);
            };
            let Some(id) = id else {
                return Ok(Some(self.finish(
                    at,
                    RunStage::new(name, kind, status::FAILED).error(format!(
                        "its job was never submitted (the submission of run {} stopped early)",
                        self.run_id
                    )),
                )));
            };
            let st = states.get(&(id.clone(), task.to_string()));
            if st.is_some_and(TaskState::alive) && !self.hopeless.contains_key(&id) {
                return Ok(None);
            }
            // Without a shared filesystem the task published its results before it ended.
            if !self.shared
                && let crate::store::sync::Pulled::Hit(r, _) = self.store.pull(&hash)?
            {
                return Ok(Some(self.ran(at, &hash, *r)));
            }
            // Gone without a record.
            if self.deps[chunk].iter().any(|&d| chunk_failed[d]) {
                RunStage::new(name, kind, status::SKIPPED).error(format!(
                    "job {id}_{task} was cancelled: a job it waited for failed"
                ))
            } else if let Some(reason) = self.hopeless.get(&id) {
                RunStage::new(name, kind, status::FAILED).error(format!(
                    "Slurm would never start job {id} (pending: {reason}): what it asks for \
                     (resources: of stage '{}', [executor.slurm] in eqlab.toml) does not fit \
                     the cluster; eqlab cancelled it",
                    decl.base
                ))
            } else {
                let tail = if self.shared {
                    manifest::log_tail(&self.root, &self.run_id, name, &id, task)
                } else {
                    self.remote_log_tail(name)
                };
                let why = st.map(TaskState::ended_why).unwrap_or_default();
                RunStage::new(name, kind, status::FAILED)
                    .error(format!("job {id}_{task} ended without a result{why}{tail}"))
            }
        };
        Ok(Some(self.finish(at, outcome)))
    }

    /// The tail of an instance's log that its worker put on the remote cache (nodes without a
    /// shared filesystem), formatted to follow an error message.
    fn remote_log_tail(&self, instance: &str) -> String {
        let rel = log_rel(&self.run_id, instance);
        let Some(remote) = self.store.remote() else {
            return String::new();
        };
        match remote.get_bytes(&rel) {
            Ok(Some(b)) => {
                let text = String::from_utf8_lossy(&b);
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(manifest::TAIL_LINES)..].join("\n");
                format!("; the tail of {}/{rel}:\n{tail}", remote.url())
            }
            _ => format!(
                "; no log at {}/{rel} (the job may not have started: see /tmp/eqlab-slurm-*.out on its node)",
                remote.url()
            ),
        }
    }

    /// Settles the instance at `at` as ran, with its record `r` (key `hash`) and the time its
    /// meta gives.
    fn ran(&mut self, at: usize, hash: &str, r: Record) -> bool {
        let secs = self.store.meta(hash).map_or(0.0, |m| m.elapsed_s);
        let d = self.decls[at];
        self.done.insert(d.name.clone(), r);
        self.finish(
            at,
            RunStage::new(&d.name, &d.kind, status::RAN)
                .key(hash)
                .seconds(secs),
        )
    }

    /// Prints an instance's outcome (a quiet look prints only failures).
    fn show(&self, o: &RunStage) {
        if !(self.quiet && (o.status == status::RAN || o.status == status::CACHED)) {
            self.ui.finished(o);
        }
    }

    /// Records and prints an instance's outcome; whether it ran.
    fn finish(&mut self, at: usize, o: RunStage) -> bool {
        self.show(&o);
        let ok = o.status == status::RAN;
        self.outcome[at] = Some(o);
        ok
    }

    /// The instances still waiting, with what Slurm says of their tasks.
    fn waiting(&self) -> Result<Vec<Waiting>> {
        let alive = alive_tasks(&self.submitted_ids())?;
        Ok(self
            .jobs
            .iter()
            .filter(|j| self.outcome[j.pos].is_none())
            .map(|j| {
                let id = self.ids.get(j.chunk).cloned().flatten().unwrap_or_default();
                let t = alive.get(&(id.clone(), j.task.to_string()));
                Waiting {
                    instance: self.order[j.pos].clone(),
                    state: t.map_or_else(|| "WAITING".into(), |t| t.state.clone()),
                    reason: t.map(|t| t.reason.clone()).unwrap_or_default(),
                    job: format!("{id}_{}", j.task),
                }
            })
            .collect())
    }

    /// The run log (saved in the store; a failure to save is noted in it).
    fn log(self) -> RunLog {
        let mut log = RunLog {
            pipeline: self.p.name.clone(),
            file: self.p.file.display().to_string(),
            file_id: super::pipeline_id(self.p),
            file_hash: self.p.file_hash.clone(),
            started: self.started,
            seconds: self.t0.elapsed().as_secs_f64(),
            eqlab_version: env!("CARGO_PKG_VERSION").into(),
            host: host_name(),
            stages: self.outcome.into_iter().flatten().collect(),
            not_saved: None,
            scheduler_steps: 0,
        };
        self.store.save_state();
        if let Err(e) = self.store.put_run(&log) {
            log.not_saved = Some(format!("the run log could not be saved: {e:#}"));
        }
        log
    }
}

impl Slurm {
    /// Plans and submits a run, and returns it with what was submitted; `dry_run`: plans and
    /// groups, prints what it would submit, and submits nothing (the store is not written).
    fn start<'a>(
        &self,
        p: &'a Pipeline,
        registry: &'a Registry,
        store: &'a Store,
        opts: &RunOptions,
        dry_run: bool,
        cancel: &AtomicBool,
    ) -> Result<Batch<'a>> {
        let max_array = max_array_size()?.max(1);
        if !self.settings.shared_fs.unwrap_or(true) && !store.remote().is_some_and(|r| r.writable())
        {
            bail!(
                "shared_fs = false in [executor.slurm]{}: the jobs get the pipeline, its input \
                 files and upstream results through the remote cache, but none is configured \
                 for writing (set [remote] url in eqlab.toml, EQLAB_REMOTE, or --remote)",
                self.settings_file
                    .as_ref()
                    .map(|f| format!(" of {}", f.display()))
                    .unwrap_or_default()
            );
        }
        let dag = Dag::new(p);
        let order = selection(p, &dag, &opts.only, &opts.force)?;
        let forced: HashSet<String> = instance_names(p, &opts.force)?.into_iter().collect();
        let started = now_rfc3339();
        let run_id = format!(
            "{}-{}",
            started.replace([':', '.'], "").replace('-', ""),
            std::process::id()
        );
        let mut b = Batch::new(p, registry, store, order, run_id, started, opts.progress)?;
        b.only = opts.only.clone();
        b.plan(&forced, None)?;
        let packs = self.packs(&b)?;
        b.group(&forced, &packs, max_array);
        if dry_run {
            let bytes = serde_json::to_vec(&b.manifest()?)?.len();
            crate::errln!(
                "slurm: would submit {} ({}) for {} (dry run; MaxArraySize {max_array}; a \
                 manifest of {bytes} bytes)",
                counted(b.specs.len(), "job"),
                counted(b.tasks(), "array task"),
                counted(b.jobs.len(), "instance")
            );
            for (c, spec) in b.specs.iter().enumerate().take(DRY_RUN_JOBS_SHOWN) {
                let first = spec.tasks.first().and_then(|t| t.first());
                let last = spec.tasks.last().and_then(|t| t.last());
                let n: usize = spec.tasks.iter().map(Vec::len).sum();
                let flags = resource_flags(&b.resources(&spec.stage));
                crate::errln!(
                    "  job {c}: stage '{}', {}, {} ({}{}){}{}",
                    spec.stage,
                    counted(spec.tasks.len(), "array task"),
                    counted(n, "instance"),
                    first.map_or("", |t| t.instance.as_str()),
                    match last {
                        Some(l) if n > 1 => format!(" … {}", l.instance),
                        _ => String::new(),
                    },
                    if b.deps[c].is_empty() {
                        String::new()
                    } else {
                        let after: Vec<String> = b.deps[c].iter().map(|d| d.to_string()).collect();
                        format!(", after job {}", after.join(", "))
                    },
                    if flags.is_empty() {
                        String::new()
                    } else {
                        format!(", asking {}", flags.join(" "))
                    }
                );
            }
            if b.specs.len() > DRY_RUN_JOBS_SHOWN {
                crate::errln!("  … and {} more jobs", b.specs.len() - DRY_RUN_JOBS_SHOWN);
            }
            return Ok(b);
        }
        b.submit(self, cancel)?;
        let ids = b.submitted_ids();
        crate::errln!(
            "slurm: submitted {} ({}) for {} (run {}{})",
            counted(ids.len(), "job"),
            counted(b.tasks(), "array task"),
            counted(b.jobs.len(), "instance"),
            b.run_id,
            if ids.is_empty() {
                String::new()
            } else {
                format!(", job ids {}", ids.join(" "))
            }
        );
        Ok(b)
    }

    /// Instances per array task for each declared stage: `pack` from `eqlab.toml` for all;
    /// otherwise, for a stage whose instances took a median of `t` seconds in this pipeline's
    /// recent runs, `PACK_TARGET_S / t` (between 1 and [`PACK_MAX`]); 1 without history.
    fn packs(&self, b: &Batch) -> Result<HashMap<String, usize>> {
        let mut out = HashMap::new();
        let bases: BTreeSet<&str> = b
            .plan
            .iter()
            .zip(&b.decls)
            .filter(|(pl, _)| matches!(pl, Plan::Submit(_)))
            .map(|(_, d)| d.base.as_str())
            .collect();
        if let Some(n) = self.settings.pack {
            for base in bases {
                out.insert(base.to_owned(), n.get() as usize);
            }
            return Ok(out);
        }
        if bases.is_empty() {
            return Ok(out);
        }
        let id = super::pipeline_id(b.p);
        let mut seconds: HashMap<&str, Vec<f64>> = HashMap::new();
        for run in b.store.recent_runs(PACK_HISTORY_RUNS)? {
            if run.file_id != id {
                continue;
            }
            for s in run.stages.iter().filter(|s| s.status == status::RAN) {
                if let Some(d) = b.p.stage(&s.stage)
                    && let Some(&base) = bases.get(d.base.as_str())
                {
                    seconds.entry(base).or_default().push(s.seconds);
                }
            }
        }
        for (base, mut secs) in seconds {
            secs.sort_by(f64::total_cmp);
            let median = secs[secs.len() / 2].max(1e-3);
            let pack = ((PACK_TARGET_S / median).floor() as usize).clamp(1, PACK_MAX);
            let count = b
                .plan
                .iter()
                .zip(&b.decls)
                .filter(|(pl, d)| matches!(pl, Plan::Submit(_)) && d.base == base)
                .count();
            let pack = pack.min(count);
            if pack > 1 {
                crate::errln!(
                    "slurm: stage '{base}': {pack} instances per array task (they took a median \
                     of {median:.3}s in earlier runs; set [executor.slurm] pack to choose)"
                );
            }
            out.insert(base.to_owned(), pack);
        }
        Ok(out)
    }

    /// How often to look at `squeue` and the store.
    fn poll(&self) -> Duration {
        Duration::from_millis(self.settings.poll_ms.unwrap_or(500).max(50))
    }

    /// Plans and submits, and returns without waiting (`run --detach`), or only says what it
    /// would submit (`run --dry-run`).
    pub fn submit(
        &self,
        p: &Pipeline,
        registry: &Registry,
        store: &Store,
        opts: &RunOptions,
        dry_run: bool,
    ) -> Result<Submission> {
        let _shared = store.store_lock(false)?;
        let b = self.start(p, registry, store, opts, dry_run, &AtomicBool::new(false))?;
        Ok(Submission {
            run: b.run_id,
            jobs: b.specs.len(),
            instances: b.jobs.len(),
            settled: b.outcome.into_iter().flatten().collect(),
        })
    }

    /// Follows Slurm run `m` (with its chunks' job ids `ids`, see [`latest_run`]) of `p`:
    /// one look (`wait` false) or until it ends (`wait`; then its run log is saved and
    /// returned). Ctrl-C (`cancel`) only stops watching; the jobs go on.
    pub fn follow(
        &self,
        p: &Pipeline,
        registry: &Registry,
        store: &Store,
        (m, ids): (Manifest, Vec<Option<String>>),
        wait: bool,
        cancel: &AtomicBool,
    ) -> Result<(Snapshot, Option<RunLog>)> {
        let _shared = store.store_lock(false)?;
        if m.file_hash != p.file_hash {
            crate::errln!(
                "warning: {} changed since run {} was submitted; its jobs refuse to compute and \
                 the keys below are today's",
                p.file.display(),
                m.run
            );
        }
        let instances: HashMap<String, Option<String>> = m
            .jobs
            .iter()
            .flat_map(|j| j.tasks.iter().flatten())
            .map(|t| (t.instance.clone(), t.key.clone()))
            .collect();
        // The run's selection (its `--only`, with what that needs), as `run` counted it.
        let dag = Dag::new(p);
        let order = selection(p, &dag, &m.only, &[])?;
        let mut b = Batch::new(
            p,
            registry,
            store,
            order,
            m.run.clone(),
            now_rfc3339(),
            wait,
        )?;
        b.quiet = !wait;
        b.plan(&HashSet::new(), Some(&instances))?;
        b.adopt(&m, ids);
        let follow = if wait { Follow::Attach } else { Follow::Once };
        b.watch(self.poll(), cancel, follow)?;
        let waiting = if wait && !cancel.load(Ordering::SeqCst) {
            Vec::new()
        } else {
            b.waiting()?
        };
        let snapshot = Snapshot {
            run: b.run_id.clone(),
            overrides: m.overrides.clone(),
            settled: b.outcome.iter().flatten().cloned().collect(),
            waiting,
        };
        let log = (wait && snapshot.waiting.is_empty()).then(|| b.log());
        Ok((snapshot, log))
    }
}

/// The latest Slurm run of pipeline file `file` in the store, and its chunks' job ids.
pub fn latest_run(store: &Store, file: &Path) -> Result<(Manifest, Vec<Option<String>>)> {
    let (root, file) = locate(store, file)?;
    let m = manifest::runs_of(&root, &file)?.pop().ok_or_else(|| {
        anyhow!(
            "no Slurm run of {} in the store {}: start one with `eqlab run {} --executor slurm`",
            file.display(),
            store.root().display(),
            file.display()
        )
    })?;
    let ids = manifest::read_job_ids(&root, &m.run)?;
    Ok((m, ids))
}

/// The store's absolute path and the pipeline file's canonical one (as manifests hold them).
fn locate(store: &Store, file: &Path) -> Result<(PathBuf, PathBuf)> {
    let root = std::path::absolute(store.root())
        .with_context(|| format!("cannot resolve the store path {}", store.root().display()))?;
    let file = std::fs::canonicalize(file)
        .with_context(|| format!("cannot resolve {}", file.display()))?;
    Ok((root, file))
}

/// Cancels the jobs of every Slurm run of pipeline file `file` in the store that Slurm still
/// lists; returns (run, job ids cancelled) for each run that had some.
pub fn cancel(store: &Store, file: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let (root, file) = locate(store, file)?;
    let mut out = Vec::new();
    for m in manifest::runs_of(&root, &file)? {
        let ids: Vec<String> = manifest::read_job_ids(&root, &m.run)?
            .into_iter()
            .flatten()
            .collect();
        let alive: BTreeSet<String> = alive_tasks(&ids)?.into_keys().map(|(j, _)| j).collect();
        if alive.is_empty() {
            continue;
        }
        let alive: Vec<String> = alive.into_iter().collect();
        cancel_jobs(&alive)?;
        out.push((m.run, alive));
    }
    Ok(out)
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
        let _shared = store.store_lock(false)?;
        // Interrupted while submitting, `cancel` is set: watching cancels what was submitted.
        let mut b = self.start(p, registry, store, opts, false, &cancel)?;
        b.watch(self.poll(), &cancel, Follow::Run)?;
        Ok(b.log())
    }
}

/// The sbatch flags asking for `res` (`--cpus-per-task`, `--mem`, `--time`, `--gpus`).
fn resource_flags(res: &Resources) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(n) = res.cpus {
        flags.push(format!("--cpus-per-task={n}"));
    }
    if let Some(m) = &res.mem {
        flags.push(format!("--mem={m}"));
    }
    if let Some(t) = &res.time {
        flags.push(format!("--time={t}"));
    }
    if let Some(g) = res.gpus.filter(|&g| g > 0) {
        flags.push(format!("--gpus={g}"));
    }
    flags
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
