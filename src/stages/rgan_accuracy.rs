//! `rgan_accuracy` and `rgan_convergence`: the R-GAN's accuracy against the exact N-agent
//! truth (q = 2) on a family of economies, and its convergence per phase. Thin adapters over
//! upstream outputs: each row names a `nagent_riccati` stage (the truth: its exact Euler discount
//! `discount_exact` and K → ∞ limit `discount_limit`), an `rgan_eval` stage (the trained pair on
//! the same test paths) and optionally the `rgan_train` stage (its Adam steps and `phases`
//! table).

use super::nagent::parse_economy;
use crate::finance::nagent::{Economy, sigma_discount};
use crate::report::figures::{Series, line_chart};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx, Upstream,
};
use crate::table::{TableBuilder, column, f64_column};
use anyhow::{Result, anyhow, bail};
use serde_json::Value;

/// One row of the `rows` parameter.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    label: String,
    truth: String,
    eval: Option<String>,
    train: Option<String>,
}

/// Parses `rows: [{label, truth, eval?, train?}, …]`; `need` names the stage keys a row must
/// have besides `truth`.
fn parse_rows(v: &Value, need: &[&str]) -> std::result::Result<Vec<Row>, String> {
    let list = v
        .as_array()
        .ok_or("must be a list of {label, truth, eval, train} mappings")?;
    if list.is_empty() {
        return Err("needs at least one row".into());
    }
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let obj = r
                .as_object()
                .ok_or_else(|| format!("row {}: must be a mapping", i + 1))?;
            for k in obj.keys() {
                if !["label", "truth", "eval", "train"].contains(&k.as_str()) {
                    return Err(format!(
                        "row {}: unknown key `{k}` (expected label, truth, eval, train)",
                        i + 1
                    ));
                }
            }
            let get = |k: &str| -> std::result::Result<Option<String>, String> {
                match obj.get(k) {
                    None => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(_) => Err(format!("row {}: `{k}` must be a stage name", i + 1)),
                }
            };
            let truth =
                get("truth")?.ok_or_else(|| format!("row {}: `truth` is required", i + 1))?;
            for k in need {
                if get(k)?.is_none() {
                    return Err(format!("row {}: `{k}` is required", i + 1));
                }
            }
            Ok(Row {
                label: get("label")?.unwrap_or_else(|| truth.clone()),
                truth,
                eval: get("eval")?,
                train: get("train")?,
            })
        })
        .collect()
}

fn rows(p: &Params, need: &[&str]) -> std::result::Result<Vec<Row>, ParamError> {
    let v = p
        .get("rows")
        .map_err(|e| ParamError::new("rows", e.to_string()))?;
    parse_rows(v, need).map_err(|e| ParamError::new("rows", e))
}

fn scalar(u: &Upstream, stage: &str, name: &str) -> Result<f64> {
    u.outputs
        .scalars
        .get(name)
        .copied()
        .ok_or_else(|| anyhow!("'{stage}' has no scalar '{name}' (is it a nagent_riccati / rgan_eval / rgan_train stage?)"))
}

fn upstream<'a>(inputs: &'a Inputs, stage: &str, kind: &str) -> Result<&'a Upstream> {
    let u = inputs.stage(stage)?;
    if u.kind != kind {
        bail!("'{stage}' is a {} stage, expected {kind}", u.kind);
    }
    Ok(u)
}

/// The economy of the truth stage `t` (named `truth`), as its `economy` parameter gives it.
fn economy_of(t: &Upstream, truth: &str) -> Result<Economy> {
    let v = t
        .params
        .get("economy")
        .ok_or_else(|| anyhow!("'{truth}' has no economy parameter"))?;
    parse_economy(v).map_err(|err| anyhow!("'{truth}': economy: {err}"))
}

/// The σ_k column of stage `name`'s `paths` table.
fn sigma_path(u: &Upstream, name: &str) -> Result<Vec<f64>> {
    let paths = u
        .outputs
        .tables
        .get("paths")
        .ok_or_else(|| anyhow!("'{name}' has no paths table"))?;
    f64_column(paths, "sigma")
}

