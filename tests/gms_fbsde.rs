//! The quadratic-cost endogenous-volatility benchmark (GMS Example 6.1) as a stage, swept over
//! the number of Euler steps: continuous values and the exact discrete ones (spec gms-fbsde §8).

mod common;
use common::{Project, repo};

#[test]
fn riccati_benchmark_and_its_discrete_schemes() {
    let p = Project::new();
    let data = repo().join("data/gms-paper-inputs.csv");
    let f = p.write(
        "fbsde.yaml",
        &format!(
            "stages:\n  inputs:\n    kind: paper_inputs\n    with: {{path: {}}}\n  calibrate:\n    kind: frictionless_calibration\n    needs: inputs\n  riccati:\n    kind: riccati_benchmark\n    needs: calibrate\n    sweep:\n      grid:\n        steps: [40, 80, 320]\n  table:\n    kind: collect\n    needs: riccati\n    with: {{scalars: [delta_s0, sigma0_minus_a, discrete_delta_s0]}}\n",
            data.display()
        ),
    );
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let csv = p.path().join("t.csv");
    p.ok(&[
        "show",
        f,
        "table",
        "table",
        "--export",
        csv.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(csv).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).map(|x| x.parse().unwrap()).collect())
        .collect();
    let rel = |a: f64, b: f64| (a / b - 1.0).abs();
    for (r, want) in rows.iter().zip([-0.0292045198, -0.02949451, -0.02971369]) {
        assert!(rel(r[1], -0.0297870754) < 1e-6, "continuous ΔS₀ {r:?}");
        assert!(rel(r[2], 0.0301896957) < 1e-7, "σ₀ − a {r:?}");
        assert!(rel(r[3], want) < 1e-6, "N = {}: {} vs {want}", r[0], r[3]);
    }
}

/// A small deep-BSDE pipeline (q = 2, endogenous volatility) with `extra` appended to the
/// training stage's `with:` mapping.
fn deep_pipeline(p: &Project, extra: &str, test_paths: usize) -> String {
    let data = repo().join("data/gms-paper-inputs.csv");
    let f = p.write(
        "deep.yaml",
        &format!(
            "seed: 11\nstages:\n  inputs:\n    kind: paper_inputs\n    with: {{path: {}}}\n  calibrate:\n    kind: frictionless_calibration\n    needs: inputs\n  train:\n    kind: deep_bsde\n    needs: calibrate\n    with: {{q: 2.0, lambda: 1.08e-10, beta: 2.19e10, train_steps: 200, valid_batch: 256{extra}}}\n  eval:\n    kind: deep_bsde_eval\n    needs: train\n    with: {{test_paths: {test_paths}}}\n",
            data.display()
        ),
    );
    f.to_str().unwrap().to_owned()
}

#[test]
fn deep_bsde_trains_deterministically_and_evaluation_never_retrains() {
    let (a, b) = (Project::new(), Project::new());
    for p in [&a, &b] {
        let f = deep_pipeline(p, "", 500);
        p.ok(&["run", &f, "--no-progress"]);
    }
    let (ta, tb) = (a.record("train"), b.record("train"));
    // Same pipeline, two stores: bit-identical weights and scalars.
    assert_eq!(ta["files"], tb["files"], "weights differ between runs");
    assert_eq!(ta["scalars"], tb["scalars"]);
    let s = &ta["scalars"];
    let f = |k: &str| s[k].as_f64().unwrap();
    // 200 Adam steps already bring the loss down by orders of magnitude and ΔS₀, σ₀ − a close
    // to the exact N = 40 scheme (spec §8 C: −0.0292045, 0.0299833).
    assert!(f("final_loss") < f("initial_loss") / 100.0, "{s}");
    assert!((f("delta_s0") - -0.0292045).abs() < 3e-3, "{s}");
    assert!((f("sigma0_minus_a") - 0.0299833).abs() < 2e-3, "{s}");
    let ev = &a.record("eval")["scalars"];
    assert_eq!(
        ev["delta_s0"], s["delta_s0"],
        "eval reloads the trained weights"
    );
    assert!((ev["exact_scheme_delta_s0"].as_f64().unwrap() - -0.0292045198).abs() < 1e-9);

    // More test paths: only the evaluation reruns, from the stored weights.
    let f2 = deep_pipeline(&a, "", 800);
    a.ok(&["run", &f2, "--no-progress"]);
    assert_eq!(a.ran(), vec!["eval".to_owned()]);
}

#[test]
fn diverging_training_fails_clearly_without_a_record() {
    let p = Project::new();
    let f = deep_pipeline(&p, ", lr: 1e6, lr_final: 1e6", 100);
    let o = p.eqlab(&["run", &f, "--no-progress"]);
    assert!(!o.status.success());
    let err = common::text(&o.stderr) + &common::text(&o.stdout);
    assert!(err.contains("training diverged at step"), "{err}");
    assert!(p.records_of("train").is_empty());
}
