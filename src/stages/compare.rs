//! `compare`: a paper-vs-eqlab table. Each check names an upstream scalar (`stage.scalar`), the
//! reference value and a relative and/or absolute tolerance; the result is a table (value,
//! reference, tolerance, error, pass) and the same as Markdown.

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
        "list of {value: STAGE.SCALAR, reference: x, rel: r and/or abs: a, label?, source?}",
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
    reference: f64,
    rel: Option<f64>,
    abs: Option<f64>,
    source: String,
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
        let value = field("value")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("check {}: `value: STAGE.SCALAR` is required", i + 1))?;
        if !value.contains('.') {
            return Err(format!(
                "check {}: `value` must be STAGE.SCALAR, got '{value}'",
                i + 1
            ));
        }
        let reference =
            num("reference")?.ok_or_else(|| format!("check {}: `reference` is required", i + 1))?;
        let (rel, abs) = (num("rel")?, num("abs")?);
        if rel.is_none() && abs.is_none() {
            return Err(format!(
                "check {} ({value}): give a tolerance `rel` and/or `abs`",
                i + 1
            ));
        }
        if rel.into_iter().chain(abs).any(|t| t.is_nan() || t < 0.0) {
            return Err(format!("check {} ({value}): tolerances must be ≥ 0", i + 1));
        }
        let text = |k: &str| field(k).and_then(Value::as_str).map(str::to_owned);
        out.push(Check {
            label: text("label").unwrap_or_else(|| value.to_owned()),
            value: value.to_owned(),
            reference,
            rel,
            abs,
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
        1
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
        for c in &checks {
            let (stage, name) = crate::spec::split_stage(&c.value).unwrap_or((&c.value, ""));
            let u = inputs.stage(stage)?;
            let v = *u.outputs.scalars.get(name).ok_or_else(|| {
                anyhow!(
                    "stage '{stage}' has no scalar '{name}' (it has: {})",
                    u.outputs
                        .scalars
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let abs_err = (v - c.reference).abs();
            let rel_err = abs_err / c.reference.abs().max(f64::MIN_POSITIVE);
            let ok = c.rel.is_some_and(|r| rel_err <= r) || c.abs.is_some_and(|a| abs_err <= a);
            let t = match (c.rel, c.abs) {
                (Some(r), Some(a)) => format!("rel {r:e} or abs {a:e}"),
                (Some(r), None) => format!("rel {r:e}"),
                (None, Some(a)) => format!("abs {a:e}"),
                (None, None) => String::new(),
            };
            let e = if c.rel.is_some() { rel_err } else { abs_err };
            md.push_str(&format!(
                "| {} | {v:.9e} | {:.9e} | {t} | {e:.2e} | {} | {} |\n",
                c.label,
                c.reference,
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
        let values: Vec<&str> = checks.iter().map(|c| c.value.as_str()).collect();
        let sources: Vec<&str> = checks.iter().map(|c| c.source.as_str()).collect();
        let t = TableBuilder::new()
            .str("quantity", &labels)
            .str("value_of", &values)
            .f64("eqlab", got)
            .f64("reference", checks.iter().map(|c| c.reference).collect())
            .str("tolerance", &tol)
            .f64("error", err)
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
