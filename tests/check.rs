//! `eqlab check`: the shipped golden file passes; a tightened tolerance or a perturbed
//! parameter fails with a readable table; the JUnit XML is well formed.

mod common;
use common::{Project, repo, text};

fn well_formed_xml(x: &str) -> bool {
    // A minimal tag matcher: every opened element is closed in order.
    let mut stack: Vec<String> = Vec::new();
    let mut rest = x;
    while let Some(i) = rest.find('<') {
        let Some(j) = rest[i..].find('>') else {
            return false;
        };
        let tag = &rest[i + 1..i + j];
        rest = &rest[i + j + 1..];
        if tag.starts_with('?') {
            continue;
        }
        let name = |t: &str| {
            t.split_whitespace()
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_owned()
        };
        if let Some(closing) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(closing) {
                return false;
            }
        } else if !tag.ends_with('/') {
            stack.push(name(tag));
        }
    }
    stack.is_empty()
}

/// The report folder of pipelines/ci.yaml: `reports/ci-<id>/`.
fn report_dir(p: &Project) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(p.store().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.file_name().unwrap().to_string_lossy().starts_with("ci-"))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn the_ci_golden_file_passes_and_perturbations_fail() {
    let p = Project::new();
    let f = repo().join("pipelines/ci.yaml");
    let f = f.to_str().unwrap();
    let o = p.eqlab(&["check", f]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("37 passed, 0 failed"), "{out}");
    let xml = std::fs::read_to_string(report_dir(&p).join("check.xml")).unwrap();
    assert!(
        well_formed_xml(&xml) && xml.contains("tests=\"37\" failures=\"0\""),
        "{xml}"
    );

    // A tolerance tightened below the achieved error.
    let golden = std::fs::read_to_string(repo().join("tests/golden/ci.yaml")).unwrap();
    let tight = golden.replacen("abs: 0.15", "abs: 1.0e-12", 1);
    let g = p.write("tight.yaml", &tight);
    let o = p.eqlab(&["check", f, "--golden", g.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("simulate.quadratic.acf_turnover_1")
            && out.contains("FAIL")
            && out.contains("36 passed, 1 failed"),
        "{out}"
    );
    let xml = std::fs::read_to_string(report_dir(&p).join("check.xml")).unwrap();
    assert!(
        well_formed_xml(&xml) && xml.contains("failures=\"1\""),
        "{xml}"
    );

    // A perturbed stage parameter.
    let o = p.eqlab(&["check", f, "--set", "calibrate.kappa=0.6"]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("matching.q=1.5.lambda") && out.contains("FAIL"),
        "{out}"
    );

    // A value that does not exist is a failure, not a pass.
    let missing = p.write(
        "missing.yaml",
        "checks:\n  - {value: calibrate.nope, expected: 1, rel: 1}\n",
    );
    let o = p.eqlab(&["check", f, "--golden", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stdout).contains("not found: stage 'calibrate' has no scalar 'nope'"),
        "{}",
        text(&o.stdout)
    );

    // --update rewrites expected values, keeping tolerances.
    let up = p.write(
        "up.yaml",
        "checks:\n  - {value: calibrate.mu_bar, expected: 1, rel: 1.0e-12}\n",
    );
    p.ok(&["check", f, "--golden", up.to_str().unwrap(), "--update"]);
    let updated = std::fs::read_to_string(&up).unwrap();
    assert!(
        updated.contains("0.0722523254") && updated.contains("1.0e-12"),
        "{updated}"
    );
    p.ok(&["check", f, "--golden", up.to_str().unwrap()]);
}
