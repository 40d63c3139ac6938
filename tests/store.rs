//! The store never lies: exact round trips, verified records, no path from stored data, damage
//! detected-named-recomputed, no hung runs, keys that hold what matters, honest bookkeeping.
//! Each test is one kind of fault of issue 11 (shared/cases/store/NN), driving the real binary.

mod common;
use common::{Project, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

const REF: &str = r#"
name: ulpref
stages:
  g:
    kind: generate
    with: {rows: 7, offset: 2.069230769230769, scale: 0.3}
  h:
    kind: generate
    with: {rows: 3, offset: "${stages.g.mean}"}
"#;

fn run(p: &Project, f: &Path) -> (i32, String, String) {
    let o = p.eqlab(&["run", f.to_str().unwrap(), "--no-progress"]);
    (
        o.status.code().unwrap_or(-1),
        text(&o.stdout),
        text(&o.stderr),
    )
}

fn edit_record(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut r: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut r);
    std::fs::write(path, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
}

/// store/01: a scalar read back from a record is bit-identical, so a consumer of
/// `${stages.g.mean}` keeps its key on an unchanged rerun.
#[test]
fn scalars_read_back_bit_exactly_and_unchanged_reruns_compute_nothing() {
    let p = Project::new();
    let f = p.write("ref.yaml", REF);
    assert_eq!(run(&p, &f).0, 0);
    let (code, out, _) = run(&p, &f);
    assert_eq!(code, 0);
    assert!(p.ran().is_empty(), "recomputed {:?}\n{out}", p.ran());
    let g_mean = p.record("g")["scalars"]["mean"].as_f64().unwrap();
    let h_offset = p.record("h")["components"]["params"]["offset"]
        .as_f64()
        .unwrap();
    assert_eq!(g_mean.to_bits(), h_offset.to_bits());
}

/// store/02 and the whole kind: no record field can make eqlab touch a path outside
/// `objects/`; a record with a bad object name is rejected, set aside and recomputed.
#[test]
fn record_object_names_never_become_paths_outside_the_store() {
    let p = Project::new();
    let f = p.write("ref.yaml", REF);
    assert_eq!(run(&p, &f).0, 0);
    let precious = p.path().join("precious.parquet");
    let precious_png = p.path().join("precious.png");
    for (i, bad) in [
        "../../precious",
        "/etc/passwd",
        "..",
        "",
        &"a".repeat(63),
        &"A".repeat(64),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(&precious, b"not eqlab's").unwrap();
        std::fs::write(&precious_png, b"not eqlab's").unwrap();
        let rec = p.record_path("g");
        edit_record(&rec, |r| {
            r["tables"]["table"]["object"] = Value::from(*bad);
        });
        for verb in ["plan", "show", "run"] {
            let args: Vec<&str> = match verb {
                "show" => vec!["show", f.to_str().unwrap(), "g"],
                "run" => vec!["run", f.to_str().unwrap(), "--no-progress"],
                _ => vec!["plan", f.to_str().unwrap()],
            };
            let o = p.eqlab(&args);
            assert!(
                precious.exists(),
                "case {i}: `{verb}` deleted a file outside the store"
            );
            assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
        }
        let last = p.last_run();
        assert_eq!(
            last["g"], "ran",
            "case {i}: the bad record must be recomputed"
        );
        assert_eq!(last["h"], "cached", "case {i}: h's key does not change");
    }
    assert!(precious_png.exists());
}

/// store/03, 04 and the tamper suite: every field of a record, and every kind of damage to the
/// record file or its objects, is detected, named and recomputed — never used, never fatal.
#[test]
fn every_tampered_record_field_and_damaged_object_is_detected_named_and_recomputed() {
    type Tamper = Box<dyn Fn(&Project, &Path)>;
    let field = |path: &'static str, v: Value| -> Tamper {
        Box::new(move |_, rec| {
            edit_record(rec, |r| {
                let mut x = &mut *r;
                for k in path.split('/') {
                    x = &mut x[k];
                }
                *x = v.clone();
            })
        })
    };
    let bytes = |f: fn(Vec<u8>) -> Vec<u8>| -> Tamper {
        Box::new(move |_, rec| {
            let b = std::fs::read(rec).unwrap();
            std::fs::write(rec, f(b)).unwrap();
        })
    };
    let object = |f: fn(&Path)| -> Tamper {
        Box::new(move |p, rec| {
            let r: Value = serde_json::from_slice(&std::fs::read(rec).unwrap()).unwrap();
            let o = r["tables"]["table"]["object"].as_str().unwrap();
            f(&p.store().join("objects").join(format!("{o}.parquet")));
        })
    };
    let cases: Vec<(&str, Tamper)> = vec![
        ("scalar edited", field("scalars/mean", Value::from(12345.0))),
        ("scalar removed", field("scalars/mean", Value::Null)),
        ("key edited", field("key", Value::from("0".repeat(64)))),
        (
            "kind edited",
            field("components/kind", Value::from("describe")),
        ),
        (
            "version edited",
            field("components/version", Value::from(99)),
        ),
        (
            "param edited",
            field("components/params/rows", Value::from(8)),
        ),
        ("seed edited", field("components/seed", Value::from(1))),
        ("rows edited", field("tables/table/rows", Value::from(1))),
        (
            "file hash edited",
            field("tables/table/file_b3", Value::from("f".repeat(64))),
        ),
        (
            "metrics object swapped",
            field("tables/metrics/object", Value::from("e".repeat(64))),
        ),
        (
            "checksum edited",
            field("checksum", Value::from("0".repeat(64))),
        ),
        ("format edited", field("format", Value::from(1))),
        (
            "output added",
            field(
                "tables/extra",
                serde_json::json!({"object": "a".repeat(64), "rows": 1, "file_b3": "a".repeat(64)}),
            ),
        ),
        ("truncated", bytes(|b| b[..100].to_vec())),
        ("emptied", bytes(|_| Vec::new())),
        ("not JSON", bytes(|_| b"\x00\xff garbage".to_vec())),
        (
            "byte flipped",
            bytes(|mut b| {
                let i = b.len() / 2;
                b[i] = if b[i] == b'1' { b'2' } else { b'1' };
                b
            }),
        ),
        (
            "object byte flipped",
            object(|o| {
                let mut b = std::fs::read(o).unwrap();
                let i = b.len() / 2;
                b[i] ^= 0x55;
                std::fs::write(o, b).unwrap();
            }),
        ),
        (
            "object truncated",
            object(|o| {
                let b = std::fs::read(o).unwrap();
                std::fs::write(o, &b[..b.len() / 3]).unwrap();
            }),
        ),
        (
            "object deleted",
            object(|o| std::fs::remove_file(o).unwrap()),
        ),
        (
            "object emptied",
            object(|o| std::fs::write(o, b"").unwrap()),
        ),
    ];
    let p = Project::new();
    let f = p.write("ref.yaml", REF);
    assert_eq!(run(&p, &f).0, 0);
    let clean_g = std::fs::read(p.record_path("g")).unwrap();
    // `show` without its first line (which says when the result was computed).
    let show = || {
        let out = p.ok(&["show", f.to_str().unwrap(), "g"]);
        out.split_once('\n').unwrap().1.to_owned()
    };
    let show_clean = show();
    let outside = p.path().join("outside.txt");
    std::fs::write(&outside, b"keep").unwrap();
    for (what, tamper) in &cases {
        let rec = p.record_path("g");
        tamper(&p, &rec);
        let plan = p.ok(&["plan", f.to_str().unwrap()]);
        assert!(
            plan.lines()
                .any(|l| l.starts_with("g ") && l.contains("run") && l.contains("damaged")),
            "{what}: plan must report g as damaged:\n{plan}"
        );
        let (code, out, err) = run(&p, &f);
        assert_eq!(
            code, 0,
            "{what}: the run must recompute, not abort:\n{out}\n{err}"
        );
        assert!(
            err.contains("stored result of stage 'g' is damaged"),
            "{what}: the damage must be named:\n{err}"
        );
        let last = p.last_run();
        assert_eq!(last["g"], "ran", "{what}");
        assert_eq!(last["h"], "cached", "{what}: h's inputs are unchanged");
        assert_eq!(
            std::fs::read(p.record_path("g")).unwrap(),
            clean_g,
            "{what}: the recomputed record is byte-identical to the clean one"
        );
        assert_eq!(show(), show_clean, "{what}");
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    }
    // Set-aside records are kept as evidence until gc.
    let damaged = p.store().join("damaged");
    assert!(std::fs::read_dir(&damaged).unwrap().count() >= 10);
    p.ok(&["gc"]);
    assert!(!damaged.exists() || std::fs::read_dir(&damaged).unwrap().count() == 0);
}

