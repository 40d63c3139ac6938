//! Acceptance tests of the engine, driving the real binary on a temporary store.

mod common;
use common::{Project, text};
use std::time::{Duration, Instant};

const THREE: &str = r#"
name: three
params:
  scale: 2.0
stages:
  a:
    kind: generate
    with: {rows: 50, scale: "${params.scale}"}
  b:
    kind: generate
    needs: a
    with: {rows: 30, offset: 1.0}
  c:
    kind: describe
    needs: b
"#;

#[test]
fn second_run_executes_nothing() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    let out = p.ok(&["run", f, "--no-progress"]);
    assert_eq!(p.ran(), ["a", "b", "c"], "{out}");
    let out = p.ok(&["run", f, "--no-progress"]);
    assert!(p.ran().is_empty(), "second run ran {:?}\n{out}", p.ran());
    assert!(out.contains("3 stages: 0 ran, 3 cached"), "{out}");
}

#[test]
fn a_changed_parameter_reruns_exactly_its_stage_and_downstream_and_switching_back_is_free() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    // explain names the parameter that changed.
    let out = p.ok(&["explain", f, "b", "--set", "b.offset=2.5"]);
    assert!(
        out.contains("stage b: run") && out.contains("parameter params.offset: 1.0 → 2.5"),
        "{out}"
    );
    p.ok(&["run", f, "--no-progress", "--set", "b.offset=2.5"]);
    assert_eq!(p.ran(), ["b", "c"]);
    p.ok(&["run", f, "--no-progress"]);
    assert!(p.ran().is_empty(), "switching back reran {:?}", p.ran());
    // A pipeline parameter feeds `a` through ${params.scale}.
    p.ok(&["run", f, "--no-progress", "--set", "params.scale=3"]);
    assert_eq!(p.ran(), ["a", "b", "c"]);
}

#[test]
fn writing_a_default_explicitly_does_not_change_the_key() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    p.ok(&[
        "run",
        f,
        "--no-progress",
        "--set",
        "b.scale=1",
        "--set",
        "c.table=table",
    ]);
    assert!(p.ran().is_empty(), "{:?}", p.ran());
}

