//! `simulate_equilibrium`: Monte-Carlo of the equilibrium state X, returns μ_t, liquidity premium
//! and daily turnover for every calibrated cost model, all driven by the same Brownian increments
//! (GMS §3.7, §4, spec §10.3–10.4). Statistics are accumulated while simulating; only a few
//! sample paths are stored.

use super::{frictionless, unprefix_single};
use crate::finance::FinanceError;
use crate::finance::power::NormalisedPower;
use crate::finance::sde::{ModelKind, ModelSpec, SimConfig, simulate_with};
use crate::stage::{
    Cancelled, Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::{Table, TableBuilder, f64_column, str_column};
use anyhow::{Result, anyhow, bail};
use std::sync::Arc;

/// The `simulate_equilibrium` stage kind.
pub struct Simulate;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "models",
        K::StrList,
        "[]",
        "models (rows of the upstream `models` table) to simulate; empty: all",
    ),
    ParamSpec::opt("paths", K::Int, "64", "number of independent paths"),
    ParamSpec::opt(
        "days",
        K::Int,
        "2520",
        "recorded trading days per path (10 years)",
    ),
    ParamSpec::opt("substeps", K::Int, "100", "Euler substeps per day"),
    ParamSpec::opt(
        "burn_in_days",
        K::Int,
        "0",
        "days simulated before recording (X₀ = 0, the calibrated allocation)",
    ),
    ParamSpec::opt(
        "keep_paths",
        K::Int,
        "3",
        "sample paths stored in the `paths` table",
    ),
    ParamSpec::opt("max_lag", K::Int, "40", "largest ACF lag (days)"),
    ParamSpec::opt(
        "hist_bins",
        K::Int,
        "60",
        "bins of the empirical density of X",
    ),
];

/// ACF lags reported as columns and scalars.
const LAGS: [usize; 3] = [1, 5, 20];

impl Stage for Simulate {
    fn kind(&self) -> &'static str {
        "simulate_equilibrium"
    }
    fn version(&self) -> u32 {
        // 5: the simulation compiled for AVX2 when the CPU has it (same bits as 4; bumped as
        // the source-hash rule asks for any change).
        // 6: inlined ziggurat normals (`finance::ziggurat`), AVX2 drift steps and ACF passes
        // (same bits as 5; bumped as the rule asks).
        6
    }
    fn about(&self) -> &'static str {
        "simulate X, μ_t, premium and turnover for every cost model on common Brownian paths"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/simulate.rs",
            "src/stages/shared.rs",
            "src/finance/sde.rs",
            "src/finance/ziggurat.rs",
            "src/finance/stats.rs",
            "src/finance/power.rs",
            "src/finance/ode.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        for (name, min) in [("paths", 1), ("days", 2), ("substeps", 1), ("hist_bins", 1)] {
            let v = p
                .usize(name)
                .map_err(|e| ParamError::new(name, e.to_string()))?;
            if v < min {
                return Err(ParamError::new(
                    name,
                    format!("must be at least {min}, got {v}"),
                ));
            }
        }
        Ok(())
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let fr = frictionless(inputs)?;
        let models = model_specs(inputs.table("models")?, &p.str_list("models")?)?;
        let cfg = SimConfig {
            n_paths: p.usize("paths")?,
            n_days: p.usize("days")?,
            substeps: p.usize("substeps")?,
            burn_in_days: p.usize("burn_in_days")?,
            seed: ctx.seed,
            keep_paths: p.usize("keep_paths")?,
            max_lag: p.usize("max_lag")?,
            hist_bins: p.usize("hist_bins")?,
            premium_loading: fr.premium_loading,
        };
        ctx.progress.set_len(cfg.n_paths as u64);
        let on_path = || {
            ctx.progress.inc(1);
            !ctx.is_cancelled()
        };
        let res = simulate_with(&cfg, &models, &on_path).map_err(|e| match e {
            FinanceError::Interrupted => anyhow!(Cancelled),
            other => anyhow!(other),
        })?;
        let mut out = Outputs::new();
        let mut stats = StatsRows::default();
        let (mut acf, mut dens, mut paths) =
            (AcfRows::default(), DensRows::default(), PathRows::default());
        for (m, sample) in res.models.iter().zip(&res.sample_paths) {
            let lag = |v: &[f64], l: usize| v.get(l).copied().unwrap_or(f64::NAN);
            stats.model.push(m.label.clone());
            stats.scheme.push(m.scheme.to_owned());
            stats.values.push(vec![
                m.expected_turnover,
                m.mean_turnover,
                m.mean_turnover / m.expected_turnover - 1.0,
                m.sd_turnover,
                m.cv_turnover,
                m.stationary_sd_x,
                m.sd_x,
                m.sd_premium,
                lag(&m.acf_x, LAGS[0]),
                lag(&m.acf_x, LAGS[1]),
                lag(&m.acf_x, LAGS[2]),
                lag(&m.acf_turnover, LAGS[0]),
                lag(&m.acf_turnover, LAGS[1]),
                lag(&m.acf_turnover, LAGS[2]),
            ]);
            let l = &m.label;
            out = out
                .scalar(&format!("{l}.mean_turnover"), m.mean_turnover)
                .scalar(&format!("{l}.cv_turnover"), m.cv_turnover)
                .scalar(&format!("{l}.sd_x"), m.sd_x)
                .scalar(&format!("{l}.sd_premium"), m.sd_premium);
            for lg in LAGS {
                out = out
                    .scalar(&format!("{l}.acf_turnover_{lg}"), lag(&m.acf_turnover, lg))
                    .scalar(&format!("{l}.acf_x_{lg}"), lag(&m.acf_x, lg));
            }
            for k in 0..m.acf_x.len() {
                acf.model.push(l.clone());
                acf.lag.push(k as i64);
                acf.x.push(m.acf_x[k]);
                acf.t.push(m.acf_turnover[k]);
                acf.ax
                    .push(m.analytic_acf_x.as_ref().and_then(|a| a.get(k).copied()));
                acf.at.push(
                    m.analytic_acf_turnover
                        .as_ref()
                        .and_then(|a| a.get(k).copied()),
                );
            }
            for b in 0..m.hist_density.len() {
                dens.model.push(l.clone());
                dens.lo.push(m.hist_edges[b]);
                dens.hi.push(m.hist_edges[b + 1]);
                dens.emp.push(m.hist_density[b]);
                dens.stat.push(m.stationary_density[b]);
            }
            for sp in sample {
                for (d, ((x, prem), t)) in
                    sp.x.iter().zip(&sp.premium).zip(&sp.turnover).enumerate()
                {
                    paths.model.push(l.clone());
                    paths.path.push(sp.path as i64);
                    paths.day.push(d as i64 + 1);
                    paths.x.push(*x);
                    paths.premium.push(*prem);
                    paths.mu.push(fr.mu_bar + prem);
                    paths.turnover.push(*t);
                }
            }
        }
        let out = unprefix_single(out, &stats.model);
        let mut tb = TableBuilder::new()
            .str("model", &stats.model)
            .str("scheme", &stats.scheme);
        for (j, name) in STAT_COLUMNS.iter().enumerate() {
            tb = tb.f64(name, stats.values.iter().map(|v| v[j]).collect());
        }
        Ok(out
            .table("stats", tb.build()?)
            .table(
                "acf",
                TableBuilder::new()
                    .str("model", &acf.model)
                    .i64("lag", acf.lag)
                    .f64("acf_x", acf.x)
                    .f64("acf_turnover", acf.t)
                    .opt_f64("analytic_acf_x", acf.ax)
                    .opt_f64("analytic_acf_turnover", acf.at)
                    .build()?,
            )
            .table(
                "density",
                TableBuilder::new()
                    .str("model", &dens.model)
                    .f64("bin_lo", dens.lo)
                    .f64("bin_hi", dens.hi)
                    .f64("empirical", dens.emp)
                    .f64("stationary", dens.stat)
                    .build()?,
            )
            .table(
                "paths",
                TableBuilder::new()
                    .str("model", &paths.model)
                    .i64("path", paths.path)
                    .i64("day", paths.day)
                    .f64("x", paths.x)
                    .f64("premium", paths.premium)
                    .f64("mu", paths.mu)
                    .f64("turnover", paths.turnover)
                    .build()?,
            )
            .scalar("mu_bar", fr.mu_bar))
    }
}

