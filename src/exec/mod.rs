//! The local executor: walks the DAG, reuses stored results, runs the stages that must run
//! (in parallel, up to `-j`), stores their outputs and records, and reports progress.
//!
//! Guarantees: a record is written only after all its objects, and only for a stage that
//! finished; a failing stage — an error, a panic, a damaged input, a full disk — fails only
//! that stage and stops only its dependents; the run log is always written; Ctrl-C stops
//! scheduling, lets running stages notice the cancellation, and leaves nothing partial visible.
//! With a remote cache behind the store, a stage missing locally is downloaded from it when
//! there (verified), and what this run computes is uploaded (`store::sync`). The finance lives
//! in `stages`, the disk layout in `store`. The Slurm executor (`slurm`, `worker`) stands
//! beside this one behind the `executor::Executor` trait and reuses its `compute`.

pub mod executor;
pub mod plan;
pub mod prepare;
pub mod schedule;
pub mod slurm;
pub mod transfer;
pub mod ui;
pub mod worker;

use crate::graph::Dag;
use crate::spec::{Pipeline, StageDecl};
use crate::stage::{Cancelled, Inputs, Outputs, Stage, StageCtx, Upstream};
use crate::stages::Registry;
use crate::store::record::{METRICS, host_name, metrics_table, now_rfc3339};
use crate::store::sync::{Published, Pulled};
use crate::store::{FileRef, Record, RecordMeta, RunLog, RunStage, Store};
use crate::table::first_nonfinite;
use anyhow::{Context, Result, anyhow, bail};
use prepare::{Lookup, lookup, prepare};
use schedule::Scheduler;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Maximum number of stages running at once (0 = number of cores).
    pub jobs: usize,
    /// Run only these stages (and what they need).
    pub only: Vec<String>,
    /// Recompute these stages even if a result is stored.
    pub force: Vec<String>,
    /// Draw progress bars (only on a terminal).
    pub progress: bool,
}

/// Stage status values used in run logs and summaries.
pub mod status {
    /// Reused from the store.
    pub const CACHED: &str = "cached";
    /// Downloaded from the remote cache.
    pub const PULLED: &str = "pulled";
    /// Computed in this run.
    pub const RAN: &str = "ran";
    /// Returned an error.
    pub const FAILED: &str = "failed";
    /// Not run because an upstream stage failed or was interrupted.
    pub const SKIPPED: &str = "skipped";
    /// Stopped by Ctrl-C.
    pub const INTERRUPTED: &str = "interrupted";
}

/// Checks `--only` / `--force` names and returns the stages to consider, in topological order.
pub fn selection(
    p: &Pipeline,
    dag: &Dag,
    only: &[String],
    force: &[String],
) -> Result<Vec<String>> {
    let only = instance_names(p, only)?;
    instance_names(p, force)?;
    let order = dag.order();
    if only.is_empty() {
        return Ok(order);
    }
    let keep = dag.with_ancestors(&only);
    Ok(order.into_iter().filter(|s| keep.contains(s)).collect())
}

/// Instance names for stage names given on the command line (a swept stage's declared name
/// stands for all its instances).
pub fn instance_names(p: &Pipeline, names: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for n in names {
        let matched: Vec<String> = p
            .stages
            .iter()
            .filter(|s| &s.name == n || &s.base == n)
            .map(|s| s.name.clone())
            .collect();
        if matched.is_empty() {
            let all: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "no stage '{n}' in {}{}",
                p.file.display(),
                crate::spec::errors::suggest(n, all)
            );
        }
        out.extend(matched);
    }
    Ok(out)
}

