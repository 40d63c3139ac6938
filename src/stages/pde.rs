//! `finite_horizon_pde`: the exogenous-volatility decoupling field f(t, x) of PDE (6.16) for a
//! power cost on a horizon T, with the trading rate (G')⁻¹(f) at chosen times — the reference the
//! deep solver's Figure 4 rate is compared with.

use super::frictionless;
use crate::finance::costs::Cost;
use crate::finance::pde::{FiniteHorizonProblem, Grid, solve_finite_horizon};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::Result;

/// The `finite_horizon_pde` stage kind.
pub struct FiniteHorizonPde;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt("q", K::Float, "1.5", "cost elasticity q ∈ (1, 2]"),
    ParamSpec::opt("lambda", K::Float, "5.22e-6", "cost level λ"),
    ParamSpec::opt("beta", K::Float, "2.33e10", "endowment loading β (ϑ = β/σ)"),
    ParamSpec::opt("horizon", K::Float, "25.0", "horizon T (trading days)"),
    ParamSpec::opt("nodes", K::Int, "1601", "grid nodes (odd)"),
    ParamSpec::opt(
        "half_width",
        K::Float,
        "4e11",
        "the grid covers [−L, L] shares",
    ),
    ParamSpec::opt(
        "times",
        K::FloatList,
        "[0.0, 2.0, 10.0, 20.0]",
        "times t at which f is reported",
    ),
    ParamSpec::opt(
        "eval_time",
        K::Float,
        "2.0",
        "t of the reported rate scalar",
    ),
    ParamSpec::opt("eval_x", K::Float, "-3e10", "X of the reported rate scalar"),
];

impl Stage for FiniteHorizonPde {
    fn kind(&self) -> &'static str {
        "finite_horizon_pde"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "finite-horizon PDE (6.16) by upwind method of lines: f(t, x) and the trading rate"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/pde.rs",
            "src/stages/shared.rs",
            "src/finance/pde.rs",
            "src/finance/costs.rs",
            "src/finance/calibration.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_positive(&["lambda", "beta", "horizon", "half_width"])?;
        check_q(p)?;
        let n = p
            .usize("nodes")
            .map_err(|e| ParamError::new("nodes", e.to_string()))?;
        if n < 5 || n.is_multiple_of(2) {
            return Err(ParamError::new(
                "nodes",
                format!("needs an odd number ≥ 5, got {n}"),
            ));
        }
        Ok(())
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let fr = frictionless(inputs)?;
        let cost = Cost::Power {
            lambda: p.f64("lambda")?,
            q: p.f64("q")?,
        };
        let problem = FiniteHorizonProblem {
            cost: cost.clone(),
            theta: p.f64("beta")? / fr.sigma,
            slope: fr.gamma_tilde() * fr.sigma * fr.sigma,
            horizon: p.f64("horizon")?,
        };
        let grid = Grid {
            half_width: p.f64("half_width")?,
            nodes: p.usize("nodes")?,
            courant: 0.8,
        };
        let eval_time = p.f64("eval_time")?;
        let mut times = p.f64_list("times")?;
        times.push(eval_time);
        let sol = solve_finite_horizon(&problem, &grid, &times, &|| ctx.is_cancelled())?;
        let (mut t, mut x, mut f, mut rate) = (vec![], vec![], vec![], vec![]);
        for (i, &ti) in sol.t.iter().enumerate() {
            for (j, &xj) in sol.x.iter().enumerate() {
                t.push(ti);
                x.push(xj);
                f.push(sol.f[i][j]);
                rate.push(cost.rate(sol.f[i][j]));
            }
        }
        let i_eval =
            sol.t.iter().position(|&v| v == eval_time).ok_or_else(|| {
                anyhow::anyhow!("internal: t = {eval_time} missing from the output")
            })?;
        Ok(Outputs::new()
            .table(
                "field",
                TableBuilder::new()
                    .f64("t", t)
                    .f64("x", x)
                    .f64("f", f)
                    .f64("rate", rate)
                    .build()?,
            )
            .scalar(
                "rate_at_eval",
                cost.rate(sol.f_at(i_eval, p.f64("eval_x")?)),
            )
            .scalar("time_steps", sol.steps as f64))
    }
}

/// Checks that parameter `q` lies in (1, 2].
pub fn check_q(p: &Params) -> Result<(), ParamError> {
    let q = p
        .f64("q")
        .map_err(|e| ParamError::new("q", e.to_string()))?;
    if q > 1.0 && q <= 2.0 {
        Ok(())
    } else {
        Err(ParamError::new(
            "q",
            format!("the cost elasticity must lie in (1, 2], got {q}"),
        ))
    }
}
