//! Moving results between the local store and its remote cache (`remote`): pulling a record
//! and its objects in (verified, objects first, record last), publishing a computed record out
//! (objects first, record last, conditionally), and probing what the remote has.
//!
//! A record travels in an action-cache entry with its meta and its small objects inline (one
//! request per small result); larger objects travel separately through `cas/`. A pulled
//! record's bytes are the computing machine's bytes, so a result reads the same everywhere.
//! A pulled record brings all its objects: the local store's rule (a record implies its objects,
//! intact) holds whatever tier a result came from, so `show`, `report`, `check` and `gc` work
//! offline afterwards. When to pull or publish is the executor's business.

use super::remote::{Created, Download, Remote};
use super::{Record, RecordMeta, Store};
use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Objects up to this size travel inside the record's action-cache entry (one request for a
/// whole small result, as Bazel's inline outputs); larger ones go to `cas/`.
pub const INLINE_MAX: u64 = 64 << 10;

/// An action-cache entry as stored at `ac/<key>`: the record's exact bytes, its meta, and its
/// small objects inline (blake3 → base64). A plain record (no `eqlab_ac` field) is read too,
/// with every object in `cas/`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcEntry {
    /// Entry format (1).
    eqlab_ac: u32,
    /// The record, byte for byte as in the local store.
    record: String,
    /// The record's meta (informational).
    meta: Option<String>,
    /// Small objects: blake3 of the bytes → the bytes in base64.
    inline: BTreeMap<String, String>,
}

/// A remote result, parsed and verified.
pub struct Entry {
    /// The verified record.
    pub record: Record,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// Its meta, when the entry had one.
    pub meta: Option<Vec<u8>>,
    /// Objects carried inline, by name (not yet verified against their names).
    pub inline: HashMap<String, Vec<u8>>,
}

/// Parses an action-cache entry (or a plain record) stored under `key` and verifies the
/// record; the error says why it cannot be used.
pub fn parse_entry(key: &str, bytes: &[u8]) -> Result<Entry, String> {
    let (record_bytes, meta, inline) = match serde_json::from_slice::<AcEntry>(bytes) {
        Ok(e) => {
            let mut inline = HashMap::new();
            for (name, b64) in e.inline {
                let b = BASE64
                    .decode(b64.as_bytes())
                    .map_err(|err| format!("its inline object {name} is not base64: {err}"))?;
                inline.insert(name, b);
            }
            (
                e.record.into_bytes(),
                e.meta.map(String::into_bytes),
                inline,
            )
        }
        Err(_) => (bytes.to_vec(), None, HashMap::new()),
    };
    let record = serde_json::from_slice::<Record>(&record_bytes)
        .map_err(|e| format!("it is unreadable: {e}"))?;
    record
        .verify(key)
        .map_err(|f| format!("it is not valid: {f}"))?;
    Ok(Entry {
        record,
        bytes: record_bytes,
        meta,
        inline,
    })
}

/// What looking a key up on the remote gave.
#[derive(Debug)]
pub enum Pulled {
    /// The record and every object are now in the local store, verified; bytes downloaded.
    Hit(Box<Record>, u64),
    /// No usable remote (none configured, mode off, or it failed earlier), or no record there.
    Miss,
    /// The remote's record or one of its objects is bad (the message names it); never used.
    Damaged(String),
}

/// What publishing a record gave.
#[derive(Debug, PartialEq)]
pub enum Published {
    /// Not uploaded: no writable remote (or it failed: see [`Remote::trouble`]).
    Skipped,
    /// Uploaded (the bytes of objects sent; those the remote had are not sent again).
    Uploaded(u64),
    /// Another writer had stored the same key with the same outputs: nothing to do.
    Same,
    /// Another writer had stored the same key with other outputs (named): the stage is not
    /// deterministic. The remote's record is kept.
    Differs(Vec<String>),
}

