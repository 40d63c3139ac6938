//! The Slurm executor on a real cluster (`.ci/slurm.sh` starts a one-node one on 127.0.0.1):
//! records and objects bit-identical to a local run (also for the paper pipelines), 0 jobs on
//! a rerun, sweeps chunked by MaxArraySize, a failing stage whose dependents do not stay
//! queued, a job cancelled mid-stage, `--detach` with `status` and `cancel`, packing. Without Slurm these tests skip loudly,
//! except under CI (CI=true or EQLAB_TEST_SLURM=1), where a missing cluster is a failure.

mod common;
use common::{Project, http, repo, text};
use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A chain (a → b → c), a 12-point sweep and a per-point describe (`foreach`), collected.
const PIPELINE: &str = r#"
name: slurmtest
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
    resources: {cpus: 1, mem: 100M, time: "5:00"}
  c:
    kind: describe
    needs: b
  pts:
    kind: generate
    with: {rows: 20, offset: "${sweep.o}"}
    sweep:
      grid:
        o: {range: {start: 0.0, stop: 11.0, num: 12}}
  d:
    kind: describe
    foreach: pts
  table:
    kind: collect
    needs: d
    with: {scalars: [value.mean]}
"#;

/// Whether a Slurm cluster answers; panics under CI when it does not, otherwise says loudly
/// that the test is skipped.
fn slurm_up(test: &str) -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && text(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mix", "alloc"].contains(&l.trim()))
        });
    let ci = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var_os("EQLAB_TEST_SLURM").is_some();
    if !up {
        assert!(
            !ci,
            "{test}: no Slurm cluster answers (sinfo), but CI requires one: run .ci/slurm.sh"
        );
        eprintln!("*** SKIPPED {test}: no Slurm cluster (start one with .ci/slurm.sh)");
    }
    up
}

/// The cluster's MaxArraySize.
fn max_array_size() -> usize {
    let o = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .expect("scontrol");
    text(&o.stdout)
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok())?
        })
        .unwrap_or(1001)
}

/// File name → bytes of every file in `dir` of the project's store (`records`, `objects`).
fn files(p: &Project, dir: &str) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(p.store().join(dir)) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Record file name → bytes.
fn records(p: &Project) -> BTreeMap<String, Vec<u8>> {
    files(p, "records")
}

/// `eqlab run FILE --no-progress --executor slurm EXTRA…` in project `p`.
fn slurm_run(p: &Project, file: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        file.to_str().unwrap(),
        "--no-progress",
        "--executor",
        "slurm",
    ];
    args.extend_from_slice(extra);
    p.eqlab(&args)
}

