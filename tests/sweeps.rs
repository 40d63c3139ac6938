//! Sweeps, `foreach`, replicates and `collect` (issue: parameter sweeps).

mod common;
use common::{Project, repo, text};

const ODE_SWEEP: &str = r#"
stages:
  ode:
    kind: cost_ode
    with: {cost: {power: {q: "${sweep.q}"}}, points: 11}
    sweep:
      grid:
        q: {range: {start: 1.2, stop: 2.0, num: 12}}
  table:
    kind: collect
    needs: ode
    with: {scalars: [c_q, z_q, v_q]}
"#;

fn collected(p: &Project, f: &str, stage: &str, output: &str) -> Vec<Vec<String>> {
    collected_with(p, f, stage, output, &[])
}

fn collected_with(
    p: &Project,
    f: &str,
    stage: &str,
    output: &str,
    extra: &[&str],
) -> Vec<Vec<String>> {
    let csv = p.path().join(format!("{stage}-{output}.csv"));
    let mut args = vec!["show", f, stage, output, "--export", csv.to_str().unwrap()];
    args.extend(extra);
    p.ok(&args);
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn adding_a_sweep_point_computes_only_that_point() {
    let p = Project::new();
    let f = p.write("sweep.yaml", ODE_SWEEP);
    let f = f.to_str().unwrap();
    let out = p.ok(&["plan", f]);
    assert!(
        out.contains("ode[q=1.2]") && out.contains("ode[q=2]") && out.contains("13 of 13"),
        "{out}"
    );
    p.ok(&["run", f, "--no-progress"]);
    assert_eq!(p.ran().len(), 13, "{:?}", p.ran());
    let rows = collected(&p, f, "table", "table");
    assert_eq!(rows[0], ["instance", "q", "c_q", "z_q", "v_q"]);
    assert_eq!(rows.len(), 13);
    // The q = 2 row is exact (c = 2, Z = √(2π), V = 1).
    let last = &rows[12];
    assert_eq!(last[1], "2.0");
    assert!((last[2].parse::<f64>().unwrap() - 2.0).abs() < 1e-9);
    // Thirteenth point: exactly one new instance plus `collect`.
    let grid = "ode.sweep.q={range: {start: 1.2, stop: 2.0, num: 12}}";
    p.ok(&["run", f, "--no-progress", "--set", grid]);
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    // The same values as the range (computed as eqlab does), plus 1.01.
    let values: Vec<String> = (0..11)
        .map(|i| format!("{}", 1.2 + (2.0 - 1.2) * (i as f64 / 11.0)))
        .collect();
    let mut list: Vec<String> = values.clone();
    list.push("2.0".into());
    list.push("1.01".into());
    let set = format!("ode.sweep.q=[{}]", list.join(", "));
    p.ok(&["run", f, "--no-progress", "--set", &set]);
    let mut ran = p.ran();
    ran.sort();
    assert_eq!(ran, ["ode[q=1.01]", "table"], "{ran:?}");
    p.ok(&["run", f, "--no-progress", "--set", &set]);
    assert!(p.ran().is_empty());
    // Removing a point computes nothing new (collect over the old 12 is stored).
    p.ok(&["run", f, "--no-progress"]);
    assert!(p.ran().is_empty(), "{:?}", p.ran());
}

#[test]
fn the_q_sweep_tends_to_proportional_costs_and_matches_single_runs() {
    let p = Project::new();
    let sweep = repo().join("pipelines/sweep-q.yaml");
    let sweep = sweep.to_str().unwrap();
    p.ok(&["run", sweep, "--no-progress"]);
    let cal = collected(&p, sweep, "calibrated", "table");
    assert_eq!(cal[0], ["instance", "q", "lambda", "beta", "sd_x"]);
    let num = |r: &Vec<String>, i: usize| r[i].parse::<f64>().unwrap();
    let lambda_p = 0.311834263795;
    let beta_prop = 2.57450926608e10;
    // λ_q rises towards λ_p and β_q towards β_prop as q ↓ 1.
    for w in cal[1..].windows(2) {
        assert!(num(&w[0], 1) < num(&w[1], 1));
        assert!(
            num(&w[0], 2) > num(&w[1], 2),
            "λ not decreasing in q: {w:?}"
        );
        assert!(
            num(&w[0], 3) > num(&w[1], 3),
            "β not decreasing in q: {w:?}"
        );
    }
    assert!(
        num(&cal[1], 2) < lambda_p && (num(&cal[1], 3) / beta_prop - 1.0).abs() < 0.02,
        "{:?}",
        cal[1]
    );
    let dyn_ = collected(&p, sweep, "dynamics", "table");
    assert_eq!(dyn_[0][2], "mean_turnover");
    for w in dyn_[1..].windows(2) {
        assert!(
            num(&w[0], 3) > num(&w[1], 3),
            "turnover CV must fall as q rises: {w:?}"
        );
    }
    // The q = 1.5 and q = 2 instances equal a single run of the paper pipeline bit for bit.
    let single = repo().join("pipelines/gms-exogenous.yaml");
    let single = single.to_str().unwrap();
    p.ok(&[
        "run",
        single,
        "--no-progress",
        "--only",
        "simulate",
        "--set",
        "matching.powers=[1.5, 2.0]",
    ]);
    let rec = |stage: &str| {
        p.records_of(stage)
            .into_iter()
            .map(|r| r["scalars"].clone())
            .collect::<Vec<_>>()
    };
    let single_sim = rec("simulate");
    let single_sim = single_sim
        .iter()
        .find(|s| s.get("q=2.mean_turnover").is_some())
        .expect("single run with q=2");
    for q in ["1.5", "2"] {
        let inst = rec(&format!("simulate[q={q}]"));
        assert_eq!(inst.len(), 1);
        for name in [
            "mean_turnover",
            "cv_turnover",
            "acf_turnover_1",
            "sd_premium",
        ] {
            assert_eq!(
                inst[0][name],
                single_sim[format!("q={q}.{name}")],
                "q={q} {name}"
            );
        }
        let m = rec(&format!("matching[q={q}]"));
        let single_m = rec("matching");
        let single_m = single_m
            .iter()
            .find(|s| s.get("q=2.lambda").is_some())
            .unwrap();
        assert_eq!(m[0]["lambda"], single_m[format!("q={q}.lambda")]);
    }
}

#[test]
fn replicates_get_their_own_seeds_and_collect_reports_standard_errors() {
    let p = Project::new();
    let f = repo().join("pipelines/sweep-kappa.yaml");
    let f = f.to_str().unwrap();
    let o = p
        .cmd(&["run", f, "--no-progress", "--set", "params.paths=4"])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = collected_with(&p, f, "premium", "summary", &["--set", "params.paths=4"]);
    assert_eq!(s[0][..2], ["kappa".to_owned(), "n".to_owned()]);
    assert_eq!(s.len(), 6, "{s:?}");
    let col = |name: &str| s[0].iter().position(|c| c == name).unwrap();
    let (mean, se) = (col("sd_premium.mean"), col("sd_premium.se"));
    for r in &s[1..] {
        assert_eq!(r[1], "4");
        let se: f64 = r[se].parse().unwrap();
        let kappa: f64 = r[0].parse().unwrap();
        let m: f64 = r[mean].parse().unwrap();
        if kappa == 1.0 {
            // Equal risk aversions: no liquidity premium at all.
            assert_eq!(m, 0.0);
        } else {
            assert!(se > 0.0 && se < m, "replicates must differ: {r:?}");
        }
    }
}
