//! `rgan_train`: trains the Reinforced-GAN solver (spec rgan §2–§4) for an N-agent economy and
//! stores generator and discriminator weights as burnpack artifacts, with a per-phase log of the
//! test metrics (with the liquidity discount S̄₀ − S₀ and its standard error). Schedules:
//! `paper` (the authors' rounds, steps and learning rates, for long or GPU runs), `custom`
//! (explicit `rounds`/`phase_steps`/`lr`/`batch`: the `cpu` schedule of the pipelines) or
//! `adaptive` (the same parameters as caps, with the stopping rule of
//! [`crate::deep::rgan::StopRule`]).

use super::device::{DEVICE, check_device, check_device_here, device};
use super::nagent::{
    ECONOMY, STEPS, TEST_PATHS, check_economy, economy, simulation_outputs, test_increments,
};
use crate::deep::DeepError;
use crate::deep::rgan::{
    RganProblem, RganSchedule, StopRule, increments, train_rgan, train_rgan_adaptive,
};
use crate::deep::stream;
use crate::deep::train::{Hooks, to_bytes};
use crate::stage::{
    Inputs, Outputs, ParamError, ParamKind as K, ParamSpec, Params, Stage, StageCtx,
};
use crate::table::TableBuilder;
use anyhow::Result;

/// The `rgan_train` stage kind.
pub struct RganTrain;

const PARAMS: &[ParamSpec] = &[
    ECONOMY,
    STEPS,
    ParamSpec::opt(
        "mu_known",
        K::Bool,
        "false",
        "drift from the identity (q = 2 or N = 2) instead of a network",
    ),
    ParamSpec::opt(
        "link",
        K::Bool,
        "true",
        "reinforcement link in the discriminator loss (false: the ablation)",
    ),
    ParamSpec::opt("width", K::Int, "50", "hidden width of every MLP"),
    ParamSpec::opt("depth", K::Int, "3", "hidden layers of every MLP"),
    ParamSpec::opt(
        "schedule",
        K::Str,
        "custom",
        "paper (the authors' rounds), custom (the parameters below) or adaptive (the parameters below as caps: a phase ends when its validation metrics stop improving by more than their standard error, training when a whole round does)",
    ),
    ParamSpec::opt("rounds", K::Int, "4", "custom: alternating rounds"),
    ParamSpec::opt(
        "phase_steps",
        K::FloatList,
        "[300]",
        "custom: Adam steps per phase, per round (last repeats)",
    ),
    ParamSpec::opt(
        "lr",
        K::FloatList,
        "[1e-3]",
        "custom: learning rate per round (last repeats)",
    ),
    ParamSpec::opt("batch", K::Int, "256", "custom: paths per Adam step"),
    ParamSpec::opt(
        "terminal_ratio",
        K::Float,
        "3000",
        "custom: κ of the terminal-loss weight c = κ·L_link/L_term (μ learned) at the first step of a fresh discriminator; the authors' 3000",
    ),
    ParamSpec::opt(
        "reinit",
        K::Bool,
        "false",
        "custom: re-initialise both networks every round (the authors' choice)",
    ),
    ParamSpec::opt(
        "test_paths",
        K::Int,
        "3000",
        "test paths of the per-phase metrics",
    ),
    DEVICE,
    ParamSpec::added(
        "stop_every",
        K::Int,
        "50",
        "adaptive: Adam steps between validation checks",
    ),
    ParamSpec::added(
        "valid_paths",
        K::Int,
        "1000",
        "adaptive: validation paths of the stopping rule (their own, not the test paths)",
    ),
    ParamSpec::added(
        "min_rounds",
        K::Int,
        "2",
        "adaptive: rounds always run before a stalled round may end training",
    ),
];

/// The stopping rule of `schedule: adaptive` (None for the other schedules).
pub fn stop_rule(p: &Params) -> Result<Option<StopRule>> {
    if p.str("schedule")? != "adaptive" {
        return Ok(None);
    }
    Ok(Some(StopRule {
        every: p.usize("stop_every")?,
        valid_paths: p.usize("valid_paths")?,
        min_rounds: p.usize("min_rounds")?,
    }))
}

/// The problem given by the stage parameters.
pub fn problem(p: &Params) -> Result<RganProblem> {
    let problem = RganProblem {
        economy: economy(p)?,
        steps: p.usize("steps")?,
        mu_known: p.bool("mu_known")?,
        link: p.bool("link")?,
        width: p.usize("width")?,
        depth: p.usize("depth")?,
    };
    problem.validate()?;
    Ok(problem)
}