/// Issue 13: reruns trust the stat cache (an object unchanged since it was hashed is not read
/// again, a record checked once is not checked again), and still catch every kind of damage:
/// here every entry is warm (hashed more than the racy window after the files were written)
/// before the damage is done, including damage that keeps the size and restores the mtime.
#[test]
fn damage_is_caught_when_the_stat_cache_is_warm() {
    let mut yaml = String::from("name: warm\nstages:\n");
    let names = ["flip", "trunc", "gone", "same_size", "record", "intact"];
    for (i, n) in names.iter().enumerate() {
        yaml.push_str(&format!(
            "  {n}:\n    kind: generate\n    with: {{rows: 50, offset: {i}}}\n"
        ));
    }
    let p = Project::new();
    let f = p.write("warm.yaml", &yaml);
    assert_eq!(run(&p, &f).0, 0);
    // Past the racy window, a rerun hashes every object once more and remembers it.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    assert_eq!(run(&p, &f).0, 0);
    let table = |stage: &str| {
        let o = p.record(stage)["tables"]["table"]["object"]
            .as_str()
            .unwrap()
            .to_owned();
        p.store().join("objects").join(format!("{o}.parquet"))
    };
    for n in names {
        let key = p.record(n)["key"].as_str().unwrap().to_owned();
        let state = std::fs::read_to_string(p.store().join("state").join(&key)).unwrap();
        assert!(
            state.contains("\tobjects/") && state.contains("\trecord\n"),
            "{n}: the cache must be warm before the damage:\n{state}"
        );
    }
    let damage = |path: &Path, f: &dyn Fn(Vec<u8>) -> Vec<u8>| {
        let b = std::fs::read(path).unwrap();
        std::fs::write(path, f(b)).unwrap();
    };
    damage(&table("flip"), &|mut b| {
        let i = b.len() / 2;
        b[i] ^= 0x55;
        b
    });
    damage(&table("trunc"), &|b| b[..b.len() / 2].to_vec());
    std::fs::remove_file(table("gone")).unwrap();
    // Same size, same mtime: only the ctime (which no user call sets back) tells.
    let same = table("same_size");
    let mtime = std::fs::metadata(&same).unwrap().modified().unwrap();
    damage(&same, &|mut b| {
        let i = b.len() / 2;
        b[i] ^= 0x01;
        b
    });
    let fh = std::fs::File::options().write(true).open(&same).unwrap();
    fh.set_modified(mtime).unwrap();
    drop(fh);
    edit_record(&p.record_path("record"), |r| {
        r["scalars"]["mean"] = Value::from(1.5);
    });
    let (code, out, err) = run(&p, &f);
    assert_eq!(code, 0, "{out}\n{err}");
    let last = p.last_run();
    for n in ["flip", "trunc", "gone", "same_size", "record"] {
        assert!(
            err.contains(&format!("stored result of stage '{n}' is damaged")),
            "{n}: the damage must be named:\n{err}"
        );
        assert_eq!(last[n], "ran", "{n}");
    }
    assert_eq!(last["intact"], "cached");
}

