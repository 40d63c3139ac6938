//! The remote cache: a second tier of the store on an object store shared between machines
//! (S3 or any S3-compatible server, through the `object_store` crate; `file://` for a shared
//! directory).
//!
//! ```text
//! <prefix>/cas/<blake3>       object bytes, named by the blake3 of the bytes (immutable)
//! <prefix>/ac/<stage-key>     a record (the same bytes as the local records/<key>.json) with
//!                             its meta and small objects inline (`sync`); created last, with a
//!                             conditional create (If-None-Match: *)
//! ```
//!
//! This is Bazel's remote-cache split (CAS + action cache). A record is created only after
//! every object it names is uploaded, and never overwritten by a second writer (HTTP 412 means
//! someone else won; the caller compares), so a reader never sees a record whose objects are
//! missing unless they were damaged or deleted behind eqlab's back, which downloads detect:
//! every byte downloaded is hashed and must match its name before it is moved into the local
//! store. Names found bad are remembered for the process, so that an upload overwrites them.
//!
//! Calls are blocking (a private tokio runtime drives `object_store`), batched with bounded
//! concurrency, and retried briefly; the first failure (an unreachable server, denied access)
//! turns the remote off for the rest of the process and is kept for one warning at the end,
//! unless the remote is *required*, when it is an error. What to look up when, and the local
//! layout, are the store's and the executor's business (`store::sync`, `exec`).

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};
use std::collections::HashSet;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Requests in flight at once for batched calls.
pub const CONCURRENCY: usize = 16;

/// From this many names on, existence is checked by listing rather than one request a name.
const LIST_FROM: usize = 64;

/// Objects up to this size are uploaded without asking first whether the remote has them.
const SMALL_OBJECT: u64 = 256 << 10;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 8;

/// Objects larger than this are uploaded in parts of this size (multipart upload).
const PART: usize = 16 << 20;

/// What this process may do with the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Look up and download, and upload what this machine computes (the default).
    ReadWrite,
    /// Look up and download only; never write (developer laptops, untrusted CI).
    Read,
    /// Do not use the remote.
    Off,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read-write" => Ok(Mode::ReadWrite),
            "read" => Ok(Mode::Read),
            "off" => Ok(Mode::Off),
            _ => Err(format!(
                "unknown remote mode {s:?}: use read-write, read or off"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::ReadWrite => "read-write",
            Mode::Read => "read",
            Mode::Off => "off",
        })
    }
}

/// How to reach a remote: the URL and the S3 options that are not secrets.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `s3://bucket/prefix` or `file:///path`.
    pub url: String,
    /// What this process may do.
    pub mode: Mode,
    /// Fail (instead of going on locally) when the remote cannot be used.
    pub required: bool,
    /// S3 endpoint (S3-compatible servers); `None`: from the environment or AWS's.
    pub endpoint: Option<String>,
    /// S3 region; `None`: from the environment, the profile, or `us-east-1`.
    pub region: Option<String>,
    /// Credentials from an AWS profile file, used when the environment has none.
    pub profile: Option<ProfileCredentials>,
}

/// Credentials read from `~/.aws/credentials` (never printed).
#[derive(Clone)]
pub struct ProfileCredentials {
    /// `aws_access_key_id`.
    pub key_id: String,
    /// `aws_secret_access_key`.
    pub secret: String,
    /// `aws_session_token`, if any.
    pub token: Option<String>,
}

impl fmt::Debug for ProfileCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProfileCredentials(<hidden>)")
    }
}

/// What downloading an object gave.
#[derive(Debug)]
pub enum Download {
    /// The bytes hash to the name; they are at the destination. Carries the size.
    Verified(u64),
    /// Nothing stored under that name.
    Missing,
    /// The bytes hash to something else (or were cut short); nothing was kept.
    Corrupt(String),
}

/// What creating a record gave.
#[derive(Debug)]
pub enum Created {
    /// This call created it.
    New,
    /// Another writer created it first; its bytes.
    Exists(Bytes),
}

/// A connection to a remote cache (see the module docs).
pub struct Remote {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    mode: Mode,
    required: bool,
    rt: tokio::runtime::Runtime,
    /// The first failure; the remote is off from then on.
    trouble: Mutex<Option<String>>,
    /// Object and record paths found damaged or missing: overwritten on upload.
    bad: Mutex<HashSet<String>>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({} {})", self.url, self.mode)
    }
}

/// The failure of one remote call, before [`Remote::fail`] decides what it means.
type Op<T> = std::result::Result<T, object_store::Error>;

