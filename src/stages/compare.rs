//! `compare`: a paper-vs-eqlab table. Each check names an upstream scalar (`stage.scalar`,
//! optionally divided by another, `over`) and either a reference value with a relative and/or
//! absolute tolerance or one-sided bounds `min`/`max` (an acceptance bound such as "clearing
//! error < 1e-4"); the result is a table (value, reference, tolerance, error, pass) and the same
//! as Markdown.

use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::{Result, anyhow, bail};
use serde_json::Value;

/// The `compare` stage kind.
pub struct Compare;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::req(
        "checks",
        K::Any,
        "list of {value: STAGE.SCALAR, over?: STAGE.SCALAR, reference: x with rel: r and/or abs: a | min?: x, max?: x, label?, source?}",
    ),
    ParamSpec::opt(
        "fail_on_mismatch",
        K::Bool,
        "false",
        "fail the stage when a check fails",
    ),
];

/// One parsed check.
struct Check {
    label: String,
    value: String,
    over: Option<String>,
    reference: Option<f64>,
    rel: Option<f64>,
    abs: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    source: String,
}

impl Check {
    /// Whether `v` passes, the error shown (relative, absolute, or NaN for bounds: none) and the
    /// tolerance as text.
    fn judge(&self, v: f64) -> (bool, f64, String) {
        let Some(reference) = self.reference else {
            let ok = self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m);
            let t = match (self.min, self.max) {
                (Some(a), Some(b)) => format!("in [{a:e}, {b:e}]"),
                (Some(a), None) => format!("≥ {a:e}"),
                (None, Some(b)) => format!("≤ {b:e}"),
                (None, None) => String::new(),
            };
            return (ok, f64::NAN, t);
        };
        let abs_err = (v - reference).abs();
        let rel_err = abs_err / reference.abs().max(f64::MIN_POSITIVE);
        let ok = self.rel.is_some_and(|r| rel_err <= r) || self.abs.is_some_and(|a| abs_err <= a);
        let t = match (self.rel, self.abs) {
            (Some(r), Some(a)) => format!("rel {r:e} or abs {a:e}"),
            (Some(r), None) => format!("rel {r:e}"),
            (None, Some(a)) => format!("abs {a:e}"),
            (None, None) => String::new(),
        };
        (ok, if self.rel.is_some() { rel_err } else { abs_err }, t)
    }
}

fn parse_checks(v: &Value) -> std::result::Result<Vec<Check>, String> {
    let list = v.as_array().ok_or("must be a list of checks")?;
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let field = |k: &str| c.get(k).filter(|x| !x.is_null());
        let num = |k: &str| -> std::result::Result<Option<f64>, String> {
            field(k)
                .map(|x| {
                    x.as_f64()
                        .ok_or_else(|| format!("check {}: `{k}` must be a number", i + 1))
                })
                .transpose()
        };
        let stage_scalar = |k: &str| -> std::result::Result<Option<String>, String> {
            let Some(v) = field(k) else { return Ok(None) };
            match v.as_str() {
                Some(s) if s.contains('.') => Ok(Some(s.to_owned())),
                _ => Err(format!(
                    "check {}: `{k}` must be STAGE.SCALAR, got {v}",
                    i + 1
                )),
            }
        };
        let value = stage_scalar("value")?
            .ok_or_else(|| format!("check {}: `value: STAGE.SCALAR` is required", i + 1))?;
        let over = stage_scalar("over")?;
        let reference = num("reference")?;
        let (rel, abs, min, max) = (num("rel")?, num("abs")?, num("min")?, num("max")?);
        match reference {
            Some(_) if rel.is_none() && abs.is_none() => {
                return Err(format!(
                    "check {} ({value}): give a tolerance `rel` and/or `abs`",
                    i + 1
                ));
            }
            Some(_) if min.is_some() || max.is_some() => {
                return Err(format!(
                    "check {} ({value}): give either `reference` with a tolerance or bounds `min`/`max`, not both",
                    i + 1
                ));
            }
            None if min.is_none() && max.is_none() => {
                return Err(format!(
                    "check {} ({value}): `reference` (with `rel`/`abs`) or a bound `min`/`max` is required",
                    i + 1
                ));
            }
            _ => {}
        }
        if rel.into_iter().chain(abs).any(|t| t.is_nan() || t < 0.0) {
            return Err(format!("check {} ({value}): tolerances must be ≥ 0", i + 1));
        }
        let text = |k: &str| field(k).and_then(Value::as_str).map(str::to_owned);
        out.push(Check {
            label: text("label").unwrap_or_else(|| value.clone()),
            value,
            over,
            reference,
            rel,
            abs,
            min,
            max,
            source: text("source").unwrap_or_default(),
        });
    }
    Ok(out)
}

