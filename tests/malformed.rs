//! Every file under tests/malformed/ is a broken pipeline. Its `# expect: LINE: TEXT` header
//! lines say which problems eqlab must report: `FILE:LINE:` followed by TEXT somewhere on the
//! line (LINE 0: anywhere in the output). No file may make eqlab panic.

mod common;
use common::{Project, repo, text};

#[test]
fn every_malformed_pipeline_gets_a_located_error() {
    let dir = repo().join("tests/malformed");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "only {} malformed files", files.len());
    let p = Project::new();
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        let o = p.eqlab(&["plan", f.to_str().unwrap()]);
        let err = text(&o.stderr);
        if o.status.code() != Some(2) || err.contains("panicked") {
            failures.push(format!(
                "{}: exit {:?}\n{err}",
                f.display(),
                o.status.code()
            ));
            continue;
        }
        for line in src.lines().filter_map(|l| l.strip_prefix("# expect: ")) {
            let (n, want) = line.split_once(": ").unwrap();
            let ok = if n == "0" {
                err.contains(want)
            } else {
                let prefix = format!("{}:{n}:", f.display());
                err.lines().any(|l| l.contains(&prefix) && l.contains(want))
            };
            if !ok {
                failures.push(format!(
                    "{}: expected line {n} with `{want}`, got:\n{err}",
                    f.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}