#[test]
fn kill_9_during_a_slow_stage_leaves_a_consistent_store() {
    let p = Project::new();
    let f = p.write(
        "slow.yaml",
        "stages:\n  fast:\n    kind: generate\n  slow:\n    kind: generate\n    needs: fast\n    with: {sleep_ms: 3000}\n",
    );
    let f = f.to_str().unwrap();
    let mut child = p
        .cmd(&["run", f, "--no-progress"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until `fast` is recorded, i.e. `slow` is running.
    p.wait_for_records(1);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let records = p.records();
    assert_eq!(records.len(), 1, "only the finished stage has a record");
    for r in &records {
        for t in r["tables"].as_object().unwrap().values() {
            let obj = p
                .store()
                .join("objects")
                .join(format!("{}.parquet", t["object"].as_str().unwrap()));
            assert!(obj.exists(), "record points at missing {}", obj.display());
        }
    }
    p.ok(&["run", f, "--no-progress"]);
    assert_eq!(p.ran(), ["slow"]);
}

#[test]
fn ctrl_c_stops_cleanly_without_a_record_for_the_interrupted_stage() {
    let p = Project::new();
    let f = p.write(
        "slow.yaml",
        "stages:\n  fast:\n    kind: generate\n  slow:\n    kind: generate\n    needs: fast\n    with: {sleep_ms: 20000}\n  after:\n    kind: describe\n    needs: slow\n",
    );
    let f = f.to_str().unwrap();
    let child = p
        .cmd(&["run", f, "--no-progress"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    p.wait_for_records(1);
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the slow stage did not stop promptly"
    );
    assert_eq!(o.status.code(), Some(130), "{}", text(&o.stderr));
    let last = p.last_run();
    assert_eq!(
        (
            last["fast"].as_str(),
            last["slow"].as_str(),
            last["after"].as_str()
        ),
        ("ran", "interrupted", "skipped")
    );
    assert_eq!(p.records().len(), 1, "no record for the interrupted stage");
}

#[test]
fn a_corrupted_object_is_detected_named_and_recomputed() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let rec = p.record("b");
    let object = rec["tables"]["table"]["object"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = p.store().join("objects").join(format!("{object}.parquet"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let o = p.eqlab(&["run", f, "--no-progress"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("stage 'b'") && err.contains(&object) && err.contains("damaged"),
        "{err}"
    );
    assert_eq!(
        p.ran(),
        ["b"],
        "b recomputed; c is unchanged because b's content is the same"
    );
    // The object is intact again.
    p.ok(&["run", f, "--no-progress"]);
    assert!(p.ran().is_empty());
}

#[test]
fn two_concurrent_runs_share_one_store() {
    let p = Project::new();
    let f = p.write(
        "par.yaml",
        "stages:\n  a:\n    kind: generate\n    with: {sleep_ms: 600}\n  b:\n    kind: generate\n    needs: a\n    with: {sleep_ms: 300}\n  c:\n    kind: describe\n    needs: b\n",
    );
    let f = f.to_str().unwrap();
    let c1 = p.cmd(&["run", f, "--no-progress"]).output();
    let h = {
        let mut cmd = p.cmd(&["run", f, "--no-progress"]);
        std::thread::spawn(move || cmd.output().unwrap())
    };
    let (o1, o2) = (c1.unwrap(), h.join().unwrap());
    assert!(o1.status.success(), "{}", text(&o1.stderr));
    assert!(o2.status.success(), "{}", text(&o2.stderr));
    let records = p.records();
    assert_eq!(records.len(), 3);
    // Each stage was computed once in total; the other run reused it.
    let runs = p.runs();
    for stage in ["a", "b", "c"] {
        let ran = runs
            .iter()
            .flat_map(|r| r["stages"].as_array().unwrap().iter())
            .filter(|s| s["stage"] == stage && s["status"] == "ran")
            .count();
        assert!(ran <= 1, "stage {stage} computed {ran} times");
    }
    let before: Vec<_> = records.iter().map(|r| r.to_string()).collect();
    p.ok(&["run", f, "--no-progress"]);
    let after: Vec<_> = p.records().iter().map(|r| r.to_string()).collect();
    assert_eq!(before, after);
}

#[test]
fn a_nan_output_fails_its_stage_and_only_its_dependents() {
    let p = Project::new();
    let f = p.write(
        "nan.yaml",
        "stages:\n  good:\n    kind: generate\n  bad:\n    kind: generate\n    with: {nan_at: 3}\n  after_bad:\n    kind: describe\n    needs: bad\n  after_good:\n    kind: describe\n    needs: good\n",
    );
    let o = p.eqlab(&["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("stage 'bad'") && err.contains("column 'value'") && err.contains("non-finite"),
        "{err}"
    );
    let last = p.last_run();
    assert_eq!(last["bad"], "failed");
    assert_eq!(last["after_bad"], "skipped");
    assert_eq!(last["good"], "ran");
    assert_eq!(last["after_good"], "ran");
    assert!(
        p.records_of("bad").is_empty() && p.records_of("good").len() == 1,
        "no record for a failed stage"
    );
}

#[test]
fn plan_says_what_would_run_and_why() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    let out = p.ok(&["plan", f]);
    assert!(out.contains("never computed"), "{out}");
    p.ok(&["run", f, "--no-progress"]);
    let out = p.ok(&["plan", f, "--set", "a.rows=7"]);
    assert!(out.contains("params.rows: 50 → 7"), "{out}");
    assert!(out.contains("pending"), "{out}");
}

#[test]
fn only_runs_a_stage_with_what_it_needs_and_force_recomputes() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress", "--only", "b"]);
    assert_eq!(p.ran(), ["a", "b"]);
    p.ok(&["run", f, "--no-progress", "--force", "b"]);
    assert_eq!(p.ran(), ["b", "c"]);
}

#[test]
fn gc_deletes_unreferenced_objects_only() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let stray = p.store().join("objects").join("deadbeef.parquet");
    std::fs::write(&stray, b"junk").unwrap();
    let out = p.ok(&["gc"]);
    assert!(out.contains("deleted 0 records and 1 objects"), "{out}");
    assert!(!stray.exists());
    p.ok(&["run", f, "--no-progress"]);
    assert!(p.ran().is_empty(), "gc must keep referenced objects");
}

#[test]
fn show_and_graph_work() {
    let p = Project::new();
    let f = p.write("three.yaml", THREE);
    let f = f.to_str().unwrap();
    let o = p.eqlab(&["show", f, "c"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("eqlab run"), "{}", text(&o.stderr));
    p.ok(&["run", f, "--no-progress"]);
    let out = p.ok(&["show", f, "c", "summary"]);
    assert!(out.contains("column,type,count"), "{out}");
    let out = p.ok(&["graph", f, "--format", "dot"]);
    assert!(
        out.contains("\"a\" -> \"b\"") && out.contains("\"b\" -> \"c\""),
        "{out}"
    );
    let out = p.ok(&["graph", f]);
    assert!(out.contains("a --> b"), "{out}");
}