/// How a uniform relative error ε of σ moves the discount: δD/D ≈ ε·2Σσ_k²/Σ(σ_k² − α²) on
/// the truth's σ.
fn sigma_amplification(e: &Economy, sigma: &[f64]) -> f64 {
    let sq: f64 = sigma.iter().map(|s| s * s).sum();
    2.0 * sq / (sq - e.alpha * e.alpha * sigma.len() as f64)
}

/// Relative error a/b − 1.
fn rel(a: f64, b: f64) -> f64 {
    a / b - 1.0
}

/// The `rgan_accuracy` stage kind.
pub struct RganAccuracy;

const ACC_PARAMS: &[ParamSpec] = &[
    ParamSpec::req(
        "rows",
        K::Any,
        "[{label, truth: <nagent_riccati stage>, eval: <rgan_eval stage>, train?: <rgan_train stage>}, …]",
    ),
    ParamSpec::opt(
        "tolerance",
        K::Float,
        "0.1",
        "relative bound on the liquidity discount's error (the `within` column)",
    ),
];

impl Stage for RganAccuracy {
    fn kind(&self) -> &'static str {
        "rgan_accuracy"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "R-GAN accuracy table vs the exact N-agent truth (q = 2): relative errors of the liquidity discount (± se), σ₀, μ₀, ∫σdt; clearing, terminal"
    }
    fn params(&self) -> &'static [ParamSpec] {
        ACC_PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/rgan_accuracy.rs"]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        rows(p, &["eval"])?;
        let t = p
            .f64("tolerance")
            .map_err(|e| ParamError::new("tolerance", e.to_string()))?;
        if !(t.is_finite() && t > 0.0) {
            return Err(ParamError::new(
                "tolerance",
                format!("must be a number > 0, got {t}"),
            ));
        }
        Ok(())
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let rows = rows(p, &["eval"]).map_err(|e| anyhow!("{}: {}", e.param, e.message))?;
        let tol = p.f64("tolerance")?;
        // The columns in the order they are pushed.
        let mut c: Vec<(&str, Vec<f64>)> = Vec::new();
        let (mut labels, mut agents, mut within) = (Vec::new(), Vec::new(), Vec::new());
        for r in &rows {
            let t = upstream(inputs, &r.truth, "nagent_riccati")?;
            let eval = r.eval.as_deref().unwrap_or_default();
            let ev = upstream(inputs, eval, "rgan_eval")?;
            let ts = |n: &str| scalar(t, &r.truth, n);
            let es = |n: &str| scalar(ev, eval, n);
            let e = economy_of(t, &r.truth)?;
            let truth = ts("discount_exact")?;
            let disc = es("discount")?;
            let err = rel(disc, truth);
            let mut push = |k: &'static str, v: f64| match c.iter_mut().find(|(n, _)| *n == k) {
                Some((_, col)) => col.push(v),
                None => c.push((k, vec![v])),
            };
            let (gmax, gmin) = e
                .gamma
                .iter()
                .fold((f64::NAN, f64::NAN), |(hi, lo), &g| (hi.max(g), lo.min(g)));
            push("gamma_spread", gmax / gmin);
            push("xi_max", e.xi.iter().map(|x| x.abs()).fold(0.0, f64::max));
            push("lambda", e.lambda);
            push("discount_truth", truth);
            push("euler_bias", rel(truth, ts("discount_limit")?));
            push(
                "sigma_amplification",
                sigma_amplification(&e, &sigma_path(t, &r.truth)?),
            );
            push("discount_rgan", disc);
            push("discount_err", err);
            push("discount_err_se", es("discount_se")? / truth.abs());
            push("discount_paths_err", rel(es("discount_paths")?, truth));
            // What the learned σ_k alone implies: its gap to the learned discount is what the
            // drift and S₀ add.
            push(
                "discount_sigma_err",
                rel(sigma_discount(&e, &sigma_path(ev, eval)?), truth),
            );
            push("sigma0_err", rel(es("sigma0")?, ts("sigma0")?));
            push("mu0_err", rel(es("mu0")?, ts("mu0")?));
            push(
                "sigma_integral_err",
                rel(es("sigma_integral")?, ts("sigma_integral")?),
            );
            push("clearing", es("clearing")?);
            push("clearing_se", es("clearing_se")?);
            push("terminal", es("terminal")?);
            push("terminal_se", es("terminal_se")?);
            let steps = match &r.train {
                Some(s) => scalar(upstream(inputs, s, "rgan_train")?, s, "adam_steps")?,
                None => f64::NAN,
            };
            push("adam_steps", steps);
            labels.push(r.label.clone());
            agents.push(e.agents() as i64);
            within.push(err.abs() <= tol);
        }
        let max_abs = |k: &str| {
            c.iter().find(|(n, _)| *n == k).map_or(f64::NAN, |(_, v)| {
                v.iter().map(|x| x.abs()).fold(0.0, f64::max)
            })
        };
        let worst = max_abs("discount_err");
        let (max_clear, max_term) = (max_abs("clearing"), max_abs("terminal"));
        let mut table = TableBuilder::new()
            .str("economy", &labels)
            .i64("agents", agents);
        for (k, col) in c {
            table = table.f64(k, col);
        }
        let all_within = within.iter().all(|&w| w);
        Ok(Outputs::new()
            .scalar("worst_discount_err", worst)
            .scalar("all_within", f64::from(u8::from(all_within)))
            .scalar("max_clearing", max_clear)
            .scalar("max_terminal", max_term)
            .table("accuracy", table.bool("within", within).build()?))
    }
}