/// The training schedule given by the stage parameters.
pub fn schedule(p: &Params) -> Result<RganSchedule> {
    Ok(match p.str("schedule")? {
        // spec rgan §4.5: 10 rounds, E = [500, 1000, 1000, 10 000, …], LR = [1e-2 ×4, 1e-3, …].
        "paper" => RganSchedule {
            phase_steps: vec![500, 1000, 1000, 10_000],
            lr: vec![1e-2, 1e-2, 1e-2, 1e-2, 1e-3],
            rounds: 10,
            reinit: true,
            batch: 1000,
            terminal_ratio: 3000.0,
        },
        _ => RganSchedule {
            phase_steps: p
                .f64_list("phase_steps")?
                .iter()
                .map(|&v| v as usize)
                .collect(),
            lr: p.f64_list("lr")?,
            rounds: p.usize("rounds")?,
            reinit: p.bool("reinit")?,
            batch: p.usize("batch")?,
            terminal_ratio: p.f64("terminal_ratio")?,
        },
    })
}

impl Stage for RganTrain {
    fn kind(&self) -> &'static str {
        "rgan_train"
    }
    fn version(&self) -> u32 {
        7
    }
    fn about(&self) -> &'static str {
        "Reinforced-GAN equilibrium solver (N agents, burn f64 on the chosen device): trains and stores both networks"
    }
    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/rgan.rs",
            "src/stages/nagent.rs",
            "src/stages/device.rs",
            "src/deep/mod.rs",
            "src/deep/device.rs",
            "src/deep/rgan.rs",
            "src/deep/stopping.rs",
            "src/deep/bsde.rs",
            "src/deep/nets.rs",
            "src/deep/tanh.rs",
            "src/deep/train.rs",
            "src/finance/nagent.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        let e = check_economy(p)?;
        let known = p
            .bool("mu_known")
            .map_err(|err| ParamError::new("mu_known", err.to_string()))?;
        if known && !(e.q == 2.0 || e.agents() == 2) {
            return Err(ParamError::new(
                "mu_known",
                format!(
                    "the drift identity holds only for q = 2 or N = 2 (q = {}, N = {})",
                    e.q,
                    e.agents()
                ),
            ));
        }
        let s = p
            .str("schedule")
            .map_err(|err| ParamError::new("schedule", err.to_string()))?;
        if !["paper", "custom", "adaptive"].contains(&s) {
            return Err(ParamError::new(
                "schedule",
                format!("must be paper, custom or adaptive, got '{s}'"),
            ));
        }
        p.require_at_least(&[
            ("stop_every", 1),
            ("valid_paths", 2),
            ("min_rounds", 1),
            ("steps", 2),
            ("width", 1),
            ("depth", 1),
            ("rounds", 1),
            ("batch", 2),
            ("test_paths", 2),
        ])?;
        check_device(p)
    }
    fn check_machine(&self, p: &Params) -> Result<(), ParamError> {
        check_device_here(p)
    }
    fn run(&self, ctx: &StageCtx, p: &Params, _inputs: &Inputs) -> Result<Outputs> {
        let prob = problem(p)?;
        let sched = schedule(p)?;
        let total: usize = (0..sched.rounds)
            .map(|r| 2 * sched.phase_steps[r.min(sched.phase_steps.len() - 1)])
            .sum();
        ctx.progress.set_len(total as u64);
        let test = increments(&mut stream(ctx.seed, 3), p.usize("test_paths")?, &prob);
        let progress = |k: usize, loss: f64| {
            ctx.progress.inc(1);
            if k.is_multiple_of(10) {
                ctx.progress.message(format!("loss {loss:.3e}"));
            }
        };
        let cancelled = || ctx.is_cancelled();
        let hooks = Hooks {
            progress: &progress,
            cancelled: &cancelled,
        };
        let on_phase = |l: &crate::deep::rgan::PhaseLog| {
            ctx.progress.message(format!(
                "round {} {}: clear {:.1e} term {:.1e} σ₀ {:.4}",
                l.round, l.phase, l.metrics.clear, l.metrics.term, l.metrics.sigma0
            ));
        };
        let device = device(p)?;
        let trained = match stop_rule(p)? {
            Some(rule) => train_rgan_adaptive(
                &prob, &sched, &rule, ctx.seed, &test, &hooks, &on_phase, &device,
            ),
            None => train_rgan(&prob, &sched, ctx.seed, &test, &hooks, &on_phase, &device),
        }
        .map_err(|e| match e {
            DeepError::Interrupted => crate::stage::Cancelled.into(),
            e => anyhow::Error::from(e),
        })?;
        let log = &trained.log;
        let col = |f: fn(&crate::finance::nagent::Metrics) -> f64| -> Vec<f64> {
            log.iter().map(|l| f(&l.metrics)).collect()
        };
        let last = log.last().map(|l| l.metrics).unwrap_or_default();
        let s_bar0 = prob.economy.s_bar0();
        let last_se = log.last().map_or(f64::NAN, |l| l.s0_se);
        let total_steps: usize = log.iter().map(|l| l.steps).sum();
        Ok(Outputs::new()
            .file("generator", "bpk", to_bytes(&trained.generator)?)
            .file("discriminator", "bpk", to_bytes(&trained.discriminator)?)
            .table(
                "phases",
                TableBuilder::new()
                    .i64("round", log.iter().map(|l| l.round as i64).collect())
                    .str("phase", &log.iter().map(|l| l.phase).collect::<Vec<_>>())
                    .f64("first_loss", log.iter().map(|l| l.first_loss).collect())
                    .f64("last_loss", log.iter().map(|l| l.last_loss).collect())
                    .opt_f64(
                        "terminal_weight",
                        log.iter()
                            .map(|l| Some(l.terminal_weight).filter(|c| c.is_finite()))
                            .collect(),
                    )
                    .f64("utility", col(|m| m.utility))
                    .f64("clearing", col(|m| m.clear))
                    .f64("terminal", col(|m| m.term))
                    .f64("s0", col(|m| m.s0))
                    .f64("mu0", col(|m| m.mu0))
                    .f64("sigma0", col(|m| m.sigma0))
                    .i64("steps", log.iter().map(|l| l.steps as i64).collect())
                    .f64(
                        "discount",
                        log.iter().map(|l| s_bar0 - l.metrics.s0).collect(),
                    )
                    .f64("discount_se", log.iter().map(|l| l.s0_se).collect())
                    .f64(
                        "discount_paths",
                        log.iter().map(|l| s_bar0 - l.start_mean).collect(),
                    )
                    .build()?,
            )
            .scalar("discount", s_bar0 - last.s0)
            .scalar("discount_se", last_se)
            .scalar(
                "rounds_run",
                log.last().map_or(0.0, |l| (l.round + 1) as f64),
            )
            .scalar("adam_steps", total_steps as f64)
            .scalar("utility", last.utility)
            .scalar("clearing", last.clear)
            .scalar("terminal", last.term)
            .scalar("s0", last.s0)
            .scalar("mu0", last.mu0)
            .scalar("sigma0", last.sigma0))
    }
}

