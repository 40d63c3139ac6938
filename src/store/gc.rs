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

/// What `gc --remote` removed (or would remove) from the remote cache.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RemoteGcReport {
    /// Records on the remote.
    pub records: usize,
    /// Records that could not be read or verified (kept: a run overwrites them when it
    /// recomputes their key).
    pub bad_records: usize,
    /// Objects deleted (no record references them, older than the grace period).
    pub objects: usize,
    /// Bytes freed.
    pub bytes: u64,
    /// Objects kept.
    pub kept_objects: usize,
    /// Unreferenced objects kept because they are younger than the grace period (an upload
    /// whose record is not written yet).
    pub young_objects: usize,
}

/// Deletes remote objects (`cas/`) that no remote record (`ac/`) references and that are older
/// than `grace` (so an upload in progress, whose record comes last, is never cut from under it).
/// Old records themselves are expired by the bucket's lifecycle rule on `ac/` (see
/// `eqlab gc --help`); a record whose objects were expired is detected as damaged and
/// recomputed.
pub fn gc_remote(
    remote: &super::remote::Remote,
    grace: Duration,
    dry_run: bool,
) -> Result<RemoteGcReport> {
    use super::remote::Remote;
    let mut report = RemoteGcReport::default();
    let records = remote.list("ac").context("listing the remote's records")?;
    let keys: Vec<String> = records
        .iter()
        .map(|l| l.name.clone())
        .filter(|k| record::is_hash(k))
        .collect();
    report.records = keys.len();
    let mut referenced: HashSet<String> = HashSet::new();
    for (key, bytes) in keys.iter().zip(remote.get_records(&keys)?) {
        let r = bytes.and_then(|b| super::sync::parse_entry(key, &b).ok().map(|e| e.record));
        match r {
            Some(r) => {
                referenced.extend(r.tables.values().map(|t| t.file_b3.clone()));
                referenced.extend(r.files.values().map(|f| f.object.clone()));
            }
            None => report.bad_records += 1,
        }
    }
    let mut doomed = Vec::new();
    for o in remote.list("cas").context("listing the remote's objects")? {
        if referenced.contains(&o.name) {
            report.kept_objects += 1;
        } else if o.age_s < grace.as_secs() {
            report.young_objects += 1;
            report.kept_objects += 1;
        } else {
            report.objects += 1;
            report.bytes += o.size;
            doomed.push(Remote::object_path(&o.name));
        }
    }
    if !dry_run {
        remote
            .delete_many(&doomed)
            .context("deleting unreferenced remote objects")?;
    }
    Ok(report)
}
