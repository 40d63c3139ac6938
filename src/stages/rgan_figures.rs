//! `rgan_figures`: the Reinforced-GAN paper's figures for one case from the `paths` tables of
//! its upstream stages (`rgan_eval`, `nagent_riccati`, `leading_order`), one line per stage,
//! labelled by the stage name: σ_t, μ_t along test path 0, and chosen agents' trading rates
//! along test path 0. Stages that share a `seed:` share their test paths, so their path-0 lines
//! are comparable. Each figure is stored as SVG and PNG.

use crate::report::figures::{Figure, Series, line_chart};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::{column, f64_column};
use anyhow::{Result, bail};

/// The `rgan_figures` stage kind.
pub struct RganFigures;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "title",
        K::Str,
        "",
        "prefix of every figure title (e.g. the case)",
    ),
    ParamSpec::opt(
        "agents",
        K::FloatList,
        "[2, 4]",
        "agents (1-based) whose trading rates are drawn",
    ),
];

fn add(out: Outputs, name: &str, fig: Figure) -> Outputs {
    out.file(name, "svg", fig.svg.into_bytes())
        .file(&format!("{name}_png"), "png", fig.png)
}

impl Stage for RganFigures {
    fn kind(&self) -> &'static str {
        "rgan_figures"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "σ_t, μ_t and trading-rate figures of one R-GAN case against its benchmarks (SVG and PNG)"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/rgan_figures.rs", "src/report/figures.rs"]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let agents = p
            .f64_list("agents")
            .map_err(|e| ParamError::new("agents", e.to_string()))?;
        if agents.iter().any(|&a| a < 1.0 || a.fract() != 0.0) {
            return Err(ParamError::new(
                "agents",
                format!("must be agent numbers 1, 2, …, got {agents:?}"),
            ));
        }
        Ok(())
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let title = p.str("title")?;
        let prefix = if title.is_empty() {
            String::new()
        } else {
            format!("{title}: ")
        };
        let agents: Vec<usize> = p.f64_list("agents")?.iter().map(|&a| a as usize).collect();
        let (mut sigma, mut mu, mut rates) = (Vec::new(), Vec::new(), Vec::new());
        for (name, u) in &inputs.upstream {
            let Some(t) = u.outputs.tables.get("paths") else {
                continue;
            };
            let x = f64_column(t, "t")?;
            let line = |label: String, col: &str| -> Result<Series> {
                Ok(Series {
                    label,
                    x: x.clone(),
                    y: f64_column(t, col)?,
                })
            };
            sigma.push(line(name.clone(), "sigma")?);
            mu.push(line(name.clone(), "mu_path0")?);
            for &a in &agents {
                let col = format!("rate_{a}_path0");
                if column(t, &col).is_ok() {
                    rates.push(line(format!("{name}, agent {a}"), &col)?);
                }
            }
        }
        if sigma.is_empty() {
            bail!(
                "needs upstream stages with a `paths` table (rgan_eval, nagent_riccati, leading_order)"
            );
        }
        let mut out = Outputs::new();
        out = add(
            out,
            "sigma",
            line_chart(
                &format!("{prefix}volatility σ_t"),
                "time t",
                "σ_t",
                &sigma,
                None,
            )?,
        );
        out = add(
            out,
            "mu",
            line_chart(
                &format!("{prefix}drift μ_t on test path 0"),
                "time t",
                "μ_t",
                &mu,
                None,
            )?,
        );
        if !rates.is_empty() {
            out = add(
                out,
                "rates",
                line_chart(
                    &format!("{prefix}trading rates on test path 0"),
                    "time t",
                    "φ̇ⁿ_t (shares per unit time)",
                    &rates,
                    None,
                )?,
            );
        }
        Ok(out)
    }
}
