//! `deep_bsde_eval`: reloads the weights of an upstream `deep_bsde` stage (never retrains) and
//! evaluates them on fresh test paths. Endogenous volatility: price and volatility corrections
//! over time (means, spreads, sample paths; for q = 2 against the exact solution of the same
//! Euler scheme on the same paths), terminal residuals and the liquidity premium. Exogenous
//! volatility: the Figure 4 comparison of the learned trading rate at a time t with the
//! finite-horizon PDE rate and the long-run ODE rate over the test distribution.

use super::deep_bsde::{problem, shape};
use super::device::{DEVICE, check_device, check_device_here};
use super::frictionless_of;
use crate::deep::bsde::{BsdeModel, BsdeProblem, Paths, Variant, evaluate};
use crate::deep::train::from_bytes;
use crate::finance::pde::interpolate;
use crate::finance::riccati::{
    RiccatiParams, discrete, liquidity_premium_pct, solve, vol_increase_pct,
};
use crate::finance::stats::{mean, quantile, sd};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::{Table, TableBuilder, f64_column};
use anyhow::{Result, anyhow, bail};

/// The `deep_bsde_eval` stage kind.
pub struct DeepBsdeEval;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt("test_paths", K::Int, "10000", "fresh test paths"),
    ParamSpec::opt(
        "sample_paths",
        K::FloatList,
        "[5, 7]",
        "test path indices shown as sample paths",
    ),
    ParamSpec::opt(
        "figure_time",
        K::Float,
        "2.0",
        "exogenous: the time t of the rate comparison (Figure 4)",
    ),
    ParamSpec::opt(
        "report_times",
        K::FloatList,
        "[5.0, 10.0, 15.0]",
        "endogenous: times of the reported mean corrections",
    ),
    ParamSpec::opt("s_bar0", K::Float, "64.11", "frictionless initial price S̄₀"),
    ParamSpec::opt(
        "price",
        K::Float,
        "124.11",
        "average price for %/yr figures",
    ),
    ParamSpec::opt("days_per_year", K::Float, "252", "trading days per year"),
    ParamSpec::opt(
        "max_points",
        K::Int,
        "4000",
        "exogenous: test points kept in the Figure 4 table",
    ),
    DEVICE,
];

impl Stage for DeepBsdeEval {
    fn kind(&self) -> &'static str {
        "deep_bsde_eval"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "evaluates stored deep BSDE weights on fresh paths (corrections, residuals, Figure 4 rates)"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/shared.rs",
            "src/stages/deep_bsde_eval.rs",
            "src/stages/deep_bsde.rs",
            "src/stages/device.rs",
            "src/deep/mod.rs",
            "src/deep/device.rs",
            "src/deep/bsde.rs",
            "src/deep/nets.rs",
            "src/deep/train.rs",
            "src/finance/pde.rs",
            "src/finance/riccati.rs",
            "src/finance/stats.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_positive(&["price", "days_per_year", "figure_time"])?;
        p.require_at_least(&[("test_paths", 10)])?;
        check_device(p)
    }
    fn check_machine(&self, p: &Params) -> Result<(), ParamError> {
        check_device_here(p)
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let (name, u) = inputs.only_of_kind("deep_bsde")?;
        let up = crate::stage::Params::new(u.params.clone(), std::path::PathBuf::new());
        let prob = problem(&up, frictionless_of(name, u)?)?;
        let weights = u
            .outputs
            .files
            .get("weights")
            .ok_or_else(|| anyhow!("the deep_bsde stage stored no weights"))?;
        let device = super::device::device(p)?;
        let model = from_bytes(
            BsdeModel::new(&prob, shape(&up)?, 0, &device),
            &weights.bytes,
        )?;
        ctx.check_cancelled()?;
        let n_test = p.usize("test_paths")?;
        let (loss, paths) = evaluate(&model, &prob, n_test, ctx.seed);
        let y_end = &paths.y[prob.steps];
        let out = Outputs::new()
            .scalar("q", prob.q)
            .scalar("steps", prob.steps as f64)
            .scalar("test_loss", loss)
            .scalar("rms_terminal_y", rms(y_end));
        match prob.variant {
            Variant::Endogenous => endogenous(p, &prob, &model, &paths, out),
            Variant::Exogenous => exogenous(p, inputs, &prob, &paths, out),
        }
    }
}

fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
}

