//! Jobs on nodes that do not share this machine's filesystem (`shared_fs = false` in
//! `[executor.slurm]`): the pipeline file and its input files travel through the remote cache
//! as objects (`cas/<blake3>`), named in the run's manifest, which is itself put at
//! `runs/<run>/manifest.json`. A worker rebuilds the files under its node store, with the same
//! relative layout, so that relative paths in the pipeline (`../data/x.csv`) resolve as they
//! did here. No submitting or watching here.

use crate::store::Store;
use crate::store::remote::Download;
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// The files a run's workers need, as they travel through the remote cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    /// The pipeline file, relative to the bundle's root.
    pub pipeline: String,
    /// Every file (the pipeline and its input files): path relative to the root → blake3.
    pub files: BTreeMap<String, String>,
}

/// The remote path of run `run`'s manifest.
pub fn manifest_rel(run: &str) -> String {
    format!("runs/{run}/manifest.json")
}

/// `path` made absolute with `.` and `..` resolved lexically (as the pipeline's relative
/// paths are written, not through symbolic links).
fn normal(path: &Path) -> Result<PathBuf> {
    let abs =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Uploads the pipeline file and `inputs` to the store's remote cache and returns the bundle
/// naming them. Errors: no writable remote, a file that cannot be read, an upload failure.
pub fn upload(store: &Store, pipeline: &Path, inputs: &BTreeSet<PathBuf>) -> Result<Bundle> {
    let remote = store.remote().filter(|r| r.writable()).ok_or_else(|| {
        anyhow!(
            "[executor.slurm] shared_fs = false: jobs get the pipeline, its input files and \
             upstream results through the remote cache, but none is configured for writing \
             (set [remote] url in eqlab.toml, EQLAB_REMOTE, or --remote)"
        )
    })?;
    let pipeline = normal(pipeline)?;
    let mut all: Vec<PathBuf> = vec![pipeline.clone()];
    for f in inputs {
        all.push(normal(f)?);
    }
    // The deepest folder holding every file.
    let mut root = pipeline.parent().map(Path::to_path_buf).unwrap_or_default();
    for f in &all {
        while !f.starts_with(&root) {
            if !root.pop() {
                break;
            }
        }
    }
    let mut files = BTreeMap::new();
    let mut items = Vec::new();
    for f in &all {
        let b3 = crate::store::hash_file(f)?;
        let rel = f
            .strip_prefix(&root)
            .map_err(|_| anyhow!("{} is not under {}", f.display(), root.display()))?
            .to_string_lossy()
            .into_owned();
        files.insert(rel, b3.clone());
        items.push((b3, f.clone()));
    }
    remote.upload_many(&items).with_context(|| {
        format!(
            "uploading the pipeline and its input files to {}",
            remote.url()
        )
    })?;
    let pipeline = pipeline
        .strip_prefix(&root)
        .map_err(|_| anyhow!("{} is not under {}", pipeline.display(), root.display()))?
        .to_string_lossy()
        .into_owned();
    Ok(Bundle { pipeline, files })
}

/// Downloads a bundle's files into `dir` (each verified against its blake3) and returns the
/// pipeline file's path there. Errors: a path that leaves `dir`, a missing or corrupt object.
pub fn materialise(store: &Store, b: &Bundle, dir: &Path) -> Result<PathBuf> {
    let remote = store.remote().ok_or_else(|| {
        anyhow!("the run's files travel through the remote cache, and none is configured")
    })?;
    let mut items = Vec::new();
    for (rel, b3) in &b.files {
        let p = Path::new(rel);
        if !p.components().all(|c| matches!(c, Component::Normal(_))) {
            bail!("the run manifest names the file {rel:?}, which is not a plain relative path");
        }
        let dest = dir.join(p);
        if crate::store::hash_file(&dest).ok().as_deref() == Some(b3.as_str()) {
            continue; // already here (an earlier task on this node)
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        items.push((b3.clone(), dest));
    }
    // Each file is streamed to a temporary name next to it and renamed once verified, so a
    // task that starts meanwhile on the same node never reads half a file.
    let tmp: Vec<(String, PathBuf)> = items
        .iter()
        .map(|(b3, dest)| {
            let mut t = dest.clone().into_os_string();
            t.push(format!(".{}.part", std::process::id()));
            (b3.clone(), PathBuf::from(t))
        })
        .collect();
    let got = remote.download_many(&tmp)?;
    for (((b3, dest), (_, t)), g) in items.iter().zip(&tmp).zip(got) {
        match g {
            Download::Verified(_) => std::fs::rename(t, dest)
                .with_context(|| format!("cannot move {} to {}", t.display(), dest.display()))?,
            Download::Missing => bail!(
                "{} is missing from the remote cache ({}/cas/{b3}): was it collected by `eqlab gc --remote`?",
                dest.display(),
                remote.url()
            ),
            Download::Corrupt(how) => bail!(
                "{} in the remote cache ({}/cas/{b3}) is corrupt: {how}",
                dest.display(),
                remote.url()
            ),
        }
    }
    Ok(dir.join(&b.pipeline))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_normalised_lexically() {
        let p = super::normal(std::path::Path::new("/a/pipes/../data/./x.csv")).unwrap();
        assert_eq!(p, std::path::PathBuf::from("/a/data/x.csv"));
    }
}