/// Checks that `name` names one stage instance of `p`, for verbs about one (`show`,
/// `explain`). Errors: a swept stage's declared name (its instances are listed to choose
/// from), or no such stage (with a suggestion).
pub fn one_instance(p: &Pipeline, name: &str) -> Result<()> {
    if p.stage(name).is_some() {
        return Ok(());
    }
    let points: Vec<&str> = p
        .stages
        .iter()
        .filter(|s| s.base == name)
        .map(|s| s.name.as_str())
        .collect();
    if !points.is_empty() {
        const SHOWN: usize = 8;
        let more = match points.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        bail!(
            "stage '{name}' is swept over {} points; name one of them: {}{more}",
            points.len(),
            points[..points.len().min(SHOWN)].join(", ")
        );
    }
    instance_names(p, &[name.to_owned()]).map(|_| ())
}

enum Msg {
    /// Stage at this position finished computing (or failed), after this many seconds.
    Done(usize, Result<Computed>, f64),
}

/// What computing a stage gave: the record, where it came from, and warnings to show.
struct Computed {
    record: Record,
    got: Got,
    warnings: Vec<String>,
}

/// Where a computed stage's record came from.
enum Got {
    /// Computed by this run.
    Ran,
    /// Another process computed it while this run waited for the key's lock.
    Reused,
    /// Downloaded from the remote cache (bytes).
    Pulled(u64),
}

/// Compute slots: at most `jobs` stages compute at once, however many are being looked up.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A taken compute slot, given back when dropped.
struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free slot.
    fn take(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

/// The message of a panic payload.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Runs `f`, turning a panic into an error naming the stage.
fn no_panic<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(anyhow!("stage '{name}' panicked: {}", panic_message(&*p))))
}