fn endogenous(
    p: &Params,
    prob: &BsdeProblem,
    model: &BsdeModel,
    paths: &Paths,
    mut out: Outputs,
) -> Result<Outputs> {
    let a = prob.fr.sigma;
    let n = prob.steps;
    let dt = prob.dt();
    let t: Vec<f64> = (0..=n).map(|k| k as f64 * dt).collect();
    let vol: Vec<Vec<f64>> = paths
        .sigma
        .iter()
        .map(|s| s.iter().map(|v| v - a).collect())
        .collect();
    // For q = 2 the exact solution of the same scheme, on the same paths (spec §4.4).
    let rp = RiccatiParams {
        fr: prob.fr,
        lambda: prob.lambda,
        beta: prob.beta,
        horizon: prob.horizon,
        s_bar0: p.f64("s_bar0")?,
    };
    let exact = if prob.q == 2.0 {
        Some(discrete(&rp, n)?)
    } else {
        None
    };
    let n_paths = paths.d[0].len();
    // The exact scheme's price corrections along every test path, computed once.
    let exact_paths: Option<Vec<Vec<f64>>> = exact.as_ref().map(|e| {
        (0..n_paths)
            .map(|i| e.price_correction_path(&paths.w.iter().map(|w| w[i]).collect::<Vec<_>>()))
            .collect()
    });
    let exact_mean: Option<Vec<f64>> = exact_paths.as_ref().map(|ex| {
        let mut acc = vec![0.0; n + 1];
        for path in ex {
            for (k, v) in path.iter().enumerate() {
                acc[k] += v / n_paths as f64;
            }
        }
        acc
    });
    let mut corrections = TableBuilder::new()
        .f64("t", t.clone())
        .f64(
            "mean_price_correction",
            paths.d.iter().map(|d| mean(d)).collect(),
        )
        .f64(
            "sd_price_correction",
            paths.d.iter().map(|d| sd(d)).collect(),
        )
        .f64("mean_vol_correction", vol.iter().map(|v| mean(v)).collect())
        .f64("sd_vol_correction", vol.iter().map(|v| sd(v)).collect());
    if let (Some(e), Some(em)) = (&exact, &exact_mean) {
        let mut ev: Vec<f64> = e.sigma.iter().map(|s| s - a).collect();
        ev.push(*ev.last().unwrap_or(&0.0));
        corrections = corrections
            .f64("exact_vol_correction", ev)
            .f64("exact_mean_price_correction", em.clone());
    }
    // Sample paths (long format).
    let (mut sp, mut st, mut spc, mut svc, mut sex) = (vec![], vec![], vec![], vec![], vec![]);
    for idx in p.f64_list("sample_paths")? {
        let i = idx as usize;
        if idx < 0.0 || idx.fract() != 0.0 || i >= n_paths {
            bail!("sample path {idx} is not a test path index (0..{n_paths})");
        }
        for k in 0..=n {
            sp.push(i as i64);
            st.push(t[k]);
            spc.push(paths.d[k][i]);
            svc.push(vol[k][i]);
            sex.push(exact_paths.as_ref().map(|ex| ex[i][k]));
        }
    }
    let iv = model.initial_values(prob);
    let horizon = prob.horizon;
    let lp = liquidity_premium_pct(
        iv.delta_s0,
        horizon,
        p.f64("days_per_year")?,
        p.f64("price")?,
    );
    for rt in p.f64_list("report_times")? {
        let k = (rt / dt).round() as usize;
        if k > n || ((k as f64) * dt - rt).abs() > 1e-9 * horizon {
            bail!("report time {rt} is not on the time grid (Δt = {dt})");
        }
        out = out
            .scalar(&format!("vol_correction_t{rt}"), mean(&vol[k]))
            .scalar(&format!("mean_price_correction_t{rt}"), mean(&paths.d[k]));
    }
    if let (Some(e), Some(ex)) = (&exact, &exact_paths) {
        let gap = ex
            .iter()
            .enumerate()
            .flat_map(|(i, path)| {
                path.iter()
                    .enumerate()
                    .map(move |(k, v)| (paths.d[k][i] - v).abs())
            })
            .fold(0.0, f64::max);
        let continuous = solve(&rp, &[0.0, prob.horizon])?.delta_s0;
        out = out
            .scalar("continuous_delta_s0", continuous)
            .scalar("discretisation_gap", e.delta_s0 - continuous)
            .scalar("learning_error", iv.delta_s0 - e.delta_s0)
            .scalar("max_abs_gap_to_exact_scheme", gap)
            .scalar("exact_scheme_delta_s0", e.delta_s0)
            .scalar("exact_scheme_sigma0_minus_a", e.sigma[0] - a);
    }
    Ok(out
        .table("corrections", corrections.build()?)
        .table(
            "sample_paths",
            TableBuilder::new()
                .i64("path", sp)
                .f64("t", st)
                .f64("price_correction", spc)
                .f64("vol_correction", svc)
                .opt_f64("exact_price_correction", sex)
                .build()?,
        )
        .scalar("delta_s0", iv.delta_s0)
        .scalar("sigma0_minus_a", iv.sigma0_minus_a)
        .scalar("vol_increase_pct", vol_increase_pct(iv.sigma0_minus_a, a))
        .scalar("liquidity_premium_pct_yr", lp)
        .scalar("rms_terminal_price", rms(&paths.d[n]))
        .scalar("mean_terminal_price", mean(&paths.d[n])))
}

