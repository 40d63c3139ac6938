//! Turning a declared stage into a concrete computation: its parameters, seed and key, and the
//! lookup of a stored record for that key. Shared by `run`, `plan` and `explain`.

use crate::key::{StageKey, derive_seed};
use crate::spec::{Pipeline, SpecErrors, StageDecl, instantiate};
use crate::stage::{ParamKind, Params, Stage};
use crate::store::{Record, Store, hash_file};
use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;

/// A stage ready to be looked up or run.
pub struct Prepared {
    /// Parameters after references and defaults.
    pub params: Params,
    /// The key.
    pub key: StageKey,
    /// Its hash.
    pub hash: String,
}

/// Computes the key of `decl` given the records of its (already finished) upstream stages.
pub fn prepare(
    p: &Pipeline,
    decl: &StageDecl,
    stage: &dyn Stage,
    upstream: &BTreeMap<String, Record>,
) -> Result<Prepared> {
    let lookup = |st: &str, name: &str| upstream.get(st).and_then(|r| r.scalars.get(name).copied());
    let params = instantiate(p, decl, stage, Some(&lookup))
        .map_err(|e: SpecErrors| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("parameters of '{}' could not be resolved", decl.name))?;
    let mut files = BTreeMap::new();
    for spec in stage.params().iter().filter(|s| s.kind == ParamKind::Path) {
        if let Some(rel) = params.opt_str(spec.name)? {
            let path = params.resolve(std::path::Path::new(rel));
            let h = hash_file(&path).with_context(|| {
                format!(
                    "stage '{}': input file {} (parameter '{}')",
                    decl.name,
                    path.display(),
                    spec.name
                )
            })?;
            files.insert(spec.name.to_owned(), h);
        }
    }
    let mut inputs = BTreeMap::new();
    for n in &decl.needs {
        let r = upstream
            .get(n)
            .ok_or_else(|| anyhow!("stage '{}' needs '{n}', which has no result", decl.name))?;
        let mut outs: BTreeMap<String, String> = r
            .tables
            .iter()
            .map(|(k, t)| (k.clone(), t.object.clone()))
            .collect();
        outs.extend(r.files.iter().map(|(k, f)| (k.clone(), f.object.clone())));
        inputs.insert(n.clone(), outs);
    }
    let key = StageKey {
        kind: decl.kind.clone(),
        version: stage.version(),
        params: params.values().clone(),
        files,
        inputs,
        seed: match (decl.seed, decl.replicate) {
            (Some(s), None) => s,
            (Some(s), Some(r)) => derive_seed(s, &decl.base, r),
            (None, r) => derive_seed(p.seed, &decl.base, r.unwrap_or(0)),
        },
    };
    let hash = key.hash();
    Ok(Prepared { params, key, hash })
}

/// Outcome of looking up a key in the store.
pub enum Lookup {
    /// A stored, intact record.
    Hit(Box<Record>),
    /// Nothing stored for this key.
    Miss,
    /// A record whose objects are missing or damaged (the message says which); recompute.
    Damaged(String),
}

/// Looks up a key and verifies the record's objects (file hashes; no decoding).
pub fn lookup(store: &Store, hash: &str) -> Result<Lookup> {
    let Some(r) = store.record(hash)? else {
        return Ok(Lookup::Miss);
    };
    match store.verify_record(&r) {
        Ok(()) => Ok(Lookup::Hit(Box::new(r))),
        Err(e) => {
            if let Some(c) = e.downcast_ref::<crate::store::Corrupt>() {
                store.discard(&c.path);
            }
            Ok(Lookup::Damaged(format!("{e:#}")))
        }
    }
}

/// The stored record of the same stage whose key differs from `key` in the fewest leaves.
pub fn nearest<'a>(records: &'a [Record], stage: &str, key: &StageKey) -> Option<&'a Record> {
    let same_name: Vec<&Record> = records.iter().filter(|r| r.stage == stage).collect();
    let pool: Vec<&Record> = if same_name.is_empty() {
        records
            .iter()
            .filter(|r| r.components.kind == key.kind)
            .collect()
    } else {
        same_name
    };
    pool.into_iter().min_by_key(|r| {
        (
            crate::key::diff(&r.components, key).len(),
            std::cmp::Reverse(r.finished.clone()),
        )
    })
}