impl Stage for Compare {
    fn kind(&self) -> &'static str {
        "compare"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "paper-vs-eqlab table: upstream scalars against reference values with tolerances"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/compare.rs"]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let v = p
            .get("checks")
            .map_err(|e| ParamError::new("checks", e.to_string()))?;
        parse_checks(v)
            .map(|_| ())
            .map_err(|m| ParamError::new("checks", m))
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let checks = parse_checks(p.get("checks")?).map_err(|m| anyhow!("checks: {m}"))?;
        let (mut got, mut err, mut pass, mut tol) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut md = String::from(
            "| quantity | eqlab | reference | tolerance | error | pass | source |\n|---|---|---|---|---|---|---|\n",
        );
        let scalar = |path: &str| -> Result<f64> {
            let (stage, name) = crate::spec::split_stage(path).unwrap_or((path, ""));
            let u = inputs.stage(stage)?;
            u.outputs.scalars.get(name).copied().ok_or_else(|| {
                anyhow!(
                    "stage '{stage}' has no scalar '{name}' (it has: {})",
                    u.outputs
                        .scalars
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        };
        for c in &checks {
            let mut v = scalar(&c.value)?;
            if let Some(o) = &c.over {
                v /= scalar(o)?;
            }
            let (ok, e, t) = c.judge(v);
            md.push_str(&format!(
                "| {} | {v:.9e} | {} | {t} | {e:.2e} | {} | {} |\n",
                c.label,
                c.reference.map_or("—".into(), |r| format!("{r:.9e}")),
                if ok { "✓" } else { "✗" },
                c.source
            ));
            got.push(v);
            err.push(e);
            pass.push(ok);
            tol.push(t);
        }
        let failed: Vec<&str> = checks
            .iter()
            .zip(&pass)
            .filter(|(_, ok)| !**ok)
            .map(|(c, _)| c.label.as_str())
            .collect();
        if p.bool("fail_on_mismatch")? && !failed.is_empty() {
            bail!("{} check(s) failed: {}", failed.len(), failed.join(", "));
        }
        let labels: Vec<&str> = checks.iter().map(|c| c.label.as_str()).collect();
        let values: Vec<String> = checks
            .iter()
            .map(|c| match &c.over {
                Some(o) => format!("{} / {o}", c.value),
                None => c.value.clone(),
            })
            .collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let sources: Vec<&str> = checks.iter().map(|c| c.source.as_str()).collect();
        let t = TableBuilder::new()
            .str("quantity", &labels)
            .str("value_of", &values)
            .f64("eqlab", got)
            .opt_f64("reference", checks.iter().map(|c| c.reference).collect())
            .str("tolerance", &tol)
            .opt_f64(
                "error",
                err.into_iter()
                    .map(|e| Some(e).filter(|e| e.is_finite()))
                    .collect(),
            )
            .bool("pass", pass.clone())
            .str("source", &sources)
            .build()?;
        let n_pass = pass.iter().filter(|x| **x).count();
        Ok(Outputs::new()
            .table("comparison", t)
            .file("comparison", "md", md.into_bytes())
            .scalar("checks", checks.len() as f64)
            .scalar("passed", n_pass as f64)
            .scalar("failed", (checks.len() - n_pass) as f64))
    }
}
