//! Moving results between the local store and its remote cache (`remote`): pulling a record
//! and its objects in (verified, objects first, record last), publishing a computed record out
//! (objects first, record last, conditionally), and probing what the remote has.
//!
//! A pulled record's bytes are the remote's bytes, so a result reads the same on every machine.
//! A pulled record brings all its objects: the local store's rule (a record implies its objects,
//! intact) holds whatever tier a result came from, so `show`, `report`, `check` and `gc` work
//! offline afterwards. When to pull or publish is the executor's business.

use super::remote::{Created, Download, Remote};
use super::{Record, RecordMeta, Store};
use anyhow::{Context, Result, anyhow};
use std::path::PathBuf;

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

    /// Fetches the remote record of `key`, verified, with its bytes; `Ok(None)` when absent or
    /// the remote is unusable, `Some(Err(why))` when it is bad.
    fn remote_record(
        &self,
        remote: &Remote,
        key: &str,
    ) -> Result<Option<Result<(Record, bytes::Bytes), String>>> {
        let bytes = match remote.get_record(key) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(e) => {
                remote.fail(&format!("reading record ac/{key}"), e)?;
                return Ok(None);
            }
        };
        let path = format!("{}/{}", remote.url(), Remote::record_path(key));
        let parsed = serde_json::from_slice::<Record>(&bytes)
            .map_err(|e| format!("remote record {path} is unreadable: {e}"))
            .and_then(|r| {
                r.verify(key)
                    .map(|()| r)
                    .map_err(|f| format!("remote record {path} is not valid: {f}"))
            });
        if parsed.is_err() {
            remote.mark_bad(&Remote::record_path(key));
        }
        Ok(Some(parsed.map(|r| (r, bytes))))
    }

    /// Looks `key` up on the remote and, on a hit, brings the record and all its objects into
    /// the local store (each object verified against its blake3 while it streams in; the record
    /// written last, with the remote's bytes). Errors only when the remote is required and
    /// fails, or the local disk fails.
    pub fn pull(&self, key: &str) -> Result<Pulled> {
        let Some(remote) = self.readable_remote() else {
            return Ok(Pulled::Miss);
        };
        let r = match self.remote_record(remote, key)? {
            None => return Ok(Pulled::Miss),
            Some(Err(why)) => return Ok(Pulled::Damaged(why)),
            Some(Ok(rb)) => rb,
        };
        let (r, bytes) = r;
        // Objects the local store already has intact are not downloaded again.
        let want: Vec<(String, PathBuf, String)> = objects(self, &r)
            .into_iter()
            .filter(|(name, path, _)| super::hash_file(path).ok().as_deref() != Some(name))
            .collect();
        let items: Vec<(String, PathBuf)> = want
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
        let mut fault = None;
        let mut size = bytes.len() as u64;
        for ((name, dest, label), ((_, tmp), g)) in want.iter().zip(items.iter().zip(&got)) {
            let why = match g {
                Download::Verified(n) => {
                    size += n;
                    if fault.is_none() {
                        std::fs::rename(tmp, dest).with_context(|| {
                            format!("cannot move {} to {}", tmp.display(), dest.display())
                        })?;
                        continue;
                    }
                    let _ = std::fs::remove_file(tmp);
                    continue;
                }
                Download::Missing => "which is missing".to_owned(),
                Download::Corrupt(how) => format!("which is corrupt: {how}"),
            };
            fault.get_or_insert(format!(
                "remote record {}/{} names {label} as {}/{}, {why}",
                remote.url(),
                Remote::record_path(key),
                remote.url(),
                Remote::object_path(name)
            ));
        }
        if let Some(why) = fault {
            return Ok(Pulled::Damaged(why));
        }
        self.sync_objects()?;
        if let Ok(Some(m)) = remote.get_meta(key)
            && serde_json::from_slice::<RecordMeta>(&m).is_ok()
        {
            let meta_path = self.root.join("meta").join(format!("{key}.json"));
            self.replace_with(&meta_path, &m, false)?;
        }
        self.write_atomic(&self.record_path(key)?, &bytes)?;
        Ok(Pulled::Hit(Box::new(r), size))
    }

    /// Whether the remote has a usable record for `key` with every object present (no
    /// download, nothing written): the record, or `None`. For `plan` and `explain`.
    pub fn probe(&self, key: &str) -> Result<Option<Record>> {
        let Some(remote) = self.readable_remote() else {
            return Ok(None);
        };
        let r = match self.remote_record(remote, key)? {
            Some(Ok((r, _))) => r,
            _ => return Ok(None),
        };
        let names: Vec<String> = objects(self, &r).into_iter().map(|o| o.0).collect();
        match remote.objects_exist(&names) {
            Ok(e) if e.iter().all(|x| *x) => Ok(Some(r)),
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
        let items: Vec<(String, PathBuf)> = objects(self, r)
            .into_iter()
            .map(|(n, p, _)| (n, p))
            .collect();
        let sent = match remote.upload_many(&items) {
            Ok(n) => n,
            Err(e) => {
                remote.fail(&format!("uploading the objects of ac/{}", r.key), e)?;
                return Ok(Published::Skipped);
            }
        };
        if let Ok(m) = std::fs::read(self.root.join("meta").join(format!("{}.json", r.key))) {
            // Informational: a failure here is not worth stopping for.
            let _ = remote.put_meta(&r.key, &m);
        }
        let path = self.record_path(&r.key)?;
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        match remote.create_record(&r.key, &bytes) {
            Ok(Created::New) => Ok(Published::Uploaded(sent + bytes.len() as u64)),
            Ok(Created::Exists(theirs)) => {
                let theirs = serde_json::from_slice::<Record>(&theirs)
                    .ok()
                    .filter(|t| t.verify(&r.key).is_ok());
                let Some(theirs) = theirs else {
                    // The remote's record is damaged: replace it with this good one.
                    remote.mark_bad(&Remote::record_path(&r.key));
                    return match remote.create_record(&r.key, &bytes) {
                        Ok(_) => Ok(Published::Uploaded(sent + bytes.len() as u64)),
                        Err(e) => {
                            remote.fail(&format!("replacing the record ac/{}", r.key), e)?;
                            Ok(Published::Skipped)
                        }
                    };
                };
                let d = differing_outputs(r, &theirs);
                Ok(if d.is_empty() {
                    Published::Same
                } else {
                    Published::Differs(d)
                })
            }
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
    /// after one batched existence check (reported as [`Published::Same`]). `each` is called
    /// after every record. Results in the order of `records`.
    pub fn publish_many(
        &self,
        records: &[Record],
        each: &(dyn Fn(&Published) + Sync),
    ) -> Result<Vec<Published>> {
        let Some(remote) = self.remote().filter(|r| r.writable()) else {
            return Ok(records.iter().map(|_| Published::Skipped).collect());
        };
        let rels: Vec<String> = records
            .iter()
            .map(|r| Remote::record_path(&r.key))
            .collect();
        let there = match remote.exist(&rels) {
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