/// The `rgan_eval` stage kind.
pub struct RganEval;

const EVAL_PARAMS: &[ParamSpec] = &[TEST_PATHS, DEVICE];

impl Stage for RganEval {
    fn kind(&self) -> &'static str {
        "rgan_eval"
    }
    fn version(&self) -> u32 {
        6
    }
    fn about(&self) -> &'static str {
        "evaluates stored R-GAN weights on fresh paths: ΣJ ± se, clearing, terminal, S₀, μ₀, σ_t vs benchmark"
    }
    fn params(&self) -> &'static [ParamSpec] {
        EVAL_PARAMS
    }
    fn sources(&self) -> &'static [&'static str] {
        &[
            "src/stages/rgan.rs",
            "src/stages/nagent.rs",
            "src/stages/device.rs",
            "src/deep/device.rs",
            "src/deep/rgan.rs",
            "src/deep/nets.rs",
            "src/deep/stopping.rs",
            "src/deep/tanh.rs",
            "src/deep/train.rs",
            "src/finance/nagent.rs",
            "src/finance/power.rs",
        ]
    }
    fn check(&self, p: &Params) -> Result<(), ParamError> {
        p.require_at_least(&[("test_paths", 10)])?;
        check_device(p)
    }
    fn check_machine(&self, p: &Params) -> Result<(), ParamError> {
        check_device_here(p)
    }
    fn run(&self, ctx: &StageCtx, p: &Params, inputs: &Inputs) -> Result<Outputs> {
        use crate::deep::rgan::{Discriminator, Generator, evaluate};
        use crate::deep::train::from_bytes;
        let (name, u) = inputs.only_of_kind("rgan_train")?;
        let up = Params::new(u.params.clone(), std::path::PathBuf::new());
        let prob = problem(&up)?;
        let file = |f: &str| {
            u.outputs
                .files
                .get(f)
                .map(|x| x.bytes.as_slice())
                .ok_or_else(|| anyhow::anyhow!("'{name}' stored no {f} weights"))
        };
        let device = device(p)?;
        let g = from_bytes(Generator::new(&prob, 0, &device), file("generator")?)?;
        let d = from_bytes(
            Discriminator::new(&prob, 0, &device),
            file("discriminator")?,
        )?;
        let paths = p.usize("test_paths")?;
        let e = &prob.economy;
        let dw = test_increments(ctx.seed, paths, prob.steps, e.horizon);
        let sim = evaluate(&g, &d, &prob, &dw);
        // Benchmark volatility: the exact Riccati σ_t (q = 2) or the constant leading order
        // (N = 2); none otherwise (spec rgan §5, case C).
        let k = prob.steps;
        let bench: Vec<Option<f64>> = if e.q == 2.0 {
            let gt = crate::finance::nagent::ground_truth(e, k)?;
            gt.sigma[..k].iter().map(|&s| Some(s)).collect()
        } else if e.agents() == 2 {
            let np = crate::finance::power::NormalisedPower::solve(e.q)?;
            let lo = crate::finance::nagent::leading_order(e, -np.c)?;
            vec![Some(lo.sigma); k]
        } else {
            vec![None; k]
        };
        simulation_outputs(&sim, e, Some(bench), paths)
    }
}
