//! Stale results must not survive a code change: this test keeps the blake3 of every stage
//! kind's source files in `tests/stage_versions.txt` and fails when they change while the
//! stage's `version()` stays the same. After a deliberate change: bump the version, then run
//! `make stage-versions` to refresh the table.
//!
//! A change that provably leaves every stored result of a kind valid (e.g. a parameter added with
//! [`eqlab::stage::ParamSpec::added`], whose default is left out of the key, with tests showing
//! that the results at the default are unchanged) may keep the version: `make stage-versions
//! NEUTRAL=kind,kind` records those kinds' new sources under their current version.

use eqlab::stages::Registry;
use std::collections::BTreeMap;

fn current() -> BTreeMap<String, (u32, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    Registry::builtin()
        .all()
        .map(|s| {
            let mut h = blake3::Hasher::new();
            for src in s.sources() {
                let bytes = std::fs::read(root.join(src))
                    .unwrap_or_else(|e| panic!("{}: source {src}: {e}", s.kind()));
                h.update(src.as_bytes());
                h.update(&bytes);
            }
            (
                s.kind().to_owned(),
                (s.version(), h.finalize().to_hex().to_string()),
            )
        })
        .collect()
}

#[test]
fn stage_sources_do_not_change_without_a_version_bump() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stage_versions.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let table: BTreeMap<String, (u32, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), (f[1].parse().unwrap(), f[2].to_owned()))
        })
        .collect();
    let now = current();
    let mut problems = Vec::new();
    for (kind, (v, h)) in &now {
        match table.get(kind) {
            Some((tv, th)) if tv == v && th != h => problems.push(format!(
                "stage '{kind}': its source changed but version() is still {v}: bump the version (results may differ), then `make stage-versions`"
            )),
            Some((tv, th)) if tv == v && th == h => {}
            Some((tv, _)) => problems.push(format!("stage '{kind}': version {tv} → {v}: run `make stage-versions` to record it")),
            None => problems.push(format!("new stage '{kind}': run `make stage-versions` to record it")),
        }
    }
    let update = std::env::var_os("EQLAB_UPDATE_STAGE_VERSIONS").is_some();
    // Kinds whose change keeps their stored results valid (see the module doc).
    let neutral: Vec<String> = std::env::var("EQLAB_STAGE_VERSIONS_NEUTRAL")
        .unwrap_or_default()
        .split(',')
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if update {
        problems.retain(|p| {
            !neutral
                .iter()
                .any(|k| p.starts_with(&format!("stage '{k}':")))
        });
    }
    let unbumped = problems.iter().any(|p| p.contains("bump the version"));
    if update && !unbumped {
        let mut out = String::from(
            "# kind version blake3-of-sources  (maintained by `make stage-versions`; see tests/stage_versions.rs)\n",
        );
        for (kind, (v, h)) in &now {
            out.push_str(&format!("{kind} {v} {h}\n"));
        }
        std::fs::write(&path, out).unwrap();
        return;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
