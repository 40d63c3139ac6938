//! Science benchmark binary for `make bench-science` (driven by `benches/science.sh`).
//!
//! It compiles eqlab's `finance` module directly from the main source tree, so the timed code is
//! exactly the production math, and prints one JSON object per invocation on stdout:
//!
//! * `ode [--inner N]`: the normalised power-cost problem (shooting for `c_q` with Radau + Brent,
//!   then `Z_q`, `V_q` and the `g̃` grid) plus the turnover/variance matching `(λ_q, β_q)` for
//!   q ∈ {1.1, 1.5, 2}, repeated `N` times in-process (single-threaded);
//! * `sim [--paths P] [--substeps M] [--days D] [--seed S] [--max-lag K]`: `finance::sde::simulate` of the four
//!   calibrated models (proportional, quadratic, q = 1.5, q = 1.1) on common Gaussian increments,
//!   on all rayon threads. Setup (calibration, ODE solves) is timed separately from the
//!   simulation. The process's peak RSS (`VmHWM`) is reported at the end.

#[allow(dead_code)]
#[path = "../../../src/finance/mod.rs"]
mod finance;

use finance::calibration::{BackOut, Frictionless, back_out_from_quadratic};
use finance::power::NormalisedPower;
use finance::sde::{ModelKind, ModelSpec, SimConfig, simulate};
use finance::turnover::{match_power, match_power_with, match_proportional, match_quadratic};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

type BoxResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Elasticities of the ODE benchmark.
const ODE_QS: [f64; 3] = [1.1, 1.5, 2.0];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("ode") => run_ode(&args[1..]),
        Some("sim") => run_sim(&args[1..]),
        _ => Err(
            "usage: eqlab-science-bench ode [--inner N] | sim [--paths P] [--substeps M] [--days D] [--seed S] [--max-lag K]"
                .into(),
        ),
    };
    match outcome {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("eqlab-science-bench: {e}");
            std::process::exit(2);
        }
    }
}

/// Value of `--name` in `args`, parsed, or `default`.
fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> BoxResult<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let v = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{name}: cannot parse '{v}'").into())
        }
    }
}

/// The paper's frictionless economy and the (ShTu, λ_p) backed out of the published quadratic
/// pair (spec §6).
fn targets() -> BoxResult<(Frictionless, BackOut)> {
    let fr = Frictionless::paper();
    let b = back_out_from_quadratic(1.08e-10, 2.19e10, &fr)?;
    Ok((fr, b))
}

/// JSON array of floats (Rust's shortest round-trip formatting is valid JSON for finite values).
fn json_array(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", items.join(","))
}

fn run_ode(args: &[String]) -> BoxResult<String> {
    let inner: usize = flag(args, "--inner", 5)?;
    if inner == 0 {
        return Err("--inner must be >= 1".into());
    }
    let (fr, b) = targets()?;
    let mut totals = Vec::with_capacity(inner);
    let mut per_q = vec![Vec::with_capacity(inner); ODE_QS.len()];
    let mut results = Vec::new();
    for _ in 0..inner {
        results.clear();
        let t0 = Instant::now();
        for (i, &q) in ODE_QS.iter().enumerate() {
            let tq = Instant::now();
            let (m, np) = match_power(black_box(q), b.lambda_p, b.shtu, &fr)?;
            per_q[i].push(tq.elapsed().as_secs_f64());
            results.push(black_box((m, np.c, np.z, np.v, np.turnover_check)));
        }
        totals.push(t0.elapsed().as_secs_f64());
    }
    let mut out = String::new();
    write!(
        out,
        "{{\"task\":\"ode\",\"impl\":\"eqlab\",\"threads\":1,\"inner\":{inner},\"times_s\":{}",
        json_array(&totals)
    )?;
    out.push_str(",\"per_q_s\":{");
    for (i, q) in ODE_QS.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(out, "{sep}\"{q:?}\":{}", json_array(&per_q[i]))?;
    }
    out.push_str("},\"results\":[");
    for (i, (m, c, z, v, tc)) in results.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(
            out,
            "{sep}{{\"q\":{:?},\"c\":{c:?},\"z\":{z:?},\"v\":{v:?},\"lambda\":{:?},\"beta\":{:?},\"turnover_check_times_z\":{:?}}}",
            m.q,
            m.lambda,
            m.beta,
            tc * z
        )?;
    }
    out.push_str("]}");
    Ok(out)
}

