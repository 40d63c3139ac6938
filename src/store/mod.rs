//! The content-addressed artifact store on the local disk.
//!
//! ```text
//! artifacts/
//!   objects/<hash>.parquet | .<ext>   immutable; tables named by their logical hash, files by blake3
//!   records/<stage-key>.json          one per computed stage, written last and atomically;
//!                                     verified before use (see `record`)
//!   meta/<stage-key>.json             who computed it, when, how long (informational)
//!   damaged/<stage-key>.json.<n>      records set aside because they failed verification
//!   runs/<time>-<pid>.json            what each run did
//!   state/<stage-key> | inputs        what unchanged files hashed to, and which records were
//!                                     checked (see `stat_cache`; a cache: losing it costs time)
//!   locks/<stage-key>.lock            taken while a stage computes (concurrent runs wait, then reuse)
//!   lock                              shared by runs, exclusive for gc
//!   tmp/                              half-written files; never referenced
//! ```
//!
//! A remote cache (S3 or a shared directory, `remote`) may stand behind the local store; `sync`
//! moves results between the two with the same guarantees.
//!
//! Every write goes to `tmp/` first, is fsynced, renamed into place, and the directory is
//! fsynced, so a crash leaves at worst an unreferenced temporary file (and a failed write removes
//! its temporary at once). Every read is verified: objects against their hash, records against
//! their integrity rules. No path is built from stored data that was not validated first (object
//! names are 64-hex hashes with a known extension, keys are 64-hex). Every I/O error names the
//! path and the operation. What a stage means and how records are produced is the executor's
//! business, not the store's.

pub mod gc;
pub mod record;
pub mod remote;
pub mod stat_cache;
pub mod sync;

use crate::table::{Table, logical_hash};
use anyhow::{Context, Result, anyhow, bail};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatchReader;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
pub use record::{FileRef, Record, RecordFault, RecordMeta, RunLog, RunStage, TableRef};
use stat_cache::StatFile;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Names the integrity rules a record passed (`Record::verify`) in the stat cache; change it
/// when those rules change, so that records are checked again under the new ones.
const VERIFIED_TAG: &str = "record-v2-rules1";

/// Rows per Parquet row group: fixed, so the same table always encodes the same way.
const ROW_GROUP: usize = 65_536;

/// A stored object whose content does not match its name.
#[derive(Debug, thiserror::Error)]
#[error("object {path} is corrupt: its content hashes to {actual}, not {expected}")]
pub struct Corrupt {
    /// The object file.
    pub path: PathBuf,
    /// The hash it is named by.
    pub expected: String,
    /// The hash of what is there.
    pub actual: String,
}

