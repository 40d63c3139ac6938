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