impl Remote {
    /// Connects (lazily: nothing is sent until the first call). Errors: an unsupported URL
    /// scheme, a bucket name S3 refuses, a missing directory for `file://`.
    pub fn open(spec: &Spec) -> Result<Remote> {
        let url = spec.url.trim_end_matches('/').to_owned();
        let (store, prefix): (Arc<dyn ObjectStore>, String) = if let Some(rest) =
            url.strip_prefix("s3://")
        {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !(3..=63).contains(&bucket.len()) {
                bail!(
                    "remote {url}: bucket name {bucket:?} must have 3 to 63 characters (S3's rule)"
                );
            }
            // Payloads are not hashed for signing (UNSIGNED-PAYLOAD): every byte is verified
            // by its blake3 name on download. Uploads carry a SHA-256 checksum instead (as the
            // AWS SDKs send CRC32 by default), so that the server rejects a part damaged in
            // transit; and a multipart upload whose parts carry checksums completes with a
            // composite checksum of theirs, where one without makes simpler servers re-read and
            // copy the whole object at completion (moto: 2-3 s for 1 GiB). The AWS SDKs' switch
            // AWS_REQUEST_CHECKSUM_CALCULATION=when_required turns the checksums off, for
            // servers that refuse them.
            let mut b = object_store::aws::AmazonS3Builder::from_env();
            if checksums_wanted(std::env::var("AWS_REQUEST_CHECKSUM_CALCULATION").ok()) {
                b = b.with_checksum_algorithm(object_store::aws::Checksum::SHA256);
            }
            let mut b = b
                .with_bucket_name(bucket)
                .with_unsigned_payload(true)
                .with_retry(RetryConfig {
                    backoff: BackoffConfig {
                        init_backoff: Duration::from_millis(100),
                        max_backoff: Duration::from_secs(2),
                        base: 2.0,
                    },
                    max_retries: 3,
                    retry_timeout: Duration::from_secs(20),
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_timeout(Duration::from_secs(300)),
                );
            let endpoint = spec
                .endpoint
                .clone()
                .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
            if let Some(e) = endpoint {
                b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
            }
            if let Some(r) = &spec.region {
                b = b.with_region(r);
            }
            let env_has_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
            if let (false, Some(p)) = (env_has_keys, &spec.profile) {
                b = b
                    .with_access_key_id(&p.key_id)
                    .with_secret_access_key(&p.secret);
                if let Some(t) = &p.token {
                    b = b.with_token(t);
                }
            }
            let s3 = b
                .build()
                .with_context(|| format!("cannot configure the remote {url}"))?;
            (Arc::new(s3), prefix.to_owned())
        } else if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the remote directory {dir}"))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .with_context(|| format!("cannot open the remote directory {dir}"))?
                .with_automatic_cleanup(true);
            (Arc::new(fs), String::new())
        } else {
            bail!("remote {url:?}: use s3://BUCKET/PREFIX or file:///PATH");
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the remote cache's I/O runtime")?;
        Ok(Remote {
            url,
            store,
            prefix: ObjPath::from(prefix),
            mode: spec.mode,
            required: spec.required,
            rt,
            trouble: Mutex::default(),
            bad: Mutex::default(),
        })
    }

    /// The URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether reads are allowed and nothing has failed yet.
    pub fn readable(&self) -> bool {
        self.mode != Mode::Off && self.trouble().is_none()
    }

    /// Whether writes are allowed and nothing has failed yet.
    pub fn writable(&self) -> bool {
        self.mode == Mode::ReadWrite && self.trouble().is_none()
    }

    /// The first failure of this process, if any (the remote has been off since).
    pub fn trouble(&self) -> Option<String> {
        self.trouble
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a failure: the remote is off from now on. Returns the error to propagate when
    /// the remote is required, `Ok(())` otherwise (the caller goes on locally).
    pub fn fail(&self, doing: &str, e: impl fmt::Display) -> Result<()> {
        let msg = format!("remote cache {} failed while {doing}: {e}", self.url);
        let mut t = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        if t.is_none() {
            *t = Some(msg.clone());
        }
        if self.required {
            bail!("{msg} (the remote is required: --remote-required)");
        }
        Ok(())
    }

    /// Remembers that a remote path holds bad data (an upload overwrites it).
    pub fn mark_bad(&self, path: &str) {
        self.bad
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned());
    }

    fn is_bad(&self, path: &str) -> bool {
        self.bad
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(path)
    }

    fn path(&self, rel: &str) -> ObjPath {
        if self.prefix.as_ref().is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// The remote path of an object (`cas/<blake3>`).
    pub fn object_path(name: &str) -> String {
        format!("cas/{name}")
    }

    /// The remote path of a record (`ac/<key>`).
    pub fn record_path(key: &str) -> String {
        format!("ac/{key}")
    }

    /// Reads one small remote file (a record); `None` when absent.
    fn get_small(&self, rel: &str) -> Op<Option<Bytes>> {
        let path = self.path(rel);
        self.rt.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => r.bytes().await.map(Some),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Reads one small remote file by its path under the prefix (e.g. a Slurm run's manifest,
    /// `runs/<run>/manifest.json`); `None` when absent.
    pub fn get_bytes(&self, rel: &str) -> Result<Option<Bytes>> {
        self.get_small(rel).map_err(|e| anyhow!("{rel}: {e}"))
    }

    /// Writes (or overwrites) one small remote file by its path under the prefix.
    pub fn put_bytes(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        self.rt
            .block_on(self.store.put(&self.path(rel), PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| anyhow!("{rel}: {e}"))
    }

    /// The bytes of the records of `keys` (`None` where absent), fetched concurrently.
    pub fn get_records(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        let paths: Vec<ObjPath> = keys
            .iter()
            .map(|k| self.path(&Self::record_path(k)))
            .collect();
        let store = &self.store;
        let got = self.rt.block_on(
            futures::stream::iter(paths.iter().map(|p| async move {
                match store.get(p).await {
                    Ok(r) => r.bytes().await.map(Some),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }))
            .buffered(CONCURRENCY)
            .try_collect::<Vec<_>>(),
        );
        got.map_err(|e| anyhow!("{e}"))
    }

    /// The record stored under `key`, if any.
    pub fn get_record(&self, key: &str) -> Result<Option<Bytes>> {
        self.get_small(&Self::record_path(key))
            .map_err(|e| anyhow!("{e}"))
    }

    /// Which of `rels` (paths under the prefix, e.g. `cas/<name>`) exist, checked concurrently.
    pub fn exist(&self, rels: &[String]) -> Result<Vec<bool>> {
        let paths: Vec<ObjPath> = rels.iter().map(|r| self.path(r)).collect();
        let store = &self.store;
        self.rt
            .block_on(
                futures::stream::iter(paths.iter().map(|p| async move {
                    match store.head(p).await {
                        Ok(_) => Ok(true),
                        Err(object_store::Error::NotFound { .. }) => Ok(false),
                        Err(e) => Err(e),
                    }
                }))
                .buffered(CONCURRENCY)
                .try_collect(),
            )
            .map_err(|e| anyhow!("{e}"))
    }

    /// Which of `names` exist under `dir` (`ac` or `cas`): for many names, by listing `dir`
    /// (a thousand names a request) unless it holds far more than asked about, then by one
    /// existence check per name.
    pub fn exist_in(&self, dir: &str, names: &[String]) -> Result<Vec<bool>> {
        let heads = || {
            let rels: Vec<String> = names.iter().map(|n| format!("{dir}/{n}")).collect();
            self.exist(&rels)
        };
        if names.len() < LIST_FROM {
            return heads();
        }
        let limit = names.len() * 20;
        let prefix = self.path(dir);
        let listed = self
            .rt
            .block_on(async {
                let mut stream = self.store.list(Some(&prefix));
                let mut seen = HashSet::new();
                while let Some(m) = stream.next().await {
                    if seen.len() >= limit {
                        return Ok(None);
                    }
                    if let Some(f) = m?.location.filename() {
                        seen.insert(f.to_owned());
                    }
                }
                Ok::<_, object_store::Error>(Some(seen))
            })
            .map_err(|e| anyhow!("{e}"))?;
        match listed {
            Some(seen) => Ok(names.iter().map(|n| seen.contains(n)).collect()),
            None => heads(),
        }
    }

    /// Which of `names` (object names, blake3 hex) exist remotely.
    pub fn objects_exist(&self, names: &[String]) -> Result<Vec<bool>> {
        let rels: Vec<String> = names.iter().map(|n| Self::object_path(n)).collect();
        self.exist(&rels)
    }

    /// Downloads objects concurrently: each `(name, dest)` is streamed into `dest` while hashed
    /// and kept only if its blake3 is `name` (a bad one is removed and remembered).
    pub fn download_many(&self, items: &[(String, std::path::PathBuf)]) -> Result<Vec<Download>> {
        let got = self.rt.block_on(
            futures::stream::iter(items.iter().map(|(n, d)| self.download(n, d)))
                .buffered(CONCURRENCY)
                .try_collect::<Vec<_>>(),
        )?;
        for ((name, _), g) in items.iter().zip(&got) {
            if !matches!(g, Download::Verified(_)) {
                self.mark_bad(&Self::object_path(name));
            }
        }
        Ok(got)
    }

    async fn download(&self, name: &str, dest: &Path) -> Result<Download> {
        let path = self.path(&Self::object_path(name));
        let r = match self.store.get(&path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(Download::Missing),
            Err(e) => return Err(anyhow!("{e}")),
        };
        let mut file = std::fs::File::create(dest)
            .with_context(|| format!("cannot create {}", dest.display()))?;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let mut stream = r.into_stream();
        let res: Result<()> = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| anyhow!("{e}"))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk)
                    .with_context(|| format!("cannot write {}", dest.display()))?;
            }
            file.sync_all()
                .with_context(|| format!("cannot write {}", dest.display()))
        }
        .await;
        drop(file);
        if let Err(e) = res {
            let _ = std::fs::remove_file(dest);
            return Err(e);
        }
        let actual = hasher.finalize().to_hex().to_string();
        if actual != name {
            let _ = std::fs::remove_file(dest);
            return Ok(Download::Corrupt(format!(
                "its {size} bytes hash to {actual}"
            )));
        }
        Ok(Download::Verified(size))
    }

    /// Uploads objects concurrently, `(name, local file)`. A small object is simply put (the
    /// same name is the same bytes, so writing it again is harmless and costs one request, as
    /// a check would); a larger one only when the remote lacks it or it was found bad. Large
    /// files go up in parts. Returns bytes uploaded.
    pub fn upload_many(&self, items: &[(String, std::path::PathBuf)]) -> Result<u64> {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX);
        let (small, large): (Vec<_>, Vec<_>) =
            items.iter().partition(|(_, p)| size(p) <= SMALL_OBJECT);
        let names: Vec<String> = large.iter().map(|(n, _)| n.clone()).collect();
        let exist = self.exist_in("cas", &names)?;
        let todo: Vec<&(String, std::path::PathBuf)> = large
            .into_iter()
            .zip(exist)
            .filter(|((n, _), e)| !e || self.is_bad(&Self::object_path(n)))
            .map(|(i, _)| i)
            .chain(small)
            .collect();
        let sizes = self.rt.block_on(
            futures::stream::iter(todo.iter().map(|(n, src)| self.upload(n, src)))
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<u64>>(),
        )?;
        Ok(sizes.iter().sum())
    }

    async fn upload(&self, name: &str, src: &Path) -> Result<u64> {
        let path = self.path(&Self::object_path(name));
        let mut file =
            std::fs::File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("cannot stat {}", src.display()))?
            .len();
        if size as usize <= PART {
            let mut buf = Vec::with_capacity(size as usize);
            file.read_to_end(&mut buf)
                .with_context(|| format!("cannot read {}", src.display()))?;
            self.store
                .put(&path, PutPayload::from(buf))
                .await
                .map_err(|e| anyhow!("{e}"))?;
        } else {
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
            let sent: Result<()> = async {
                loop {
                    // A fresh buffer a part, handed over without a copy.
                    let mut buf = vec![0u8; PART];
                    let n = read_full(&mut file, &mut buf)
                        .with_context(|| format!("cannot read {}", src.display()))?;
                    if n == 0 {
                        return Ok(());
                    }
                    buf.truncate(n);
                    w.wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(|e| anyhow!("{e}"))?;
                    w.put(Bytes::from(buf));
                }
            }
            .await;
            match sent {
                Ok(()) => w.finish().await.map_err(|e| anyhow!("{e}"))?,
                Err(e) => {
                    // Leave no parts behind on the server (best effort; the error is the news).
                    let _ = w.abort().await;
                    return Err(e);
                }
            };
        }
        self.bad
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Self::object_path(name));
        Ok(size)
    }

    /// Creates the record of `key` unless one exists (conditional create); a record known bad
    /// is overwritten instead.
    pub fn create_record(&self, key: &str, bytes: &[u8]) -> Result<Created> {
        let rel = Self::record_path(key);
        let path = self.path(&rel);
        let mode = if self.is_bad(&rel) {
            PutMode::Overwrite
        } else {
            PutMode::Create
        };
        let payload = PutPayload::from(bytes.to_vec());
        let put = self.rt.block_on(self.store.put_opts(
            &path,
            payload,
            PutOptions {
                mode,
                ..Default::default()
            },
        ));
        match put {
            Ok(_) => {
                self.bad
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&rel);
                Ok(Created::New)
            }
            Err(object_store::Error::AlreadyExists { .. }) => {
                let existing = self
                    .get_small(&rel)
                    .map_err(|e| anyhow!("{e}"))?
                    .unwrap_or_default();
                Ok(Created::Exists(existing))
            }
            Err(e) => Err(anyhow!("{e}")),
        }
    }

    /// Every remote file under `dir` (`ac`, `cas`): its name within `dir`, size and
    /// age in seconds.
    pub fn list(&self, dir: &str) -> Result<Vec<Listed>> {
        let prefix = self.path(dir);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(|e| anyhow!("{e}"))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_owned();
                Some(Listed {
                    name,
                    size: m.size,
                    age_s: (now - m.last_modified.timestamp()).max(0) as u64,
                })
            })
            .collect())
    }

    /// Deletes remote files (paths relative to the prefix, e.g. `cas/<name>`), concurrently.
    pub fn delete_many(&self, rels: &[String]) -> Result<()> {
        let paths: Vec<ObjPath> = rels.iter().map(|r| self.path(r)).collect();
        let store = &self.store;
        self.rt
            .block_on(
                futures::stream::iter(paths.iter().map(|p| async move {
                    match store.delete(p).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                }))
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<()>>(),
            )
            .map(|_| ())
            .map_err(|e| anyhow!("{e}"))
    }

    /// Checks access: lists the records (read), and in read-write mode writes and deletes a
    /// probe file. Returns what was checked.
    pub fn check_access(&self) -> Result<String> {
        let prefix = self.path("ac");
        self.rt
            .block_on(async {
                let mut s = self.store.list(Some(&prefix));
                s.next().await.transpose()
            })
            .map_err(|e| anyhow!("cannot list {}/ac: {e}", self.url))?;
        if self.mode != Mode::ReadWrite {
            return Ok("read access (listing records)".into());
        }
        let probe = self.path(&format!(
            "probe/{}-{}",
            crate::store::record::host_name(),
            std::process::id()
        ));
        self.rt
            .block_on(async {
                self.store
                    .put(&probe, PutPayload::from_static(b"eqlab probe"))
                    .await?;
                self.store.delete(&probe).await
            })
            .map_err(|e| anyhow!("cannot write to {}: {e}", self.url))?;
        Ok("read and write access (listing records, writing and deleting a probe)".into())
    }
}

