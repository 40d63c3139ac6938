//! The stage key: a plain struct of everything that can influence a stage's outputs, hashed
//! with blake3 over a canonical encoding. It prints as a tree and diffs leaf by leaf, which is
//! what `eqlab explain` shows.
//!
//! Canonical encoding: maps sorted by key, floats by their exact bit pattern, integers as
//! integers, defaults already filled in (so writing a default explicitly changes nothing).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Everything a stage's result depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageKey {
    /// Stage kind.
    pub kind: String,
    /// Stage kind version.
    pub version: u32,
    /// Parameters after references and defaults.
    pub params: BTreeMap<String, Value>,
    /// Content hashes of input files named by path parameters: parameter → blake3.
    pub files: BTreeMap<String, String>,
    /// Upstream stages in `needs` order: everything of them that the stage is given.
    pub inputs: Vec<InputKey>,
    /// The seed of the stage's random streams.
    pub seed: u64,
}

/// One upstream stage as a consumer sees it: its name, sweep point, replicate, parameters and
/// output hashes. All of these reach the stage (`collect` tabulates names and points in `needs`
/// order), so all of them are in the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputKey {
    /// Upstream stage (instance) name.
    pub stage: String,
    /// Its sweep point: axis → value, in axis order.
    pub point: Vec<(String, Value)>,
    /// Its replicate index, when replicated.
    pub replicate: Option<u64>,
    /// Its parameters after references and defaults.
    pub params: BTreeMap<String, Value>,
    /// Output name → object hash.
    pub outputs: BTreeMap<String, String>,
}

impl StageKey {
    /// The hex blake3 of the canonical encoding.
    pub fn hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(b"eqlab-key-v2\0");
        canonical(&mut h, &serde_json::to_value(self).unwrap_or(Value::Null));
        h.finalize().to_hex().to_string()
    }

    /// The key as (dotted path, printable value) leaves, sorted by path. Upstream stages are
    /// listed by name (`inputs.<stage>.outputs.<name>`) plus their order (`inputs_order`).
    pub fn leaves(&self) -> Vec<(String, String)> {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            let by_name: serde_json::Map<String, Value> = self
                .inputs
                .iter()
                .map(|i| {
                    let mut x = serde_json::to_value(i).unwrap_or(Value::Null);
                    if let Value::Object(o) = &mut x {
                        o.remove("stage");
                    }
                    (i.stage.clone(), x)
                })
                .collect();
            m.insert("inputs".into(), Value::Object(by_name));
            m.insert(
                "inputs_order".into(),
                Value::Array(
                    self.inputs
                        .iter()
                        .map(|i| Value::String(i.stage.clone()))
                        .collect(),
                ),
            );
        }
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        out
    }
}

fn canonical(h: &mut blake3::Hasher, v: &Value) {
    let s = |h: &mut blake3::Hasher, t: &str| {
        h.update(&(t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    };
    match v {
        Value::Null => {
            h.update(b"n");
        }
        Value::Bool(b) => {
            h.update(if *b { b"t" } else { b"f" });
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                h.update(b"i");
                h.update(&i.to_le_bytes());
            } else if let Some(u) = n.as_u64() {
                h.update(b"u");
                h.update(&u.to_le_bytes());
            } else {
                h.update(b"d");
                h.update(&n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
            }
        }
        Value::String(t) => {
            h.update(b"s");
            s(h, t);
        }
        Value::Array(a) => {
            h.update(b"[");
            h.update(&(a.len() as u64).to_le_bytes());
            for x in a {
                canonical(h, x);
            }
        }
        Value::Object(m) => {
            h.update(b"{");
            h.update(&(m.len() as u64).to_le_bytes());
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            for (k, x) in sorted {
                s(h, k);
                canonical(h, x);
            }
        }
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            for (k, x) in sorted {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// One difference between two keys.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyDiff {
    /// Dotted path of the leaf, e.g. `params.q`.
    pub path: String,
    /// Value in the stored key (`None`: absent there).
    pub stored: Option<String>,
    /// Value in the current key (`None`: absent now).
    pub current: Option<String>,
}

/// The leaves in which `stored` and `current` differ.
pub fn diff(stored: &StageKey, current: &StageKey) -> Vec<KeyDiff> {
    let a: BTreeMap<String, String> = stored.leaves().into_iter().collect();
    let b: BTreeMap<String, String> = current.leaves().into_iter().collect();
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    paths
        .into_iter()
        .filter(|p| a.get(*p) != b.get(*p))
        .map(|p| KeyDiff {
            path: p.clone(),
            stored: a.get(p).cloned(),
            current: b.get(p).cloned(),
        })
        .collect()
}

/// Derives a stage's seed from the pipeline seed and the stage name (and a replicate index).
///
/// Instances of the same stage share their stream unless given an explicit `seed:`, so
/// parameter sweeps use common random numbers.
pub fn derive_seed(pipeline_seed: u64, stage: &str, replicate: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"eqlab-seed-v1\0");
    h.update(&pipeline_seed.to_le_bytes());
    h.update(stage.as_bytes());
    h.update(&replicate.to_le_bytes());
    let b = h.finalize();
    let mut x = [0u8; 8];
    x.copy_from_slice(&b.as_bytes()[..8]);
    u64::from_le_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: f64) -> StageKey {
        StageKey {
            kind: "cost_ode".into(),
            version: 1,
            params: [("q".to_string(), serde_json::json!(q))].into(),
            files: BTreeMap::new(),
            inputs: Vec::new(),
            seed: 7,
        }
    }

    #[test]
    fn key_is_stable_and_sensitive_to_every_bit() {
        assert_eq!(key(1.5).hash(), key(1.5).hash());
        assert_ne!(key(1.5).hash(), key(1.5 + f64::EPSILON).hash());
        let d = diff(&key(1.5), &key(2.0));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "params.q");
    }
}
