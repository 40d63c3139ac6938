//! `gms_figures`: Figures 1–3 of GMS from the simulation (and, for Figure 3, the market data):
//! expected-return paths per cost model against the frictionless drift, empirical against
//! stationary densities of the state, and simulated daily turnover against the historical volume
//! with their autocorrelations. Each figure is stored as SVG and PNG, together with the exact
//! data it plots (`figureN_data` tables).

use crate::report::figures::{DensityPanel, Series, figure1, figure2, figure3};
use crate::stage::{Inputs, Outputs, ParamKind as K, ParamSpec, Params, Stage, StageCtx};
use crate::table::{Table, TableBuilder, f64_column, str_column};
use anyhow::{Result, bail};

/// The `gms_figures` stage kind.
pub struct GmsFigures;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "path",
        K::Int,
        "0",
        "which stored sample path to plot (Figures 1 and 3)",
    ),
    ParamSpec::opt(
        "figure3_models",
        K::StrList,
        "[\"quadratic\", \"q=1.5\"]",
        "models whose turnover Figure 3 shows",
    ),
    ParamSpec::opt(
        "acf_lags",
        K::Int,
        "40",
        "lags shown in the ACF panel of Figure 3",
    ),
];

impl Stage for GmsFigures {
    fn kind(&self) -> &'static str {
        "gms_figures"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "Figures 1–3 (returns, densities, turnover vs data) as SVG and PNG, with their data"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/figures.rs", "src/report/figures.rs"]
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let path = p.usize("path")? as f64;
        let mu_bar = inputs.scalar("mu_bar")?;
        let paths = inputs.table("paths")?;
        let models = distinct(&str_column(paths, "model")?);
        let (model, path_col, day, mu, turnover) = (
            str_column(paths, "model")?,
            f64_column(paths, "path")?,
            f64_column(paths, "day")?,
            f64_column(paths, "mu")?,
            f64_column(paths, "turnover")?,
        );
        let pick = |m: &str, col: &[f64]| -> Vec<f64> {
            (0..model.len())
                .filter(|&i| model[i] == m && path_col[i] == path)
                .map(|i| col[i])
                .collect()
        };
        if pick(&models[0], &day).is_empty() {
            bail!("sample path {path} is not stored (raise `keep_paths` of the simulation)");
        }
        // Figure 1: expected returns.
        let days = pick(&models[0], &day);
        let returns: Vec<Series> = models
            .iter()
            .map(|m| Series {
                label: m.clone(),
                x: days.clone(),
                y: pick(m, &mu),
            })
            .collect();
        let f1 = figure1(&days, &returns, mu_bar)?;
        let f1_data = long_table(&returns, "day", "mu")?;
        // Figure 2: densities.
        let dens = inputs.table("density")?;
        let (dm, lo, hi, emp, sta) = (
            str_column(dens, "model")?,
            f64_column(dens, "bin_lo")?,
            f64_column(dens, "bin_hi")?,
            f64_column(dens, "empirical")?,
            f64_column(dens, "stationary")?,
        );
        let panels: Vec<DensityPanel> = models
            .iter()
            .map(|m| {
                let idx: Vec<usize> = (0..dm.len()).filter(|&i| &dm[i] == m).collect();
                DensityPanel {
                    label: m.clone(),
                    bin_centers: idx.iter().map(|&i| 0.5 * (lo[i] + hi[i])).collect(),
                    empirical: idx.iter().map(|&i| emp[i]).collect(),
                    stationary: idx.iter().map(|&i| sta[i]).collect(),
                }
            })
            .collect();
        let f2 = figure2(&panels)?;
        let f2_data = TableBuilder::new()
            .str(
                "model",
                &panels
                    .iter()
                    .flat_map(|pn| std::iter::repeat_n(pn.label.clone(), pn.bin_centers.len()))
                    .collect::<Vec<_>>(),
            )
            .f64(
                "center",
                panels
                    .iter()
                    .flat_map(|pn| pn.bin_centers.clone())
                    .collect(),
            )
            .f64(
                "empirical",
                panels.iter().flat_map(|pn| pn.empirical.clone()).collect(),
            )
            .f64(
                "stationary",
                panels.iter().flat_map(|pn| pn.stationary.clone()).collect(),
            )
            .build()?;
        // Figure 3: turnover against the data, and ACFs.
        let wanted = p.str_list("figure3_models")?;
        let mut turn: Vec<Series> = Vec::new();
        for m in &wanted {
            if !models.contains(m) {
                bail!(
                    "figure3_models: no model '{m}' in the simulation (models: {})",
                    models.join(", ")
                );
            }
            turn.push(Series {
                label: format!("model {m}"),
                x: days.clone(),
                y: pick(m, &turnover),
            });
        }
        let lags = p.usize("acf_lags")?;
        let acf_t = inputs.table("acf")?;
        let (am, alag, aval) = (
            str_column(acf_t, "model")?,
            f64_column(acf_t, "lag")?,
            f64_column(acf_t, "acf_turnover")?,
        );
        let mut acfs: Vec<Series> = wanted
            .iter()
            .map(|m| {
                let idx: Vec<usize> = (0..am.len())
                    .filter(|&i| &am[i] == m && alag[i] <= lags as f64)
                    .collect();
                Series {
                    label: format!("model {m}"),
                    x: idx.iter().map(|&i| alag[i]).collect(),
                    y: idx.iter().map(|&i| aval[i]).collect(),
                }
            })
            .collect();
        let data = match (inputs.table("series"), inputs.table("volume_acf")) {
            (Ok(series), Ok(vacf)) => {
                let vol = f64_column(series, "volume")?;
                // Rescale the data to the model's mean turnover (equal by construction in GMS).
                let stats = inputs.table("stats")?;
                let target = f64_column(stats, "expected_turnover")?[0];
                let scale = target / (vol.iter().sum::<f64>() / vol.len() as f64);
                let n = vol.len().min(days.len());
                let (vl, va) = (f64_column(vacf, "lag")?, f64_column(vacf, "acf")?);
                let k = va.len().min(lags + 1);
                acfs.insert(
                    0,
                    Series {
                        label: "S&P 500 volume".into(),
                        x: vl[..k].to_vec(),
                        y: va[..k].to_vec(),
                    },
                );
                let label = if (scale - 1.0).abs() < 1e-12 {
                    "S&P 500 volume".to_owned()
                } else {
                    format!("S&P 500 volume × {scale:.3}")
                };
                Series {
                    label,
                    x: days[..n].to_vec(),
                    y: vol[..n].iter().map(|v| v * scale).collect(),
                }
            }
            _ => bail!(
                "Figure 3 needs the market data upstream (a `market_data` stage with `series` and `volume_acf`)"
            ),
        };
        let f3 = figure3(&turn, &data, &acfs)?;
        let mut all = turn.clone();
        all.push(data);
        let f3_data = long_table(&all, "day", "turnover")?;
        let f3_acf = long_table(&acfs, "lag", "acf")?;
        Ok(Outputs::new()
            .file("figure1", "svg", f1.svg.into_bytes())
            .file("figure1_png", "png", f1.png)
            .file("figure2", "svg", f2.svg.into_bytes())
            .file("figure2_png", "png", f2.png)
            .file("figure3", "svg", f3.svg.into_bytes())
            .file("figure3_png", "png", f3.png)
            .table("figure1_data", f1_data)
            .table("figure2_data", f2_data)
            .table("figure3_data", f3_data)
            .table("figure3_acf", f3_acf))
    }
}

/// Unique values in first-seen order.
fn distinct(v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in v {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

/// Series as a long table (series, x, y).
fn long_table(series: &[Series], x: &str, y: &str) -> Result<Table> {
    TableBuilder::new()
        .str(
            "series",
            &series
                .iter()
                .flat_map(|s| std::iter::repeat_n(s.label.clone(), s.x.len()))
                .collect::<Vec<_>>(),
        )
        .f64(x, series.iter().flat_map(|s| s.x.clone()).collect())
        .f64(y, series.iter().flat_map(|s| s.y.clone()).collect())
        .build()
}
