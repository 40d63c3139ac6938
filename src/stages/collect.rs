//! `collect`: stacks the scalar outputs of every upstream instance (typically the points of a
//! sweep) into one table whose first columns are the swept parameters. With replicates it adds a
//! `summary` table per point: mean, standard error and a Student-t confidence interval.

use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx, Upstream,
};
use crate::table::TableBuilder;
use anyhow::{Result, bail};
use serde_json::Value;
use std::collections::BTreeMap;

/// The `collect` stage kind.
pub struct Collect;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "scalars",
        K::StrList,
        "[]",
        "scalars to collect; empty: those every instance has",
    ),
    ParamSpec::opt(
        "confidence",
        K::Float,
        "0.95",
        "level of the replicate confidence intervals",
    ),
];

impl Stage for Collect {
    fn kind(&self) -> &'static str {
        "collect"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "stack the scalars of all upstream instances (sweep points, replicates) into one table"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/collect.rs"]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let c = p
            .f64("confidence")
            .map_err(|e| ParamError::new("confidence", e.to_string()))?;
        if !(c > 0.0 && c < 1.0) {
            return Err(ParamError::new(
                "confidence",
                format!("must lie in (0, 1), got {c}"),
            ));
        }
        Ok(())
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let ups: Vec<&(String, Upstream)> = inputs.upstream.iter().collect();
        if ups.is_empty() {
            bail!("`collect` needs at least one upstream stage");
        }
        let mut names = p.str_list("scalars")?;
        if names.is_empty() {
            names = ups[0]
                .1
                .outputs
                .scalars
                .keys()
                .filter(|k| ups.iter().all(|(_, u)| u.outputs.scalars.contains_key(*k)))
                .cloned()
                .collect();
        }
        for n in &names {
            if let Some((s, _)) = ups.iter().find(|(_, u)| !u.outputs.scalars.contains_key(n)) {
                bail!("instance '{s}' has no scalar '{n}'");
            }
        }
        let mut axes: Vec<String> = Vec::new();
        for (_, u) in &ups {
            for (a, _) in &u.point {
                if !axes.contains(a) {
                    axes.push(a.clone());
                }
            }
        }
        let point_value = |u: &Upstream, a: &str| {
            u.point
                .iter()
                .find(|(b, _)| b == a)
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null)
        };
        let mut tb = TableBuilder::new().str(
            "instance",
            &ups.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
        );
        for a in &axes {
            tb = axis_column(tb, a, ups.iter().map(|(_, u)| point_value(u, a)).collect());
        }
        let replicated = ups.iter().any(|(_, u)| u.replicate.is_some());
        if replicated {
            tb = tb.i64(
                "replicate",
                ups.iter()
                    .map(|(_, u)| u.replicate.map_or(-1, |r| r as i64))
                    .collect(),
            );
        }
        for n in &names {
            tb = tb.f64(n, ups.iter().map(|(_, u)| u.outputs.scalars[n]).collect());
        }
        let mut out = Outputs::new()
            .table("table", tb.build()?)
            .scalar("instances", ups.len() as f64);
        if replicated {
            // Group by point (in first-seen order).
            let mut groups: Vec<(Vec<Value>, Vec<&Upstream>)> = Vec::new();
            for (_, u) in &ups {
                let key: Vec<Value> = axes.iter().map(|a| point_value(u, a)).collect();
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, g)) => g.push(u),
                    None => groups.push((key, vec![u])),
                }
            }
            let conf = p.f64("confidence")?;
            let mut sb = TableBuilder::new();
            for (i, a) in axes.iter().enumerate() {
                sb = axis_column(sb, a, groups.iter().map(|(k, _)| k[i].clone()).collect());
            }
            sb = sb.i64("n", groups.iter().map(|(_, g)| g.len() as i64).collect());
            let mut cols: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for n in &names {
                for (_, g) in &groups {
                    let x: Vec<f64> = g.iter().map(|u| u.outputs.scalars[n]).collect();
                    let (m, se, half) = mean_se_ci(&x, conf);
                    for (suffix, v) in [
                        ("mean", m),
                        ("se", se),
                        ("ci_lo", m - half),
                        ("ci_hi", m + half),
                    ] {
                        cols.entry(format!("{n}.{suffix}")).or_default().push(v);
                    }
                }
            }
            for n in &names {
                for suffix in ["mean", "se", "ci_lo", "ci_hi"] {
                    let key = format!("{n}.{suffix}");
                    sb = sb.f64(&key, cols.remove(&key).unwrap_or_default());
                }
            }
            out = out.table("summary", sb.build()?);
        }
        Ok(out)
    }
}

/// A point column: numbers when every value is a number, text otherwise.
fn axis_column(tb: TableBuilder, name: &str, values: Vec<Value>) -> TableBuilder {
    if values.iter().all(Value::is_number) {
        tb.f64(
            name,
            values
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect(),
        )
    } else {
        let text: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        tb.str(name, &text)
    }
}

/// Mean, standard error and the half-width of the Student-t confidence interval.
pub fn mean_se_ci(x: &[f64], confidence: f64) -> (f64, f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (m, f64::NAN, f64::NAN);
    }
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    let se = (var / n).sqrt();
    (m, se, t_quantile(0.5 + confidence / 2.0, n - 1.0) * se)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7; about 15 digits).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let s = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |a, (i, c)| a + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

/// P(T ≤ t) for Student's t with `nu` degrees of freedom (Simpson's rule on the density).
fn t_cdf(t: f64, nu: f64) -> f64 {
    let c = (ln_gamma((nu + 1.0) / 2.0) - ln_gamma(nu / 2.0)).exp()
        / (nu * std::f64::consts::PI).sqrt();
    let f = |x: f64| c * (1.0 + x * x / nu).powf(-(nu + 1.0) / 2.0);
    let n = 2000;
    let h = t.abs() / n as f64;
    let mut s = f(0.0) + f(t.abs());
    for i in 1..n {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(i as f64 * h);
    }
    0.5 + t.signum() * s * h / 3.0
}

/// Student-t quantile with `nu` degrees of freedom (bisection on [`t_cdf`]).
fn t_quantile(p: f64, nu: f64) -> f64 {
    let (mut lo, mut hi) = (-1e3, 1e3);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, nu) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        assert!((t_quantile(0.975, 4.0) - 2.776445105).abs() < 1e-7);
        assert!((t_quantile(0.975, 30.0) - 2.042272456).abs() < 1e-7);
        assert!((t_quantile(0.975, 1e6) - 1.959966).abs() < 1e-5);
        let (m, se, half) = mean_se_ci(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
        assert_eq!(m, 3.0);
        assert!((se - (2.5f64 / 5.0).sqrt()).abs() < 1e-15);
        assert!((half / se - 2.776445105).abs() < 1e-7);
    }
}