/// JSON object with the ACF at lags 1, 5 and 20 (those that were computed).
fn acf_lags(acf: &[f64]) -> String {
    let items: Vec<String> = [1usize, 5, 20]
        .iter()
        .filter(|&&l| l < acf.len())
        .map(|&l| format!("\"{l}\":{:?}", acf[l]))
        .collect();
    format!("{{{}}}", items.join(","))
}

/// Peak resident set size of this process in KiB (`VmHWM` from /proc/self/status), if known.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run_sim(args: &[String]) -> BoxResult<String> {
    let paths: usize = flag(args, "--paths", 10_000)?;
    let substeps: usize = flag(args, "--substeps", 10)?;
    let days: usize = flag(args, "--days", 2520)?;
    let seed: u64 = flag(args, "--seed", 1)?;
    let max_lag: usize = flag(args, "--max-lag", SimConfig::default().max_lag)?;
    let (fr, b) = targets()?;

    let t_setup = Instant::now();
    let np15 = Arc::new(NormalisedPower::solve(1.5)?);
    let np11 = Arc::new(NormalisedPower::solve(1.1)?);
    let prop = match_proportional(b.lambda_p, b.shtu, &fr)?;
    let quad = match_quadratic(b.lambda_p, b.shtu, &fr)?;
    let p15 = match_power_with(&np15, b.lambda_p, b.shtu, &fr)?;
    let p11 = match_power_with(&np11, b.lambda_p, b.shtu, &fr)?;
    let models = vec![
        ModelSpec::proportional("prop", &prop),
        ModelSpec::quadratic("q=2", &quad),
        ModelSpec::power("q=1.5", &p15, np15),
        ModelSpec::power("q=1.1", &p11, np11),
    ];
    let setup_s = t_setup.elapsed().as_secs_f64();

    let cfg = SimConfig {
        n_paths: paths,
        n_days: days,
        substeps,
        burn_in_days: 0,
        seed,
        keep_paths: 0,
        max_lag,
        premium_loading: fr.premium_loading,
        ..SimConfig::default()
    };
    let t0 = Instant::now();
    let res = simulate(&cfg, &models)?;
    let sim_s = t0.elapsed().as_secs_f64();

    let mut out = String::new();
    write!(
        out,
        "{{\"task\":\"sim\",\"impl\":\"eqlab\",\"threads\":{},\"paths\":{paths},\"days\":{days},\"substeps\":{substeps},\"max_lag\":{},\"hist_bins\":{},\"setup_s\":{setup_s:?},\"time_s\":{sim_s:?},\"shtu\":{:?},\"models\":[",
        rayon::current_num_threads(),
        cfg.max_lag,
        cfg.hist_bins,
        b.shtu
    )?;
    for (i, (s, m)) in res.models.iter().zip(&models).enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let param = match &m.kind {
            ModelKind::Quadratic { k } => format!("\"k\":{k:?}"),
            ModelKind::Power { c1, .. } => format!("\"c1\":{c1:?}"),
            ModelKind::Proportional { ell, .. } => format!("\"ell\":{ell:?}"),
        };
        write!(
            out,
            "{sep}{{\"label\":\"{}\",\"scheme\":\"{}\",\"delta\":{:?},{param},\"mean_turnover\":{:?},\"expected_turnover\":{:?},\"cv_turnover\":{:?},\"sd_x\":{:?},\"stationary_sd_x\":{:?},\"acf_x\":{},\"acf_turnover\":{}}}",
            s.label,
            s.scheme,
            m.delta,
            s.mean_turnover,
            s.expected_turnover,
            s.cv_turnover,
            s.sd_x,
            s.stationary_sd_x,
            acf_lags(&s.acf_x),
            acf_lags(&s.acf_turnover)
        )?;
    }
    out.push(']');
    match peak_rss_kib() {
        Some(kib) => write!(out, ",\"vmhwm_kib\":{kib}}}")?,
        None => out.push_str(",\"vmhwm_kib\":null}"),
    }
    Ok(out)
}
