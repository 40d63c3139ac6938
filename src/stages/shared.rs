//! Helpers shared by the GMS stages: calibration lookups, parameters with an upstream fallback,
//! model labels and scalar naming. Stage kinds themselves live in their own files.

use crate::finance::calibration::Frictionless;
use crate::stage::{Inputs, Params, Upstream};
use anyhow::Result;

/// Parameter `name` if set, else the upstream scalar of the same name.
pub fn param_or_upstream(p: &Params, inputs: &Inputs, name: &str) -> Result<f64> {
    match p.opt_f64(name)? {
        Some(v) => Ok(v),
        None => inputs
            .scalar(name)
            .map_err(|e| anyhow::anyhow!("`{name}` is neither set nor available upstream: {e}")),
    }
}

/// The frictionless economy calibrated by the upstream `frictionless_calibration` stage.
pub fn frictionless(inputs: &Inputs) -> Result<Frictionless> {
    let (name, u) = inputs.only_of_kind("frictionless_calibration")?;
    frictionless_of(name, u)
}

/// The frictionless economy from the calibration scalars (`sigma`, `shares_outstanding`,
/// `gamma_bar`, `kappa`) of upstream stage `name` (a calibration, or a stage that republishes
/// the calibration it used).
pub fn frictionless_of(name: &str, u: &Upstream) -> Result<Frictionless> {
    let get = |n: &str| {
        u.outputs
            .scalars
            .get(n)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("upstream stage '{name}' has no scalar '{n}'"))
    };
    Ok(Frictionless::from_gamma_bar(
        get("sigma")?,
        get("shares_outstanding")?,
        get("gamma_bar")?,
        get("kappa")?,
    )?)
}

/// Label of the power-cost model with elasticity `q` (`q=1.5`): its row in tables and the
/// prefix of its scalars.
pub fn power_label(q: f64) -> String {
    format!("q={q}")
}

/// When a stage computed a single model, also publishes its `LABEL.name` scalars as plain
/// `name`, so that the instances of a sweep share scalar names (for `collect`).
pub fn unprefix_single(mut out: crate::stage::Outputs, labels: &[String]) -> crate::stage::Outputs {
    if let [label] = labels {
        let prefix = format!("{label}.");
        let plain: Vec<(String, f64)> = out
            .scalars
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|n| (n.to_owned(), *v)))
            .collect();
        out.scalars.extend(plain);
    }
    out
}
