//! `paper_inputs`: the published GMS summary statistics from a small CSV (`name,value,unit,source`)
//! as scalars and a table, so that calibrations can run on the paper's numbers.

use crate::stage::{Inputs, Outputs, ParamKind as K, ParamSpec, Params, Stage, StageCtx};
use crate::table::TableBuilder;
use anyhow::{Context, Result, bail};

/// The `paper_inputs` stage kind.
pub struct PaperInputs;

const PARAMS: &[ParamSpec] = &[ParamSpec::req(
    "path",
    K::Path,
    "CSV with columns name,value,unit,source (see data/README.md)",
)];

/// Names every inputs file must define.
pub const REQUIRED: &[&str] = &[
    "price",
    "sigma",
    "shares_outstanding",
    "gamma_bar",
    "kappa",
    "turnover",
    "lambda_p",
];

impl Stage for PaperInputs {
    fn kind(&self) -> &'static str {
        "paper_inputs"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "published GMS inputs (price, σ, s, γ̄, κ, turnover, λ_p) from a CSV, as scalars"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &["src/stages/paper_inputs.rs"]
    }
    fn run(&self, _ctx: &StageCtx, p: &Params, _inputs: &Inputs) -> Result<Outputs> {
        let path = p.path("path")?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        match lines.next() {
            Some((_, h)) if h.trim() == "name,value,unit,source" => {}
            _ => bail!(
                "{}:1: the header must be `name,value,unit,source`",
                path.display()
            ),
        }
        let (mut names, mut values, mut units, mut sources) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut out = Outputs::new();
        for (i, line) in lines {
            let f: Vec<&str> = line.splitn(4, ',').collect();
            let [name, value, unit, source] = f[..] else {
                bail!(
                    "{}:{}: expected 4 fields name,value,unit,source",
                    path.display(),
                    i + 1
                );
            };
            let v: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .with_context(|| {
                    format!(
                        "{}:{}: '{value}' is not a finite number",
                        path.display(),
                        i + 1
                    )
                })?;
            out = out.scalar(name.trim(), v);
            names.push(name.trim().to_owned());
            values.push(v);
            units.push(unit.trim().to_owned());
            sources.push(source.trim().trim_matches('"').to_owned());
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|r| !names.iter().any(|n| n == r))
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} lacks {} (it has: {})",
                path.display(),
                missing.join(", "),
                names.join(", ")
            );
        }
        let t = TableBuilder::new()
            .str("name", &names)
            .f64("value", values)
            .str("unit", &units)
            .str("source", &sources)
            .build()?;
        Ok(out.table("inputs", t))
    }
}
