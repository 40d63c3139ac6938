//! `cost_ode`: the equilibrium marginal-cost function g for a cost specification.
//! Power costs: the rescaled ODE (B.2) — constant c_q, g̃, the universal integrals Z_q, V_q —
//! and, given λ and β, the physical g(x) = c0 g̃(c1 x) cross-checked against a direct solve of
//! (3.5). General convex costs (positive combinations of powers): (3.5) solved directly.

use super::frictionless;
use crate::finance::costs::{Cost, PowerTerm};
use crate::finance::general::{GeneralOptions, GeneralProblem, GeneralSolution, solve_general};
use crate::finance::power::{NormalisedPower, rescaling};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::{Result, anyhow};
use serde_json::Value;

/// The `cost_ode` stage kind.
pub struct CostOde;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::req(
        "cost",
        K::Any,
        "{power: {q, lambda?}} | {quadratic: {lambda?}} | {combination: [{lambda, q}, ...]}",
    ),
    ParamSpec::opt(
        "beta",
        K::Float,
        "null",
        "endowment loading β for the physical g (needs a calibration upstream)",
    ),
    ParamSpec::opt("points", K::Int, "401", "grid points of the output tables"),
    ParamSpec::opt(
        "y_max",
        K::Float,
        "6.0",
        "half-width of the normalised grid of g̃",
    ),
    ParamSpec::opt(
        "x_max_sd",
        K::Float,
        "5.0",
        "half-width of the physical grid, in stationary sds of X",
    ),
];

/// A parsed `cost:` parameter.
#[derive(Debug, Clone, PartialEq)]
enum CostSpec {
    /// Power cost with elasticity q, optionally with a level λ.
    Power { q: f64, lambda: Option<f64> },
    /// A positive combination of power costs (levels required).
    Combination(Vec<PowerTerm>),
}

fn parse_cost(v: &Value) -> std::result::Result<CostSpec, String> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or("must be a mapping with one key: power, quadratic or combination")?;
    let (key, body) = obj.iter().next().ok_or("empty cost")?;
    let num = |o: &Value, k: &str| -> std::result::Result<Option<f64>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("`{k}` must be a number")),
        }
    };
    let spec = match key.as_str() {
        "power" => {
            let q = num(body, "q")?.ok_or("power: `q` is required")?;
            CostSpec::Power {
                q,
                lambda: num(body, "lambda")?,
            }
        }
        "quadratic" => CostSpec::Power {
            q: 2.0,
            lambda: num(body, "lambda")?,
        },
        "combination" => {
            let terms = body
                .as_array()
                .ok_or("combination: expected a list of {lambda, q}")?;
            let mut out = Vec::new();
            for t in terms {
                let lambda = num(t, "lambda")?.ok_or("combination: every term needs `lambda`")?;
                let q = num(t, "q")?.ok_or("combination: every term needs `q`")?;
                out.push(PowerTerm { lambda, q });
            }
            if out.is_empty() {
                return Err("combination: needs at least one term".into());
            }
            CostSpec::Combination(out)
        }
        other => {
            return Err(format!(
                "unknown cost type '{other}': use power, quadratic or combination"
            ));
        }
    };
    let terms: Vec<(f64, Option<f64>)> = match &spec {
        CostSpec::Power { q, lambda } => vec![(*q, *lambda)],
        CostSpec::Combination(t) => t.iter().map(|t| (t.q, Some(t.lambda))).collect(),
    };
    for (q, lambda) in terms {
        if !(q > 1.0 && q <= 2.0) {
            return Err(format!("q must lie in (1, 2], got {q}"));
        }
        if let Some(l) = lambda
            && !(l > 0.0 && l.is_finite())
        {
            return Err(format!("lambda must be a finite number > 0, got {l}"));
        }
    }
    Ok(spec)
}