/// An object of a record: its remote name (blake3 of the bytes), local path, and a label.
fn objects(store: &Store, r: &Record) -> Vec<(String, PathBuf, String)> {
    let tables = r.tables.iter().map(|(k, t)| {
        (
            t.file_b3.clone(),
            store.table_path(&t.object),
            format!("table '{k}'"),
        )
    });
    let files = r.files.iter().map(|(k, f)| {
        (
            f.object.clone(),
            store.file_path(&f.object, &f.ext),
            format!("file '{k}'"),
        )
    });
    tables.chain(files).collect()
}

/// The output names whose objects differ between two records of one key.
fn differing_outputs(a: &Record, b: &Record) -> Vec<String> {
    let mut names: Vec<String> = a
        .tables
        .iter()
        .filter(|(k, t)| b.tables.get(*k).map(|u| &u.file_b3) != Some(&t.file_b3))
        .map(|(k, _)| k.clone())
        .chain(
            a.files
                .iter()
                .filter(|(k, f)| b.files.get(*k).map(|u| &u.object) != Some(&f.object))
                .map(|(k, _)| k.clone()),
        )
        .collect();
    names.extend(
        b.tables
            .keys()
            .chain(b.files.keys())
            .filter(|k| !a.tables.contains_key(*k) && !a.files.contains_key(*k))
            .cloned(),
    );
    names
}