/// A store rooted at a directory (created on first use).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Loaded stat-cache files by name (`<stage-key>` or `inputs`).
    state: Arc<Mutex<HashMap<String, Arc<Mutex<StatFile>>>>>,
    /// The remote cache behind this store, if one is configured (see `sync`).
    remote: Option<Arc<remote::Remote>>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (and creates) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["objects", "records", "meta", "runs", "locks", "tmp"] {
            fs::create_dir_all(root.join(d)).with_context(|| {
                format!(
                    "cannot create the store directory {}",
                    root.join(d).display()
                )
            })?;
        }
        Ok(Store {
            root: root.to_path_buf(),
            state: Arc::default(),
            remote: None,
        })
    }

    /// This store with a remote cache behind it (see `sync`, `remote`).
    pub fn with_remote(mut self, remote: remote::Remote) -> Store {
        self.remote = Some(Arc::new(remote));
        self
    }

    /// The stat-cache file `state/<name>`, loaded on first use.
    fn state_file(&self, name: &str) -> Arc<Mutex<StatFile>> {
        let mut map = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(StatFile::load(
                    &self.root.join("state").join(name),
                )))
            })
            .clone()
    }

    /// The blake3 of a pipeline input file, without reading it again when its `stat` shows it
    /// unchanged since it was last hashed (see [`stat_cache`]).
    pub fn hash_input(&self, path: &Path) -> Result<String> {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let name = abs.to_string_lossy();
        let file = self.state_file("inputs");
        let mut f = file.lock().unwrap_or_else(PoisonError::into_inner);
        f.hash(&name, &abs)
    }

    /// Saves what this process learnt of unchanged files and checked records (best effort: the
    /// cache only saves time, so a read-only or full disk means rehashing next time).
    pub fn save_state(&self) {
        let dir = self.root.join("state");
        let map = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut made = false;
        for (name, file) in map.iter() {
            let f = file.lock().unwrap_or_else(PoisonError::into_inner);
            if f.dirty() {
                if !made {
                    made = fs::create_dir_all(&dir).is_ok();
                }
                let _ = self.replace_with(&dir.join(name), f.text().as_bytes(), false);
            }
        }
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a table object. `hash` must be a validated 64-hex name (see `record::is_hash`).
    pub fn table_path(&self, hash: &str) -> PathBuf {
        self.object_path(hash, "parquet")
    }

    /// Path of a file object. `hash` and `ext` must be validated (see `Record::verify`).
    pub fn file_path(&self, hash: &str, ext: &str) -> PathBuf {
        self.object_path(hash, ext)
    }

    fn object_path(&self, hash: &str, ext: &str) -> PathBuf {
        // Defence in depth: never let an unvalidated name leave `objects/`.
        let safe =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let (hash, ext) = if safe(hash) && safe(ext) {
            (hash, ext)
        } else {
            ("invalid-name", "invalid")
        };
        self.root.join("objects").join(format!("{hash}.{ext}"))
    }

    /// Writes `bytes` to `dest` atomically: temp file, fsync, rename, fsync of the directory.
    /// On any failure the temporary is removed and the error names the path and operation.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        self.replace_with(dest, bytes, true)?;
        match dest.parent() {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }

    /// Temp file (fsynced when `sync`), then rename onto `dest`; no directory fsync (see
    /// [`Store::sync_objects`]). The temporary is removed on failure.
    fn replace_with(&self, dest: &Path, bytes: &[u8], sync: bool) -> Result<()> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}-{n}.tmp", std::process::id()));
        let res = (|| -> Result<()> {
            let mut f =
                File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            f.write_all(bytes)
                .and_then(|()| if sync { f.sync_all() } else { Ok(()) })
                .with_context(|| {
                    format!("cannot write {} bytes to {}", bytes.len(), tmp.display())
                })?;
            drop(f);
            fs::rename(&tmp, dest)
                .with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// Makes the renames of new objects durable (one fsync of `objects/`), before the record
    /// that references them is written.
    pub fn sync_objects(&self) -> Result<()> {
        sync_dir(&self.root.join("objects"))
    }

    /// Stores a table as Parquet; returns its logical hash, row count and file-bytes hash.
    pub fn put_table(&self, t: &Table) -> Result<TableRef> {
        let hash = logical_hash(t);
        let path = self.table_path(&hash);
        if path.exists() {
            // Another record already stored this content: make sure it is intact.
            if self.get_table(&hash).is_ok() {
                return Ok(TableRef {
                    object: hash,
                    rows: t.num_rows() as u64,
                    file_b3: hash_file(&path)?,
                });
            }
        }
        let bytes = encode_parquet(t)?;
        self.replace_with(&path, &bytes, true)?;
        Ok(TableRef {
            object: hash,
            rows: t.num_rows() as u64,
            file_b3: blake3::hash(&bytes).to_hex().to_string(),
        })
    }

    /// Reads a table and verifies its logical hash.
    pub fn get_table(&self, hash: &str) -> Result<Table> {
        let path = self.table_path(hash);
        let t = decode_parquet(&path).map_err(|e| {
            anyhow!(Corrupt {
                path: path.clone(),
                expected: hash.to_owned(),
                actual: format!("unreadable Parquet ({e:#})"),
            })
        })?;
        let actual = logical_hash(&t);
        if actual != hash {
            bail!(Corrupt {
                path,
                expected: hash.to_owned(),
                actual
            });
        }
        Ok(t)
    }

    /// Stores file bytes; returns their blake3. `ext` must be one of
    /// [`record::FILE_EXTENSIONS`].
    pub fn put_file(&self, bytes: &[u8], ext: &str) -> Result<String> {
        if !record::FILE_EXTENSIONS.contains(&ext) {
            bail!(
                "file extension {ext:?} is not one the store accepts ({})",
                record::FILE_EXTENSIONS.join(", ")
            );
        }
        let hash = blake3::hash(bytes).to_hex().to_string();
        let path = self.file_path(&hash, ext);
        if !(path.exists() && hash_file(&path)? == hash) {
            self.replace_with(&path, bytes, true)?;
        }
        Ok(hash)
    }

    /// Reads file bytes and verifies them.
    pub fn get_file(&self, hash: &str, ext: &str) -> Result<Vec<u8>> {
        let path = self.file_path(hash, ext);
        let bytes =
            fs::read(&path).with_context(|| format!("object {} is missing", path.display()))?;
        let actual = blake3::hash(&bytes).to_hex().to_string();
        if actual != hash {
            bail!(Corrupt {
                path,
                expected: hash.to_owned(),
                actual
            });
        }
        Ok(bytes)
    }

    /// Checks, without decoding, that every object of a (verified) record is present and intact
    /// (an object unchanged since it was last hashed is not read again: [`stat_cache`]).
    pub fn verify_objects(&self, r: &Record) -> Result<()> {
        let file = self.state_file(&r.key);
        let mut state = file.lock().unwrap_or_else(PoisonError::into_inner);
        let mut hash = |path: &Path| {
            let name = format!(
                "objects/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            state
                .hash(&name, path)
                .map_err(|_| anyhow!("object {} is missing", path.display()))
        };
        for t in r.tables.values() {
            let path = self.table_path(&t.object);
            let actual = hash(&path)?;
            if actual != t.file_b3 {
                bail!(Corrupt {
                    path,
                    expected: t.file_b3.clone(),
                    actual
                });
            }
        }
        for f in r.files.values() {
            let path = self.file_path(&f.object, &f.ext);
            let actual = hash(&path)?;
            if actual != f.object {
                bail!(Corrupt {
                    path,
                    expected: f.object.clone(),
                    actual
                });
            }
        }
        Ok(())
    }

    /// Removes a damaged object so that it is written afresh. Only paths inside `objects/`
    /// are ever removed.
    pub fn discard(&self, path: &Path) {
        if path.parent() == Some(self.root.join("objects").as_path()) {
            let _ = fs::remove_file(path);
        }
    }

    fn record_path(&self, key: &str) -> Result<PathBuf> {
        if !record::is_hash(key) {
            bail!("{key:?} is not a stage key (64 hex digits)");
        }
        Ok(self.root.join("records").join(format!("{key}.json")))
    }

    /// The record for a stage key: `Ok(None)` when none is stored, [`RecordFault`] (inside the
    /// error) when the stored one fails verification.
    pub fn record(&self, key: &str) -> Result<Option<Record>> {
        let path = self.record_path(key)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let r: Record = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(RecordFault(format!(
                "record {} is unreadable: {e}",
                path.display()
            )))
        })?;
        // The integrity rules are a pure function of the bytes and the name: bytes that passed
        // them once at this path (same blake3) pass again, without re-hashing the components.
        let tag = format!("{VERIFIED_TAG}:{}", blake3::hash(&bytes).to_hex());
        let file = self.state_file(key);
        let mut state = file.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.vouched("record", &tag) {
            r.verify(key).map_err(|f| {
                anyhow!(RecordFault(format!(
                    "record {} is not valid: {}",
                    path.display(),
                    f.0
                )))
            })?;
            state.vouch("record", &path, tag);
        }
        Ok(Some(r))
    }

    /// Moves a record that failed verification to `damaged/`, so that the stage is recomputed
    /// and the evidence kept. Returns where it went.
    pub fn set_aside(&self, key: &str) -> Result<PathBuf> {
        let from = self.record_path(key)?;
        let dir = self.root.join("damaged");
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let to = dir.join(format!("{key}.json.{}-{n}", std::process::id()));
        fs::rename(&from, &to)
            .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
        Ok(to)
    }

    /// Writes a record (last, atomically), after its informational meta.
    pub fn put_record(&self, r: &Record, meta: &RecordMeta) -> Result<()> {
        // Informational: atomic, but not worth an fsync.
        let meta_path = self.root.join("meta").join(format!("{}.json", r.key));
        self.replace_with(&meta_path, &serde_json::to_vec_pretty(meta)?, false)?;
        let bytes = serde_json::to_vec_pretty(r)?;
        self.write_atomic(&self.record_path(&r.key)?, &bytes)
    }

    /// Who computed a record and when, if known (informational; `None` when absent or unreadable).
    pub fn meta(&self, key: &str) -> Option<RecordMeta> {
        if !record::is_hash(key) {
            return None;
        }
        let path = self.root.join("meta").join(format!("{key}.json"));
        fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Stage name → keys of the stored records that stage computed (from the metas; no record
    /// is parsed). Read once per plan to find the nearest stored key of a stage.
    pub fn stage_index(&self) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let dir = self.root.join("meta");
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for e in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = e
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            let Some(key) = json_stem(&path) else {
                continue;
            };
            if let Some(m) = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<RecordMeta>(&b).ok())
            {
                out.entry(m.stage).or_default().push(key);
            }
        }
        Ok(out)
    }

    /// Every stored record file: its key and the verified record, or why it cannot be used.
    pub fn records(&self) -> Result<Vec<(String, Result<Record>)>> {
        let dir = self.root.join("records");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = e
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            if let Some(key) = json_stem(&path) {
                let r = self
                    .record(&key)
                    .and_then(|r| r.ok_or_else(|| anyhow!("record {} vanished", path.display())));
                out.push((key, r));
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push((
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    Err(anyhow!("{} is not named by a stage key", path.display())),
                ));
            }
        }
        Ok(out)
    }

    /// Saves a run log.
    pub fn put_run(&self, run: &RunLog) -> Result<PathBuf> {
        let name = format!(
            "{}-{}.json",
            run.started.replace(':', ""),
            std::process::id()
        );
        let path = self.root.join("runs").join(name);
        self.write_atomic(&path, &serde_json::to_vec_pretty(run)?)?;
        Ok(path)
    }

    /// Every readable run log, oldest first (unreadable ones are skipped: they are history,
    /// not results).
    pub fn runs(&self) -> Result<Vec<RunLog>> {
        self.recent_runs(usize::MAX)
    }

    /// The `limit` most recent readable run logs, oldest first.
    pub fn recent_runs(&self, limit: usize) -> Result<Vec<RunLog>> {
        let dir = self.root.join("runs");
        let mut paths: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        paths.sort();
        let skip = paths.len().saturating_sub(limit);
        Ok(paths[skip..]
            .iter()
            .filter_map(|p| {
                fs::read(p)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
            })
            .collect())
    }

    /// Stage name → record, for every stage of a run whose record is stored and valid.
    pub fn run_records(&self, run: &RunLog) -> Result<std::collections::BTreeMap<String, Record>> {
        let mut out = std::collections::BTreeMap::new();
        for s in &run.stages {
            let Some(key) = s.key.as_deref() else {
                continue;
            };
            match self.record(key) {
                Ok(Some(r)) => {
                    out.insert(s.stage.clone(), r);
                }
                Ok(None) => {}
                Err(e) if e.downcast_ref::<RecordFault>().is_some() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Takes the per-key lock that serialises computing one stage across processes.
    /// Returns the lock and whether it had to wait for another process.
    pub fn lock_key(&self, key: &str) -> Result<(File, bool)> {
        if !record::is_hash(key) {
            bail!("{key:?} is not a stage key (64 hex digits)");
        }
        let path = self.root.join("locks").join(format!("{key}.lock"));
        let f = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        match f.try_lock() {
            Ok(()) => Ok((f, false)),
            Err(fs::TryLockError::WouldBlock) => {
                f.lock()
                    .with_context(|| format!("cannot lock {}", path.display()))?;
                Ok((f, true))
            }
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// The store-wide lock: shared while running, exclusive for `gc`. On a read-only store the
    /// lock file is opened read-only (locking still works), so cached runs can read.
    pub fn store_lock(&self, exclusive: bool) -> Result<File> {
        let path = self.root.join("lock");
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .or_else(|e| match e.raw_os_error() {
                Some(30) | Some(13) => File::open(&path),
                _ => Err(e),
            })
            .with_context(|| format!("cannot open the store lock {}", path.display()))?;
        let how = if exclusive { "exclusive" } else { "shared" };
        if exclusive { f.lock() } else { f.lock_shared() }
            .with_context(|| format!("cannot take the {how} store lock {}", path.display()))?;
        Ok(f)
    }
}

/// The key of `records/<key>.json` or `meta/<key>.json`, when the file is named by a valid key.
fn json_stem(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let key = name.strip_suffix(".json")?;
    record::is_hash(key).then(|| key.to_owned())
}

/// Fsyncs a directory, so that renames into it survive a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Blake3 of a file's bytes (memory-mapped and multithreaded for large files).
pub fn hash_file(path: &Path) -> Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_mmap_rayon(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(h.finalize().to_hex().to_string())
}

/// Encodes a table as Parquet with fixed settings (no timestamps, fixed row groups).
pub fn encode_parquet(t: &Table) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .set_created_by(format!("eqlab {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, t.schema(), Some(props))?;
    w.write(t)?;
    w.close()?;
    Ok(buf)
}

/// Decodes a Parquet file into one table.
pub fn decode_parquet(path: &Path) -> Result<Table> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    decode_parquet_from(f)
}

/// Decodes Parquet from any source (a file, in-memory bytes) into one table.
pub fn decode_parquet_from<R: parquet::file::reader::ChunkReader + 'static>(r: R) -> Result<Table> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(r)?.build()?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(concat_batches(&schema, &batches)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::TableBuilder;

    #[test]
    fn tables_round_trip_and_corruption_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t = TableBuilder::new()
            .f64("x", vec![0.1, 0.2, f64::MAX])
            .i64("n", vec![1, 2, 3])
            .str("s", &["a", "b", "c"])
            .build()
            .unwrap();
        let r = s.put_table(&t).unwrap();
        assert_eq!(s.get_table(&r.object).unwrap(), t);
        let path = s.table_path(&r.object);
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let err = s.get_table(&r.object).unwrap_err();
        assert!(err.downcast_ref::<Corrupt>().is_some(), "{err:#}");
    }
}