/// Runs a pipeline; returns the run log (also saved in the store).
pub fn run(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    opts: &RunOptions,
    cancel: Arc<AtomicBool>,
) -> Result<RunLog> {
    let _shared = store.store_lock(false)?;
    let dag = Dag::new(p);
    let order = selection(p, &dag, &opts.only, &opts.force)?;
    let force = instance_names(p, &opts.force)?;
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.jobs
    };
    // With a remote cache, more stages than `jobs` may be looked up and downloaded at once
    // (network-bound); computing still takes one of `jobs` slots.
    let slots = Slots::new(jobs);
    let in_flight = match store.remote() {
        Some(r) if r.readable() => jobs.max(crate::store::remote::CONCURRENCY),
        _ => jobs,
    };
    let ui = ui::Ui::new(opts.progress);
    let started = now_rfc3339();
    let t0 = Instant::now();

    // Stage declarations and dependencies by position in the topological order (one hash
    // lookup per name; the loop below never searches).
    let by_name: HashMap<&str, &StageDecl> =
        p.stages.iter().map(|d| (d.name.as_str(), d)).collect();
    let pos: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let decls: Vec<&StageDecl> = order
        .iter()
        .map(|s| {
            by_name
                .get(s.as_str())
                .copied()
                .ok_or_else(|| anyhow!("stage '{s}' vanished"))
        })
        .collect::<Result<_>>()?;
    let stages: Vec<&dyn Stage> = decls
        .iter()
        .map(|d| prepare::kind_of(registry, d))
        .collect::<Result<_>>()?;
    let forced: HashSet<&str> = force.iter().map(String::as_str).collect();
    let mut sched = Scheduler::new(
        decls
            .iter()
            .map(|d| {
                d.needs
                    .iter()
                    .filter_map(|n| pos.get(n.as_str()).copied())
                    .collect()
            })
            .collect(),
    );

    let mut done: BTreeMap<String, Record> = BTreeMap::new();
    let mut outcome: BTreeMap<String, RunStage> = BTreeMap::new();
    let mut running = 0usize;
    let mut finished_order: Vec<String> = Vec::new();
    let (tx, rx) = mpsc::channel::<Msg>();

    std::thread::scope(|scope| {
        loop {
            let cancelled = cancel.load(std::sync::atomic::Ordering::Relaxed);
            // Start ready stages (lowest position first) while there is room; after Ctrl-C only
            // settle those whose upstream did not finish (skipped), start nothing.
            while running < in_flight || cancelled {
                let Some(i) = sched.pop_ready() else {
                    break;
                };
                let (name, decl, stage) = (&order[i], decls[i], stages[i]);
                let failed_need = sched.failed_need(i);
                let mut settle = |o: RunStage, ok: bool| {
                    finish(&ui, &mut outcome, &mut finished_order, o);
                    sched.settle(i, ok);
                };
                if let Some(b) = failed_need {
                    let o = RunStage::new(name, &decl.kind, status::SKIPPED)
                        .error(format!("upstream stage '{}' did not finish", order[b]));
                    settle(o, false);
                    continue;
                }
                if cancelled {
                    continue; // reported as interrupted (not started) below
                }
                let prep = match no_panic(name, || prepare(p, decl, stage, &done, store)) {
                    Ok(x) => x,
                    Err(e) => {
                        let o =
                            RunStage::new(name, &decl.kind, status::FAILED).error(format!("{e:#}"));
                        settle(o, false);
                        continue;
                    }
                };
                let force = forced.contains(name.as_str());
                if !force {
                    match lookup(store, &prep.hash, true) {
                        Ok(Lookup::Hit(r)) => {
                            done.insert(name.clone(), *r);
                            let o = RunStage::new(name, &decl.kind, status::CACHED).key(&prep.hash);
                            settle(o, true);
                            continue;
                        }
                        Ok(Lookup::Damaged(why)) => ui.warn(&format!(
                            "stored result of stage '{name}' is damaged: {why}; recomputing"
                        )),
                        Ok(Lookup::Miss) => {}
                        Err(e) => {
                            let o = RunStage::new(name, &decl.kind, status::FAILED)
                                .error(format!("looking up the stored result: {e:#}"));
                            settle(o, false);
                            continue;
                        }
                    }
                }
                running += 1;
                let upstream: Vec<(String, Record)> = decl
                    .needs
                    .iter()
                    .filter_map(|n| done.get(n).map(|r| (n.clone(), r.clone())))
                    .collect();
                let tx = tx.clone();
                let cancel = cancel.clone();
                let (ui, slots) = (&ui, &slots);
                scope.spawn(move || {
                    let t = Instant::now();
                    // A compute slot, and the bar, only once the stage really computes (not
                    // when it is reused or downloaded).
                    let start = || {
                        let slot = slots.take();
                        let bar = ui.start(name, &decl.kind);
                        let ctx = StageCtx::new(
                            prep.key.seed,
                            bar,
                            store.root().join("tmp"),
                            cancel.clone(),
                        );
                        (slot, ctx)
                    };
                    let res = no_panic(name, || {
                        compute(p, name, stage, store, &prep, &upstream, &start, force)
                    });
                    let _ = tx.send(Msg::Done(i, res, t.elapsed().as_secs_f64()));
                });
            }
            if running == 0 {
                break;
            }
            let Ok(Msg::Done(i, res, secs)) = rx.recv() else {
                break;
            };
            running -= 1;
            let (name, kind) = (&order[i], &decls[i].kind);
            let (o, ok) = match res {
                Ok(Computed {
                    record,
                    got,
                    warnings,
                }) => {
                    for w in &warnings {
                        ui.warn(w);
                    }
                    let o = match got {
                        Got::Ran => RunStage::new(name, kind, status::RAN),
                        Got::Reused => RunStage::new(name, kind, status::CACHED)
                            .error("reused: another run computed it while this one waited"),
                        Got::Pulled(bytes) => RunStage::new(name, kind, status::PULLED).error(
                            format!("from the remote cache ({:.1} kB)", bytes as f64 / 1e3),
                        ),
                    };
                    let o = o.key(&record.key);
                    done.insert(name.clone(), record);
                    (o, true)
                }
                Err(e) if e.downcast_ref::<Cancelled>().is_some() => (
                    RunStage::new(name, kind, status::INTERRUPTED).error("interrupted by Ctrl-C"),
                    false,
                ),
                Err(e) => (
                    RunStage::new(name, kind, status::FAILED).error(format!("{e:#}")),
                    false,
                ),
            };
            finish(&ui, &mut outcome, &mut finished_order, o.seconds(secs));
            sched.settle(i, ok);
        }
    });

    // Stages never started because of Ctrl-C.
    for (name, decl) in order.iter().zip(&decls) {
        if !outcome.contains_key(name) {
            let o = RunStage::new(name, &decl.kind, status::INTERRUPTED)
                .error("not started: interrupted");
            outcome.insert(name.clone(), o);
            finished_order.push(name.clone());
        }
    }
    let mut log = RunLog {
        pipeline: p.name.clone(),
        file: p.file.display().to_string(),
        file_id: pipeline_id(p),
        file_hash: p.file_hash.clone(),
        started,
        seconds: t0.elapsed().as_secs_f64(),
        eqlab_version: env!("CARGO_PKG_VERSION").into(),
        host: host_name(),
        stages: finished_order
            .iter()
            .filter_map(|n| outcome.remove(n))
            .collect(),
        not_saved: None,
        scheduler_steps: sched.steps(),
    };
    store.save_state();
    if let Err(e) = store.put_run(&log) {
        log.not_saved = Some(format!("the run log could not be saved: {e:#}"));
    }
    ui.clear();
    Ok(log)
}