impl Store {
    /// The remote cache, when one is configured (whatever its mode).
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_deref()
    }

    /// The remote when it may be read now.
    fn readable_remote(&self) -> Option<&Remote> {
        self.remote().filter(|r| r.readable())
    }

    /// Fetches the remote entry of `key`, verified; `Ok(None)` when absent or the remote is
    /// unusable, `Some(Err(why))` when it is bad.
    fn remote_entry(&self, remote: &Remote, key: &str) -> Result<Option<Result<Entry, String>>> {
        let bytes = match remote.get_record(key) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => {
                remote.fail(&format!("reading record ac/{key}"), e)?;
                return Ok(None);
            }
        };
        let parsed = parse_entry(key, &bytes).map_err(|why| {
            format!(
                "remote record {}/{} cannot be used: {why}",
                remote.url(),
                Remote::record_path(key)
            )
        });
        if parsed.is_err() {
            remote.mark_bad(&Remote::record_path(key));
        }
        Ok(Some(parsed))
    }

    /// Looks `key` up on the remote and, on a hit, brings the record and all its objects into
    /// the local store (each object verified against its blake3 while it streams in; the record
    /// written last, with the remote's bytes). Errors only when the remote is required and
    /// fails, or the local disk fails.
    pub fn pull(&self, key: &str) -> Result<Pulled> {
        let Some(remote) = self.readable_remote() else {
            return Ok(Pulled::Miss);
        };
        let entry = match self.remote_entry(remote, key)? {
            None => return Ok(Pulled::Miss),
            Some(Err(why)) => return Ok(Pulled::Damaged(why)),
            Some(Ok(e)) => e,
        };
        let r = &entry.record;
        // Objects the local store already has intact are not downloaded again.
        let want: Vec<(String, PathBuf, String)> = objects(self, r)
            .into_iter()
            .filter(|(name, path, _)| super::hash_file(path).ok().as_deref() != Some(name))
            .collect();
        let (inline, fetch): (Vec<_>, Vec<_>) = want
            .into_iter()
            .partition(|(name, _, _)| entry.inline.contains_key(name));
        let items: Vec<(String, PathBuf)> = fetch
            .iter()
            .map(|(name, _, _)| (name.clone(), self.tmp_path()))
            .collect();
        let got = match remote.download_many(&items) {
            Ok(g) => g,
            Err(e) => {
                for (_, tmp) in &items {
                    let _ = std::fs::remove_file(tmp);
                }
                remote.fail(&format!("downloading the objects of ac/{key}"), e)?;
                return Ok(Pulled::Miss);
            }
        };
        let record_at = format!("{}/{}", remote.url(), Remote::record_path(key));
        let mut fault = None;
        let mut size = entry.bytes.len() as u64;
        let mut moves = Vec::new();
        for ((name, dest, label), ((_, tmp), g)) in fetch.iter().zip(items.iter().zip(&got)) {
            let why = match g {
                Download::Verified(n) => {
                    size += n;
                    moves.push((tmp.clone(), dest.clone()));
                    continue;
                }
                Download::Missing => "which is missing".to_owned(),
                Download::Corrupt(how) => format!("which is corrupt: {how}"),
            };
            fault.get_or_insert(format!(
                "remote record {record_at} names {label} as {}/{}, {why}",
                remote.url(),
                Remote::object_path(name)
            ));
        }
        for (name, dest, label) in &inline {
            let bytes = entry
                .inline
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let actual = blake3::hash(bytes).to_hex().to_string();
            if actual != *name {
                remote.mark_bad(&Remote::record_path(key));
                fault.get_or_insert(format!(
                    "remote record {record_at} carries {label} inline as {name}, which is corrupt: its {} bytes hash to {actual}",
                    bytes.len()
                ));
                continue;
            }
            let tmp = self.tmp_path();
            self.replace_with(&tmp, bytes, true)?;
            size += bytes.len() as u64;
            moves.push((tmp, dest.clone()));
        }
        if let Some(why) = fault {
            for (tmp, _) in &moves {
                let _ = std::fs::remove_file(tmp);
            }
            return Ok(Pulled::Damaged(why));
        }
        for (tmp, dest) in &moves {
            std::fs::rename(tmp, dest)
                .with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))?;
        }
        self.sync_objects()?;
        if let Some(m) = &entry.meta
            && serde_json::from_slice::<RecordMeta>(m).is_ok()
        {
            let meta_path = self.root.join("meta").join(format!("{key}.json"));
            self.replace_with(&meta_path, m, false)?;
        }
        self.write_atomic(&self.record_path(key)?, &entry.bytes)?;
        Ok(Pulled::Hit(Box::new(entry.record), size))
    }

    /// Whether the remote has a usable record for `key` with every object present (no
    /// download, nothing written): the record, or `None`. For `plan` and `explain`.
    pub fn probe(&self, key: &str) -> Result<Option<Record>> {
        let Some(remote) = self.readable_remote() else {
            return Ok(None);
        };
        let entry = match self.remote_entry(remote, key)? {
            Some(Ok(e)) => e,
            _ => return Ok(None),
        };
        let names: Vec<String> = objects(self, &entry.record)
            .into_iter()
            .map(|o| o.0)
            .filter(|n| !entry.inline.contains_key(n))
            .collect();
        match remote.objects_exist(&names) {
            Ok(e) if e.iter().all(|x| *x) => Ok(Some(entry.record)),
            Ok(_) => Ok(None),
            Err(e) => {
                remote.fail("checking objects", e)?;
                Ok(None)
            }
        }
    }

    /// Uploads a record stored locally (objects first, then its meta, then the record with a
    /// conditional create). Errors only when the remote is required and fails.
    pub fn publish(&self, r: &Record) -> Result<Published> {
        let Some(remote) = self.remote().filter(|r| r.writable()) else {
            return Ok(Published::Skipped);
        };
        let mut inline = BTreeMap::new();
        let mut large = Vec::new();
        for (name, path, _) in objects(self, r) {
            let size = std::fs::metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?
                .len();
            if size <= INLINE_MAX {
                let b = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                inline.insert(name, BASE64.encode(b));
            } else {
                large.push((name, path));
            }
        }
        let sent = match remote.upload_many(&large) {
            Ok(n) => n,
            Err(e) => {
                remote.fail(&format!("uploading the objects of ac/{}", r.key), e)?;
                return Ok(Published::Skipped);
            }
        };
        let meta = std::fs::read(self.root.join("meta").join(format!("{}.json", r.key)))
            .ok()
            .and_then(|m| String::from_utf8(m).ok());
        let path = self.record_path(&r.key)?;
        let record = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let entry = serde_json::to_vec(&AcEntry {
            eqlab_ac: 1,
            record,
            meta,
            inline,
        })?;
        let sent = sent + entry.len() as u64;
        let replace = |remote: &Remote| -> Result<Published> {
            remote.mark_bad(&Remote::record_path(&r.key));
            match remote.create_record(&r.key, &entry) {
                Ok(_) => Ok(Published::Uploaded(sent)),
                Err(e) => {
                    remote.fail(&format!("replacing the record ac/{}", r.key), e)?;
                    Ok(Published::Skipped)
                }
            }
        };
        match remote.create_record(&r.key, &entry) {
            Ok(Created::New) => Ok(Published::Uploaded(sent)),
            Ok(Created::Exists(theirs)) => match parse_entry(&r.key, &theirs) {
                // The remote's entry is damaged: replace it with this good one.
                Err(_) => replace(remote),
                Ok(theirs) => {
                    let d = differing_outputs(r, &theirs.record);
                    Ok(if d.is_empty() {
                        Published::Same
                    } else {
                        Published::Differs(d)
                    })
                }
            },
            Err(e) => {
                remote.fail(&format!("creating the record ac/{}", r.key), e)?;
                Ok(Published::Skipped)
            }
        }
    }

    /// [`Store::pull`] of many keys at once, [`remote::CONCURRENCY`] at a time; `each` is called
    /// after every key (for progress). Results in the order of `keys`.
    ///
    /// [`remote::CONCURRENCY`]: super::remote::CONCURRENCY
    pub fn pull_many(
        &self,
        keys: &[String],
        each: &(dyn Fn(&Pulled) + Sync),
    ) -> Result<Vec<Pulled>> {
        in_parallel(keys, |k| {
            let p = self.pull(k)?;
            each(&p);
            Ok(p)
        })
    }

    /// [`Store::publish`] of many records at once; records the remote already has are skipped
    /// after one batched existence check, a listing for many (reported as [`Published::Same`]). `each` is called
    /// after every record. Results in the order of `records`.
    pub fn publish_many(
        &self,
        records: &[Record],
        each: &(dyn Fn(&Published) + Sync),
    ) -> Result<Vec<Published>> {
        let Some(remote) = self.remote().filter(|r| r.writable()) else {
            return Ok(records.iter().map(|_| Published::Skipped).collect());
        };
        let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
        let there = match remote.exist_in("ac", &keys) {
            Ok(t) => t,
            Err(e) => {
                remote.fail("checking which records the remote has", e)?;
                return Ok(records.iter().map(|_| Published::Skipped).collect());
            }
        };
        let todo: Vec<(&Record, bool)> = records.iter().zip(there).collect();
        in_parallel(&todo, |(r, there)| {
            let p = if *there {
                Published::Same
            } else {
                self.publish(r)?
            };
            each(&p);
            Ok(p)
        })
    }

    /// A fresh path in `tmp/` for a file being written.
    pub(super) fn tmp_path(&self) -> PathBuf {
        let n = super::TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}.tmp", std::process::id()))
    }
}

/// `f` over `items` on [`super::remote::CONCURRENCY`] threads (the work is network-bound);
/// the first error wins.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(super::remote::CONCURRENCY)
        .build()
        .context("cannot start threads for the transfer")?;
    pool.install(|| items.par_iter().map(f).collect())
}

/// One line for a remote that failed during a command, or `None` (for the end of a verb).
pub fn trouble_line(store: &Store) -> Option<String> {
    let r = store.remote()?;
    let t = r.trouble()?;
    Some(format!(
        "{t}; from then on this command went on without the remote ({} mode); results \
         computed since are only in the local store (`eqlab push` uploads them later)",
        r.mode()
    ))
}

/// An error for a verb that needs a remote but has none configured.
pub fn no_remote() -> anyhow::Error {
    anyhow!(
        "no remote cache is configured: give --remote s3://BUCKET/PREFIX, set EQLAB_REMOTE, or \
         add a [remote] table with url = \"...\" to eqlab.toml (see `eqlab remote --help`)"
    )
}