/// Columns of the `stats` table after `model` and `scheme`.
const STAT_COLUMNS: [&str; 14] = [
    "expected_turnover",
    "mean_turnover",
    "turnover_rel_error",
    "sd_turnover",
    "cv_turnover",
    "stationary_sd_x",
    "sd_x",
    "sd_premium",
    "acf_x_1",
    "acf_x_5",
    "acf_x_20",
    "acf_turnover_1",
    "acf_turnover_5",
    "acf_turnover_20",
];

#[derive(Default)]
struct StatsRows {
    model: Vec<String>,
    scheme: Vec<String>,
    values: Vec<Vec<f64>>,
}

#[derive(Default)]
struct AcfRows {
    model: Vec<String>,
    lag: Vec<i64>,
    x: Vec<f64>,
    t: Vec<f64>,
    ax: Vec<Option<f64>>,
    at: Vec<Option<f64>>,
}

#[derive(Default)]
struct DensRows {
    model: Vec<String>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    emp: Vec<f64>,
    stat: Vec<f64>,
}

#[derive(Default)]
struct PathRows {
    model: Vec<String>,
    path: Vec<i64>,
    day: Vec<i64>,
    x: Vec<f64>,
    premium: Vec<f64>,
    mu: Vec<f64>,
    turnover: Vec<f64>,
}

/// Rebuilds the simulation models from the `models` table of `turnover_matching`.
fn model_specs(t: &Table, wanted: &[String]) -> Result<Vec<ModelSpec>> {
    let names = str_column(t, "model")?;
    let col = |n: &str| f64_column(t, n);
    let (q, delta, ell, k, c1) = (col("q")?, col("delta")?, col("ell")?, col("k")?, col("c1")?);
    for w in wanted {
        if !names.contains(w) {
            bail!("no model '{w}' upstream (models: {})", names.join(", "));
        }
    }
    let mut specs = Vec::new();
    for i in 0..names.len() {
        if !wanted.is_empty() && !wanted.contains(&names[i]) {
            continue;
        }
        let kind = if ell[i].is_finite() {
            ModelKind::Proportional {
                ell: ell[i],
                boundary_shift: true,
            }
        } else if k[i].is_finite() {
            ModelKind::Quadratic { k: k[i] }
        } else if c1[i].is_finite() && q[i].is_finite() {
            ModelKind::Power {
                c1: c1[i],
                np: Arc::new(NormalisedPower::solve(q[i])?),
            }
        } else {
            bail!("model '{}' has neither ell, k nor (q, c1)", names[i]);
        };
        specs.push(ModelSpec {
            label: names[i].clone(),
            delta: delta[i],
            kind,
        });
    }
    Ok(specs)
}