/// store/04: gc removes records that fail verification (and only those).
#[test]
fn gc_removes_unreadable_records() {
    let p = Project::new();
    let f = p.write("ref.yaml", REF);
    assert_eq!(run(&p, &f).0, 0);
    let rec = p.record_path("g");
    let b = std::fs::read(&rec).unwrap();
    std::fs::write(&rec, &b[..100]).unwrap();
    let out = p.ok(&["gc"]);
    assert!(out.contains("deleted 1 records"), "{out}");
    assert!(!rec.exists());
    assert!(p.record_path("h").exists());
    assert_eq!(run(&p, &f).0, 0);
    assert_eq!(p.ran(), ["g"]);
}

/// store/06: a panic inside a stage fails that stage; the others finish; the run log is
/// written; the run ends (exit 1), never hangs.
#[test]
fn a_panicking_stage_fails_alone_and_the_run_ends_with_its_log() {
    use eqlab::exec::{RunOptions, run};
    use eqlab::stage::{Inputs, Outputs, ParamSpec, Params, Stage, StageCtx};
    struct Panics;
    impl Stage for Panics {
        fn kind(&self) -> &'static str {
            "panics"
        }
        fn version(&self) -> u32 {
            1
        }
        fn about(&self) -> &'static str {
            "panics when run"
        }
        fn params(&self) -> &'static [ParamSpec] {
            &[]
        }
        fn sources(&self) -> &'static [&'static str] {
            &[]
        }
        fn run(&self, _: &StageCtx, _: &Params, _: &Inputs) -> anyhow::Result<Outputs> {
            let n: usize = "2000000000000000000".parse()?;
            let v: Vec<u64> = Vec::with_capacity(n * 16);
            Ok(Outputs::new().scalar("len", v.len() as f64))
        }
    }
    let p = Project::new();
    let f = p.write(
        "panic.yaml",
        "name: panic\nstages:\n  bad: {kind: panics}\n  after: {kind: generate, needs: bad}\n  good: {kind: generate, with: {rows: 3}}\n",
    );
    let registry = eqlab::stages::Registry::builtin().with(Box::new(Panics));
    let pipeline = eqlab::spec::load(&f, &registry, &[]).unwrap();
    let store = eqlab::store::Store::open(&p.store()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let opts = RunOptions {
            jobs: 2,
            ..RunOptions::default()
        };
        let _ =
            tx.send(run(&pipeline, &registry, &store, &opts, cancel).map_err(|e| e.to_string()));
    });
    let log = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the run hung after a stage panicked")
        .unwrap();
    let status = |s: &str| {
        let st = log.stages.iter().find(|x| x.stage == s).unwrap();
        (st.status.clone(), st.error.clone().unwrap_or_default())
    };
    assert_eq!(status("bad").0, "failed");
    assert!(status("bad").1.contains("panicked"), "{:?}", status("bad"));
    assert_eq!(status("after").0, "skipped");
    assert_eq!(status("good").0, "ran");
    assert_eq!(p.runs().len(), 1, "the run log is written");
}

