//! The `device` parameter of the deep stage kinds (README, "Devices"): `cpu` keeps every key as
//! it was before the parameter existed, another device is part of the key, `--set *.device=…`
//! sets it for a whole pipeline, and a device this binary lacks (or, when a run computes here, a
//! GPU this machine lacks) is refused before anything runs.
//!
//! With `EQLAB_TEST_DEVICE` set (`make test-tch` sets `tch-cpu`), the acceptance tests train the
//! shipped pipelines' deep-BSDE (q = 2, N = 40) and R-GAN case A on that device and check the
//! same bounds as on flex; without it they are skipped (they take minutes).

mod common;
use common::{Project, repo};

/// A small deep-BSDE training and its evaluation, with `extra` appended to both `with:` maps.
fn small(p: &Project, extra: &str) -> String {
    let data = repo().join("data/gms-paper-inputs.csv");
    let f = p.write(
        "d.yaml",
        &format!(
            "seed: 5\nstages:\n  inputs:\n    kind: paper_inputs\n    with: {{path: {}}}\n  calibrate:\n    kind: frictionless_calibration\n    needs: inputs\n  train:\n    kind: deep_bsde\n    needs: calibrate\n    with: {{q: 2.0, lambda: 1.08e-10, beta: 2.19e10, steps: 20, width: 4, train_steps: 5, batch: 16, valid_batch: 16{extra}}}\n  eval:\n    kind: deep_bsde_eval\n    needs: train\n    with: {{test_paths: 20{extra}}}\n",
            data.display()
        ),
    );
    f.to_str().unwrap().to_owned()
}

/// The key hash `eqlab explain` prints for `stage`.
fn key(p: &Project, args: &[&str]) -> String {
    let out = p.ok(args);
    out.lines()
        .find_map(|l| l.strip_prefix("key "))
        .unwrap_or_else(|| panic!("no key in: {out}"))
        .to_owned()
}

#[test]
fn cpu_is_the_default_and_leaves_keys_unchanged() {
    let p = Project::new();
    let plain = small(&p, "");
    // (keys of stages downstream of a calibration are known once it ran)
    p.ok(&["run", &plain, "--no-progress"]);
    let k_train = key(&p, &["explain", &plain, "train"]);
    let k_eval = key(&p, &["explain", &plain, "eval"]);
    // Written explicitly, in the file or for the whole pipeline: the same keys, nothing reruns.
    let explicit = small(&p, ", device: cpu");
    assert_eq!(key(&p, &["explain", &explicit, "train"]), k_train);
    assert_eq!(key(&p, &["explain", &explicit, "eval"]), k_eval);
    let set = ["--set", "*.device=cpu"];
    assert_eq!(
        key(&p, &[&["explain", &plain, "train"][..], &set].concat()),
        k_train
    );
    p.ok(&["run", &explicit, "--no-progress", "--set", "*.device=cpu"]);
    assert!(p.ran().is_empty(), "ran again: {:?}", p.ran());
    // explain names the device although it is not in the key
    let out = p.ok(&["explain", &explicit, "train"]);
    assert!(out.contains("device = \"cpu\""), "{out}");
    // A `*.PARAM` no stage has is refused.
    let o = p.eqlab(&["plan", &plain, "--set", "*.devcie=cpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::text(&o.stderr).contains("parameter 'devcie'"));
}

#[test]
fn a_device_this_build_lacks_is_refused_before_anything_runs() {
    let p = Project::new();
    let Some((device, feature)) =
        [("tch-cpu", "tch"), ("cuda", "cuda")]
            .into_iter()
            .find(|(_, f)| match *f {
                "tch" => !cfg!(feature = "tch"),
                _ => !cfg!(feature = "cuda"),
            })
    else {
        return; // built with every feature
    };
    let f = small(&p, &format!(", device: {device}"));
    let o = p.eqlab(&["run", &f, "--no-progress"]);
    let err = common::text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("d.yaml:12:") && err.contains("stages.train.with.device"),
        "{err}"
    );
    assert!(
        err.contains(&format!("cargo feature `{feature}`")) && err.contains("--features"),
        "{err}"
    );
    assert!(p.records().is_empty(), "nothing runs");
    // The same through --set, reported on the command line; an unknown device names the known.
    let plain = small(&p, "");
    let arg = format!("*.device={device}");
    let o = p.eqlab(&["plan", &plain, "--set", &arg]);
    let err = common::text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("--set {arg}:")), "{err}");
    let o = p.eqlab(&["plan", &plain, "--set", "*.device=gpu"]);
    let err = common::text(&o.stderr);
    assert!(
        err.contains("unknown device 'gpu'") && err.contains("tch-cuda"),
        "{err}"
    );
}

