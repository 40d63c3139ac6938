//! The same pipeline gives byte-identical records and objects however it got there: clean,
//! after kill -9 at random times and a rerun, or with two runs at once on one store
//! (issue 11, kind 1). Uses the shipped pipelines with smaller Monte-Carlo sizes.

mod common;
use common::{Project, repo};
use std::path::Path;
use std::time::{Duration, Instant};

/// Every file of `records/` and `objects/` with its bytes (metas, run logs, locks and
/// temporaries are history, not results).
fn results(store: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["records", "objects"] {
        for e in std::fs::read_dir(store.join(dir)).unwrap() {
            let path = e.unwrap().path();
            out.push((
                format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()),
                std::fs::read(&path).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

fn args<'a>(pipeline: &'a str, sets: &'a [&'a str]) -> Vec<&'a str> {
    let mut a = vec!["run", pipeline, "--no-progress"];
    for s in sets {
        a.extend(["--set", s]);
    }
    a
}

/// A small deterministic generator for the kill times (xorshift).
struct Times(u64);
impl Times {
    fn next(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        max.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

/// `rounds` fresh stores, each killed `kills` times at random moments (uniform in a third of a
/// clean run's time, so that most kills land while stages compute and write), then run to
/// completion: every record and object must equal the clean run's bytes.
fn kill_loop_matches_a_clean_run(
    pipeline: &str,
    sets: &[&str],
    rounds: usize,
    kills: usize,
    seed: u64,
) {
    let file = repo().join("pipelines").join(pipeline);
    let file = file.to_str().unwrap();
    let clean = Project::new();
    let t = Instant::now();
    clean.ok(&args(file, sets));
    let clean_time = t.elapsed();
    let expected = results(&clean.store());
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    let mut times = Times(seed);
    let mut killed_mid_run = 0;
    for round in 0..rounds {
        let crashed = Project::new();
        for _ in 0..kills {
            let mut child = crashed
                .cmd(&args(file, sets))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(times.next(clean_time / 3));
            if child.try_wait().unwrap().is_none() {
                killed_mid_run += 1;
            }
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
        crashed.ok(&args(file, sets));
        let got = results(&crashed.store());
        assert_eq!(names(&expected), names(&got), "{pipeline}, round {round}");
        for ((name, x), (_, y)) in expected.iter().zip(&got) {
            assert!(
                x == y,
                "{pipeline}, round {round}: {name} differs after {kills} kills"
            );
        }
    }
    let total = rounds * kills;
    assert!(
        killed_mid_run * 3 >= total * 2,
        "only {killed_mid_run} of {total} kills hit a running eqlab"
    );
    // Two runs at once on a fresh store: the same bytes again.
    let both = Project::new();
    let spawn = || {
        both.cmd(&args(file, sets))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut x, mut y) = (spawn(), spawn());
    assert!(x.wait().unwrap().success() && y.wait().unwrap().success());
    assert!(
        results(&both.store()) == expected,
        "{pipeline}: concurrent runs differ"
    );
}

#[test]
fn kill_9_during_sweep_q_then_rerun_gives_a_clean_runs_bytes() {
    kill_loop_matches_a_clean_run(
        "sweep-q.yaml",
        &["params.paths=8", "params.days=252", "params.substeps=20"],
        2,
        6,
        0x9e37_79b9_7f4a_7c15,
    );
}

#[test]
fn kill_9_during_gms_exogenous_then_rerun_gives_a_clean_runs_bytes() {
    kill_loop_matches_a_clean_run(
        "gms-exogenous.yaml",
        &["params.paths=8", "params.days=252", "params.substeps=20"],
        2,
        6,
        0x2545_f491_4f6c_dd1d,
    );
}