/// Calls `f` every 200 ms until it returns `Some`, for at most `secs` seconds.
fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The number of jobs a Slurm run said it submitted, and their ids.
fn submitted(stderr: &str) -> (usize, Vec<String>) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("slurm: submitted "))
        .unwrap_or_else(|| panic!("no submission line in:\n{stderr}"));
    let n = line["slurm: submitted ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ids = line
        .split("job ids ")
        .nth(1)
        .map(|s| {
            s.trim_end_matches(')')
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    (n, ids)
}

/// Array jobs of `ids` Slurm still lists.
fn queued(ids: &[String]) -> Vec<String> {
    let o = Command::new("squeue")
        .args(["-h", "-r", "-o", "%F %K %T"])
        .output()
        .expect("squeue");
    text(&o.stdout)
        .lines()
        .filter(|l| ids.iter().any(|id| l.split_whitespace().next() == Some(id)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn slurm_records_are_bit_identical_to_local_ones_sweeps_are_chunked_and_a_rerun_submits_nothing() {
    if !slurm_up("slurm_records_are_bit_identical…") {
        return;
    }
    let local = Project::new();
    let f = local.write("p.yaml", PIPELINE);
    local.ok(&["run", f.to_str().unwrap(), "--no-progress"]);

    let sl = Project::new();
    let file = sl.write("p.yaml", PIPELINE);
    let o = slurm_run(&sl, &file, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "slurm run failed:\n{out}\n{err}");
    // a, b, c: one job each; pts and d: 12 tasks each in chunks of MaxArraySize; table: one.
    let chunks = 12usize.div_ceil(max_array_size());
    let (n, _) = submitted(&err);
    assert_eq!(n, 4 + 2 * chunks, "{err}");
    assert!(out.contains("28 stages: 28 ran, 0 cached"), "{out}");
    assert_eq!(sl.ran().len(), 28);
    assert_eq!(
        records(&local),
        records(&sl),
        "records differ between the local and the Slurm run"
    );

    // A rerun submits nothing.
    let o = slurm_run(&sl, &file, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(submitted(&err).0, 0, "{err}");
    assert!(out.contains("28 stages: 0 ran, 28 cached"), "{out}");

    // A changed parameter: exactly the chain below it is submitted, and matches a local run.
    let o = slurm_run(&sl, &file, &["--set", "b.offset=2.5"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(submitted(&err).0, 2, "{err}");
    assert_eq!(sl.ran(), ["b", "c"]);
    local.ok(&[
        "run",
        local.path().join("p.yaml").to_str().unwrap(),
        "--no-progress",
        "--set",
        "b.offset=2.5",
    ]);
    assert_eq!(records(&local), records(&sl));
}

#[test]
fn a_failing_stage_fails_the_run_names_the_stage_and_leaves_nothing_queued() {
    if !slurm_up("a_failing_stage_fails_the_run…") {
        return;
    }
    let p = Project::new();
    let f = p.write(
        "bad.yaml",
        "stages:\n  ok:\n    kind: generate\n  bad:\n    kind: generate\n    needs: ok\n    with: {nan_at: 3}\n  after:\n    kind: describe\n    needs: bad\n  later:\n    kind: describe\n    needs: after\n",
    );
    let o = slurm_run(&p, &f, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("4 stages: 1 ran, 0 cached, 1 failed, 2 skipped"),
        "{out}\n{err}"
    );
    // The summary names the stage and shows its log's tail (the non-finite check's message).
    assert!(
        err.contains("stage 'bad' (generate) failed") && err.contains("non-finite value"),
        "{err}"
    );
    let (_, ids) = submitted(&err);
    assert_eq!(ids.len(), 4, "{err}");
    let left = queued(&ids);
    assert!(left.is_empty(), "jobs left in the queue: {left:?}");
    let runs = p.last_run();
    assert_eq!(runs["after"], "skipped");
    assert_eq!(runs["later"], "skipped");
}

#[test]
fn without_slurm_the_slurm_executor_fails_at_once_with_a_clear_message() {
    let p = Project::new();
    let f = p.write("one.yaml", "stages:\n  a:\n    kind: generate\n");
    let o = p
        .cmd(&["run", f.to_str().unwrap(), "--executor", "slurm"])
        .env("PATH", p.path())
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Slurm is not installed here") && err.contains("scontrol"),
        "{err}"
    );
    assert!(
        !p.store().join("records").exists() || records(&p).is_empty(),
        "nothing may be computed"
    );
}

#[test]
fn resources_are_checked_with_their_location_and_are_never_part_of_the_key() {
    let p = Project::new();
    let f = p.write("r.yaml", "stages:\n  a:\n    kind: generate\n");
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    p.write(
        "r.yaml",
        "stages:\n  a:\n    kind: generate\n    resources: {cpus: 4, mem: 8G, time: \"1-00:00:00\", gpus: 1}\n",
    );
    let out = p.ok(&["run", f, "--no-progress"]);
    assert!(p.ran().is_empty(), "resources changed the key:\n{out}");
    p.write(
        "r.yaml",
        "stages:\n  a:\n    kind: generate\n    resources: {cpus: 0, mem: 8GB, walltime: 5}\n",
    );
    let o = p.eqlab(&["plan", f]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in [
        "stages.a.resources.cpus",
        "stages.a.resources.mem",
        "stages.a.resources.walltime",
        "r.yaml:4",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn packed_instances_share_array_tasks_from_eqlab_toml() {
    if !slurm_up("packed_instances_share_array_tasks…") {
        return;
    }
    let p = Project::new();
    p.write("eqlab.toml", "[executor.slurm]\npack = 4\nmax_jobs = 2\n");
    let f = p.write(
        "pack.yaml",
        "stages:\n  pts:\n    kind: generate\n    with: {rows: 10, offset: \"${sweep.o}\"}\n    sweep:\n      grid:\n        o: {range: {start: 0.0, stop: 11.0, num: 12}}\n",
    );
    let o = slurm_run(&p, &f, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    // 12 instances, 4 per array task: 3 tasks, one array job (3 ≤ MaxArraySize).
    let expected_jobs = 3usize.div_ceil(max_array_size());
    assert_eq!(submitted(&err).0, expected_jobs, "{err}");
    assert!(out.contains("12 stages: 12 ran"), "{out}");
    // An unknown key in the table is an error naming the file and line.
    p.write("eqlab.toml", "[executor.slurm]\npack = 4\nqueue = \"x\"\n");
    let o = p.eqlab(&["run", f.to_str().unwrap(), "--executor", "slurm"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("eqlab.toml") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn paper_pipelines_under_slurm_match_local_records_and_objects_and_rerun_with_no_jobs() {
    if !slurm_up("paper_pipelines_under_slurm…") {
        return;
    }
    for file in ["pipelines/ci.yaml", "pipelines/sweep-q.yaml"] {
        let f = repo().join(file);
        let local = Project::new();
        local.ok(&["run", f.to_str().unwrap(), "--no-progress"]);
        let sl = Project::new();
        let o = slurm_run(&sl, &f, &[]);
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        assert!(
            o.status.success(),
            "{file} under Slurm failed:\n{out}\n{err}"
        );
        assert!(submitted(&err).0 > 0, "{err}");
        assert_eq!(records(&local), records(&sl), "{file}: records differ");
        assert_eq!(
            files(&local, "objects"),
            files(&sl, "objects"),
            "{file}: output objects differ"
        );
        let o = slurm_run(&sl, &f, &[]);
        let err = text(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert_eq!(
            submitted(&err).0,
            0,
            "{file}: a rerun submitted jobs:\n{err}"
        );
    }
}

/// The worker's log of `instance` in any Slurm run of the project's store.
fn instance_log(p: &Project, instance: &str) -> Option<String> {
    let logs = std::fs::read_dir(p.store().join("logs")).ok()?;
    for run in logs.flatten() {
        if let Ok(t) = std::fs::read_to_string(run.path().join(format!("{instance}.log"))) {
            return Some(t);
        }
    }
    None
}

#[test]
fn a_job_cancelled_mid_stage_leaves_no_record_and_a_rerun_completes() {
    if !slurm_up("a_job_cancelled_mid_stage…") {
        return;
    }
    let p = Project::new();
    let f = p.write(
        "slow.yaml",
        "stages:\n  slow:\n    kind: generate\n    with: {rows: 10, sleep_ms: 6000}\n  after:\n    kind: describe\n    needs: slow\n",
    );
    let o = slurm_run(&p, &f, &["--detach"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    let (_, ids) = submitted(&err);
    assert_eq!(ids.len(), 2, "{err}");
    // Wait until the worker computes (it logged the key), then cancel its job.
    wait_for("the slow stage to start computing", 120, || {
        instance_log(&p, "slow").filter(|l| l.contains("key "))
    });
    let o = Command::new("scancel").arg(&ids[0]).output().unwrap();
    assert!(o.status.success(), "scancel: {}", text(&o.stderr));
    let o = p.eqlab(&["status", f.to_str().unwrap(), "--wait"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("2 stages: 0 ran, 0 cached, 1 failed, 1 skipped"),
        "{out}"
    );
    assert!(
        err.contains("stage 'slow' (generate) failed") && err.contains("ended without a result"),
        "{err}"
    );
    assert!(records(&p).is_empty(), "a cancelled job left a record");
    assert!(queued(&ids).is_empty(), "jobs left: {:?}", queued(&ids));
    // The next run computes both.
    let o = slurm_run(&p, &f, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("2 stages: 2 ran, 0 cached"), "{out}");
    assert_eq!(records(&p).len(), 2);
}

#[test]
fn a_detached_run_is_followed_with_status_and_stopped_with_cancel() {
    if !slurm_up("a_detached_run_is_followed…") {
        return;
    }
    let p = Project::new();
    let file = p.write(
        "det.yaml",
        "stages:\n  a:\n    kind: generate\n    with: {rows: 10, sleep_ms: 3000}\n  b:\n    kind: describe\n    needs: a\n  pts:\n    kind: generate\n    with: {rows: 5, offset: \"${sweep.o}\"}\n    sweep:\n      grid:\n        o: {range: {start: 0.0, stop: 5.0, num: 6}}\n",
    );
    let f = file.to_str().unwrap();
    let o = slurm_run(&p, &file, &["--detach"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("detached: 8 instances") && out.contains("eqlab status"),
        "{out}"
    );
    // Right away: a sleeps 3 s, so the run is not done (exit 3) and b waits.
    let o = p.eqlab(&["status", f]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}\n{}", text(&o.stderr));
    assert!(out.contains(" b (job "), "{out}");
    // Then until done.
    let out = wait_for("the detached run to finish", 180, || {
        let o = p.eqlab(&["status", f]);
        match o.status.code() {
            Some(0) => Some(text(&o.stdout)),
            Some(3) => None,
            c => panic!(
                "status exited {c:?}:\n{}{}",
                text(&o.stdout),
                text(&o.stderr)
            ),
        }
    });
    assert!(out.contains("8 stages: 8 done (8 ran, 0 cached)"), "{out}");
    let shown = p.ok(&["show", f, "b"]);
    assert!(shown.contains("mean"), "{shown}");
    // `status --wait` on a finished run prints the run's summary at once.
    let out = p.ok(&["status", f, "--wait"]);
    assert!(out.contains("8 stages: 8 ran"), "{out}");

    // A forced rerun, detached and cancelled: the old record of `a` is not taken for the
    // new result, and nothing stays queued.
    let o = slurm_run(&p, &file, &["--detach", "--force", "a"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (_, ids) = submitted(&text(&o.stderr));
    let out = p.ok(&["cancel", f]);
    assert!(out.contains("cancelled run"), "{out}");
    wait_for("the cancelled jobs to leave the queue", 60, || {
        queued(&ids).is_empty().then_some(())
    });
    let o = p.eqlab(&["status", f]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("1 failed, 1 skipped"), "{out}");
    let out = p.ok(&["cancel", f]);
    assert!(out.contains("no job of a Slurm run"), "{out}");
    // Without a Slurm run of the pipeline, status says how to start one.
    let other = p.write("other.yaml", "stages:\n  a:\n    kind: generate\n");
    let o = p.eqlab(&["status", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no Slurm run of"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn cheap_instances_are_packed_from_the_timings_of_earlier_runs() {
    if !slurm_up("cheap_instances_are_packed…") {
        return;
    }
    let p = Project::new();
    let file = p.write(
        "cheap.yaml",
        "stages:\n  pts:\n    kind: generate\n    with: {rows: 10, sleep_ms: 10, offset: \"${sweep.o}\"}\n    sweep:\n      grid:\n        o: {range: {start: 0.0, stop: 199.0, num: 200}}\n",
    );
    // A dry run without history: one instance per array task (200 tasks in chunks).
    let o = slurm_run(&p, &file, &["--dry-run"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let chunks = 200usize.div_ceil(max_array_size());
    assert!(
        err.contains(&format!(
            "would submit {chunks} jobs (200 array tasks) for 200 instances"
        )),
        "{err}"
    );
    assert!(records(&p).is_empty() && !p.store().join("slurm").exists());
    // A local run records the timings; a forced Slurm run then packs them.
    p.ok(&["run", file.to_str().unwrap(), "--no-progress"]);
    let o = slurm_run(&p, &file, &["--force", "pts"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(err.contains("instances per array task"), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("slurm: submitted"))
        .unwrap();
    let tasks: usize = line
        .split(" (")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no task count in {line}"));
    assert!(
        tasks <= 10,
        "200 cheap instances took {tasks} array tasks: {line}"
    );
    assert!(out.contains("200 stages: 200 ran"), "{out}");
}

/// The S3 server `.ci/run` starts (EQLAB_TEST_S3_ENDPOINT), with the test bucket; `None`
/// (the test is skipped, loudly) outside CI when there is none; under CI a failure.
fn s3_endpoint(test: &str) -> Option<String> {
    let Ok(endpoint) = std::env::var("EQLAB_TEST_S3_ENDPOINT") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: CI=true but EQLAB_TEST_S3_ENDPOINT is not set (.ci/run starts moto)"
        );
        eprintln!("*** SKIPPED {test}: no S3 server (set EQLAB_TEST_S3_ENDPOINT, see .ci/run)");
        return None;
    };
    let code = http(&endpoint, "PUT", "/eqlab-test");
    assert!(code == 200 || code == 409, "creating the bucket: {code}");
    Some(endpoint)
}

#[test]
fn without_a_shared_filesystem_jobs_work_through_the_remote_cache() {
    let test = "without_a_shared_filesystem…";
    if !slurm_up(test) {
        return;
    }
    let Some(endpoint) = s3_endpoint(test) else {
        return;
    };
    // A project whose pipeline (in pipes/) reads ../data/inputs.csv.
    let layout = |p: &Project| {
        std::fs::create_dir_all(p.path().join("pipes")).unwrap();
        std::fs::create_dir_all(p.path().join("data")).unwrap();
        std::fs::copy(
            repo().join("data/gms-paper-inputs.csv"),
            p.path().join("data/inputs.csv"),
        )
        .unwrap();
        p.write(
            "pipes/p.yaml",
            "stages:\n  inputs:\n    kind: paper_inputs\n    with: {path: ../data/inputs.csv}\n  calibrate:\n    kind: frictionless_calibration\n    needs: inputs\n  pts:\n    kind: generate\n    with: {rows: 20, offset: \"${sweep.o}\"}\n    sweep:\n      grid:\n        o: {range: {start: 0.0, stop: 3.0, num: 4}}\n  d:\n    kind: describe\n    foreach: pts\n",
        )
    };
    let local = Project::new();
    let f = layout(&local);
    local.ok(&["run", f.to_str().unwrap(), "--no-progress"]);

    // A project with the remote at `prefix` and no shared filesystem.
    let project = |prefix: &str| {
        let p = Project::new();
        let f = layout(&p);
        p.write(
            "eqlab.toml",
            &format!(
                "[remote]\nurl = \"s3://eqlab-test/{prefix}-{}\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\n[executor.slurm]\nshared_fs = false\n",
                std::process::id()
            ),
        );
        (p, f)
    };
    // The jobs' TMPDIR (sbatch exports the environment) holds the node's own store.
    let nodes = tempfile::tempdir().unwrap();
    let node = nodes.path();
    let run_in = |p: &Project, f: &std::path::Path| {
        p.cmd(&[
            "run",
            f.to_str().unwrap(),
            "--no-progress",
            "--executor",
            "slurm",
        ])
        .env("TMPDIR", node)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("EQLAB_REMOTE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
    };
    let (p, f) = project("slurm-a");
    let run = || run_in(&p, &f);
    let o = run();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("10 stages: 10 ran, 0 cached"), "{out}");
    // The submitter's store got every result (pulled), byte for byte a local run's.
    assert_eq!(
        records(&local),
        records(&p),
        "records differ from a local run"
    );
    // The workers computed in the node store, from the files the remote carried.
    let node_store = std::fs::read_dir(node)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|d| d.to_string_lossy().contains("eqlab-node-store"))
        .expect("a node store in the jobs' TMPDIR");
    let computed = std::fs::read_dir(node_store.join("records"))
        .unwrap()
        .count();
    assert_eq!(computed, 10, "the node store holds {computed} records");
    let logs = std::fs::read_dir(node_store.join("logs")).unwrap();
    let run_dir = logs.flatten().next().unwrap().path();
    let log = std::fs::read_to_string(run_dir.join("inputs.log")).unwrap();
    assert!(
        log.contains("eqlab-node-store-") && log.contains("/work/") && log.contains("pipes/p.yaml"),
        "{log}"
    );
    // A rerun submits nothing.
    let o = run();
    assert_eq!(submitted(&text(&o.stderr)).0, 0, "{}", text(&o.stderr));
    // Another project with another remote on the same nodes: the node store has every result,
    // its remote none; the workers publish what they hold, and the run completes.
    let (q, g) = project("slurm-b");
    let o = run_in(&q, &g);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("10 stages: 10 ran, 0 cached"), "{out}");
    assert_eq!(records(&local), records(&q));
    // A failure's log tail comes back through the remote.
    p.write(
        "pipes/p.yaml",
        &(std::fs::read_to_string(&f).unwrap()
            + "  bad:\n    kind: generate\n    needs: calibrate\n    with: {nan_at: 3}\n"),
    );
    let o = run();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("logs/") && err.contains("non-finite value"),
        "{err}"
    );
}

#[test]
fn a_requeued_job_runs_again_and_the_run_completes_with_one_record() {
    if !slurm_up("a_requeued_job_runs_again…") {
        return;
    }
    let p = Project::new();
    let f = p.write(
        "rq.yaml",
        "stages:\n  slow:\n    kind: generate\n    with: {rows: 10, sleep_ms: 4000}\n",
    );
    let o = slurm_run(&p, &f, &["--detach"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (_, ids) = submitted(&text(&o.stderr));
    wait_for("the stage to start computing", 120, || {
        instance_log(&p, "slow").filter(|l| l.contains("key "))
    });
    // As preemption or a node failure would: Slurm kills the task and queues it again.
    let o = Command::new("scontrol")
        .args(["requeue", &ids[0]])
        .output()
        .unwrap();
    assert!(o.status.success(), "scontrol requeue: {}", text(&o.stderr));
    // A requeued job waits (BeginTime) before it is eligible again; let it start now.
    wait_for("the job to be pending again", 60, || {
        queued(&ids)
            .iter()
            .any(|l| l.ends_with("PENDING"))
            .then_some(())
    });
    // Not within the second of the requeue: slurmd refuses a credential issued in the same
    // second as the revocation of the killed one ("Job credential revoked") and Slurm fails
    // the job (the BeginTime delay of a requeue exists to avoid exactly that).
    std::thread::sleep(Duration::from_secs(2));
    let o = Command::new("scontrol")
        .args(["update", &format!("JobId={}", ids[0]), "StartTime=now"])
        .output()
        .unwrap();
    assert!(o.status.success(), "scontrol update: {}", text(&o.stderr));
    let out = p.ok(&["status", f.to_str().unwrap(), "--wait"]);
    assert!(out.contains("1 stage: 1 ran"), "{out}");
    assert_eq!(records(&p).len(), 1);
    let log = instance_log(&p, "slow").unwrap();
    assert_eq!(
        log.matches("key ").count(),
        2,
        "the stage did not start twice:\n{log}"
    );
    assert_eq!(log.matches("stored record").count(), 1, "{log}");
}

#[test]
fn two_runs_racing_for_the_same_keys_end_with_one_record_each() {
    if !slurm_up("two_runs_racing…") {
        return;
    }
    let p = Project::new();
    let f = p.write(
        "race.yaml",
        "stages:\n  a:\n    kind: generate\n    with: {rows: 10, sleep_ms: 3000}\n  b:\n    kind: describe\n    needs: a\n",
    );
    // Two submitters of one pipeline on one store at once (a rerun racing a requeue would do
    // the same): both jobs of a key run, the per-key lock lets one compute and the other find
    // the record.
    let first = p
        .cmd(&[
            "run",
            f.to_str().unwrap(),
            "--no-progress",
            "--executor",
            "slurm",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let second = slurm_run(&p, &f, &[]);
    let first = first.wait_with_output().unwrap();
    for o in [&first, &second] {
        assert!(
            o.status.success(),
            "{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(
            text(&o.stdout).contains("2 stages: 2 ran"),
            "{}",
            text(&o.stdout)
        );
    }
    assert_eq!(records(&p).len(), 2);
    let logs: Vec<String> = std::fs::read_dir(p.store().join("logs"))
        .unwrap()
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("a.log")).ok())
        .collect();
    assert_eq!(logs.len(), 2, "both runs' jobs of 'a' ran");
    let stored: usize = logs
        .iter()
        .map(|l| l.matches("Z stored record").count())
        .sum();
    assert_eq!(stored, 1, "'a' was computed {stored} times:\n{logs:?}");
    let reused: usize = logs.iter().map(|l| l.matches(": reused").count()).sum();
    assert_eq!(reused, 1, "{logs:?}");
}

#[test]
fn a_job_slurm_would_never_start_fails_instead_of_hanging_and_misconfigurations_are_named() {
    if !slurm_up("a_job_slurm_would_never_start…") {
        return;
    }
    let p = Project::new();
    let f = p.write(
        "big.yaml",
        "stages:\n  gen:\n    kind: generate\n    resources: {cpus: 100000}\n  d:\n    kind: describe\n    needs: gen\n",
    );
    // Slurm keeps such a job pending (PartitionConfig) forever: eqlab cancels and fails it.
    let o = slurm_run(&p, &f, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("1 failed, 1 skipped"), "{out}");
    assert!(
        err.contains("Slurm would never start job") && err.contains("resources: of stage 'gen'"),
        "{err}"
    );
    let (_, ids) = submitted(&err);
    assert!(
        queued(&ids).iter().all(|l| !l.contains("PENDING")),
        "{:?}",
        queued(&ids)
    );
    // A dry run lists the jobs and submits nothing.
    let o = slurm_run(&p, &f, &["--dry-run", "--detach"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}");
    assert!(!out.contains("detached"), "{out}");
    assert!(
        err.contains("would submit 2 jobs")
            && err.contains("job 1: stage 'd'")
            && err.contains("after job 0"),
        "{err}"
    );
    assert!(
        err.contains(
            "job 0: stage 'gen', 1 array task, 1 instance (gen), asking --cpus-per-task=100000"
        ),
        "the dry run shows what each job asks for: {err}"
    );
    // No shared filesystem and no remote: refused before anything, naming the file.
    p.write("eqlab.toml", "[executor.slurm]\nshared_fs = false\n");
    for extra in [&["--dry-run"][..], &[]] {
        let o = p
            .cmd(
                &[
                    &["run", f.to_str().unwrap(), "--executor", "slurm"][..],
                    extra,
                ]
                .concat(),
            )
            .env_remove("EQLAB_REMOTE")
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("shared_fs = false") && err.contains("eqlab.toml"),
            "{err}"
        );
    }
    // Following a run in a store that does not exist creates nothing.
    let missing = p.path().join("no-such-store");
    let o = Command::new(env!("CARGO_BIN_EXE_eqlab"))
        .args([
            "--store",
            missing.to_str().unwrap(),
            "status",
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no store at"),
        "{}",
        text(&o.stderr)
    );
    assert!(!missing.exists());
}
