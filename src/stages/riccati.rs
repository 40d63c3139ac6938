//! `riccati_benchmark`: the quadratic-cost endogenous-volatility benchmark of GMS Example 6.1
//! (HMP Riccati system): price and volatility corrections over [0, T], ΔS₀, σ₀ − a, the
//! liquidity premium, and the exact solution of the N-step Euler scheme that a deep solver with
//! N steps should reproduce.

use super::frictionless;
use crate::finance::riccati::{RiccatiParams, discrete, solve};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::Result;

/// The `riccati_benchmark` stage kind.
pub struct RiccatiBenchmark;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt("lambda", K::Float, "1.08e-10", "quadratic cost level λ"),
    ParamSpec::opt(
        "beta",
        K::Float,
        "2.19e10",
        "endowment loading β (2.19e10 belongs to q = 2)",
    ),
    ParamSpec::opt("horizon", K::Float, "20.0", "horizon T (trading days)"),
    ParamSpec::opt("s_bar0", K::Float, "64.11", "frictionless initial price S̄₀"),
    ParamSpec::opt(
        "steps",
        K::Int,
        "40",
        "N of the discrete Euler scheme solved exactly",
    ),
    ParamSpec::opt("points", K::Int, "201", "output grid points on [0, T]"),
    ParamSpec::opt(
        "price",
        K::Float,
        "124.11",
        "average price for %/yr figures",
    ),
    ParamSpec::opt("days_per_year", K::Float, "252", "trading days per year"),
];

impl Stage for RiccatiBenchmark {
    fn kind(&self) -> &'static str {
        "riccati_benchmark"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "HMP Riccati benchmark (q = 2, endogenous volatility) and the exact discrete Euler solution"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/riccati.rs",
            "src/stages/shared.rs",
            "src/finance/riccati.rs",
            "src/finance/ode.rs",
            "src/finance/calibration.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_positive(&["lambda", "beta", "horizon", "price", "days_per_year"])?;
        let n = p
            .usize("steps")
            .map_err(|e| ParamError::new("steps", e.to_string()))?;
        if n < 2 {
            return Err(ParamError::new(
                "steps",
                format!("the Euler scheme needs N ≥ 2 steps, got {n}"),
            ));
        }
        if p.usize("points")
            .map_err(|e| ParamError::new("points", e.to_string()))?
            < 2
        {
            return Err(ParamError::new("points", "needs at least 2 points"));
        }
        Ok(())
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let rp = RiccatiParams {
            fr: frictionless(inputs)?,
            lambda: p.f64("lambda")?,
            beta: p.f64("beta")?,
            horizon: p.f64("horizon")?,
            s_bar0: p.f64("s_bar0")?,
        };
        let n = p.usize("points")?;
        let t: Vec<f64> = (0..n)
            .map(|i| rp.horizon * i as f64 / (n - 1) as f64)
            .collect();
        let sol = solve(&rp, &t)?;
        let steps = p.usize("steps")?;
        let d = discrete(&rp, steps)?;
        let dt = rp.horizon / steps as f64;
        let a = rp.fr.sigma;
        Ok(Outputs::new()
            .table(
                "paths",
                TableBuilder::new()
                    .f64("t", t)
                    .f64("vol_correction", sol.vol_correction.clone())
                    .f64("mean_price_correction", sol.mean_price_correction.clone())
                    .build()?,
            )
            .table(
                "discrete",
                TableBuilder::new()
                    .f64("t", (0..steps).map(|i| i as f64 * dt).collect())
                    .f64("vol_correction", d.sigma.iter().map(|s| s - a).collect())
                    .build()?,
            )
            .scalar("delta_s0", sol.delta_s0)
            .scalar("sigma0_minus_a", sol.sigma0_minus_a)
            .scalar("vol_increase_pct", sol.vol_increase_pct(a))
            .scalar(
                "liquidity_premium_pct_yr",
                sol.liquidity_premium_pct(rp.horizon, p.f64("days_per_year")?, p.f64("price")?),
            )
            .scalar("discrete_delta_s0", d.delta_s0)
            .scalar("discrete_s0", d.s0)
            .scalar("discrete_z0", d.z0))
    }
}
