//! Fuzz target: `--set` values and sweep expansion. Each input line is one `KEY=VALUE`
//! override applied to a pipeline with grid, zip, list, range, foreach and replicates sweeps
//! and `${...}` references; parsing the overrides, applying them and expanding the sweeps must
//! never panic, overflow the stack or grow beyond the instance limit.
#![no_main]

use eqlab::spec::{LoadOptions, Override, parse_with};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// The pipeline the overrides are applied to.
const PIPELINE: &str = r#"
params: {n: 3, s: "${params.t}", t: 1.5, list: [1, 2]}
stages:
  a:
    kind: generate
    with: {rows: "${sweep.k}", scale: "${params.s}"}
    sweep: {grid: {k: [1, 2], offset: {range: {start: 0, stop: 1, num: 3}}}}
  b:
    kind: generate
    foreach: a
    replicates: 2
    with: {rows: "${params.n}"}
  c:
    kind: generate
    sweep: {zip: {rows: [1, 2], scale: {logspace: {start: 1, stop: 10, num: 2}}}}
  d:
    kind: generate
    sweep: {list: [{rows: 1}, {rows: 2, offset: 0.5}]}
  e:
    kind: collect
    needs: [a, b]
    with: {scalars: [mean]}
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let overrides: Vec<Override> = text
        .lines()
        .take(16)
        .filter_map(|l| l.parse::<Override>().ok())
        .collect();
    let registry = eqlab::stages::Registry::builtin();
    // A small limit keeps each run fast; the counting itself is what is being tested.
    let opts = LoadOptions {
        max_instances: 2_000,
    };
    if let Ok(p) = parse_with(PIPELINE, Path::new("fuzz.yaml"), &registry, &overrides, &opts) {
        assert!(p.stages.len() <= 2_000, "{} instances", p.stages.len());
    }
});
