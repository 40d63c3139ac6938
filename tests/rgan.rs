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
    let rec = p
        .records()
        .into_iter()
        .find(|r| r["stage"] == "truth")
        .unwrap();
    let s = |k: &str| rec["scalars"][k].as_f64().unwrap();
    assert!((s("sigma0") - 1.2454).abs() < 5e-5, "{}", rec["scalars"]);
    assert!((s("mu0") - 0.2158).abs() < 5e-5);
    assert!((s("s0") - 0.3611).abs() < 2e-3);
    assert!(s("clearing") < 1e-25);

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
