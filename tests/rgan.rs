//! The Reinforced-GAN paper's N-agent ground truth as a stage (spec rgan §1.6, case A).

mod common;
use common::Project;

#[test]
fn nagent_riccati_reproduces_case_a_and_rejects_bad_economies() {
    let p = Project::new();
    let economy = "{gamma: [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9], xi: [28.9, 14.9, 11.8, -14.0, -19.1, -27.0, 22.2, 31.5, -26.3, -22.9], q: 2, horizon: 0.2}";
    let f = p.write(
        "a.yaml",
        &format!("stages:\n  truth:\n    kind: nagent_riccati\n    with: {{economy: {economy}}}\n"),
    );
    p.ok(&["run", f.to_str().unwrap(), "--no-progress"]);
    let rec = p.record("truth");
    let s = |k: &str| rec["scalars"][k].as_f64().unwrap();
    assert!((s("sigma0") - 1.2454).abs() < 5e-5, "{}", rec["scalars"]);
    assert!((s("mu0") - 0.2158).abs() < 5e-5);
    assert!((s("s0") - 0.3611).abs() < 2e-3);
    assert!(s("clearing") < 1e-25);
    assert!((s("utility") + 0.2082).abs() < 0.01, "ΣJ {}", s("utility"));
    // The liquidity discount S̄₀ − S₀: Monte Carlo (± its se) vs the exact Euler value
    // γ̄sΣ(σ_k² − α²)Δt ≈ 0.0110, and the K → ∞ limit below it (σ falls in t, so the aligned
    // grid overstates ∫σ²).
    assert!((s("discount") - (s("s_bar0") - s("s0"))).abs() < 1e-15);
    assert!((s("discount") - s("discount_exact")).abs() < 3.0 * s("discount_se"));
    assert!((s("s0_exact") - 0.3611).abs() < 1e-4, "{}", s("s0_exact"));
    assert!(s("discount_limit") < s("discount_exact"));
    assert!((s("discount_limit") / s("discount_exact") - 1.0).abs() < 0.02);
    assert!(
        (s("sigma_integral") - 0.2 * 1.12).abs() < 0.03,
        "∫σ {}",
        s("sigma_integral")
    );

    // The lagged grid (the authors' indexing) moves S₀ from 0.3611 to 0.3612; the aligned
    // default leaves the key of the stage above unchanged.
    let f = p.write(
        "lag.yaml",
        &format!(
            "stages:
  truth:
    kind: nagent_riccati
    with: {{economy: {economy}, sigma_grid: lagged}}
"
        ),
    );
    p.ok(&["run", f.to_str().unwrap(), "--no-progress"]);
    let rec = p.record("truth");
    let l = |k: &str| rec["scalars"][k].as_f64().unwrap();
    assert!((l("s0_exact") - 0.3612).abs() < 1e-4, "{}", l("s0_exact"));
    assert!((l("s0") - 0.3612).abs() < 2e-3);
    assert!(
        l("sigma0") < s("sigma0") && l("sigma0") > 1.24,
        "{}",
        l("sigma0")
    );
    for (param, value, why) in [
        ("sigma_grid", "late", "must be aligned or lagged"),
        ("steps", "1", "steps"),
    ] {
        let f = p.write(
            "grid.yaml",
            &format!(
                "stages:
  truth:
    kind: nagent_riccati
    with: {{economy: {economy}, {param}: {value}}}
"
            ),
        );
        let o = p.eqlab(&["run", f.to_str().unwrap()]);
        let err = common::text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(param) && err.contains(why), "{err}");
    }
    let f = p.write(
        "sched.yaml",
        &format!(
            "stages:
  r:
    kind: rgan_train
    with: {{economy: {economy}, schedule: adaptve}}
"
        ),
    );
    let o = p.eqlab(&["run", f.to_str().unwrap()]);
    let err = common::text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("schedule") && err.contains("paper, custom or adaptive"),
        "{err}"
    );

    // Σξ ≠ 0 and q ≠ 2 are rejected before anything runs, naming the field.
    let bad = economy.replace("28.9", "29.9");
    let f = p.write(
        "b.yaml",
        &format!("stages:\n  truth:\n    kind: nagent_riccati\n    with: {{economy: {bad}}}\n"),
    );
    let o = p.eqlab(&["run", f.to_str().unwrap()]);
    let err = common::text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("b.yaml:4:") && err.contains("sum to zero"),
        "{err}"
    );
}

