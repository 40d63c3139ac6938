//! `deep_bsde`: trains the GMS deep BSDE solver (spec gms-fbsde §4) for exogenous or endogenous
//! volatility and stores the weights as a burnpack artifact, with the loss history and the
//! trained initial values. Evaluation (`deep_bsde_eval`) and figures reload the weights and never
//! retrain.

use super::device::{DEVICE, check_device, check_device_here, device};
use super::frictionless;
use super::pde::check_q;
use crate::deep::DeepError;
use crate::deep::bsde::{BsdeProblem, NetShape, TrainSettings, Variant, train_bsde};
use crate::deep::train::{Hooks, Schedule, to_bytes};
use crate::finance::calibration::Frictionless;
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::{Result, anyhow};

/// The `deep_bsde` stage kind.
pub struct DeepBsde;

const PARAMS: &[ParamSpec] = &[
    ParamSpec::opt(
        "variant",
        K::Str,
        "endogenous",
        "endogenous (Figures 5–6) or exogenous (Figure 4) volatility",
    ),
    ParamSpec::opt("q", K::Float, "2.0", "cost elasticity q ∈ (1, 2]"),
    ParamSpec::req(
        "lambda",
        K::Float,
        "cost level λ (1.08e-10 for q = 2, 5.22e-6 for q = 3/2)",
    ),
    ParamSpec::req(
        "beta",
        K::Float,
        "endowment loading β (2.19e10 for q = 2, 2.33e10 for q = 3/2)",
    ),
    ParamSpec::opt("horizon", K::Float, "20.0", "horizon T (trading days)"),
    ParamSpec::opt("steps", K::Int, "40", "Euler steps N"),
    ParamSpec::opt(
        "clip",
        K::Float,
        "null",
        "clip of the terminal residuals; null: 500 for q = 2, 5000 otherwise",
    ),
    ParamSpec::opt(
        "width",
        K::Int,
        "15",
        "hidden width of the per-step networks (one MLP per step gives Z and σ)",
    ),
    ParamSpec::opt(
        "hidden",
        K::Int,
        "2",
        "hidden layers of the per-step networks",
    ),
    ParamSpec::opt("batch", K::Int, "128", "fresh paths per Adam step"),
    ParamSpec::opt("valid_batch", K::Int, "1024", "fixed validation paths"),
    ParamSpec::opt("train_steps", K::Int, "4000", "Adam steps"),
    ParamSpec::opt("lr", K::Float, "3e-3", "initial learning rate"),
    ParamSpec::opt(
        "lr_final",
        K::Float,
        "1e-4",
        "final learning rate (geometric decay)",
    ),
    ParamSpec::opt("log_every", K::Int, "100", "steps between loss log entries"),
    DEVICE,
];

/// The problem described by the stage parameters `p` (own or an upstream's) and calibration `fr`.
pub fn problem(p: &Params, fr: Frictionless) -> Result<BsdeProblem> {
    let variant_name = p.str("variant")?;
    let variant = Variant::parse(variant_name)
        .ok_or_else(|| anyhow!("variant must be endogenous or exogenous, got '{variant_name}'"))?;
    let q = p.f64("q")?;
    let clip = match p.opt_f64("clip")? {
        Some(c) => c,
        None if q == 2.0 => 500.0,
        None => 5000.0,
    };
    let problem = BsdeProblem {
        variant,
        fr,
        q,
        lambda: p.f64("lambda")?,
        beta: p.f64("beta")?,
        horizon: p.f64("horizon")?,
        steps: p.usize("steps")?,
        clip,
    };
    problem.validate()?;
    Ok(problem)
}

/// The network shape given by the stage parameters.
pub fn shape(p: &Params) -> Result<NetShape> {
    Ok(NetShape {
        width: p.usize("width")?,
        hidden: p.usize("hidden")?,
    })
}

impl Stage for DeepBsde {
    fn kind(&self) -> &'static str {
        "deep_bsde"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "deep BSDE solver in burn (f64, on the chosen device): trains and stores the weights"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/deep_bsde.rs",
            "src/stages/shared.rs",
            "src/stages/device.rs",
            "src/deep/mod.rs",
            "src/deep/device.rs",
            "src/deep/bsde.rs",
            "src/deep/nets.rs",
            "src/deep/train.rs",
            "src/finance/calibration.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_positive(&["lambda", "beta", "horizon", "clip", "lr", "lr_final"])?;
        check_q(p)?;
        let v = p
            .str("variant")
            .map_err(|e| ParamError::new("variant", e.to_string()))?;
        if Variant::parse(v).is_none() {
            return Err(ParamError::new(
                "variant",
                format!("must be endogenous or exogenous, got '{v}'"),
            ));
        }
        p.require_at_least(&[
            ("steps", 2),
            ("width", 1),
            ("hidden", 1),
            ("batch", 2),
            ("valid_batch", 2),
            ("train_steps", 1),
            ("log_every", 1),
        ])?;
        check_device(p)
    }
    fn check_machine(&self, p: &Params) -> Result<(), ParamError> {
        check_device_here(p)
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        let fr = frictionless(inputs)?;
        let problem = problem(p, fr)?;
        let steps = p.usize("train_steps")?;
        let settings = TrainSettings {
            shape: shape(p)?,
            batch: p.usize("batch")?,
            valid_batch: p.usize("valid_batch")?,
            schedule: Schedule {
                steps,
                lr: p.f64("lr")?,
                lr_final: p.f64("lr_final")?,
                log_every: p.usize("log_every")?,
            },
        };
        ctx.progress.set_len(steps as u64);
        let progress = |k: usize, loss: f64| {
            ctx.progress.inc(1);
            if k.is_multiple_of(20) {
                ctx.progress.message(format!("loss {loss:.3e}"));
            }
        };
        let cancelled = || ctx.is_cancelled();
        let hooks = Hooks {
            progress: &progress,
            cancelled: &cancelled,
        };
        let device = device(p)?;
        let trained =
            train_bsde(&problem, &settings, ctx.seed, &hooks, &device).map_err(|e| match e {
                DeepError::Interrupted => crate::stage::Cancelled.into(),
                e => anyhow::Error::from(e),
            })?;
        let log = &trained.log;
        let iv = trained.initial;
        Ok(Outputs::new()
            .file("weights", "bpk", to_bytes(&trained.model)?)
            .table(
                "training",
                TableBuilder::new()
                    .i64("step", log.step.iter().map(|&s| s as i64).collect())
                    .f64("loss", log.loss.clone())
                    .f64("valid_loss", log.valid.clone())
                    .f64("lr", log.lr.clone())
                    .build()?,
            )
            .scalar("y0", iv.y0)
            .scalar("z0", iv.z0)
            .scalar("delta_s0", iv.delta_s0)
            .scalar("sigma0_minus_a", iv.sigma0_minus_a)
            .scalar("initial_loss", log.valid[0])
            .scalar("final_loss", *log.valid.last().unwrap_or(&f64::NAN))
            .scalar("sigma", fr.sigma)
            .scalar("shares_outstanding", fr.s)
            .scalar("gamma_bar", fr.gamma_bar)
            .scalar("kappa", fr.kappa))
    }
}