/// The folder of a pipeline's report and check results: `<store>/reports/<name>-<id>/`, where
/// `<id>` is 8 hex digits of the hash of the pipeline's identity (so two files with the same
/// `name:` in different folders never share a report). The name is reduced to letters, digits,
/// `_` and `-`, so no pipeline text can lead the path out of the store.
pub fn report_dir(store: &Store, p: &Pipeline) -> std::path::PathBuf {
    let name: String = p
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let id = blake3::hash(pipeline_id(p).as_bytes()).to_hex();
    store
        .root()
        .join("reports")
        .join(format!("{name}-{}", &id[..8]))
}

/// A pipeline's identity across runs: its file's canonical absolute path.
pub fn pipeline_id(p: &Pipeline) -> String {
    std::fs::canonicalize(&p.file)
        .unwrap_or_else(|_| p.file.clone())
        .display()
        .to_string()
}

/// Reports a stage's outcome and remembers it (and its order).
fn finish(
    ui: &ui::Ui,
    outcome: &mut BTreeMap<String, RunStage>,
    order: &mut Vec<String>,
    o: RunStage,
) {
    ui.finished(&o);
    order.push(o.stage.clone());
    outcome.insert(o.stage.clone(), o);
}

/// Computes one stage and stores it (under the per-key lock, so concurrent runs share work),
/// unless another process stored it meanwhile or the remote cache has it. `start` makes the
/// stage's context (and shows its progress bar) when it really computes.
#[allow(clippy::too_many_arguments)]
fn compute<'s>(
    p: &Pipeline,
    name: &str,
    stage: &dyn Stage,
    store: &Store,
    prep: &prepare::Prepared,
    upstream: &[(String, Record)],
    start: &dyn Fn() -> (Slot<'s>, StageCtx),
    force: bool,
) -> Result<Computed> {
    let (_lock, waited) = store.lock_key(&prep.hash)?;
    let mut warnings = Vec::new();
    if waited && !force {
        // Another process computed it while we waited.
        if let Lookup::Hit(r) = lookup(store, &prep.hash, true)? {
            return Ok(Computed {
                record: *r,
                got: Got::Reused,
                warnings,
            });
        }
    }
    if !force {
        match store.pull(&prep.hash)? {
            Pulled::Hit(r, bytes) => {
                return Ok(Computed {
                    record: *r,
                    got: Got::Pulled(bytes),
                    warnings,
                });
            }
            Pulled::Damaged(why) => warnings.push(format!(
                "the remote cache's result of stage '{name}' is damaged and was not used: {why}; recomputing"
            )),
            Pulled::Miss => {}
        }
    }
    let (_slot, ctx) = start();
    let inputs = load_inputs(p, store, upstream)?;
    let started = now_rfc3339();
    let t = Instant::now();
    let mut out = stage.run(&ctx, &prep.params, &inputs)?;
    check_finite(name, stage, &out)?;
    if out.tables.contains_key(METRICS) {
        bail!("stage '{name}' produced a table named '{METRICS}', a name reserved for its scalars");
    }
    if !out.scalars.is_empty() {
        out.tables
            .insert(METRICS.into(), metrics_table(&out.scalars)?);
    }
    let elapsed = t.elapsed().as_secs_f64();
    let mut tables = BTreeMap::new();
    for (k, table) in &out.tables {
        tables.insert(
            k.clone(),
            store
                .put_table(table)
                .with_context(|| format!("storing table '{k}' of stage '{name}'"))?,
        );
    }
    let mut files = BTreeMap::new();
    for (k, f) in &out.files {
        let object = store
            .put_file(&f.bytes, &f.ext)
            .with_context(|| format!("storing file '{k}' of stage '{name}'"))?;
        files.insert(
            k.clone(),
            FileRef {
                object,
                ext: f.ext.clone(),
                bytes: f.bytes.len() as u64,
            },
        );
    }
    store.sync_objects()?;
    let record = Record::new(prep.key.clone(), tables, files, out.scalars);
    if record.key != prep.hash {
        bail!("internal error: stage '{name}' key changed while computing");
    }
    record
        .verify(&prep.hash)
        .map_err(|f| anyhow!("stage '{name}' produced outputs the store cannot record: {f}"))?;
    let meta = RecordMeta {
        pipeline: p.name.clone(),
        stage: name.to_owned(),
        started,
        finished: now_rfc3339(),
        elapsed_s: elapsed,
        eqlab_version: env!("CARGO_PKG_VERSION").into(),
        host: host_name(),
    };
    store
        .put_record(&record, &meta)
        .with_context(|| format!("storing the record of stage '{name}'"))?;
    if let Published::Differs(outputs) = store.publish(&record)? {
        warnings.push(format!(
            "stage '{name}' ({}) is not deterministic: the remote cache already holds key {} with \
             other outputs ({}); the remote's record is kept, this machine keeps its own",
            prep.key.kind,
            &record.key[..12],
            outputs.join(", ")
        ));
    }
    Ok(Computed {
        record,
        got: Got::Ran,
        warnings,
    })
}

