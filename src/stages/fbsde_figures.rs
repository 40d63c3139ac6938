//! `fbsde_figures`: Figures 4–6 of GMS from upstream `deep_bsde_eval` stages (and, when present,
//! the continuous `riccati_benchmark`): Figure 4, the learned trading rate at time t against the
//! state X over the test paths, with the finite-horizon PDE and long-run ODE rates; Figure 5, the
//! price correction S_t − S̄_t along sample paths; Figure 6, the volatility correction σ_t − a.
//! Each figure is stored as SVG and PNG.

use super::power_label;
use crate::report::figures::{Figure, Series, line_chart, scatter_chart};
use crate::stage::{Inputs, Outputs, ParamKind as K, ParamSpec, Params, Stage, StageCtx, Upstream};
use crate::table::{Table, f64_column};
use anyhow::{Result, anyhow, bail};

const PARAMS: &[ParamSpec] = &[ParamSpec::opt(
    "steps",
    K::Int,
    "40",
    "Figures 5–6 show the endogenous solvers with this many time steps N",
)];

/// The `fbsde_figures` stage kind.
pub struct FbsdeFigures;

fn add(out: Outputs, name: &str, fig: Figure) -> Outputs {
    out.file(name, "svg", fig.svg.into_bytes())
        .file(&format!("{name}_png"), "png", fig.png)
}

fn table<'a>(u: &'a Upstream, name: &str) -> Option<&'a Table> {
    u.outputs.tables.get(name)
}

/// Rows of the sample-path table for one path: (t, column).
fn path_series(t: &Table, path: f64, col: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let p = f64_column(t, "path")?;
    let tt = f64_column(t, "t")?;
    let c = f64_column(t, col)?;
    Ok((0..p.len())
        .filter(|&i| p[i] == path && c[i].is_finite())
        .map(|i| (tt[i], c[i]))
        .unzip())
}

impl Stage for FbsdeFigures {
    fn kind(&self) -> &'static str {
        "fbsde_figures"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "Figures 4–6 (learned rate vs PDE/ODE; price and volatility corrections) as SVG and PNG"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/shared.rs",
            "src/stages/fbsde_figures.rs",
            "src/report/figures.rs",
        ]
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let steps = p.usize("steps")? as f64;
        let evals: Vec<&Upstream> = inputs
            .upstream
            .iter()
            .filter(|(_, u)| u.kind == "deep_bsde_eval")
            .filter(|(_, u)| {
                u.outputs.tables.contains_key("rate")
                    || u.outputs.scalars.get("steps") == Some(&steps)
            })
            .map(|(_, u)| u)
            .collect();
        if evals.is_empty() {
            bail!("needs at least one `deep_bsde_eval` stage upstream");
        }
        let mut out = Outputs::new();
        let (mut prices, mut vols) = (Vec::new(), Vec::new());
        for u in &evals {
            let q = *u
                .outputs
                .scalars
                .get("q")
                .ok_or_else(|| anyhow!("deep_bsde_eval output without q"))?;
            let label = power_label(q);
            if let Some(rate) = table(u, "rate") {
                let t = u.outputs.scalars.get("figure_time").copied().unwrap_or(2.0);
                let x = f64_column(rate, "x")?;
                let s = |col: &str, label: &str| -> Result<Series> {
                    Ok(Series {
                        label: label.to_owned(),
                        x: x.clone(),
                        y: f64_column(rate, col)?,
                    })
                };
                let fig = scatter_chart(
                    &format!("Figure 4: trading rate at t = {t} against the state ({label})"),
                    "state X_t = φ¹ − φ̄¹ (shares)",
                    "trading rate (shares/day)",
                    &s("learned_rate", "deep BSDE (test paths)")?,
                    &[
                        s("pde_rate", "finite-horizon PDE (6.16)")?,
                        s("longrun_rate", "long-run ODE (3.5)")?,
                    ],
                )?;
                out = add(out, "figure4", fig);
            }
            if let Some(sp) = table(u, "sample_paths") {
                let mut ids: Vec<f64> = f64_column(sp, "path")?;
                ids.dedup();
                for id in ids {
                    let (t, y) = path_series(sp, id, "price_correction")?;
                    prices.push(Series {
                        label: format!("{label} network, path {id}"),
                        x: t,
                        y,
                    });
                    let (t, y) = path_series(sp, id, "exact_price_correction")?;
                    if !t.is_empty() {
                        prices.push(Series {
                            label: format!("{label} exact scheme, path {id}"),
                            x: t,
                            y,
                        });
                    }
                    let (t, y) = path_series(sp, id, "vol_correction")?;
                    vols.push(Series {
                        label: format!("{label} network, path {id}"),
                        x: t,
                        y,
                    });
                }
            }
            if let Some(c) = table(u, "corrections") {
                let t = f64_column(c, "t")?;
                if let Ok(ev) = f64_column(c, "exact_vol_correction") {
                    vols.push(Series {
                        label: format!("{label} exact scheme"),
                        x: t.clone(),
                        y: ev,
                    });
                }
            }
        }
        if let Some((_, r)) = inputs
            .upstream
            .iter()
            .find(|(_, u)| u.kind == "riccati_benchmark")
        {
            let paths = r
                .outputs
                .tables
                .get("paths")
                .ok_or_else(|| anyhow!("riccati_benchmark without paths"))?;
            vols.push(Series {
                label: "q=2 continuous Riccati B(T−t)".into(),
                x: f64_column(paths, "t")?,
                y: f64_column(paths, "vol_correction")?,
            });
        }
        if !prices.is_empty() {
            let fig = line_chart(
                "Figure 5: price correction (price minus frictionless price) along sample paths",
                "time (trading days)",
                "price correction ($ per share)",
                &prices,
                None,
            )?;
            out = add(out, "figure5", fig);
        }
        if !vols.is_empty() {
            let fig = line_chart(
                "Figure 6: volatility correction σ_t − a",
                "time (trading days)",
                "σ_t − a ($ per share per √day)",
                &vols,
                None,
            )?;
            out = add(out, "figure6", fig);
        }
        Ok(out)
    }
}
