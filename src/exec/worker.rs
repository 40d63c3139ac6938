//! Worker mode (`eqlab worker`, run by a Slurm array task): computes the instances of one task
//! of a run manifest (see `slurm`) exactly as the local executor would — same key, same
//! compute path (per-key lock, objects first, record last), so records are bit-identical.
//!
//! Before computing, it re-derives each instance's key from the pipeline file and the upstream
//! records in the store, and refuses when the pipeline file's text differs from the one
//! submitted or the key differs from the one the submitter expected (the pipeline or an input
//! file was edited mid-run). What it does goes to `<store>/logs/<run>/<instance>.log`.

use super::prepare::{Lookup, lookup, prepare, resolve};
use super::slurm::{Manifest, Task, log_path};
use super::{Got, Slots, compute, no_panic};
use crate::graph::Dag;
use crate::spec::Pipeline;
use crate::stage::{Progress, StageCtx};
use crate::stages::Registry;
use crate::store::Store;
use crate::store::record::now_rfc3339;
use crate::store::sync::Published;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Computes the instances of array task `task` of job `job` in manifest `m`, for pipeline `p`
/// (loaded from `m.pipeline` with `m.overrides`). Returns how many instances failed; every
/// failure is in the instance's log and on stderr.
pub fn run_task(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    m: &Manifest,
    job: usize,
    task: usize,
) -> Result<usize> {
    let spec = m
        .jobs
        .get(job)
        .ok_or_else(|| anyhow!("the run manifest has no job {job} ({} jobs)", m.jobs.len()))?;
    let instances = spec.tasks.get(task).ok_or_else(|| {
        anyhow!(
            "job {job} of the run manifest has no array task {task} ({} tasks)",
            spec.tasks.len()
        )
    })?;
    let _shared = store.store_lock(false)?;
    let dag = Dag::new(p);
    let order = dag.order();
    let mut failed = 0;
    for t in instances {
        let path = log_path(store.root(), &m.run, &t.instance);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut say = |line: &str| {
            let _ = writeln!(log, "{} {line}", now_rfc3339());
            crate::errln!("{line}");
        };
        say(&format!(
            "worker on {} (job {job}, task {task}): stage '{}' of {}",
            crate::store::record::host_name(),
            t.instance,
            p.file.display()
        ));
        let res = no_panic(&t.instance, || {
            if p.file_hash != m.file_hash {
                bail!(
                    "the pipeline file {} changed since the run was submitted (its hash is {}, \
                     the run's {}); refusing to compute: rerun `eqlab run`",
                    p.file.display(),
                    &p.file_hash[..12.min(p.file_hash.len())],
                    &m.file_hash[..12.min(m.file_hash.len())]
                );
            }
            one(p, registry, store, &order, &dag, t, &mut say)
        });
        match res {
            Ok(()) => {}
            Err(e) => {
                failed += 1;
                say(&format!("error: stage '{}' failed: {e:#}", t.instance));
                drop(log);
                share_log(store, m, &t.instance, &path);
            }
        }
    }
    store.save_state();
    Ok(failed)
}

/// Without a shared filesystem, puts a failed instance's log on the remote cache, where the
/// submitter shows its tail (best effort: the failure itself is what matters).
fn share_log(store: &Store, m: &Manifest, instance: &str, path: &std::path::Path) {
    if let Ok(bytes) = std::fs::read(path) {
        share(store, m, instance, bytes);
    }
}

/// Puts `bytes` as the log of `instance` on the remote cache, for runs without a shared
/// filesystem (see [`share_log`]).
fn share(store: &Store, m: &Manifest, instance: &str, bytes: Vec<u8>) {
    if m.bundle.is_none() {
        return;
    }
    if let Some(remote) = store.remote()
        && let Err(e) = remote.put_bytes(&super::slurm::log_rel(&m.run, instance), bytes)
    {
        crate::errln!(
            "warning: cannot put the log of '{instance}' on {}: {e:#}",
            remote.url()
        );
    }
}

