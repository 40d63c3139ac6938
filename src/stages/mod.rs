//! Stage kinds: one file per kind, each a thin adapter from parameters and upstream tables to
//! the science code in `finance` (or to the file readers for the data stages). The [`Registry`] maps
//! kind names used in pipeline files to implementations. Helpers shared by several stages live
//! in `shared` (which the stages list among their sources; this file is not, so registering a
//! new kind does not invalidate stored results).

pub mod calibration;
pub mod collect;
pub mod compare;
pub mod cost_ode;
pub mod dates;
pub mod deep_bsde;
pub mod deep_bsde_eval;
pub mod describe;
pub mod device;
pub mod fbsde_figures;
pub mod figures;
pub mod generate;
pub mod load_table;
pub mod located;
pub mod market_data;
pub mod nagent;
pub mod paper_inputs;
pub mod pde;
pub mod rgan;
pub mod rgan_accuracy;
pub mod rgan_figures;
pub mod riccati;
pub mod shared;
pub mod simulate;
pub mod turnover;

pub use shared::{frictionless, frictionless_of, param_or_upstream, power_label, unprefix_single};

use crate::spec::resources::Resources;
use crate::stage::{Params, Stage};
use std::collections::BTreeMap;

/// Kind name → stage implementation.
pub struct Registry {
    stages: BTreeMap<&'static str, Box<dyn Stage>>,
}

/// What a cluster job of a kind asks for unless the pipeline's `resources:` says otherwise:
/// the deep-training kinds and the simulation use two cores and more memory, a stage computing
/// on a GPU device (`device: cuda` or `tch-cuda`) one GPU; others take the cluster's defaults.
/// (Scheduler hints only, never part of a key.)
fn default_resources(kind: &str, params: Option<&Params>) -> Resources {
    let (cpus, mem) = match kind {
        "deep_bsde" | "rgan_train" => (Some(2), Some("2G")),
        "simulate_equilibrium" => (Some(2), Some("1G")),
        _ => (None, None),
    };
    Resources {
        cpus,
        mem: mem.map(str::to_owned),
        gpus: params.and_then(device::default_gpus),
        ..Resources::default()
    }
}

impl Registry {
    /// All built-in stage kinds.
    pub fn builtin() -> Registry {
        let all: Vec<Box<dyn Stage>> = vec![
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
            Box::new(rgan_accuracy::RganAccuracy),
            Box::new(rgan_accuracy::RganConvergence),
            Box::new(load_table::LoadTable),
        ];
        Registry {
            stages: all.into_iter().map(|s| (s.kind(), s)).collect(),
        }
    }

    /// This registry plus one more kind (a library user's own stage, or a test's); a kind of the
    /// same name is replaced.
    pub fn with(mut self, stage: Box<dyn Stage>) -> Registry {
        self.stages.insert(stage.kind(), stage);
        self
    }

    /// The stage of kind `kind`.
    pub fn get(&self, kind: &str) -> Option<&dyn Stage> {
        self.stages.get(kind).map(|b| b.as_ref())
    }

    /// The resources a cluster job of kind `kind` with `params` (when known) asks for by
    /// default (see `resources:` in pipeline files, which overrides each field).
    pub fn resources(&self, kind: &str, params: Option<&Params>) -> Resources {
        default_resources(kind, params)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_on_a_gpu_device_asks_the_cluster_for_one_gpu() {
        let r = Registry::builtin();
        let with = |device: &str| {
            let mut v = BTreeMap::new();
            v.insert("device".to_owned(), serde_json::json!(device));
            Params::new(v, std::path::PathBuf::new())
        };
        for (device, gpus) in [
            ("cpu", None),
            ("tch-cpu", None),
            ("tch-cuda", Some(1)),
            ("cuda", Some(1)),
        ] {
            let res = r.resources("rgan_train", Some(&with(device)));
            assert_eq!(res.gpus, gpus, "{device}");
            assert_eq!(
                (res.cpus, res.mem.as_deref()),
                (Some(2), Some("2G")),
                "{device}"
            );
        }
        // Unknown parameters (a kind without `device`, or not yet resolved): no GPU.
        assert_eq!(r.resources("describe", None), Resources::default());
        // The pipeline's `resources: {gpus: 0}` wins over the default.
        let own = Resources {
            gpus: Some(0),
            ..Resources::default()
        };
        let res = own.over(&r.resources("deep_bsde", Some(&with("cuda"))));
        assert_eq!(res.gpus, Some(0));
    }
}