/// The `rgan_convergence` stage kind.
pub struct RganConvergence;

const CONV_PARAMS: &[ParamSpec] = &[
    ParamSpec::req(
        "rows",
        K::Any,
        "[{label, truth: <nagent_riccati stage>, train: <rgan_train stage>}, …]",
    ),
    ParamSpec::opt("title", K::Str, "", "prefix of every figure title"),
];

impl Stage for RganConvergence {
    fn kind(&self) -> &'static str {
        "rgan_convergence"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "R-GAN convergence figures from the per-phase log: discount error (%) vs the exact truth, clearing and terminal vs Adam steps"
    }
    fn params(&self) -> &'static [ParamSpec] {
        CONV_PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/rgan_accuracy.rs", "src/report/figures.rs"]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        rows(p, &["train"]).map(|_| ())
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let rows = rows(p, &["train"]).map_err(|e| anyhow!("{}: {}", e.param, e.message))?;
        let title = p.str("title")?;
        let prefix = if title.is_empty() {
            String::new()
        } else {
            format!("{title}: ")
        };
        let (mut disc, mut disc_lo, mut clear, mut term) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut table = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in &rows {
            let t = upstream(inputs, &r.truth, "nagent_riccati")?;
            let train = r.train.as_deref().unwrap_or_default();
            let tr = upstream(inputs, train, "rgan_train")?;
            let truth = scalar(t, &r.truth, "discount_exact")?;
            let ph = tr
                .outputs
                .tables
                .get("phases")
                .ok_or_else(|| anyhow!("'{train}' stored no phases table"))?;
            if column(ph, "discount").is_err() {
                bail!("'{train}': its phases table has no discount column (rerun it)");
            }
            let steps = f64_column(ph, "steps")?;
            let x: Vec<f64> = steps
                .iter()
                .scan(0.0, |acc, s| {
                    *acc += s;
                    Some(*acc)
                })
                .collect();
            let d = f64_column(ph, "discount")?;
            let se = f64_column(ph, "discount_se")?;
            let pct = |v: &[f64], sign: f64| -> Vec<f64> {
                v.iter()
                    .zip(&se)
                    .map(|(d, s)| 100.0 * ((d + sign * 2.0 * s) / truth - 1.0))
                    .collect()
            };
            let log10 = |v: Vec<f64>| -> Vec<f64> {
                v.into_iter().map(|x| x.max(1e-300).log10()).collect()
            };
            disc.push(Series {
                label: r.label.clone(),
                x: x.clone(),
                y: pct(&d, 0.0),
            });
            disc_lo.push(Series {
                label: format!("{} ± 2 se", r.label),
                x: x.clone(),
                y: pct(&d, -1.0),
            });
            disc_lo.push(Series {
                label: format!("{} + 2 se", r.label),
                x: x.clone(),
                y: pct(&d, 1.0),
            });
            clear.push(Series {
                label: r.label.clone(),
                x: x.clone(),
                y: log10(f64_column(ph, "clearing")?),
            });
            term.push(Series {
                label: r.label.clone(),
                x: x.clone(),
                y: log10(f64_column(ph, "terminal")?),
            });
            for (i, xi) in x.iter().enumerate() {
                table.0.push(r.label.clone());
                table.1.push(*xi);
                table.2.push(100.0 * (d[i] / truth - 1.0));
                table.3.push(100.0 * se[i] / truth.abs());
                table.4.push(truth);
            }
        }
        // With one row, the ± 2 se lines are drawn too (with many they would clutter).
        let mut disc_all = disc.clone();
        if rows.len() == 1 {
            disc_all.extend(disc_lo);
        }
        let mut out = Outputs::new();
        for (name, fig) in [
            (
                "discount",
                line_chart(
                    &format!("{prefix}liquidity discount error vs the exact truth, per phase"),
                    "cumulative Adam steps (both networks)",
                    "(S̄₀ − S₀) / truth − 1  [%]",
                    &disc_all,
                    Some((0.0, "truth")),
                )?,
            ),
            (
                "clearing",
                line_chart(
                    &format!("{prefix}clearing error on the test paths, per phase"),
                    "cumulative Adam steps (both networks)",
                    "log₁₀ clearing",
                    &clear,
                    Some((-4.0, "1e-4")),
                )?,
            ),
            (
                "terminal",
                line_chart(
                    &format!("{prefix}terminal error on the test paths, per phase"),
                    "cumulative Adam steps (both networks)",
                    "log₁₀ terminal",
                    &term,
                    Some((-5.0, "1e-5")),
                )?,
            ),
        ] {
            out = out.file(name, "svg", fig.svg.into_bytes()).file(
                &format!("{name}_png"),
                "png",
                fig.png,
            );
        }
        Ok(out.table(
            "convergence",
            TableBuilder::new()
                .str("row", &table.0)
                .f64("adam_steps", table.1)
                .f64("discount_err_pct", table.2)
                .f64("discount_se_pct", table.3)
                .f64("discount_truth", table.4)
                .build()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_validated_with_the_offending_row_named() {
        let ok = parse_rows(
            &json!([{"label": "A", "truth": "t", "eval": "e", "train": "r"}]),
            &["eval"],
        )
        .unwrap();
        assert_eq!(ok[0].label, "A");
        assert_eq!(ok[0].train.as_deref(), Some("r"));
        let err = parse_rows(&json!([{"truth": "t"}, {"truth": "u"}]), &["eval"]).unwrap_err();
        assert!(err.contains("row 1: `eval` is required"), "{err}");
        let err = parse_rows(&json!([{"truth": "t", "eval": "e", "evl": 1}]), &["eval"]);
        assert!(err.unwrap_err().contains("unknown key `evl`"));
        assert!(parse_rows(&json!([]), &[]).is_err());
        assert!(parse_rows(&json!({"truth": "t"}), &[]).is_err());
        assert!(
            parse_rows(&json!([{"truth": 3}]), &[])
                .unwrap_err()
                .contains("`truth` must be a stage name")
        );
    }
}