/// A task that failed before computing (its pipeline could not be loaded): the error becomes
/// the log of each of its instances, so that the submitter can show it.
pub fn task_failed(store: &Store, m: &Manifest, job: usize, task: usize, e: &anyhow::Error) {
    let Some(list) = m.jobs.get(job).and_then(|j| j.tasks.get(task)) else {
        return;
    };
    for t in list {
        let line = format!(
            "{} error: stage '{}' failed: {e:#}\n",
            now_rfc3339(),
            t.instance
        );
        let path = log_path(store.root(), &m.run, &t.instance);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&path, &line);
        share(store, m, &t.instance, line.into_bytes());
    }
}

/// Derives the key of one instance (its upstream records must be stored), checks it, and
/// computes it unless stored.
fn one(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    order: &[String],
    dag: &Dag,
    t: &Task,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let name = t.instance.as_str();
    let (decl, stage) = resolve(p, registry, name)?;
    // The records of every ancestor, in topological order (keys chain through outputs).
    let ancestors = dag.with_ancestors(&[name.to_owned()]);
    let mut done = BTreeMap::new();
    for a in order
        .iter()
        .filter(|a| ancestors.contains(*a) && *a != name)
    {
        let (d, kind) = resolve(p, registry, a)?;
        let prep = prepare(p, d, kind, &done, store)?;
        let found = match lookup(store, &prep.hash, false)? {
            // Without a shared filesystem, upstream results come from the remote cache.
            Lookup::Miss => match store.pull(&prep.hash)? {
                crate::store::sync::Pulled::Hit(r, _) => Lookup::Hit(r),
                _ => Lookup::Miss,
            },
            other => other,
        };
        match found {
            Lookup::Hit(r) => {
                done.insert(a.clone(), *r);
            }
            Lookup::Miss => bail!(
                "upstream stage '{a}' has no stored result (key {}): its job did not finish",
                &prep.hash[..12]
            ),
            Lookup::Damaged(why) => {
                bail!("the stored result of upstream stage '{a}' is damaged: {why}")
            }
        }
    }
    let prep = prepare(p, decl, stage, &done, store)?;
    if let Some(expected) = &t.key
        && *expected != prep.hash
    {
        bail!(
            "its key is {} now, but the run was submitted for key {}: the pipeline or one of \
             its input files changed mid-run; refusing to compute (rerun `eqlab run`)",
            &prep.hash[..12],
            &expected[..12.min(expected.len())]
        );
    }
    say(&format!("key {}", prep.hash));
    if !t.force
        && let Lookup::Hit(r) = lookup(store, &prep.hash, true)?
    {
        // A node's own store (no shared filesystem) may hold a result its remote cache lacks
        // (another remote, an expired entry); the submitter only sees what is published.
        match store.publish(&r)? {
            Published::Uploaded(bytes) => say(&format!(
                "already stored here; published to the remote cache ({bytes} bytes)"
            )),
            Published::Differs(names) => say(&format!(
                "warning: already stored here, and the remote cache holds other outputs ({}) for \
                 this key: the stage is not deterministic",
                names.join(", ")
            )),
            Published::Same | Published::Skipped => say("already stored: nothing to do"),
        }
        return Ok(());
    }
    let upstream: Vec<(String, crate::store::Record)> = decl
        .needs
        .iter()
        .filter_map(|n| done.get(n).map(|r| (n.clone(), r.clone())))
        .collect();
    let slots = Slots::new(1);
    let cancel = Arc::new(AtomicBool::new(false));
    let start = || {
        let slot = slots.take();
        let ctx = StageCtx::new(
            prep.key.seed,
            Progress::hidden(),
            store.root().join("tmp"),
            cancel.clone(),
        );
        (slot, ctx)
    };
    let t0 = std::time::Instant::now();
    let c = compute(p, name, stage, store, &prep, &upstream, &start, t.force)?;
    for w in &c.warnings {
        say(&format!("warning: {w}"));
    }
    let secs = t0.elapsed().as_secs_f64();
    say(&match c.got {
        Got::Ran => format!("stored record {} ({secs:.2}s)", c.record.key),
        Got::Reused => format!(
            "another process stored record {} while this one waited ({secs:.2}s): reused",
            c.record.key
        ),
        Got::Pulled(bytes) => format!(
            "pulled record {} from the remote cache ({bytes} bytes, {secs:.2}s)",
            c.record.key
        ),
    });
    Ok(())
}
