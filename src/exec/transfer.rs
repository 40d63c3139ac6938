//! Explicit sync of a pipeline's results with the remote cache (`eqlab push`, `eqlab pull`):
//! which records a pipeline uses now, found by walking its DAG as a run would (a stage's key
//! needs its upstream records), without computing anything. The transfers themselves are
//! `store::sync`'s.

use super::prepare::{Lookup, lookup, prepare, resolve};
use crate::graph::Dag;
use crate::spec::Pipeline;
use crate::stages::Registry;
use crate::store::sync::{Published, Pulled};
use crate::store::{Record, Store};
use anyhow::{Result, anyhow};
use std::collections::{BTreeMap, HashSet};

/// What a push or pull did, for the summary.
#[derive(Debug, Default)]
pub struct Transfer {
    /// Stage instances of the pipeline.
    pub stages: usize,
    /// Results already where they had to go (pull: in the local store; push: on the remote).
    pub present: usize,
    /// Results moved.
    pub moved: usize,
    /// Bytes moved (objects and records).
    pub bytes: u64,
    /// Stages with no result at the source (and, for pull, stages below them, whose keys
    /// cannot be known).
    pub missing: Vec<String>,
    /// Stages whose remote result is damaged, with why (pull).
    pub damaged: Vec<(String, String)>,
    /// Stages whose parameters or input files are invalid, with why.
    pub errors: Vec<(String, String)>,
    /// Stages the remote holds with other outputs (push: not deterministic).
    pub differs: Vec<(String, Vec<String>)>,
}

/// One wave of the walk: stages whose upstream results are all known.
fn wave(
    p: &Pipeline,
    remaining: Vec<String>,
    done: &BTreeMap<String, Record>,
    blocked: &mut HashSet<String>,
    t: &mut Transfer,
) -> Result<(Vec<String>, Vec<String>)> {
    let (mut ready, mut later) = (Vec::new(), Vec::new());
    for name in remaining {
        let decl = p
            .stage(&name)
            .ok_or_else(|| anyhow!("stage '{name}' vanished"))?;
        if decl.needs.iter().any(|n| blocked.contains(n)) {
            blocked.insert(name.clone());
            t.missing.push(name);
        } else if decl.needs.iter().all(|n| done.contains_key(n)) {
            ready.push(name);
        } else {
            later.push(name);
        }
    }
    Ok((ready, later))
}

/// The key of each stage of `ready` (errors go to `t.errors` and block their dependents).
fn keys(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    ready: Vec<String>,
    done: &BTreeMap<String, Record>,
    blocked: &mut HashSet<String>,
    t: &mut Transfer,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(ready.len());
    for name in ready {
        let (decl, stage) = resolve(p, registry, &name)?;
        match prepare(p, decl, stage, done, store) {
            Ok(prep) => out.push((name, prep.hash)),
            Err(e) => {
                blocked.insert(name.clone());
                t.errors.push((name, format!("{e:#}")));
            }
        }
    }
    Ok(out)
}

/// Walks the DAG wave by wave from the roots: each wave's (stage, key) pairs go to `resolve`,
/// which returns the record of each (or `None`: no result, so the stages below it are
/// blocked) and notes what it did in the [`Transfer`]. Returns the records found.
fn walk(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    t: &mut Transfer,
    mut resolve: impl FnMut(Vec<(String, String)>, &mut Transfer) -> Result<Vec<Option<Record>>>,
) -> Result<BTreeMap<String, Record>> {
    let mut remaining = Dag::new(p).order();
    t.stages = remaining.len();
    let mut done: BTreeMap<String, Record> = BTreeMap::new();
    let mut blocked: HashSet<String> = HashSet::new();
    while !remaining.is_empty() {
        let (ready, later) = wave(p, remaining, &done, &mut blocked, t)?;
        if ready.is_empty() {
            t.missing.extend(later);
            break;
        }
        let keyed = keys(p, registry, store, ready, &done, &mut blocked, t)?;
        let names: Vec<String> = keyed.iter().map(|(n, _)| n.clone()).collect();
        for (name, got) in names.into_iter().zip(resolve(keyed, t)?) {
            match got {
                Some(r) => {
                    done.insert(name, r);
                }
                None => {
                    blocked.insert(name);
                }
            }
        }
        remaining = later;
    }
    store.save_state();
    Ok(done)
}

/// Brings every result of the pipeline's current keys that the local store lacks in from
/// the remote, wave by wave (the keys of a wave need the records of the waves before it), each
/// wave's keys fetched concurrently. `each` is called after every remote lookup.
pub fn pull(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    each: &(dyn Fn(&Pulled) + Sync),
) -> Result<Transfer> {
    let _shared = store.store_lock(false)?;
    let mut t = Transfer::default();
    walk(p, registry, store, &mut t, |keyed, t| {
        let mut out: Vec<Option<Record>> = Vec::with_capacity(keyed.len());
        let mut misses = Vec::new();
        for (i, (_, key)) in keyed.iter().enumerate() {
            match lookup(store, key, true)? {
                Lookup::Hit(r) => {
                    t.present += 1;
                    out.push(Some(*r));
                }
                _ => {
                    out.push(None);
                    misses.push(i);
                }
            }
        }
        let wanted: Vec<String> = misses.iter().map(|&i| keyed[i].1.clone()).collect();
        for (i, got) in misses.into_iter().zip(store.pull_many(&wanted, each)?) {
            let name = keyed[i].0.clone();
            match got {
                Pulled::Hit(r, bytes) => {
                    t.moved += 1;
                    t.bytes += bytes;
                    out[i] = Some(*r);
                }
                Pulled::Miss => t.missing.push(name),
                Pulled::Damaged(why) => t.damaged.push((name, why)),
            }
        }
        Ok(out)
    })?;
    Ok(t)
}

/// Uploads every result of the pipeline's current keys that the local store has and the
/// remote lacks (objects first, then the record). `each` is called after every record.
pub fn push(
    p: &Pipeline,
    registry: &Registry,
    store: &Store,
    each: &(dyn Fn(&Published) + Sync),
) -> Result<Transfer> {
    let _shared = store.store_lock(false)?;
    let mut t = Transfer::default();
    let done = walk(p, registry, store, &mut t, |keyed, t| {
        keyed
            .into_iter()
            .map(|(name, key)| match lookup(store, &key, false)? {
                Lookup::Hit(r) => Ok(Some(*r)),
                _ => {
                    t.missing.push(name);
                    Ok(None)
                }
            })
            .collect()
    })?;
    let (names, records): (Vec<String>, Vec<Record>) = done.into_iter().unzip();
    for (name, got) in names.into_iter().zip(store.publish_many(&records, each)?) {
        match got {
            Published::Uploaded(bytes) => {
                t.moved += 1;
                t.bytes += bytes;
            }
            Published::Same => t.present += 1,
            Published::Differs(outputs) => t.differs.push((name, outputs)),
            Published::Skipped => {}
        }
    }
    Ok(t)
}