/// store/06 through the binary: an absurd row count is refused before anything runs.
#[test]
fn an_absurd_row_count_is_a_located_error_not_a_crash() {
    let p = Project::new();
    let f = p.write(
        "panic.yaml",
        "name: panic\nstages:\n  a:\n    kind: generate\n    with: {rows: 2000000000000000000}\n",
    );
    let o = p.eqlab(&["run", f.to_str().unwrap(), "--no-progress"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("rows") && !err.contains("panicked"), "{err}");
}

/// store/08: the order of a sweep's points reaches `collect`, so it is in collect's key: one
/// key never names two tables.
#[test]
fn collect_keys_hold_the_order_of_their_inputs() {
    let pipe = |order: &str| {
        format!(
            "name: t14\nstages:\n  g:\n    kind: generate\n    with: {{rows: 5}}\n    sweep:\n      grid:\n        scale: [{order}]\n  c:\n    kind: collect\n    needs: g\n    with: {{scalars: [mean]}}\n"
        )
    };
    let (s1, s2) = (Project::new(), Project::new());
    let a = s1.write("a.yaml", &pipe("2.0, 1.1, 1.5, 10.0"));
    let b1 = s1.write("b.yaml", &pipe("10.0, 1.5, 1.1, 2.0"));
    let b2 = s2.write("b.yaml", &pipe("10.0, 1.5, 1.1, 2.0"));
    assert_eq!(run(&s1, &a).0, 0);
    assert_eq!(run(&s1, &b1).0, 0);
    assert_eq!(s1.last_run()["c"], "ran", "a new order is a new key");
    assert_eq!(run(&s2, &b2).0, 0);
    let key = |p: &Project, f: &Path| {
        let out = p.ok(&["explain", f.to_str().unwrap(), "c"]);
        out.lines()
            .find_map(|l| l.strip_prefix("key ").map(str::to_owned))
            .unwrap()
    };
    assert_eq!(key(&s1, &b1), key(&s2, &b2));
    let show = |p: &Project, f: &Path| p.ok(&["show", f.to_str().unwrap(), "c", "table"]);
    assert_eq!(show(&s1, &b1), show(&s2, &b2));
    assert!(show(&s1, &b1).contains("g[scale=10]"));
}

/// store/12: `q: 2` and `q: 2.0` inside a mapping-typed parameter give one key.
#[test]
fn whole_numbers_inside_mapping_parameters_give_one_key() {
    let p = Project::new();
    let fl = p.write(
        "float.yaml",
        "name: t2\nstages:\n  ode:\n    kind: cost_ode\n    with: {cost: {power: {q: 2.0}}, points: 11}\n",
    );
    let int = p.write(
        "int.yaml",
        "name: t2\nstages:\n  ode:\n    kind: cost_ode\n    with: {cost: {power: {q: 2}}, points: 11}\n",
    );
    assert_eq!(run(&p, &fl).0, 0);
    let out = p.ok(&["plan", int.to_str().unwrap()]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("ode ") && l.contains("cached")),
        "{out}"
    );
}