#[test]
fn every_bad_economy_is_rejected_naming_the_field() {
    let p = Project::new();
    let ok = "gamma: [1.0, 2.0], xi: [3.0, -3.0], q: 1.5, horizon: 0.4";
    for (bad, why) in [
        (
            "gamma: [1.0], xi: [0.0], q: 1.5, horizon: 0.4",
            "at least 2 agents",
        ),
        (
            "gamma: [1.0, 2.0], xi: [3.0, -2.0], q: 1.5, horizon: 0.4",
            "sum to zero",
        ),
        (
            "gamma: [1.0, 0.0], xi: [3.0, -3.0], q: 1.5, horizon: 0.4",
            "γ must be > 0",
        ),
        (&format!("{ok}, lambda: -0.01"), "lambda must be"),
        (
            "gamma: [1.0, 2.0], xi: [3.0, -3.0], q: 2.5, horizon: 0.4",
            "q must lie in (1, 2]",
        ),
        (
            "gamma: [1.0, 2.0], xi: [3.0, -3.0], q: 1.0, horizon: 0.4",
            "q must lie in (1, 2]",
        ),
    ] {
        for kind in ["leading_order", "rgan_train"] {
            let f = p.write(
                "bad.yaml",
                &format!("stages:\n  s:\n    kind: {kind}\n    with: {{economy: {{{bad}}}}}\n"),
            );
            let o = p.eqlab(&["run", f.to_str().unwrap()]);
            let err = common::text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{kind} {bad}: {err}");
            assert!(
                err.contains("bad.yaml:4:") && err.contains(why),
                "{kind} {bad}: {err}"
            );
        }
    }
}

#[test]
fn leading_order_and_frictionless_rows_match_the_paper() {
    // spec rgan §6 B "Leading order" and C "Frictionless", on 3000 test paths.
    let p = Project::new();
    let b = "{gamma: [1.0, 2.0], xi: [3.0, -3.0], q: 1.5, horizon: 0.4}";
    let c = "{gamma: [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9], xi: [28.9, 14.9, 11.8, -14.0, -19.1, -27.0, 22.2, 31.5, -26.3, -22.9], q: 1.5, horizon: 0.2}";
    let f = p.write(
        "lo.yaml",
        &format!(
            "stages:\n  lo_b:\n    kind: leading_order\n    with: {{economy: {b}}}\n  fr_c:\n    kind: leading_order\n    with: {{economy: {c}, frictionless: true}}\n  lo_c:\n    kind: leading_order\n    with: {{economy: {c}}}\n"
        ),
    );
    // Ten agents have no leading-order benchmark: rejected before anything runs.
    let o = p.eqlab(&["run", f.to_str().unwrap()]);
    let err = common::text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("for 2 agents, got 10"), "{err}");
    let text = std::fs::read_to_string(&f).unwrap();
    let f = p.write("lo.yaml", &text[..text.find("  lo_c:").unwrap()]);
    p.ok(&["run", f.to_str().unwrap(), "--no-progress"]);
    let lo = p.record("lo_b");
    let s = |r: &serde_json::Value, k: &str| r["scalars"][k].as_f64().unwrap();
    assert!((s(&lo, "sigma0") - 1.072).abs() < 5e-4, "{}", lo["scalars"]);
    assert!((s(&lo, "s0") - 0.415).abs() < 5e-4);
    assert!((s(&lo, "utility") + 8.94e-4).abs() < 1.5e-4);
    assert!((s(&lo, "terminal") - 7.47e-3).abs() < 1e-3);
    let fr = p.record("fr_c");
    assert!(
        (s(&fr, "utility") + 0.480).abs() < 0.02,
        "{}",
        fr["scalars"]
    );
    assert!((s(&fr, "terminal") - 2.91e-2).abs() < 1e-3);
    assert_eq!(s(&fr, "sigma0"), 1.0);
}

