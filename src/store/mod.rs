//! The content-addressed artifact store on the local disk.
//!
//! ```text
//! artifacts/
//!   objects/<hash>.parquet | .<ext>   immutable; tables named by their logical hash, files by blake3
//!   records/<stage-key>.json          one per computed stage, written last and atomically
//!   runs/<time>-<pid>.json            what each run did
//!   locks/<stage-key>.lock            taken while a stage computes (concurrent runs wait, then reuse)
//!   lock                              shared by runs, exclusive for gc
//!   tmp/                              half-written files; never referenced
//! ```
//!
//! Every write goes to `tmp/` first, is fsynced, then renamed into place, so a crash leaves
//! at worst an unreferenced temporary file. Every read is verified against its hash. What a
//! stage means and how records are produced is the executor's business, not the store's.

pub mod gc;
pub mod record;

use crate::table::{Table, logical_hash};
use anyhow::{Context, Result, anyhow, bail};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatchReader;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
pub use record::{FileRef, Record, RunLog, RunStage, TableRef};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (and creates) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["objects", "records", "runs", "locks", "tmp"] {
            fs::create_dir_all(root.join(d)).with_context(|| {
                format!(
                    "cannot create the store directory {}",
                    root.join(d).display()
                )
            })?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a table object.
    pub fn table_path(&self, hash: &str) -> PathBuf {
        self.root.join("objects").join(format!("{hash}.parquet"))
    }

    /// Path of a file object.
    pub fn file_path(&self, hash: &str, ext: &str) -> PathBuf {
        self.root.join("objects").join(format!("{hash}.{ext}"))
    }

    /// Writes `bytes` to `dest` atomically: temp file, fsync, rename.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}-{n}.tmp", std::process::id()));
        let mut f =
            File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dest)
            .with_context(|| format!("cannot move {} into place", dest.display()))?;
        Ok(())
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
        self.write_atomic(&path, &bytes)?;
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

    /// Stores file bytes; returns their blake3.
    pub fn put_file(&self, bytes: &[u8], ext: &str) -> Result<String> {
        let hash = blake3::hash(bytes).to_hex().to_string();
        let path = self.file_path(&hash, ext);
        if !(path.exists() && hash_file(&path)? == hash) {
            self.write_atomic(&path, bytes)?;
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

    /// Checks, without decoding, that every object of a record is present and intact.
    pub fn verify_record(&self, r: &Record) -> Result<()> {
        for t in r.tables.values() {
            let path = self.table_path(&t.object);
            let actual =
                hash_file(&path).map_err(|_| anyhow!("object {} is missing", path.display()))?;
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
            let actual =
                hash_file(&path).map_err(|_| anyhow!("object {} is missing", path.display()))?;
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

    /// Removes a damaged object so that it is written afresh.
    pub fn discard(&self, path: &Path) {
        let _ = fs::remove_file(path);
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("records").join(format!("{key}.json"))
    }

    /// The record for a stage key, if one is stored.
    pub fn record(&self, key: &str) -> Result<Option<Record>> {
        let path = self.record_path(key);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!(
                    "record {} is unreadable; delete it to recompute",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes a record (last, atomically).
    pub fn put_record(&self, r: &Record) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(r)?;
        self.write_atomic(&self.record_path(&r.key), &bytes)
    }

    /// Every readable record (unreadable ones are skipped).
    pub fn records(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("records"))? {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "json")
                && let Ok(r) = fs::read(&path)
                    .map_err(anyhow::Error::from)
                    .and_then(|b| Ok(serde_json::from_slice::<Record>(&b)?))
            {
                out.push(r);
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

    /// Every run log, oldest first.
    pub fn runs(&self) -> Result<Vec<RunLog>> {
        let mut paths: Vec<PathBuf> = fs::read_dir(self.root.join("runs"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        Ok(paths
            .iter()
            .filter_map(|p| {
                fs::read(p)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
            })
            .collect())
    }

    /// Stage name → record, for every stage of a run that has one.
    pub fn run_records(&self, run: &RunLog) -> Result<std::collections::BTreeMap<String, Record>> {
        let mut out = std::collections::BTreeMap::new();
        for s in &run.stages {
            if let Some(r) = s
                .key
                .as_deref()
                .map(|k| self.record(k))
                .transpose()?
                .flatten()
            {
                out.insert(s.stage.clone(), r);
            }
        }
        Ok(out)
    }

    /// Takes the per-key lock that serialises computing one stage across processes.
    /// Returns the lock and whether it had to wait for another process.
    pub fn lock_key(&self, key: &str) -> Result<(File, bool)> {
        let f = File::create(self.root.join("locks").join(format!("{key}.lock")))?;
        match f.try_lock() {
            Ok(()) => Ok((f, false)),
            Err(fs::TryLockError::WouldBlock) => {
                f.lock()?;
                Ok((f, true))
            }
            Err(fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// The store-wide lock: shared while running, exclusive for `gc`.
    pub fn store_lock(&self, exclusive: bool) -> Result<File> {
        let f = File::create(self.root.join("lock"))?;
        if exclusive {
            f.lock()?;
        } else {
            f.lock_shared()?;
        }
        Ok(f)
    }
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
