//! `frictionless_calibration`: σ, s, γ̄ (or the mean return μ̄) and κ → the agents' risk
//! aversions, the frictionless drift, initial allocations and the liquidity-premium loading
//! (GMS §2, §5.1–5.2). Each input is a parameter or, when null, an upstream scalar.

use super::param_or_upstream;
use crate::finance::calibration::Frictionless;
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use anyhow::Result;

/// The `frictionless_calibration` stage kind.
pub struct Calibration;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "sigma",
        K::Float,
        "null",
        "absolute daily volatility σ; null: upstream scalar `sigma`",
    ),
    ParamSpec::opt(
        "shares_outstanding",
        K::Float,
        "null",
        "supply s; null: upstream scalar `shares_outstanding`",
    ),
    ParamSpec::opt(
        "gamma_bar",
        K::Float,
        "null",
        "aggregate risk aversion γ̄; null: upstream `gamma_bar`, else from `mean_return`",
    ),
    ParamSpec::opt(
        "mean_return",
        K::Float,
        "null",
        "mean daily price change μ̄ (used when γ̄ is not given); null: upstream",
    ),
    ParamSpec::opt(
        "kappa",
        K::Float,
        "null",
        "κ = γ¹/γ²; null: upstream `kappa`, else 0.5",
    ),
    ParamSpec::opt(
        "days_per_year",
        K::Float,
        "252",
        "trading days per year (for annualised figures)",
    ),
];

impl Stage for Calibration {
    fn kind(&self) -> &'static str {
        "frictionless_calibration"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "frictionless equilibrium: γ¹, γ², μ̄, initial allocations, premium loading (GMS §2, §5)"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/calibration.rs",
            "src/stages/shared.rs",
            "src/finance/calibration.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_positive(&[
            "sigma",
            "shares_outstanding",
            "gamma_bar",
            "mean_return",
            "kappa",
        ])
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let sigma = param_or_upstream(p, inputs, "sigma")?;
        let s = param_or_upstream(p, inputs, "shares_outstanding")?;
        let kappa = match p.opt_f64("kappa")? {
            Some(k) => k,
            None if inputs.has_scalar("kappa") => inputs.scalar("kappa")?,
            None => crate::finance::calibration::DEFAULT_KAPPA,
        };
        let fr = match p.opt_f64("gamma_bar")? {
            Some(g) => Frictionless::from_gamma_bar(sigma, s, g, kappa)?,
            None if inputs.has_scalar("gamma_bar") => {
                Frictionless::from_gamma_bar(sigma, s, inputs.scalar("gamma_bar")?, kappa)?
            }
            None => Frictionless::from_mu_bar(
                sigma,
                s,
                param_or_upstream(p, inputs, "mean_return")?,
                kappa,
            )?,
        };
        let mut out = Outputs::new()
            .scalar("sigma", fr.sigma)
            .scalar("shares_outstanding", fr.s)
            .scalar("kappa", fr.kappa)
            .scalar("gamma_bar", fr.gamma_bar)
            .scalar("gamma1", fr.gamma1)
            .scalar("gamma2", fr.gamma2)
            .scalar("gamma_sum", fr.gamma_sum())
            .scalar("mu_bar", fr.mu_bar)
            .scalar("phi1_0", fr.phi1_0)
            .scalar("phi2_0", fr.phi2_0)
            .scalar("premium_loading", fr.premium_loading);
        if inputs.has_scalar("price") {
            let price = inputs.scalar("price")?;
            let year = p.f64("days_per_year")?;
            out = out
                .scalar("mu_bar_annual_pct", fr.mu_bar * year / price * 100.0)
                .scalar("bs_vol_annual_pct", fr.sigma * year.sqrt() / price * 100.0);
        }
        Ok(out)
    }
}