/// The rate column of `table` at time `t` (rows with that t), as (x, rate) sorted by x.
fn rate_slice(table: &Table, t: Option<f64>) -> Result<(Vec<f64>, Vec<f64>)> {
    let x = f64_column(table, "x")?;
    let rate = f64_column(table, "rate")?;
    let keep: Vec<usize> = match t {
        Some(t) => {
            let tc = f64_column(table, "t")?;
            (0..x.len()).filter(|&i| tc[i] == t).collect()
        }
        None => (0..x.len()).collect(),
    };
    if keep.is_empty() {
        bail!("the finite-horizon PDE has no slice at t = {t:?}; add it to its `times`");
    }
    let mut pts: Vec<(f64, f64)> = keep.iter().map(|&i| (x[i], rate[i])).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(pts.into_iter().unzip())
}

fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

fn exogenous(
    p: &Params,
    inputs: &Inputs,
    prob: &BsdeProblem,
    paths: &Paths,
    out: Outputs,
) -> Result<Outputs> {
    let t_fig = p.f64("figure_time")?;
    let dt = prob.dt();
    let k = (t_fig / dt).round() as usize;
    if k == 0 || k >= prob.steps || ((k as f64) * dt - t_fig).abs() > 1e-9 * prob.horizon {
        bail!(
            "figure_time {t_fig} must be an interior grid time (Δt = {dt}, T = {})",
            prob.horizon
        );
    }
    let cost = crate::finance::costs::Cost::Power {
        lambda: prob.lambda,
        q: prob.q,
    };
    let x = &paths.x[k];
    let learned: Vec<f64> = paths.y[k].iter().map(|&y| cost.rate(y)).collect();
    let (px, prate) = rate_slice(
        upstream_table(inputs, "finite_horizon_pde", "field")?,
        Some(t_fig),
    )?;
    let (gx, grate) = rate_slice(upstream_table(inputs, "cost_ode", "g")?, None)?;
    let pde: Vec<f64> = x.iter().map(|&v| interpolate(&px, &prate, v)).collect();
    let longrun: Vec<f64> = x.iter().map(|&v| interpolate(&gx, &grate, v)).collect();
    // The paper's view: X within its 1–99 % quantiles.
    let (lo, hi) = (quantile(x, 0.01), quantile(x, 0.99));
    let mut idx: Vec<usize> = (0..x.len()).filter(|&i| x[i] >= lo && x[i] <= hi).collect();
    let keep = p.usize("max_points")?.max(1);
    let stride = idx.len().div_ceil(keep).max(1);
    idx = idx.into_iter().step_by(stride).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let pick = |v: &[f64]| -> Vec<f64> { idx.iter().map(|&i| v[i]).collect() };
    Ok(out
        .table(
            "rate",
            TableBuilder::new()
                .f64("x", pick(x))
                .f64("learned_rate", pick(&learned))
                .f64("pde_rate", pick(&pde))
                .f64("longrun_rate", pick(&longrun))
                .build()?,
        )
        .scalar("rel_l2_vs_pde", rel_l2(&learned, &pde))
        .scalar("rel_l2_vs_longrun", rel_l2(&learned, &longrun))
        .scalar("rel_l2_pde_vs_longrun", rel_l2(&pde, &longrun))
        .scalar("figure_time", t_fig))
}

/// Table `name` of the only upstream stage of kind `kind`.
fn upstream_table<'a>(inputs: &'a Inputs, kind: &str, name: &str) -> Result<&'a Table> {
    let (stage, u) = inputs.only_of_kind(kind)?;
    u.outputs
        .tables
        .get(name)
        .ok_or_else(|| anyhow!("the `{kind}` stage '{stage}' has no table '{name}'"))
}
