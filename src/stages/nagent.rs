//! `nagent_riccati`: the N-agent quadratic-cost ground truth of the Reinforced-GAN paper
//! (spec rgan §1.6): σ_t from the (H, F) Riccati system, μ_t and the trading rates along a
//! sample path, and S₀ by simulation with the path-wise shift. The economy is given by the
//! `economy` parameter shared with the R-GAN stages.

use crate::finance::nagent::{Economy, ground_truth, simulate_truth};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::{Result, anyhow};
use serde_json::Value;

/// The `nagent_riccati` stage kind.
pub struct NagentRiccati;

/// The `economy` parameter's spec (shared with the R-GAN stages).
pub const ECONOMY_DOC: &str = "{gamma: [..], xi: [..], q, lambda?, alpha?, beta?, s?, horizon}";

const PARAMS: &[ParamSpec] = &[
    ParamSpec::req("economy", K::Any, ECONOMY_DOC),
    ParamSpec::opt("steps", K::Int, "100", "Euler steps K"),
    ParamSpec::opt("paths", K::Int, "3000", "Monte-Carlo paths for S₀"),
];

/// Parses an `economy:` mapping (defaults: α = 1, β = 2, s = 1, λ = 1e-2, spec rgan §5).
pub fn parse_economy(v: &Value) -> std::result::Result<Economy, String> {
    let obj = v.as_object().ok_or("must be a mapping")?;
    for k in obj.keys() {
        if ![
            "gamma", "xi", "q", "lambda", "alpha", "beta", "s", "horizon",
        ]
        .contains(&k.as_str())
        {
            return Err(format!(
                "unknown key `{k}` (expected gamma, xi, q, lambda, alpha, beta, s, horizon)"
            ));
        }
    }
    let list = |k: &str| -> std::result::Result<Vec<f64>, String> {
        obj.get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("`{k}` must be a list of numbers"))?
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| format!("`{k}` must be a list of numbers"))
            })
            .collect()
    };
    let num = |k: &str, d: Option<f64>| -> std::result::Result<f64, String> {
        match obj.get(k) {
            Some(x) => x.as_f64().ok_or_else(|| format!("`{k}` must be a number")),
            None => d.ok_or_else(|| format!("`{k}` is required")),
        }
    };
    let e = Economy {
        gamma: list("gamma")?,
        xi: list("xi")?,
        q: num("q", None)?,
        lambda: num("lambda", Some(1e-2))?,
        alpha: num("alpha", Some(1.0))?,
        beta: num("beta", Some(2.0))?,
        s: num("s", Some(1.0))?,
        horizon: num("horizon", None)?,
    };
    e.validate(true).map_err(|e| e.to_string())?;
    Ok(e)
}

/// The validated `economy` parameter.
pub fn economy(p: &Params) -> Result<Economy> {
    parse_economy(p.get("economy")?).map_err(|e| anyhow!("economy: {e}"))
}

/// Checks the `economy` parameter (for `Stage::check`).
pub fn check_economy(p: &Params) -> std::result::Result<Economy, ParamError> {
    let v = p
        .get("economy")
        .map_err(|e| ParamError::new("economy", e.to_string()))?;
    parse_economy(v).map_err(|e| ParamError::new("economy", e))
}

impl Stage for NagentRiccati {
    fn kind(&self) -> &'static str {
        "nagent_riccati"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "N-agent quadratic-cost equilibrium (Riccati ground truth): σ_t, μ_t, rates, S₀"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/nagent.rs",
            "src/finance/nagent.rs",
            "src/finance/ode.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let e = check_economy(p)?;
        if e.q != 2.0 {
            return Err(ParamError::new(
                "economy",
                format!(
                    "the ground truth needs quadratic costs (q = 2), got q = {}",
                    e.q
                ),
            ));
        }
        p.require_at_least(&[("steps", 2), ("paths", 2)])
    }
    fn run(&self, ctx: &StageCtx, p: &Params, _inputs: &Inputs) -> Result<Outputs> {
        let e = economy(p)?;
        let steps = p.usize("steps")?;
        let g = ground_truth(&e, steps)?;
        ctx.check_cancelled()?;
        let sim = simulate_truth(&e, &g, p.usize("paths")?, ctx.seed);
        let n = e.agents();
        let mut paths = TableBuilder::new()
            .f64("t", g.t[..steps].to_vec())
            .f64("sigma", g.sigma[..steps].to_vec())
            .f64("mu", sim.mu_path.clone());
        for a in 0..n {
            paths = paths.f64(
                &format!("rate_{}", a + 1),
                sim.rate_path.iter().map(|r| r[a]).collect(),
            );
        }
        Ok(Outputs::new()
            .table("paths", paths.build()?)
            .scalar("sigma0", g.sigma[0])
            .scalar("mu0", sim.mu_path[0])
            .scalar("s0", sim.s0)
            .scalar("s0_se", sim.s0_se)
            .scalar("clearing", sim.clearing)
            .scalar("s_bar0", e.s_bar0()))
    }
}
