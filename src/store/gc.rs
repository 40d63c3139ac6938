//! Garbage collection: delete records older than a budget (except those the latest run of each
//! pipeline used), then every object no remaining record references, and stale temporaries.

use super::{Record, Store};
use anyhow::Result;
use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

/// What `gc` removed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GcReport {
    /// Records deleted.
    pub records: usize,
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
    let mut report = GcReport::default();
    let mut records = store.records()?;
    if let Some(age) = older_than {
        let protected = latest_run_keys(store)?;
        let cutoff = SystemTime::now() - age;
        let (old, keep): (Vec<Record>, Vec<Record>) = records.into_iter().partition(|r| {
            let finished =
                humantime::parse_rfc3339_weak(&r.finished).unwrap_or(SystemTime::UNIX_EPOCH);
            finished < cutoff && !protected.contains(&r.key)
        });
        for r in &old {
            let path = store.root().join("records").join(format!("{}.json", r.key));
            report.bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if !dry_run {
                fs::remove_file(&path)?;
            }
        }
        report.records = old.len();
        records = keep;
    }
    let mut live: HashSet<String> = HashSet::new();
    for r in &records {
        live.extend(r.tables.values().map(|t| format!("{}.parquet", t.object)));
        live.extend(r.files.values().map(|f| format!("{}.{}", f.object, f.ext)));
    }
    for e in fs::read_dir(store.root().join("objects"))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if live.contains(&name) {
            report.kept_objects += 1;
            continue;
        }
        report.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
        report.objects += 1;
        if !dry_run {
            fs::remove_file(e.path())?;
        }
    }
    if !dry_run {
        // Nothing is running (we hold the exclusive lock), so temporaries and key locks are stale.
        for dir in ["tmp", "locks"] {
            for e in fs::read_dir(store.root().join(dir))? {
                let _ = fs::remove_file(e?.path());
            }
        }
    }
    Ok(report)
}

/// Keys used by the most recent run of each pipeline.
fn latest_run_keys(store: &Store) -> Result<HashSet<String>> {
    let mut latest = std::collections::HashMap::new();
    for run in store.runs()? {
        latest.insert(run.pipeline.clone(), run);
    }
    Ok(latest
        .values()
        .flat_map(|r| r.stages.iter().filter_map(|s| s.key.clone()))
        .collect())
}
