//! Garbage collection: delete records older than a budget (except those current for some
//! pipeline), records that fail verification, then every object no remaining record
//! references, orphaned metadata and stat-cache files, set-aside records and stale temporaries.
//!
//! "Current" means: for each pipeline file (its canonical path) and each of its stages, the key
//! of the latest run that used that stage. A `run --only a` therefore does not make the other
//! stages' results collectable, and two files with the same `name:` do not share protection.

use super::{Store, record};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What `gc` removed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GcReport {
    /// Records deleted (old, invalid or set aside).
    pub records: usize,
    /// Of those, records that failed verification.
    pub invalid_records: usize,
    /// Objects deleted.
    pub objects: usize,
    /// Bytes freed.
    pub bytes: u64,
    /// Objects kept.
    pub kept_objects: usize,
}

/// Runs gc under the store's exclusive lock (waits for running `eqlab run`s to finish).
pub fn gc(store: &Store, older_than: Option<Duration>, dry_run: bool) -> Result<GcReport> {
    let _lock = store.store_lock(true)?;
    let root = store.root();
    let mut report = GcReport::default();
    let protected = current_keys(store)?;
    let cutoff = older_than.map(|age| SystemTime::now() - age);
    let remove = |path: &Path, report: &mut GcReport| -> Result<()> {
        report.bytes += fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if !dry_run {
            fs::remove_file(path).with_context(|| format!("cannot delete {}", path.display()))?;
        }
        Ok(())
    };
    let mut live: HashSet<String> = HashSet::new();
    let mut kept_keys: HashSet<String> = HashSet::new();
    for (key, r) in store.records()? {
        let path = root.join("records").join(&key);
        let path = if key.ends_with(".json") {
            path
        } else {
            path.with_extension("json")
        };
        let r = match r {
            Ok(r) => r,
            Err(_) => {
                remove(&path, &mut report)?;
                report.records += 1;
                report.invalid_records += 1;
                continue;
            }
        };
        let old = cutoff.is_some_and(|c| finished(store, &key, &path) < c);
        if old && !protected.contains(&key) {
            remove(&path, &mut report)?;
            report.records += 1;
            continue;
        }
        live.extend(r.object_names());
        kept_keys.insert(key);
    }
    for e in read_dir(&root.join("objects"))? {
        let name = e.file_name().to_string_lossy().into_owned();
        if live.contains(&name) {
            report.kept_objects += 1;
            continue;
        }
        report.objects += 1;
        remove(&e.path(), &mut report)?;
    }
    for e in read_dir(&root.join("meta"))? {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name
            .strip_suffix(".json")
            .is_some_and(|k| kept_keys.contains(k))
        {
            remove(&e.path(), &mut report)?;
        }
    }
    let state = root.join("state");
    if state.is_dir() {
        for e in read_dir(&state)? {
            let name = e.file_name().to_string_lossy().into_owned();
            if name != "inputs" && !kept_keys.contains(&name) {
                remove(&e.path(), &mut report)?;
            }
        }
    }
    let damaged = root.join("damaged");
    if damaged.is_dir() {
        for e in read_dir(&damaged)? {
            report.records += 1;
            remove(&e.path(), &mut report)?;
        }
    }
    if !dry_run {
        // Nothing is running (we hold the exclusive lock), so temporaries and key locks are stale.
        for dir in ["tmp", "locks"] {
            for e in read_dir(&root.join(dir))? {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(report)
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.with_context(|| format!("cannot list {}", dir.display())))
        .collect()
}

/// When a record was computed: from its meta, else the record file's modification time.
fn finished(store: &Store, key: &str, path: &Path) -> SystemTime {
    store
        .meta(key)
        .and_then(|m| humantime::parse_rfc3339_weak(&m.finished).ok())
        .or_else(|| fs::metadata(path).and_then(|m| m.modified()).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// For each pipeline file and stage, the key its latest run used.
fn current_keys(store: &Store) -> Result<HashSet<String>> {
    let mut latest: HashMap<(String, String), String> = HashMap::new();
    for run in store.runs()? {
        let pipeline = if run.file_id.is_empty() {
            run.pipeline.clone()
        } else {
            run.file_id.clone()
        };
        for s in &run.stages {
            if let Some(k) = &s.key
                && record::is_hash(k)
            {
                latest.insert((pipeline.clone(), s.stage.clone()), k.clone());
            }
        }
    }
    Ok(latest.into_values().collect())
}
