//! Turning a declared stage into a concrete computation: its parameters, seed and key, and the
//! lookup of a stored record for that key. Shared by `run`, `plan` and `explain`.

use crate::key::{InputKey, StageKey, derive_seed};
use crate::spec::{Pipeline, SpecErrors, StageDecl, instantiate};
use crate::stage::{ParamKind, Params, Stage};
use crate::stages::Registry;
use crate::store::{Record, RecordFault, Store};
use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;

/// The stage kind of a declaration. Errors: an unknown kind (refused when the pipeline is
/// loaded; checked again here rather than trusted).
pub fn kind_of<'r>(registry: &'r Registry, decl: &StageDecl) -> Result<&'r dyn Stage> {
    registry
        .get(&decl.kind)
        .ok_or_else(|| anyhow!("unknown kind '{}'", decl.kind))
}

/// The declaration and stage kind of instance `name`. Errors: no such stage, an unknown kind.
pub fn resolve<'a>(
    p: &'a Pipeline,
    registry: &'a Registry,
    name: &str,
) -> Result<(&'a StageDecl, &'a dyn Stage)> {
    let decl = p
        .stage(name)
        .ok_or_else(|| anyhow!("the pipeline {} has no stage '{name}'", p.file.display()))?;
    Ok((decl, kind_of(registry, decl)?))
}

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
    store: &Store,
) -> Result<Prepared> {
    let lookup = |st: &str, name: &str| upstream.get(st).and_then(|r| r.scalars.get(name).copied());
    let params = instantiate(p, decl, stage, Some(&lookup))
        .map_err(|e: SpecErrors| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("parameters of '{}' could not be resolved", decl.name))?;
    let params = normalise_any(stage, params, &p.base_dir);
    let mut files = BTreeMap::new();
    for spec in stage.params().iter().filter(|s| s.kind == ParamKind::Path) {
        if let Some(rel) = params.opt_str(spec.name)? {
            let path = params.resolve(std::path::Path::new(rel));
            let h = store.hash_input(&path).with_context(|| {
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
    let mut inputs = Vec::with_capacity(decl.needs.len());
    for n in &decl.needs {
        let r = upstream
            .get(n)
            .ok_or_else(|| anyhow!("stage '{}' needs '{n}', which has no result", decl.name))?;
        let up = p.stage(n);
        let mut outputs: BTreeMap<String, String> = r
            .tables
            .iter()
            .map(|(k, t)| (k.clone(), t.object.clone()))
            .collect();
        outputs.extend(r.files.iter().map(|(k, f)| (k.clone(), f.object.clone())));
        inputs.push(InputKey {
            stage: n.clone(),
            point: up.map(upstream_point).unwrap_or_default(),
            replicate: up.and_then(|d| d.replicate),
            params: r.components.params.clone(),
            outputs,
        });
    }
    let key = StageKey {
        kind: decl.kind.clone(),
        version: stage.version(),
        params: key_params(stage, &params),
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

/// The parameters as they enter the key: all of them, except those added to the kind after
/// results were stored ([`crate::stage::ParamSpec::added`], e.g. the deep stages' `device`)
/// while they have their default value, so that those results keep their keys.
pub fn key_params(stage: &dyn Stage, params: &Params) -> BTreeMap<String, serde_json::Value> {
    let mut values = params.values().clone();
    for spec in stage.params().iter().filter(|s| !s.keyed_at_default) {
        if spec
            .default_json()
            .is_some_and(|d| values.get(spec.name) == Some(&d))
        {
            values.remove(spec.name);
        }
    }
    values
}

/// The input files (resolved paths) instance `decl` reads, as far as they are known before
/// its upstream stages ran (a path computed from an upstream scalar is not).
pub fn input_files(p: &Pipeline, decl: &StageDecl, stage: &dyn Stage) -> Vec<std::path::PathBuf> {
    let Ok(Some(params)) = instantiate(p, decl, stage, None) else {
        return Vec::new();
    };
    stage
        .params()
        .iter()
        .filter(|s| s.kind == ParamKind::Path)
        .filter_map(|s| params.opt_str(s.name).ok().flatten())
        .map(|rel| params.resolve(std::path::Path::new(rel)))
        .collect()
}

/// A stage instance's sweep point as JSON, in axis order (what `Upstream::point` holds).
pub fn upstream_point(d: &StageDecl) -> Vec<(String, serde_json::Value)> {
    d.point
        .iter()
        .map(|(a, v)| (a.clone(), v.to_json()))
        .collect()
}

/// Numbers inside `any`-typed parameters (mappings such as `cost: {power: {q: 2}}`) are
/// normalised like typed number parameters: a whole number written `2.0` becomes `2`, so the
/// two spellings give one key. Stages read such values with `as_f64`, which sees no difference.
fn normalise_any(stage: &dyn Stage, params: Params, base_dir: &std::path::Path) -> Params {
    let any: Vec<&str> = stage
        .params()
        .iter()
        .filter(|s| s.kind == ParamKind::Any)
        .map(|s| s.name)
        .collect();
    if any.is_empty() {
        return params;
    }
    let mut values = params.values().clone();
    for name in any {
        if let Some(v) = values.get_mut(name) {
            whole_floats_to_ints(v);
        }
    }
    Params::new(values, base_dir.to_path_buf())
}

fn whole_floats_to_ints(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(x) = n.as_f64()
                && x.fract() == 0.0
                && x.abs() < 9.007_199_254_740_992e15
                && !(x == 0.0 && x.is_sign_negative())
            {
                *v = Value::from(x as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(whole_floats_to_ints),
        Value::Object(m) => m.values_mut().for_each(whole_floats_to_ints),
        _ => {}
    }
}

/// Outcome of looking up a key in the store.
pub enum Lookup {
    /// A stored, verified record whose objects are intact.
    Hit(Box<Record>),
    /// Nothing stored for this key.
    Miss,
    /// A record that failed verification, or whose objects are missing or damaged (the
    /// message says which); recompute.
    Damaged(String),
}

/// Looks up a key: verifies the record and its objects (file hashes; no decoding). With
/// `repair` (runs, which hold the store lock) a bad record is set aside and a damaged object
/// removed, so that recomputing writes them afresh; without it (plan, show) nothing changes.
pub fn lookup(store: &Store, hash: &str, repair: bool) -> Result<Lookup> {
    let r = match store.record(hash) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(Lookup::Miss),
        Err(e) if e.downcast_ref::<RecordFault>().is_some() => {
            let mut why = format!("{e:#}");
            if repair {
                match store.set_aside(hash) {
                    Ok(to) => why.push_str(&format!(" (set aside as {})", to.display())),
                    Err(e) => why.push_str(&format!(" (could not set it aside: {e:#})")),
                }
            }
            return Ok(Lookup::Damaged(why));
        }
        Err(e) => return Err(e),
    };
    match store.verify_objects(&r) {
        Ok(()) => Ok(Lookup::Hit(Box::new(r))),
        Err(e) => {
            if repair && let Some(c) = e.downcast_ref::<crate::store::Corrupt>() {
                store.discard(&c.path);
            }
            Ok(Lookup::Damaged(format!("{e:#}")))
        }
    }
}

/// The stored record computed by the same stage whose key differs from `key` in the fewest
/// leaves (most recent first on ties). `keys` are that stage's record keys (`Store::stage_index`);
/// records that fail verification are ignored.
pub fn nearest(store: &Store, keys: &[String], key: &StageKey) -> Option<Record> {
    keys.iter()
        .filter_map(|k| store.record(k).ok().flatten())
        .map(|r| {
            let finished = store.meta(&r.key).map(|m| m.finished).unwrap_or_default();
            (crate::key::diff(&r.components, key).len(), finished, r)
        })
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
        .map(|(_, _, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The key of a stage of `kind` with `params`, as `prepare` builds it.
    fn key(stage: &dyn Stage, params: &[(&str, serde_json::Value)]) -> String {
        let values = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let params = Params::new(values, std::path::PathBuf::new());
        StageKey {
            kind: stage.kind().to_owned(),
            version: stage.version(),
            params: key_params(stage, &params),
            files: BTreeMap::new(),
            inputs: Vec::new(),
            seed: 7,
        }
        .hash()
    }

    #[test]
    fn the_default_cpu_device_leaves_the_key_as_it_was_and_another_device_changes_it() {
        let registry = Registry::builtin();
        for kind in ["deep_bsde", "deep_bsde_eval", "rgan_train", "rgan_eval"] {
            let stage = registry.get(kind).unwrap();
            assert!(stage.params().iter().any(|s| s.name == "device"), "{kind}");
            let base = [("q", json!(2.0)), ("test_paths", json!(100))];
            // The key such a stage had before the parameter existed.
            let before = key(stage, &base);
            let with = |d: &str| key(stage, &[&base[..], &[("device", json!(d))]].concat());
            assert_eq!(with("cpu"), before, "{kind}: cpu must keep the stored keys");
            assert_ne!(with("tch-cpu"), before, "{kind}");
            assert_ne!(with("tch-cpu"), with("tch-cuda"), "{kind}");
            assert_ne!(with("cuda"), before, "{kind}");
        }
        // Ordinary parameters stay in the key at their default (writing a default explicitly
        // and leaving it out give one key because defaults are filled in before hashing).
        let ode = registry.get("cost_ode").unwrap();
        let params = Params::new(
            [("points".to_owned(), json!(201))].into(),
            std::path::PathBuf::new(),
        );
        assert!(key_params(ode, &params).contains_key("points"));
    }
}
