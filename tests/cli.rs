//! Command-line plumbing and regression-gate semantics (issue 12, kinds 6 and 7): a closed pipe
//! ends every verb quietly; `check` never averages different sweep points; `check --update`
//! never reports success while an entry was not found.

mod common;
use common::{Project, text};

const SWEPT: &str = "name: sweepcheck\nstages:\n  g:\n    kind: generate\n    with: {rows: 5}\n    sweep:\n      grid:\n        scale: [1.0, 100.0]\n";

/// inputs/14: `eqlab VERB | head -1` — the reader goes away; eqlab must not panic.
#[test]
fn a_closed_pipe_ends_every_verb_quietly() {
    let p = Project::new();
    let f = p.write("p.yaml", SWEPT);
    let fs = f.to_str().unwrap();
    p.ok(&["run", fs, "--no-progress"]);
    for args in [
        vec!["kinds"],
        vec!["plan", fs],
        vec!["explain", fs, "g[scale=1]"],
        vec!["show", fs, "g[scale=1]", "--rows", "5"],
        vec!["graph", fs],
    ] {
        {
            // Its first write fails with EPIPE.
            let (code, err) = p.with_closed_stdout(&args);
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert_eq!(code, Some(141), "{args:?}: {err}");
            assert!(err.is_empty(), "{args:?} must stop quietly: {err}");
        }
    }
}

/// `eqlab run … 2>&1 | head -1`: stderr goes away too; the run still finishes every stage
/// and saves its log, then ends quietly (141), never with a panic halfway.
#[test]
fn a_closed_stderr_does_not_stop_a_run() {
    let p = Project::new();
    let f = p.write(
        "p.yaml",
        "stages:\n  gen:\n    kind: generate\n    with: {rows: 10, sleep_ms: 300}\n  desc:\n    kind: describe\n    needs: gen\n",
    );
    let fs = f.to_str().unwrap();
    assert_eq!(
        p.with_closed_output(&["run", fs, "--no-progress"]),
        Some(141)
    );
    assert_eq!(p.last_run().len(), 2, "the run log was not saved");
    let plan = p.ok(&["plan", fs]);
    assert!(plan.contains("0 of 2 stages would run"), "{plan}");
}

/// `show` / `explain` of a swept stage's declared name list its points to choose from.
#[test]
fn show_and_explain_of_a_swept_stage_name_its_points() {
    let p = Project::new();
    let f = p.write("p.yaml", SWEPT);
    let fs = f.to_str().unwrap();
    p.ok(&["run", fs, "--no-progress"]);
    for verb in ["show", "explain"] {
        let o = p.eqlab(&[verb, fs, "g"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{verb}: {err}");
        assert!(
            err.contains("swept over 2 points") && err.contains("g[scale=100]"),
            "{verb}: {err}"
        );
    }
    let o = p.eqlab(&["show", fs, "nope"]);
    assert!(
        text(&o.stderr).contains("no stage 'nope'"),
        "{}",
        text(&o.stderr)
    );
}

/// A mistyped `--store` is seen at once: verbs that need stored results fail naming the
/// store and create nothing; `plan` says every stage is new. Counts read in the singular.
#[test]
fn verbs_reading_a_store_that_is_not_there_say_so_and_create_nothing() {
    let p = Project::new();
    let f = p.write("p.yaml", "stages:\n  a:\n    kind: generate\n");
    let fs = f.to_str().unwrap();
    for args in [vec!["show", fs, "a"], vec!["report", fs]] {
        let o = p.eqlab(&args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("no store at") && err.contains("--store"),
            "{err}"
        );
        assert!(
            !p.store().exists(),
            "{args:?} created {}",
            p.store().display()
        );
    }
    let o = p.eqlab(&["plan", fs]);
    assert!(o.status.success());
    assert!(
        text(&o.stderr).contains("no store at") && text(&o.stdout).contains("never computed"),
        "{}",
        text(&o.stderr)
    );
    let out = p.ok(&["run", fs, "--no-progress"]);
    assert!(out.contains("1 stage: 1 ran, 0 cached"), "{out}");
}

/// inputs/10: a swept stage's scalar is ambiguous: `check` names the points to choose from
/// instead of averaging them.
#[test]
fn check_refuses_to_average_different_sweep_points() {
    let p = Project::new();
    let f = p.write("p.yaml", SWEPT);
    let g = p.write(
        "golden.yaml",
        "checks:\n  - value: g.mean\n    expected: -90.0\n    se: 1\n",
    );
    let o = p.eqlab(&[
        "check",
        f.to_str().unwrap(),
        "--golden",
        g.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("swept over 2 points")
            && out.contains("g[scale=1]")
            && out.contains("g[scale=100]"),
        "{out}"
    );
    // Naming one point works.
    let g1 = p.write(
        "one.yaml",
        "checks:\n  - value: g[scale=1].rows\n    expected: 5\n    abs: 0\n",
    );
    let o = p.eqlab(&[
        "check",
        f.to_str().unwrap(),
        "--golden",
        g1.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stdout));
}

/// Replicates of one point are still averaged (mean and standard error).
#[test]
fn check_averages_replicates_of_one_point() {
    let p = Project::new();
    let f = p.write(
        "r.yaml",
        "name: reps\nstages:\n  g:\n    kind: generate\n    with: {rows: 5}\n    replicates: 3\n",
    );
    let g = p.write(
        "golden.yaml",
        "checks:\n  - value: g.rows\n    expected: 5\n    abs: 0\n",
    );
    let o = p.eqlab(&[
        "check",
        f.to_str().unwrap(),
        "--golden",
        g.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
}

/// `check --update` with an entry that cannot be evaluated fails and leaves the file alone.
#[test]
fn check_update_never_reports_success_with_a_missing_entry() {
    let p = Project::new();
    let f = p.write("p.yaml", SWEPT);
    let golden = "checks:\n  - value: g[scale=1].rows\n    expected: 4\n    abs: 0\n  - value: g[scale=1].no_such_scalar\n    expected: 1\n    abs: 0\n";
    let g = p.write("golden.yaml", golden);
    let o = p.eqlab(&[
        "check",
        f.to_str().unwrap(),
        "--golden",
        g.to_str().unwrap(),
        "--update",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("not updated") && err.contains("no_such_scalar"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&g).unwrap(), golden);
}