/// With libtorch built in, on a machine without a GPU: a `tch-cuda` pipeline can be planned and
/// submitted to a cluster (where the job asks for a GPU), but a local run refuses it before
/// anything runs, naming the field and what is missing. (On a machine with a GPU it runs.)
#[cfg(feature = "tch")]
#[test]
fn a_gpu_device_is_checked_where_it_computes_not_where_it_is_planned() {
    let p = Project::new();
    let f = small(&p, ", device: tch-cuda");
    p.ok(&["plan", &f]);
    let o = p.eqlab(&["run", &f, "--no-progress"]);
    let err = common::text(&o.stderr);
    if err.contains("sees no CUDA GPU") {
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("d.yaml:12:") && err.contains("stages.train.with.device"),
            "{err}"
        );
        assert!(p.records().is_empty(), "nothing runs");
    } else {
        assert!(
            o.status.success(),
            "a GPU is present, so the run works: {err}"
        );
    }
}

/// The device of the acceptance tests, or `None` (skipped) when `EQLAB_TEST_DEVICE` is unset.
fn test_device() -> Option<String> {
    let d = std::env::var("EQLAB_TEST_DEVICE")
        .ok()
        .filter(|d| !d.is_empty());
    if d.is_none() {
        eprintln!("EQLAB_TEST_DEVICE is not set: skipped (make test-tch sets it)");
    }
    d
}

#[test]
fn deep_bsde_meets_the_acceptance_bounds_on_the_test_device() {
    let Some(device) = test_device() else { return };
    let p = Project::new();
    let f = repo().join("pipelines/gms-fbsde.yaml");
    let arg = format!("*.device={device}");
    p.ok(&[
        "run",
        f.to_str().unwrap(),
        "--only",
        "endo_q2_eval[steps=40]",
        "--set",
        &arg,
        "--no-progress",
    ]);
    let rec = p.record("endo_q2_eval[steps=40]");
    let s = |k: &str| rec["scalars"][k].as_f64().unwrap();
    eprintln!("{device}: deep BSDE q = 2, N = 40: {}", rec["scalars"]);
    // The pipeline's `compare` bounds (spec gms-fbsde §8 C): against the exact N = 40 scheme.
    assert!(
        (s("delta_s0") - -0.0292045198).abs() < 1e-3,
        "{}",
        rec["scalars"]
    );
    assert!((s("sigma0_minus_a") - 0.0299833420).abs() < 5e-4);
    let train = p.record("endo_q2[steps=40]");
    assert_eq!(train["components"]["params"]["device"], device.as_str());
}

#[test]
fn rgan_case_a_meets_the_acceptance_bounds_on_the_test_device() {
    let Some(device) = test_device() else { return };
    let p = Project::new();
    let f = repo().join("pipelines/rgan.yaml");
    let arg = format!("*.device={device}");
    p.ok(&[
        "run",
        f.to_str().unwrap(),
        "--only",
        "eval_a",
        "--set",
        &arg,
        "--no-progress",
    ]);
    let rec = p.record("eval_a");
    let s = |k: &str| rec["scalars"][k].as_f64().unwrap();
    eprintln!("{device}: R-GAN case A: {}", rec["scalars"]);
    // README, case A (the pipeline's `compare` rows).
    assert!(s("clearing") < 1e-4, "{}", rec["scalars"]);
    assert!(s("terminal") < 1e-5, "{}", rec["scalars"]);
    assert!((s("s0") - 0.361).abs() < 5e-3, "{}", rec["scalars"]);
    assert!((s("sigma0") - 1.245).abs() < 3e-2, "{}", rec["scalars"]);
    assert!((s("utility") - -0.2082).abs() < 1e-2, "{}", rec["scalars"]);
}

/// With libtorch built in: a sweep over devices gives one instance (and key) per device and a
/// comparison table; both train from the same host-side initialisation and paths.
#[cfg(feature = "tch")]
#[test]
fn a_sweep_over_devices_compares_them() {
    let p = Project::new();
    let data = repo().join("data/gms-paper-inputs.csv");
    let f = p.write(
        "s.yaml",
        &format!(
            "seed: 5\nstages:\n  inputs:\n    kind: paper_inputs\n    with: {{path: {}}}\n  calibrate:\n    kind: frictionless_calibration\n    needs: inputs\n  train:\n    kind: deep_bsde\n    needs: calibrate\n    with: {{q: 2.0, lambda: 1.08e-10, beta: 2.19e10, train_steps: 50, valid_batch: 256, device: \"${{sweep.device}}\"}}\n    sweep:\n      grid: {{device: [cpu, tch-cpu]}}\n  table:\n    kind: collect\n    needs: train\n    with: {{scalars: [delta_s0, final_loss]}}\n",
            data.display()
        ),
    );
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let cpu = p.record("train[device=cpu]");
    let tch = p.record("train[device=tch-cpu]");
    assert!(cpu["components"]["params"].get("device").is_none());
    assert_eq!(tch["components"]["params"]["device"], "tch-cpu");
    let (a, b) = (
        cpu["scalars"]["delta_s0"].as_f64().unwrap(),
        tch["scalars"]["delta_s0"].as_f64().unwrap(),
    );
    eprintln!("ΔS₀ after 50 steps: cpu {a}, tch-cpu {b}");
    assert!(
        (a - b).abs() < 1e-5,
        "same initialisation and paths: {a} vs {b}"
    );
    let table = p.ok(&["show", f, "table"]);
    assert!(table.contains("tch-cpu"), "{table}");
}
