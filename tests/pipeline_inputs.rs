//! Pipeline text and command lines that used to crash, grow without bound, be silently misread
//! or get a misleading message (issue 12, cases 02, 03, 04, 08, 11, 12 and 13): each now gets
//! its one accurate, located answer. The hostile-file corpus is in tests/malformed.rs.

mod common;
use common::{Project, text};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs eqlab in the project with extra environment variables; (exit code, stdout, stderr).
fn eqlab_env(p: &Project, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut c = p.cmd(args);
    c.env_remove("EQLAB_MAX_INSTANCES")
        .env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("run eqlab");
    (o.status.code(), text(&o.stdout), text(&o.stderr))
}

fn eqlab(p: &Project, args: &[&str]) -> (Option<i32>, String, String) {
    eqlab_env(p, args, &[])
}

/// The instance names `plan` lists (first column, header and summary left out).
fn planned(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip(1)
        .filter(|l| !l.contains(" stages would run"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn a_parameter_reference_cycle_is_a_located_error() {
    let p = Project::new();
    p.write(
        "cycle.yaml",
        "params: {a: \"${params.b}\", b: \"${params.a}\"}\nstages:\n  g:\n    kind: generate\n    with: {offset: \"${params.a}\"}\n",
    );
    for verb in ["plan", "run"] {
        let (code, _, err) = eqlab(&p, &[verb, "cycle.yaml"]);
        assert_eq!(code, Some(2), "{verb}: {err}");
        assert_eq!(
            err.trim(),
            "error: cycle.yaml:1:13: params.a: reference cycle params.a → params.b → params.a"
        );
    }
}

#[test]
fn a_huge_range_is_refused_before_anything_is_allocated() {
    let p = Project::new();
    p.write(
        "num1e20.yaml",
        "stages:\n  a:\n    kind: generate\n    with: {offset: \"${sweep.o}\"}\n    sweep: {grid: {o: {range: {start: 0, stop: 1, num: 1e20}}}}\n",
    );
    let (code, _, err) = eqlab(&p, &["plan", "num1e20.yaml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(
            "error: num1e20.yaml:5:56: stages.a.sweep.grid.o.range.num: 1e20 points (limit 100000 instances per pipeline;"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_huge_grid_is_counted_before_it_is_expanded() {
    let p = Project::new();
    p.write(
        "grid100x4.yaml",
        "stages:\n  pde:\n    kind: finite_horizon_pde\n    sweep:\n      grid:\n        q: {range: {start: 1.01, stop: 2.0, num: 100}}\n        lambda: {range: {start: 1.0e-6, stop: 1.0e-5, num: 100}}\n        beta: {range: {start: 1.0e10, stop: 3.0e10, num: 100}}\n        horizon: {range: {start: 5.0, stop: 25.0, num: 100}}\n",
    );
    // Under a 2 GB address-space limit, as the case's repro runs it.
    let start = Instant::now();
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_eqlab"))
        .args(["--store", "st", "plan", "grid100x4.yaml"])
        .env_remove("EQLAB_MAX_INSTANCES")
        .current_dir(p.path())
        .output()
        .expect("run eqlab");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20), "{err}");
    assert_eq!(
        err.trim(),
        "error: grid100x4.yaml:5:7: stages.pde.sweep: 100000000 instances (limit 100000 per pipeline; raise it with --max-instances or the EQLAB_MAX_INSTANCES environment variable)"
    );
}

#[test]
fn the_instance_limit_is_documented_and_can_be_raised() {
    let p = Project::new();
    p.write(
        "three.yaml",
        "stages:\n  a:\n    kind: generate\n    replicates: 2\n    sweep: {grid: {rows: [1, 2, 3]}}\n",
    );
    let (code, _, err) = eqlab_env(&p, &["plan", "three.yaml"], &[("EQLAB_MAX_INSTANCES", "5")]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "error: three.yaml:5:12: stages.a.sweep: 6 instances (limit 5 per pipeline; raise it with --max-instances or the EQLAB_MAX_INSTANCES environment variable)"
    );
    let (code, out, err) = eqlab_env(&p, &["plan", "three.yaml"], &[("EQLAB_MAX_INSTANCES", "6")]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(planned(&out).len(), 6, "{out}");
    let (code, _, err) = eqlab_env(&p, &["plan", "three.yaml"], &[("EQLAB_MAX_INSTANCES", "0")]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "error: EQLAB_MAX_INSTANCES=0: expected a positive whole number of instances, found '0'"
    );
}

#[test]
fn yaml_1_1_words_keep_their_text() {
    let p = Project::new();
    p.write(
        "param-n.yaml",
        "name: param-n\nparams: {n: 5, y: 2}\nstages:\n  a:\n    kind: generate\n    with: {rows: \"${params.n}\", sleep_ms: \"${params.y}\"}\n",
    );
    let (code, out, err) = eqlab(&p, &["plan", "param-n.yaml"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(planned(&out), ["a"]);
    let (code, out, _) = eqlab(&p, &["explain", "param-n.yaml", "a"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("params.rows = 5\n"), "{out}");
    let (code, out, _) = eqlab(&p, &["explain", "param-n.yaml", "a", "--set", "params.n=3"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("params.rows = 3\n"), "{out}");
    // Stage and axis names spelt like YAML 1.1 booleans; `on` as a value stays a string.
    p.write(
        "names.yaml",
        "stages:\n  no:\n    kind: generate\n    sweep: {grid: {off: [1, 2]}}\n    with: {rows: \"${sweep.off}\"}\n  yes:\n    kind: collect\n    needs: no\n    with: {scalars: [on]}\n",
    );
    let (code, out, err) = eqlab(&p, &["plan", "names.yaml"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(planned(&out), ["no[off=1]", "no[off=2]", "yes"]);
    // `true` and `false` are the only booleans.
    p.write(
        "bools.yaml",
        "stages:\n  m:\n    kind: turnover_matching\n    with: {proportional: no}\n",
    );
    let (code, _, err) = eqlab(&p, &["plan", "bools.yaml"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "error: bools.yaml:4:26: stages.m.with.proportional: expected a boolean, found a string"
    );
}

#[test]
fn set_errors_are_located_on_the_command_line() {
    let p = Project::new();
    p.write(
        "p.yaml",
        "name: errloc\nstages:\n  a:\n    kind: generate\n    with: {rows: 3, scale: x}\n",
    );
    let (code, _, err) = eqlab(
        &p,
        &["plan", "p.yaml", "--set", "a.rows=x", "--set", "zz.q=1"],
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "error: --set a.rows=x: stages.a.with.rows: expected an integer, found a string\n\
         --set zz.q=1: no stage or `params` called 'zz' (did you mean `a`?)\n\
         p.yaml:5:28: stages.a.with.scale: expected a number, found a string\n\
         2 problems on the command line, 1 problem in the pipeline file"
    );
    // A parameter given on the command line is blamed there, not where it is used.
    p.write(
        "q.yaml",
        "params: {n: 5}\nstages:\n  a:\n    kind: generate\n    with: {rows: \"${params.n}\"}\n",
    );
    let (code, _, err) = eqlab(&p, &["plan", "q.yaml", "--set", "params.n=x"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "error: --set params.n=x: stages.a.with.rows: expected an integer, found a string"
    );
}

#[test]
fn range_and_logspace_sweep_integer_parameters() {
    let p = Project::new();
    p.write(
        "range.yaml",
        "stages:\n  g:\n    kind: generate\n    sweep:\n      grid:\n        rows: {range: {start: 10, stop: 30, num: 3}}\n",
    );
    p.write(
        "list.yaml",
        "stages:\n  g:\n    kind: generate\n    sweep:\n      grid:\n        rows: [10, 20, 30]\n",
    );
    p.write(
        "log.yaml",
        "stages:\n  g:\n    kind: generate\n    sweep:\n      grid:\n        rows: {logspace: {start: 10, stop: 1000, num: 3}}\n",
    );
    let (code, out, err) = eqlab(&p, &["plan", "range.yaml"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(planned(&out), ["g[rows=10]", "g[rows=20]", "g[rows=30]"]);
    // A range point is the same integer as the list's: the same key.
    let key = |file: &str| {
        let (code, out, err) = eqlab(&p, &["explain", file, "g[rows=20]"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("params.rows = 20\n"), "{out}");
        out.lines()
            .find(|l| l.starts_with("key "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert_eq!(key("range.yaml"), key("list.yaml"));
    let (code, out, err) = eqlab(&p, &["plan", "log.yaml"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(planned(&out).len(), 3, "{out}");
    let (_, out, _) = eqlab(&p, &["explain", "log.yaml", "g[rows=1000]"]);
    assert!(out.contains("params.rows = 1000\n"), "{out}");
    // A range with points that are not whole: one error, at the range.
    p.write(
        "frac.yaml",
        "stages:\n  g:\n    kind: generate\n    sweep:\n      grid:\n        rows: {range: {start: 10, stop: 12, num: 5}}\n",
    );
    let (code, _, err) = eqlab(&p, &["plan", "frac.yaml"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "error: frac.yaml:6:23: stages.g.sweep.grid.rows: expected an integer, found 10.5, which is not a whole number (for stages.g.with.rows)"
    );
}

#[test]
fn range_and_list_points_pair_by_value() {
    let p = Project::new();
    p.write(
        "pair.yaml",
        "stages:\n  a:\n    kind: generate\n    sweep: {grid: {rows: {range: {start: 10, stop: 30, num: 3}}}}\n  b:\n    kind: generate\n    needs: a\n    sweep: {grid: {rows: [10, 20, 30]}}\n",
    );
    let (code, out, err) = eqlab(&p, &["graph", "--format", "dot", "pair.yaml"]);
    assert_eq!(code, Some(0), "{err}");
    let edges: Vec<&str> = out.lines().filter(|l| l.contains("->")).collect();
    assert_eq!(
        edges,
        [
            "  \"a[rows=10]\" -> \"b[rows=10]\";",
            "  \"a[rows=20]\" -> \"b[rows=20]\";",
            "  \"a[rows=30]\" -> \"b[rows=30]\";"
        ]
    );
}

#[test]
fn a_directory_is_not_called_missing_and_an_empty_axis_is_reported_once() {
    let p = Project::new();
    std::fs::create_dir(p.path().join("data")).expect("mkdir");
    p.write(
        "dir.yaml",
        "stages:\n  a:\n    kind: paper_inputs\n    with: {path: data}\n",
    );
    let (code, _, err) = eqlab(&p, &["plan", "dir.yaml"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        format!(
            "error: dir.yaml:4:18: stages.a.with.path: {} is a directory, not a file",
            std::path::Path::new(".").join("data").display()
        )
    );
    p.write(
        "empty.yaml",
        "stages:\n  a:\n    kind: generate\n    with: {rows: \"${sweep.k}\"}\n    sweep: {grid: {k: []}}\n",
    );
    let (code, _, err) = eqlab(&p, &["plan", "empty.yaml"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "error: empty.yaml:5:23: stages.a.sweep.grid.k: expected a non-empty list of values, {range: {start, stop, num}} or {logspace: {start, stop, num}}"
    );
}
