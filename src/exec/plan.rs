//! Dry runs: what a run would do and why, without computing anything. Backs `eqlab plan`,
//! `eqlab explain` and `eqlab show`. With a remote cache, a stage missing locally is looked up
//! there too (record and object existence; nothing is downloaded).

use super::prepare::{Lookup, Prepared, lookup, nearest, prepare, resolve};
use crate::graph::Dag;
use crate::key::{KeyDiff, diff};
use crate::spec::Pipeline;
use crate::stages::Registry;
use crate::store::{Record, Store};
use anyhow::Result;
use std::collections::BTreeMap;

/// What would happen to one stage.
pub enum Planned {
    /// A stored, verified result exists for the current key (`Store::record` and
    /// `Store::meta` give it and who computed it).
    Cached(Prepared),
    /// Not in the local store, but the remote cache has it (record and every object): a run
    /// would download it.
    Remote(Prepared),
    /// It would run: no (intact) result for the current key.
    Run {
        /// The current key.
        prep: Prepared,
        /// The closest stored key of this stage, and how it differs.
        nearest: Option<(Box<Record>, Vec<KeyDiff>)>,
        /// Set when a stored record exists but is damaged.
        damaged: Option<String>,
    },
    /// Its key depends on outputs of upstream stages that would run first.
    Pending(Vec<String>),
    /// Its parameters or input files are invalid.
    Error(String),
}

/// Plans every stage of the pipeline, in topological order.
pub fn plan(p: &Pipeline, registry: &Registry, store: &Store) -> Result<Vec<(String, Planned)>> {
    let dag = Dag::new(p);
    // Read only when some stage would run (a cached plan never lists the metas).
    let mut index: Option<std::collections::HashMap<String, Vec<String>>> = None;
    let mut done: BTreeMap<String, Record> = BTreeMap::new();
    let mut out = Vec::new();
    for name in dag.order() {
        let (decl, stage) = resolve(p, registry, &name)?;
        let waiting: Vec<String> = decl
            .needs
            .iter()
            .filter(|n| !done.contains_key(*n))
            .cloned()
            .collect();
        if !waiting.is_empty() {
            out.push((name, Planned::Pending(waiting)));
            continue;
        }
        let prep = match prepare(p, decl, stage, &done, store) {
            Ok(x) => x,
            Err(e) => {
                out.push((name, Planned::Error(format!("{e:#}"))));
                continue;
            }
        };
        let planned = match lookup(store, &prep.hash, false)? {
            Lookup::Hit(r) => {
                done.insert(name.clone(), *r);
                Planned::Cached(prep)
            }
            other => {
                if let Some(r) = store.probe(&prep.hash)? {
                    done.insert(name.clone(), r);
                    out.push((name, Planned::Remote(prep)));
                    continue;
                }
                let damaged = match other {
                    Lookup::Damaged(why) => Some(why),
                    _ => None,
                };
                if index.is_none() {
                    index = Some(store.stage_index()?);
                }
                let keys = index
                    .as_ref()
                    .and_then(|i| i.get(&name))
                    .map_or(&[][..], Vec::as_slice);
                let nearest = nearest(store, keys, &prep.key).map(|r| {
                    let d = diff(&r.components, &prep.key);
                    (Box::new(r), d)
                });
                Planned::Run {
                    prep,
                    nearest,
                    damaged,
                }
            }
        };
        out.push((name, planned));
    }
    store.save_state();
    Ok(out)
}

/// One line per differing key leaf, e.g. `params.q: 1.5 → 2.0`.
pub fn describe_diff(d: &[KeyDiff]) -> Vec<String> {
    d.iter()
        .map(|x| {
            let what = match x.path.split('.').next().unwrap_or("") {
                "params" => "parameter",
                "inputs" => "input",
                "files" => "input file",
                "version" => "stage version",
                "seed" => "seed",
                "kind" => "kind",
                _ => "component",
            };
            format!(
                "{what} {}: {} → {}",
                x.path,
                x.stored.as_deref().unwrap_or("(absent)"),
                x.current.as_deref().unwrap_or("(absent)")
            )
        })
        .collect()
}

/// A one-line reason for `eqlab plan`.
pub fn reason(pl: &Planned) -> (String, String) {
    match pl {
        Planned::Cached(prep) => (
            "cached".into(),
            format!("stored under key {}", &prep.hash[..12.min(prep.hash.len())]),
        ),
        Planned::Remote(prep) => (
            "pull".into(),
            format!(
                "on the remote cache under key {}",
                &prep.hash[..12.min(prep.hash.len())]
            ),
        ),
        Planned::Run {
            nearest, damaged, ..
        } => {
            if let Some(d) = damaged {
                return ("run".into(), format!("stored result damaged: {d}"));
            }
            match nearest {
                None => ("run".into(), "never computed".into()),
                Some((_, d)) => (
                    "run".into(),
                    format!(
                        "changed since last computed: {}",
                        describe_diff(d).join("; ")
                    ),
                ),
            }
        }
        Planned::Pending(up) => (
            "pending".into(),
            format!("runs if the outputs of {} change", some_of(up)),
        ),
        Planned::Error(e) => ("error".into(), e.clone()),
    }
}

/// At most five names, then how many more (a stage may need a whole sweep of 10⁵ instances).
fn some_of(names: &[String]) -> String {
    const SHOWN: usize = 5;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_lists_of_upstream_stages_are_cut() {
        let names: Vec<String> = (0..100_000).map(|i| format!("a[o={i}]")).collect();
        assert_eq!(super::some_of(&names[..2]), "a[o=0], a[o=1]");
        assert_eq!(
            super::some_of(&names),
            "a[o=0], a[o=1], a[o=2], a[o=3], a[o=4] and 99995 more"
        );
    }
}