/// store/09 (A): `gc --older-than` keeps what is current for each pipeline, not only what its
/// latest run touched.
#[test]
fn gc_keeps_current_results_after_a_partial_run() {
    let p = Project::new();
    let f = p.write(
        "partial.yaml",
        "name: t7\nstages:\n  a: {kind: generate, with: {rows: 5}}\n  b: {kind: generate, with: {rows: 7}}\n",
    );
    let fs = f.to_str().unwrap();
    p.ok(&["run", fs, "--no-progress"]);
    p.ok(&["run", fs, "--no-progress", "--only", "a"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.ok(&["gc", "--older-than", "1s"]);
    let out = p.ok(&["plan", fs]);
    assert!(out.contains("0 of 2 stages would run"), "{out}");
    // Changing b's parameters makes the old b result collectable once a run used the new one.
    p.ok(&["run", fs, "--no-progress", "--set", "b.rows=8"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = p.ok(&["gc", "--older-than", "1s"]);
    assert!(out.starts_with("deleted 1 records"), "{out}");
}

/// store/09 (B): two pipeline files with the same `name:` in different folders keep their own
/// runs, reports and gc protection.
#[test]
fn same_named_pipelines_in_different_folders_do_not_mix() {
    let p = Project::new();
    std::fs::create_dir_all(p.path().join("one")).unwrap();
    std::fs::create_dir_all(p.path().join("two")).unwrap();
    let one = p.write(
        "one/exp.yaml",
        "stages:\n  a: {kind: generate, with: {rows: 5}}\n",
    );
    let two = p.write(
        "two/exp.yaml",
        "stages:\n  a: {kind: generate, with: {rows: 9}}\n",
    );
    p.ok(&["run", one.to_str().unwrap(), "--no-progress"]);
    p.ok(&["run", two.to_str().unwrap(), "--no-progress"]);
    let report = PathBuf::from(p.ok(&["report", one.to_str().unwrap()]).trim());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains(one.to_str().unwrap()),
        "the report shows another file's run"
    );
    let report2 = PathBuf::from(p.ok(&["report", two.to_str().unwrap()]).trim());
    assert_ne!(report, report2);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.ok(&["gc", "--older-than", "1s"]);
    let out = p.ok(&["plan", one.to_str().unwrap()]);
    assert!(out.contains("0 of 1 stages would run"), "{out}");
}

/// store/05: the report folder is derived from the pipeline name safely, inside the store.
#[test]
fn reports_stay_inside_the_store() {
    let p = Project::new();
    let f = p.write(
        "r.yaml",
        "name: r\nstages:\n  a: {kind: generate, with: {rows: 5}}\n",
    );
    p.ok(&["run", f.to_str().unwrap(), "--no-progress"]);
    let report = PathBuf::from(p.ok(&["report", f.to_str().unwrap()]).trim());
    assert!(
        report.starts_with(p.store().join("reports")),
        "{}",
        report.display()
    );
}

/// store/10: a run that waited for another process's result reports it as cached (reused),
/// with no compute time of its own.
#[test]
fn a_run_that_waited_for_another_reports_the_stage_as_reused() {
    let p = Project::new();
    let f = p.write(
        "slow.yaml",
        "name: slow\nstages:\n  s: {kind: generate, with: {rows: 5, sleep_ms: 3000}}\n",
    );
    let mut first = p
        .cmd(&["run", f.to_str().unwrap(), "--no-progress"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run holds s's lock (its key lock file exists), then start the second.
    let locks = p.store().join("locks");
    let t = std::time::Instant::now();
    while std::fs::read_dir(&locks).map_or(0, |d| d.count()) == 0 {
        assert!(
            t.elapsed().as_secs() < 60,
            "the first run never took a lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, out, err) = run(&p, &f);
    assert!(first.wait().unwrap().success());
    assert_eq!(code, 0, "{out}{err}");
    let statuses: Vec<String> = p
        .runs()
        .iter()
        .map(|r| r["stages"][0]["status"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(sorted, ["cached", "ran"], "{statuses:?}\n{out}\n{err}");
    assert!(err.contains("reused"), "{err}");
}

/// store/11: a stage never computed is reported as such, never diffed against another stage.
#[test]
fn plan_never_blames_another_stage() {
    let p = Project::new();
    let f = p.write(
        "p.yaml",
        "name: t6\nstages:\n  a: {kind: generate, with: {rows: 5}}\n  b: {kind: generate, with: {rows: 7}}\n",
    );
    let fs = f.to_str().unwrap();
    p.ok(&["run", fs, "--no-progress", "--only", "a"]);
    let out = p.ok(&["plan", fs]);
    let b = out.lines().find(|l| l.starts_with("b ")).unwrap();
    assert!(b.contains("never computed"), "{out}");
    let out = p.ok(&["explain", fs, "b"]);
    assert!(out.contains("no stored result of this stage"), "{out}");
    // And a changed parameter of a computed stage is named.
    let out = p.ok(&["plan", fs, "--set", "a.rows=6"]);
    assert!(out.contains("parameter params.rows: 5 → 6"), "{out}");
}

/// store/07 (root only: mounts a tmpfs): a full disk fails the stages that could not be stored
/// (exit 1, summary, run log), leaves no temporaries; a read-only store names its path.
#[test]
fn a_full_disk_and_a_read_only_store_are_reported_with_paths() {
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0");
    let p = Project::new();
    let mnt = p.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = is_root
        && std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1200k", "tmpfs"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: the disk-full test needs root and tmpfs (mount -t tmpfs)");
        assert!(
            std::env::var("CI").is_err(),
            "CI runs as root: the disk-full test must run"
        );
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let store = mnt.join("store");
    let f = p.write(
        "full.yaml",
        "name: full\nstages:\n  a: {kind: generate, with: {rows: 40000}}\n  b: {kind: generate, with: {rows: 40000, offset: 1.0}}\n  c: {kind: generate, with: {rows: 40000, offset: 2.0}}\n  d: {kind: generate, with: {rows: 40000, offset: 3.0}}\n",
    );
    let eq = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eqlab"))
            .arg("--store")
            .arg(&store)
            .args(args)
            .output()
            .unwrap()
    };
    let fs = f.to_str().unwrap();
    let o = eq(&["run", fs, "--no-progress", "-j", "1"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    assert!(err.contains("No space left"), "{err}");
    assert!(text(&o.stdout).contains("failed"), "summary expected");
    assert_eq!(std::fs::read_dir(store.join("runs")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    assert!(
        std::process::Command::new("mount")
            .args(["-o", "remount,size=8m"])
            .arg(&mnt)
            .status()
            .unwrap()
            .success()
    );
    assert!(eq(&["run", fs, "--no-progress"]).status.success());
    assert!(
        std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&mnt)
            .status()
            .unwrap()
            .success()
    );
    let o = eq(&["run", fs, "--no-progress"]);
    let err = text(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    if !o.status.success() {
        assert!(
            err.contains(store.to_str().unwrap()),
            "the error must name a path: {err}"
        );
    }
}