/// Fails when an output holds NaN or ±inf where the stage does not allow it.
fn check_finite(name: &str, stage: &dyn Stage, out: &Outputs) -> Result<()> {
    for (t, table) in &out.tables {
        if let Some((col, row)) = first_nonfinite(table)
            && !stage.allows_nonfinite(t, &col)
        {
            bail!(
                "stage '{name}' produced a non-finite value in column '{col}' of table '{t}' (row {row})"
            );
        }
    }
    for (k, v) in &out.scalars {
        if !v.is_finite() && !stage.allows_nonfinite("scalars", k) {
            bail!("stage '{name}' produced a non-finite scalar '{k}' = {v}");
        }
    }
    Ok(())
}

/// Loads (and verifies) the outputs of upstream stages.
pub fn load_inputs(p: &Pipeline, store: &Store, upstream: &[(String, Record)]) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for (n, r) in upstream {
        let mut outputs = Outputs::new();
        for (k, t) in &r.tables {
            if k == "metrics" {
                continue;
            }
            outputs.tables.insert(
                k.clone(),
                store
                    .get_table(&t.object)
                    .with_context(|| format!("output '{k}' of stage '{n}'"))?,
            );
        }
        for (k, f) in &r.files {
            outputs = outputs.file(k, &f.ext, store.get_file(&f.object, &f.ext)?);
        }
        outputs.scalars = r.scalars.clone();
        let decl = p.stage(n);
        inputs.upstream.push((
            n.clone(),
            Upstream {
                kind: r.components.kind.clone(),
                params: r.components.params.clone(),
                point: decl.map(prepare::upstream_point).unwrap_or_default(),
                replicate: decl.and_then(|d| d.replicate),
                outputs,
            },
        ));
    }
    Ok(inputs)
}