impl Stage for CostOde {
    fn kind(&self) -> &'static str {
        "cost_ode"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "solve the ODE (3.5)/(B.2) for g: c_q, Z_q, V_q, g̃, physical g and residuals"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/cost_ode.rs",
            "src/stages/shared.rs",
            "src/finance/power.rs",
            "src/finance/general.rs",
            "src/finance/costs.rs",
            "src/finance/ode.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let cost = p
            .get("cost")
            .map_err(|e| ParamError::new("cost", e.to_string()))?;
        let spec = parse_cost(cost).map_err(|m| ParamError::new("cost", m))?;
        if let (CostSpec::Combination(_), Ok(None)) = (&spec, p.opt_f64("beta")) {
            return Err(ParamError::new(
                "cost",
                "a combination cost needs `beta` (and a calibration upstream)",
            ));
        }
        p.require_positive(&["beta"])?;
        let points = p
            .usize("points")
            .map_err(|e| ParamError::new("points", e.to_string()))?;
        if points < 3 {
            return Err(ParamError::new(
                "points",
                format!("must be at least 3, got {points}"),
            ));
        }
        Ok(())
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let spec = parse_cost(p.get("cost")?).map_err(|m| anyhow!("cost: {m}"))?;
        let n = p.usize("points")?;
        let grid = |half: f64| -> Vec<f64> {
            (0..n)
                .map(|i| -half + 2.0 * half * i as f64 / (n - 1) as f64)
                .collect()
        };
        let beta = p.opt_f64("beta")?;
        let mut out = Outputs::new();
        let cost = match &spec {
            CostSpec::Power { q, lambda } => {
                let np = NormalisedPower::solve(*q)?;
                let y = grid(p.f64("y_max")?);
                let t = TableBuilder::new()
                    .f64("y", y.clone())
                    .f64("g_tilde", y.iter().map(|&v| np.g_tilde(v)).collect())
                    .f64(
                        "g_tilde_prime",
                        y.iter().map(|&v| np.g_tilde_prime(v)).collect(),
                    )
                    .f64("h_tilde", y.iter().map(|&v| np.h_tilde(v)).collect())
                    .f64("psi", y.iter().map(|&v| np.psi(v)).collect())
                    .f64("density", y.iter().map(|&v| np.density(v)).collect())
                    .build()?;
                out = out
                    .table("g_tilde", t)
                    .scalar("q", *q)
                    .scalar("c_q", np.c)
                    .scalar("z_q", np.z)
                    .scalar("v_q", np.v)
                    .scalar("r_q", np.r_q())
                    .scalar("mean_abs_y", np.mean_abs_y)
                    .scalar("g_tilde_at_zero", np.g_at_zero)
                    .scalar(
                        "turnover_identity_error",
                        np.turnover_check * np.z / 2.0 - 1.0,
                    );
                match (lambda, beta) {
                    (Some(l), Some(b)) => {
                        let fr = frictionless(inputs)?;
                        let delta = b / fr.sigma;
                        let r = rescaling(*q, *l, delta, fr.gamma_sum(), fr.sigma)?;
                        let sd = np.v.sqrt() / r.c1;
                        let x = grid(p.f64("x_max_sd")? * sd);
                        ctx.check_cancelled()?;
                        let direct = solve_general(
                            &problem(Cost::Power { lambda: *l, q: *q }, delta, &fr),
                            &GeneralOptions::default(),
                        )?;
                        let scale = x
                            .iter()
                            .map(|&v| (r.c0 * np.g_tilde(r.c1 * v)).abs())
                            .fold(0.0, f64::max);
                        let diff = x
                            .iter()
                            .map(|&v| (direct.g_at(v) - r.c0 * np.g_tilde(r.c1 * v)).abs())
                            .fold(0.0, f64::max);
                        out = out
                            .table(
                                "g",
                                TableBuilder::new()
                                    .f64("x", x.clone())
                                    .f64(
                                        "g",
                                        x.iter().map(|&v| r.c0 * np.g_tilde(r.c1 * v)).collect(),
                                    )
                                    .f64("g_direct", x.iter().map(|&v| direct.g_at(v)).collect())
                                    .f64(
                                        "rate",
                                        x.iter().map(|&v| np.rate(v, delta, r.c1)).collect(),
                                    )
                                    .f64(
                                        "density",
                                        x.iter().map(|&v| np.physical_density(v, r.c1)).collect(),
                                    )
                                    .build()?,
                            )
                            .scalar("c0", r.c0)
                            .scalar("c1", r.c1)
                            .scalar("turnover", delta * delta * r.c1 / np.z)
                            .scalar("sd_x", sd)
                            .scalar("general_vs_rescaled_rel", diff / scale)
                            .scalar("residual_first_order", direct.max_rel_residual_first_order);
                    }
                    (Some(_), None) | (None, Some(_)) => {
                        return Err(anyhow!(
                            "the physical g needs both `cost.power.lambda` and `beta`"
                        ));
                    }
                    (None, None) => {}
                }
                None
            }
            CostSpec::Combination(terms) => Some(Cost::Combination(terms.clone())),
        };
        if let (Some(cost), Some(b)) = (cost, beta) {
            let fr = frictionless(inputs)?;
            let sol = solve_general(
                &problem(cost, b / fr.sigma, &fr),
                &GeneralOptions::default(),
            )?;
            out = general_outputs(out, &sol, &grid(sol.x_max))?;
        }
        Ok(out)
    }
}

fn problem(
    cost: Cost,
    delta: f64,
    fr: &crate::finance::calibration::Frictionless,
) -> GeneralProblem {
    GeneralProblem {
        cost,
        delta,
        gamma_sum: fr.gamma_sum(),
        sigma: fr.sigma,
    }
}

fn general_outputs(out: Outputs, sol: &GeneralSolution, x: &[f64]) -> Result<Outputs> {
    let m = sol.stationary_moments();
    Ok(out
        .table(
            "g",
            TableBuilder::new()
                .f64("x", x.to_vec())
                .f64("g", x.iter().map(|&v| sol.g_at(v)).collect())
                .f64("rate", x.iter().map(|&v| sol.rate_at(v)).collect())
                .build()?,
        )
        .scalar("constant_c", sol.c)
        .scalar("x_max", sol.x_max)
        .scalar("g_at_zero", sol.g_at_zero)
        .scalar("residual_first_order", sol.max_rel_residual_first_order)
        .scalar("residual_second_order", sol.max_rel_residual_second_order)
        .scalar("turnover", m.turnover)
        .scalar("sd_x", m.sd_x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_specs_parse_and_bad_ones_are_rejected() {
        let ok = parse_cost(&serde_json::json!({"power": {"q": 1.5}})).unwrap();
        assert_eq!(
            ok,
            CostSpec::Power {
                q: 1.5,
                lambda: None
            }
        );
        assert_eq!(
            parse_cost(&serde_json::json!({"quadratic": {}})).unwrap(),
            CostSpec::Power {
                q: 2.0,
                lambda: None
            }
        );
        for (bad, msg) in [
            (
                serde_json::json!({"power": {"q": 1.0}}),
                "q must lie in (1, 2]",
            ),
            (
                serde_json::json!({"power": {"q": 2.5}}),
                "q must lie in (1, 2]",
            ),
            (
                serde_json::json!({"power": {"q": 1.5, "lambda": -1}}),
                "lambda must be",
            ),
            (serde_json::json!({"cubic": {}}), "unknown cost type"),
            (serde_json::json!({"combination": []}), "at least one term"),
        ] {
            let e = parse_cost(&bad).unwrap_err();
            assert!(e.contains(msg), "{e}");
        }
    }
}
