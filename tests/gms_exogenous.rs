//! The GMS Sections 2–5 pipeline end to end on the published inputs, and the same chain on the
//! real S&P 500 data: every paper-vs-eqlab check passes (spec gms-exogenous §6, §9).

mod common;
use common::{Project, repo, text};

fn scalars(p: &Project, stage: &str) -> serde_json::Map<String, serde_json::Value> {
    p.record(stage)["scalars"].as_object().unwrap().clone()
}

#[test]
fn published_inputs_reproduce_the_paper() {
    let p = Project::new();
    let f = repo().join("pipelines/gms-exogenous.yaml");
    let f = f.to_str().unwrap();
    p.ok(&["run", f, "--no-progress"]);
    let csv = p.path().join("comparison.csv");
    p.ok(&[
        "show",
        f,
        "compare",
        "comparison",
        "--export",
        csv.to_str().unwrap(),
    ]);
    let table = std::fs::read_to_string(&csv).unwrap();
    let failed: Vec<&str> = table
        .lines()
        .skip(1)
        .filter(|l| !l.contains(",true,"))
        .collect();
    assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
    assert!(table.lines().count() >= 20, "{table}");
    let m = scalars(&p, "matching");
    let rel = |k: &str, want: f64| {
        let got = m[k].as_f64().unwrap();
        assert!(((got - want) / want).abs() < 1e-6, "{k}: {got} vs {want}");
    };
    rel("proportional.ell", 5.10109044503e10);
    rel("proportional.beta", 2.57450926608e10);
    rel("quadratic.k", 0.0782235897923);
    rel("q=1.5.lambda", 5.21420062996e-6);
    rel("q=1.5.beta", 2.33232898501e10);
    let s = scalars(&p, "simulate");
    for model in ["proportional", "quadratic", "q=1.5", "q=1.1"] {
        let t = s[&format!("{model}.mean_turnover")].as_f64().unwrap();
        assert!(
            (t / 1.838146833e9 - 1.0).abs() < 0.08,
            "{model}: turnover {t}"
        );
    }
    let o = s["quadratic.acf_turnover_1"].as_f64().unwrap();
    assert!((o - 0.88).abs() < 0.15, "quadratic turnover ACF(1) {o}");
    let cv = s["proportional.cv_turnover"].as_f64().unwrap();
    assert!((cv / 2.66 - 1.0).abs() < 0.10, "proportional CV {cv}");
    // The general convex (crossover) cost solves with a small residual.
    let g = scalars(&p, "ode_crossover");
    assert!(g["residual_first_order"].as_f64().unwrap() < 1e-6, "{g:?}");
    // Figures exist (SVG and PNG) and plot exactly the stored simulation.
    let rec = p.record("figures");
    for name in ["figure1", "figure2", "figure3"] {
        let svg = &rec["files"][name];
        let png = &rec["files"][format!("{name}_png")];
        assert_eq!(svg["ext"], "svg");
        assert!(
            svg["bytes"].as_u64().unwrap() > 10_000 && png["bytes"].as_u64().unwrap() > 10_000,
            "{rec}"
        );
    }
    let export = |stage: &str, out: &str| {
        let csv = p.path().join(format!("{stage}-{out}.csv"));
        p.ok(&["show", f, stage, out, "--export", csv.to_str().unwrap()]);
        std::fs::read_to_string(csv).unwrap()
    };
    let plotted: Vec<String> = export("figures", "figure1_data")
        .lines()
        .filter(|l| l.starts_with("quadratic,"))
        .map(|l| l.rsplit(',').next().unwrap().to_owned())
        .collect();
    let stored: Vec<String> = export("simulate", "paths")
        .lines()
        .filter(|l| l.starts_with("quadratic,0,"))
        .map(|l| l.split(',').nth(5).unwrap().to_owned())
        .collect();
    assert_eq!(plotted.len(), 2520);
    assert_eq!(
        plotted, stored,
        "Figure 1 must plot the stored μ_t of path 0"
    );
    // Rerunning is free.
    p.ok(&["run", f, "--no-progress"]);
    assert!(p.ran().is_empty(), "{:?}", p.ran());
}

#[test]
fn the_simulation_is_deterministic_and_independent_of_threads() {
    let p = Project::new();
    let f = repo().join("pipelines/gms-exogenous.yaml");
    let f = f.to_str().unwrap();
    let set = [
        "--set",
        "params.paths=6",
        "--set",
        "params.days=300",
        "--set",
        "params.substeps=20",
    ];
    let mut args = vec!["run", f, "--no-progress", "--only", "simulate"];
    args.extend(set);
    let run = |threads: &str| {
        let o = p
            .cmd(&args)
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        scalars(&p, "simulate")
    };
    let one = run("1");
    let mut forced = args.clone();
    forced.extend(["--force", "simulate"]);
    let o = p
        .cmd(&forced)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(p.ran(), ["simulate"]);
    let two = scalars(&p, "simulate");
    assert_eq!(one, two, "results differ between 1 and 2 threads");
}

#[test]
fn missing_data_columns_are_named() {
    let p = Project::new();
    let data = repo().join("data/sp500-daily-1999-2018.csv");
    let f = p.write(
        "bad.yaml",
        &format!(
            "stages:\n  sp:\n    kind: load_table\n    with: {{path: {}, columns: [Date, Closing, Volume]}}\n",
            data.display()
        ),
    );
    let o = p.eqlab(&["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("no column(s) 'Closing'") && err.contains("Adj Close"),
        "{err}"
    );
}

#[test]
fn an_empty_date_window_is_an_error() {
    let p = Project::new();
    let data = repo().join("data/sp500-daily-1999-2018.csv");
    let f = p.write(
        "empty.yaml",
        &format!(
            "stages:\n  sp:\n    kind: load_table\n    with: {{path: {}, date_column: Date, start: '2030-01-01'}}\n",
            data.display()
        ),
    );
    let o = p.eqlab(&["run", f.to_str().unwrap(), "--no-progress"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("no rows between 2030-01-01 and the end")
            && err.contains("1999-01-04 .. 2018-12-31"),
        "{err}"
    );
}