/// A remote file seen by [`Remote::list`].
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its name within the listed directory.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// Seconds since it was last written.
    pub age_s: u64,
}

/// Whether uploads carry checksums, given `AWS_REQUEST_CHECKSUM_CALCULATION` (the AWS SDKs'
/// setting: `when_supported`, the default, or `when_required`, which turns them off).
fn checksums_wanted(setting: Option<String>) -> bool {
    !setting.is_some_and(|v| v.trim().eq_ignore_ascii_case("when_required"))
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Credentials of the AWS profile `AWS_PROFILE` (or `default`) from `AWS_SHARED_CREDENTIALS_FILE`
/// (or `~/.aws/credentials`), and its region from `AWS_CONFIG_FILE` (or `~/.aws/config`), as the
/// AWS tools read them. `None` where a file or entry is absent.
pub fn aws_profile() -> (
    Option<ProfileCredentials>,
    Option<(String, crate::config::Source)>,
) {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let file = |var: &str, rel: &str| {
        std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(rel)))
    };
    let creds = file("AWS_SHARED_CREDENTIALS_FILE", "credentials")
        .and_then(|p| ini::Ini::load_from_file(p).ok())
        .and_then(|ini| {
            let s = ini.section(Some(profile.as_str()))?;
            Some(ProfileCredentials {
                key_id: s.get("aws_access_key_id")?.to_owned(),
                secret: s.get("aws_secret_access_key")?.to_owned(),
                token: s.get("aws_session_token").map(str::to_owned),
            })
        });
    let region = file("AWS_CONFIG_FILE", "config").and_then(|p| {
        let ini = ini::Ini::load_from_file(&p).ok()?;
        let section = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        let r = ini
            .section(Some(section.as_str()))?
            .get("region")?
            .to_owned();
        Some((r, crate::config::Source::Profile(p, profile.clone())))
    });
    (creds, region)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_remote(dir: &Path, mode: Mode) -> Remote {
        Remote::open(&Spec {
            url: format!("file://{}", dir.display()),
            mode,
            required: false,
            endpoint: None,
            region: None,
            profile: None,
        })
        .unwrap()
    }

    #[test]
    fn records_are_created_once_and_objects_verified_on_download() {
        let d = tempfile::tempdir().unwrap();
        let r = file_remote(&d.path().join("remote"), Mode::ReadWrite);
        let key = "a".repeat(64);
        assert!(matches!(
            r.create_record(&key, b"one").unwrap(),
            Created::New
        ));
        match r.create_record(&key, b"two").unwrap() {
            Created::Exists(b) => assert_eq!(&b[..], b"one"),
            Created::New => panic!("a second create must not overwrite"),
        }
        let src = d.path().join("src");
        std::fs::write(&src, b"payload").unwrap();
        let name = blake3::hash(b"payload").to_hex().to_string();
        assert_eq!(r.upload_many(&[(name.clone(), src.clone())]).unwrap(), 7);
        // A small object is put again (as cheap as asking); a large one the remote has is not.
        assert_eq!(r.upload_many(&[(name.clone(), src)]).unwrap(), 7);
        let large = vec![7u8; 300 << 10];
        let src_large = d.path().join("large");
        std::fs::write(&src_large, &large).unwrap();
        let large_name = blake3::hash(&large).to_hex().to_string();
        let item = [(large_name, src_large)];
        assert_eq!(r.upload_many(&item).unwrap(), 300 << 10);
        assert_eq!(r.upload_many(&item).unwrap(), 0);
        let dest = d.path().join("dest");
        let got = r.download_many(&[(name.clone(), dest.clone())]).unwrap();
        assert!(matches!(got[0], Download::Verified(7)), "{got:?}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"payload");
        // Damage the remote copy: detected, nothing kept at the destination.
        std::fs::write(d.path().join("remote/cas").join(&name), b"paylosd").unwrap();
        std::fs::remove_file(&dest).unwrap();
        let got = r.download_many(&[(name.clone(), dest.clone())]).unwrap();
        assert!(matches!(got[0], Download::Corrupt(_)), "{got:?}");
        assert!(!dest.exists());
        let missing = "b".repeat(64);
        let got = r.download_many(&[(missing, dest)]).unwrap();
        assert!(matches!(got[0], Download::Missing));
    }

    #[test]
    fn checksums_are_on_unless_the_aws_setting_says_when_required() {
        assert!(checksums_wanted(None));
        assert!(checksums_wanted(Some("when_supported".into())));
        assert!(!checksums_wanted(Some("WHEN_REQUIRED".into())));
        assert!(!checksums_wanted(Some(" when_required ".into())));
    }

    #[test]
    fn existence_by_listing_matches_existence_by_name() {
        let d = tempfile::tempdir().unwrap();
        let r = file_remote(&d.path().join("remote"), Mode::ReadWrite);
        let names: Vec<String> = (0..100).map(|i| format!("{i:064x}")).collect();
        for n in names.iter().step_by(7) {
            r.create_record(n, b"x").unwrap();
        }
        let by_list = r.exist_in("ac", &names).unwrap();
        let by_name = r.exist_in("ac", &names[..10]).unwrap();
        assert_eq!(by_list.iter().filter(|x| **x).count(), 15);
        assert!(by_list.iter().enumerate().all(|(i, x)| *x == (i % 7 == 0)));
        assert_eq!(&by_list[..10], &by_name[..]);
    }

    #[test]
    fn a_failure_turns_the_remote_off_or_is_an_error_when_required() {
        let d = tempfile::tempdir().unwrap();
        let r = file_remote(d.path(), Mode::ReadWrite);
        assert!(r.readable() && r.writable());
        r.fail("testing", "boom").unwrap();
        assert!(!r.readable() && !r.writable());
        assert!(r.trouble().unwrap().contains("boom"));
        let mut spec = Spec {
            url: format!("file://{}", d.path().display()),
            mode: Mode::Read,
            required: true,
            endpoint: None,
            region: None,
            profile: None,
        };
        let r = Remote::open(&spec).unwrap();
        assert!(!r.writable());
        assert!(r.fail("testing", "boom").is_err());
        spec.url = "ftp://x".into();
        assert!(Remote::open(&spec).is_err());
        spec.url = "s3://eq/x".into();
        let e = Remote::open(&spec).unwrap_err();
        assert!(format!("{e:#}").contains("3 to 63"), "{e:#}");
    }
}