#[test]
fn rgan_train_stores_both_networks_and_eval_reloads_them() {
    let p = Project::new();
    // A tiny problem and schedule: the engine contract (artifacts, reload, determinism), not
    // the paper's accuracy.
    let economy = "{gamma: [1.0, 2.0], xi: [3.0, -3.0], q: 1.5, horizon: 0.4}";
    let f = p.write(
        "g.yaml",
        &format!(
            "seed: 3\nstages:\n  train:\n    kind: rgan_train\n    with: {{economy: {economy}, steps: 10, width: 8, depth: 2, rounds: 2, phase_steps: [3], batch: 16, test_paths: 32}}\n  eval:\n    kind: rgan_eval\n    seed: 7\n    needs: train\n    with: {{test_paths: 50}}\n  lo:\n    kind: leading_order\n    seed: 7\n    with: {{economy: {economy}, steps: 10, test_paths: 50}}\n  fig:\n    kind: rgan_figures\n    needs: [lo, eval]\n    with: {{agents: [1, 2]}}\n  cmp:\n    kind: compare\n    needs: [lo, eval]\n    with:\n      checks:\n        - {{value: eval.clearing, max: 1e9}}\n        - {{value: lo.sigma0, over: lo.sigma0, min: 1, max: 1}}\n        - {{value: lo.clearing, min: 1}}\n"
        ),
    );
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let train = p.record("train");
    let files = &train["files"];
    assert!(
        files.get("generator").is_some() && files.get("discriminator").is_some(),
        "{files}"
    );
    let eval = p.record("eval");
    let s = &eval["scalars"];
    // the stored discriminator is reloaded: same S₀ as trained
    assert_eq!(s["s0"], train["scalars"]["s0"], "{s}");
    assert!(s["clearing"].as_f64().unwrap().is_finite());
    assert_eq!(s["test_paths"].as_f64(), Some(50.0));
    // Benchmark and evaluation share their test paths (same `seed:`), the figures draw both, and
    // one-sided bounds and ratios are judged: 2 of the 3 checks pass.
    let fig = p.record("fig");
    for f in ["sigma", "mu", "rates", "sigma_png"] {
        assert!(fig["files"].get(f).is_some(), "{f}: {}", fig["files"]);
    }
    let cmp = p.record("cmp");
    assert_eq!(
        cmp["scalars"]["passed"].as_f64(),
        Some(2.0),
        "{}",
        cmp["scalars"]
    );

    // mu_known with q ≠ 2 and N > 2 is rejected up front.
    let bad = p.write(
        "bad.yaml",
        "stages:\n  train:\n    kind: rgan_train\n    with: {economy: {gamma: [1, 1.5, 2], xi: [1, 1, -2], q: 1.5, horizon: 0.2}, mu_known: true}\n",
    );
    let o = p.eqlab(&["run", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(common::text(&o.stderr).contains("drift identity holds only"));
}

#[test]
fn the_accuracy_table_compares_a_trained_pair_with_the_exact_truth() {
    let p = Project::new();
    // A tiny q = 2 economy: the table's plumbing (which scalar goes where), not the accuracy.
    let economy = "{gamma: [1.0, 2.0], xi: [3.0, -3.0], q: 2, horizon: 0.4}";
    let f = p.write(
        "acc.yaml",
        &format!(
            "seed: 3\nstages:\n  truth:\n    kind: nagent_riccati\n    seed: 7\n    with: {{economy: {economy}, steps: 10, test_paths: 50}}\n  train:\n    kind: rgan_train\n    with: {{economy: {economy}, steps: 10, width: 8, depth: 2, rounds: 2, phase_steps: [3], batch: 16, test_paths: 32}}\n  eval:\n    kind: rgan_eval\n    seed: 7\n    needs: train\n    with: {{test_paths: 50}}\n  acc:\n    kind: rgan_accuracy\n    needs: [truth, eval, train]\n    with: {{rows: [{{label: two, truth: truth, eval: eval, train: train}}], tolerance: 1e9}}\n"
        ),
    );
    p.ok(&["run", f.to_str().unwrap(), "--no-progress"]);
    let (truth, eval, acc) = (p.record("truth"), p.record("eval"), p.record("acc"));
    let s = |r: &serde_json::Value, k: &str| r["scalars"][k].as_f64().unwrap();
    let err = s(&eval, "discount") / s(&truth, "discount_exact") - 1.0;
    assert!(err.is_finite());
    assert_eq!(
        s(&acc, "worst_discount_err"),
        err.abs(),
        "{}",
        acc["scalars"]
    );
    assert_eq!(s(&acc, "max_clearing"), s(&eval, "clearing"));
    assert_eq!(s(&acc, "max_terminal"), s(&eval, "terminal"));
    assert_eq!(
        s(&acc, "all_within"),
        1.0,
        "a tolerance of 1e9 admits any error"
    );
    assert!(acc["tables"].get("accuracy").is_some(), "{}", acc["tables"]);
}
