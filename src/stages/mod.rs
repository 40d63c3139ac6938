//! Stage kinds: one file per kind, each a thin adapter from parameters and upstream tables to
//! the science code in `finance` (or to polars for the data stages). The [`Registry`] maps
//! kind names used in pipeline files to implementations; the helpers below are shared by the
//! GMS stages.

pub mod calibration;
pub mod collect;
pub mod compare;
pub mod cost_ode;
pub mod deep_bsde;
pub mod deep_bsde_eval;
pub mod describe;
pub mod fbsde_figures;
pub mod figures;
#[cfg(feature = "data")]
pub mod frame;
pub mod generate;
#[cfg(feature = "data")]
pub mod load_table;
pub mod market_data;
pub mod nagent;
pub mod paper_inputs;
pub mod pde;
pub mod rgan;
pub mod rgan_figures;
pub mod riccati;
pub mod simulate;
pub mod turnover;

use crate::finance::calibration::Frictionless;
use crate::stage::{Inputs, Params, Stage, Upstream};
use anyhow::Result;
use std::collections::BTreeMap;

/// Kind name → stage implementation.
pub struct Registry {
    stages: BTreeMap<&'static str, Box<dyn Stage>>,
}

impl Registry {
    /// All built-in stage kinds.
    pub fn builtin() -> Registry {
        #[allow(unused_mut)]
        let mut all: Vec<Box<dyn Stage>> = vec![
            Box::new(generate::Generate),
            Box::new(describe::Describe),
            Box::new(paper_inputs::PaperInputs),
            Box::new(market_data::MarketData),
            Box::new(calibration::Calibration),
            Box::new(cost_ode::CostOde),
            Box::new(turnover::TurnoverMatching),
            Box::new(simulate::Simulate),
            Box::new(compare::Compare),
            Box::new(collect::Collect),
            Box::new(figures::GmsFigures),
            Box::new(riccati::RiccatiBenchmark),
            Box::new(pde::FiniteHorizonPde),
            Box::new(deep_bsde::DeepBsde),
            Box::new(deep_bsde_eval::DeepBsdeEval),
            Box::new(fbsde_figures::FbsdeFigures),
            Box::new(nagent::NagentRiccati),
            Box::new(nagent::LeadingOrder),
            Box::new(rgan::RganTrain),
            Box::new(rgan::RganEval),
            Box::new(rgan_figures::RganFigures),
        ];
        #[cfg(feature = "data")]
        all.push(Box::new(load_table::LoadTable));
        Registry {
            stages: all.into_iter().map(|s| (s.kind(), s)).collect(),
        }
    }

    /// The stage of kind `kind`.
    pub fn get(&self, kind: &str) -> Option<&dyn Stage> {
        self.stages.get(kind).map(|b| b.as_ref())
    }

    /// Every kind name, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.stages.keys().copied()
    }

    /// Every stage, sorted by kind.
    pub fn all(&self) -> impl Iterator<Item = &dyn Stage> {
        self.stages.values().map(|b| b.as_ref())
    }
}

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
