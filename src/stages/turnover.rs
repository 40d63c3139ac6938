//! `turnover_matching`: cost levels and endowment volatilities that reproduce the observed daily
//! turnover — proportional costs (band ℓ, β), quadratic and power costs matched to the
//! proportional model's stationary variance (GMS §4, §5.3–5.4, (B.6)–(B.8)). One row per model.

use super::{frictionless, param_or_upstream, power_label, unprefix_single};
use crate::finance::turnover::{match_power, match_proportional, match_quadratic};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::Result;

/// The `turnover_matching` stage kind.
pub struct TurnoverMatching;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "lambda_p",
        K::Float,
        "null",
        "proportional cost ($/share); null: upstream scalar `lambda_p`",
    ),
    ParamSpec::opt(
        "turnover",
        K::Float,
        "null",
        "mean daily share turnover; null: upstream scalar `turnover`",
    ),
    ParamSpec::opt(
        "proportional",
        K::Bool,
        "true",
        "include the proportional-cost model",
    ),
    ParamSpec::opt(
        "quadratic",
        K::Bool,
        "true",
        "include the quadratic-cost model",
    ),
    ParamSpec::opt(
        "powers",
        K::FloatList,
        "[1.5]",
        "elasticities q in (1, 2] of power-cost models",
    ),
];

impl Stage for TurnoverMatching {
    fn kind(&self) -> &'static str {
        "turnover_matching"
    }
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "calibrate λ and β of proportional, quadratic and power costs to the turnover (GMS §5.3–5.4)"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/turnover.rs",
            "src/stages/shared.rs",
            "src/finance/turnover.rs",
            "src/finance/power.rs",
            "src/finance/ode.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        for q in p
            .f64_list("powers")
            .map_err(|e| ParamError::new("powers", e.to_string()))?
        {
            if !(q > 1.0 && q <= 2.0) {
                return Err(ParamError::new(
                    "powers",
                    format!("every q must lie in (1, 2], got {q}"),
                ));
            }
        }
        p.require_positive(&["lambda_p", "turnover"])
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let fr = frictionless(inputs)?;
        let lambda_p = param_or_upstream(p, inputs, "lambda_p")?;
        let shtu = param_or_upstream(p, inputs, "turnover")?;
        let mut rows = Rows::default();
        let mut out = Outputs::new();
        if p.bool("proportional")? {
            let m = match_proportional(lambda_p, shtu, &fr)?;
            rows.push(
                "proportional",
                None,
                m.lambda,
                m.beta,
                m.delta,
                m.sd_x,
                m.turnover,
            );
            rows.ell.push(Some(m.ell));
            rows.constants(None, None, [None; 3]);
            out = out
                .scalar("proportional.ell", m.ell)
                .scalar("proportional.beta", m.beta)
                .scalar("proportional.sd_x", m.sd_x);
        }
        if p.bool("quadratic")? {
            let m = match_quadratic(lambda_p, shtu, &fr)?;
            rows.push(
                "quadratic",
                Some(2.0),
                m.lambda,
                m.beta,
                m.delta,
                m.sd_x,
                m.turnover,
            );
            rows.ell.push(None);
            rows.constants(Some(m.k), None, [None; 3]);
            out = out
                .scalar("quadratic.lambda", m.lambda)
                .scalar("quadratic.beta", m.beta)
                .scalar("quadratic.k", m.k)
                .scalar("quadratic.half_life_days", std::f64::consts::LN_2 / m.k)
                .scalar("quadratic.sd_x", m.sd_x);
        }
        for q in p.f64_list("powers")? {
            ctx.check_cancelled()?;
            let (m, _) = match_power(q, lambda_p, shtu, &fr)?;
            let pre = power_label(q);
            rows.push(&pre, Some(q), m.lambda, m.beta, m.delta, m.sd_x, m.turnover);
            rows.ell.push(None);
            rows.constants(None, Some((m.c0, m.c1)), [Some(m.c), Some(m.z), Some(m.v)]);
            out = out
                .scalar(&format!("{pre}.lambda"), m.lambda)
                .scalar(&format!("{pre}.beta"), m.beta)
                .scalar(&format!("{pre}.c0"), m.c0)
                .scalar(&format!("{pre}.c1"), m.c1)
                .scalar(&format!("{pre}.sd_x"), m.sd_x);
        }
        if rows.model.is_empty() {
            anyhow::bail!("no model selected: set `proportional`, `quadratic` or `powers`");
        }
        let t = TableBuilder::new()
            .str("model", &rows.model)
            .opt_f64("q", rows.q)
            .f64("lambda", rows.lambda)
            .f64("beta", rows.beta)
            .f64("delta", rows.delta)
            .opt_f64("ell", rows.ell)
            .opt_f64("k", rows.k)
            .opt_f64("c0", rows.c0)
            .opt_f64("c1", rows.c1)
            .opt_f64("c_q", rows.cq)
            .opt_f64("z_q", rows.z)
            .opt_f64("v_q", rows.v)
            .f64("sd_x", rows.sd_x)
            .f64("turnover", rows.turnover)
            .build()?;
        Ok(unprefix_single(out, &rows.model)
            .table("models", t)
            .scalar("turnover", shtu)
            .scalar("lambda_p", lambda_p))
    }
}

#[derive(Default)]
struct Rows {
    model: Vec<String>,
    q: Vec<Option<f64>>,
    lambda: Vec<f64>,
    beta: Vec<f64>,
    delta: Vec<f64>,
    ell: Vec<Option<f64>>,
    k: Vec<Option<f64>>,
    c0: Vec<Option<f64>>,
    c1: Vec<Option<f64>>,
    cq: Vec<Option<f64>>,
    z: Vec<Option<f64>>,
    v: Vec<Option<f64>>,
    sd_x: Vec<f64>,
    turnover: Vec<f64>,
}

impl Rows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        model: &str,
        q: Option<f64>,
        lambda: f64,
        beta: f64,
        delta: f64,
        sd_x: f64,
        turnover: f64,
    ) {
        self.model.push(model.to_owned());
        self.q.push(q);
        self.lambda.push(lambda);
        self.beta.push(beta);
        self.delta.push(delta);
        self.sd_x.push(sd_x);
        self.turnover.push(turnover);
    }

    fn constants(&mut self, k: Option<f64>, c: Option<(f64, f64)>, czv: [Option<f64>; 3]) {
        self.k.push(k);
        self.c0.push(c.map(|c| c.0));
        self.c1.push(c.map(|c| c.1));
        self.cq.push(czv[0]);
        self.z.push(czv[1]);
        self.v.push(czv[2]);
    }
}
