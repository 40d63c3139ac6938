//! The Reinforced-GAN equilibrium solver (spec rgan §2–§4): a generator (the agents' trading
//! rates, one tanh MLP per time step on (Δφ, W, 1)) and a discriminator (the market's volatility
//! σ_k, drift μ_k and initial price S₀), trained in alternating phases, each against the frozen
//! other. The discriminator's loss carries the *reinforcement link*: the trading rates that the
//! agents' first-order conditions imply under the current prices must clear.
//!
//! Deliberate simplifications, documented in the README: σ_k is a learned vector (the authors'
//! σ-networks see only the constant 1, so they are one), S₀ a learned scalar; σ starts at α and S₀
//! at the frictionless price. The generator's gradient flows through the frozen μ-network, as in
//! the authors' code.

use super::nets::{Activation, Init, Mlp};
use super::stopping::improves;
use super::train::{Hooks, Schedule, StopCheck, TrainLog, split_ranges, train_sharded};
use super::{DeepError, Result, brownian_increments, derive_seed, host, stream};
use crate::finance::nagent::{Economy, Metrics, Simulation};
use crate::finance::stats::{mean, standard_error};
use burn::module::{Module, Param};
use burn::prelude::{Device, Tensor};
use burn::tensor::TensorData;
use rand::rngs::ChaCha8Rng;

/// The discretised problem and the solver variant.
#[derive(Debug, Clone, PartialEq)]
pub struct RganProblem {
    /// The N-agent economy.
    pub economy: Economy,
    /// Euler steps K.
    pub steps: usize,
    /// μ from the drift identity (valid for q = 2 or N = 2) instead of a network.
    pub mu_known: bool,
    /// Include the reinforcement link in the discriminator loss (`false`: the ablation).
    pub link: bool,
    /// Hidden width of every MLP.
    pub width: usize,
    /// Hidden layers of every MLP.
    pub depth: usize,
}

impl RganProblem {
    /// Checks the economy and the variant.
    pub fn validate(&self) -> Result<()> {
        let e = &self.economy;
        e.validate(true)
            .map_err(|err| DeepError::InvalidConfig(err.to_string()))?;
        if self.steps < 2 || self.width == 0 || self.depth == 0 {
            return Err(DeepError::InvalidConfig(
                "need K ≥ 2 steps and networks of width and depth ≥ 1".into(),
            ));
        }
        if self.mu_known && !(e.q == 2.0 || e.agents() == 2) {
            return Err(DeepError::InvalidConfig(format!(
                "the drift identity (mu_known) holds only for q = 2 or N = 2, got q = {} and N = {}",
                e.q,
                e.agents()
            )));
        }
        Ok(())
    }

    fn sizes(&self, outputs: usize) -> Vec<usize> {
        let mut v = vec![self.economy.agents() + 2];
        v.extend(std::iter::repeat_n(self.width, self.depth));
        v.push(outputs);
        v
    }
}

/// The agents: one network per time step giving all N trading rates.
#[derive(Module, Debug)]
pub struct Generator {
    /// Per-step networks (Δφ, W, 1) → φ̇.
    pub nets: Vec<Mlp>,
}

/// The market: volatility per step, drift networks and the initial price.
#[derive(Module, Debug)]
pub struct Discriminator {
    /// σ_k before the absolute value, k = 0..K−1.
    pub sigma: Param<Tensor<1>>,
    /// Per-step drift networks (Δφ, W, 1) → μ (empty when μ is known).
    pub mu: Vec<Mlp>,
    /// S₀.
    pub s0: Param<Tensor<1>>,
}

impl Generator {
    /// A fresh generator drawn from `seed`.
    pub fn new(p: &RganProblem, seed: u64, device: &Device) -> Generator {
        let mut init = Init::new(seed, device);
        let sizes = p.sizes(p.economy.agents());
        Generator {
            nets: (0..p.steps)
                .map(|_| Mlp::torch_default(&mut init, &sizes))
                .collect(),
        }
    }
}

impl Discriminator {
    /// A fresh discriminator drawn from `seed` (σ = α, S₀ = the frictionless price).
    pub fn new(p: &RganProblem, seed: u64, device: &Device) -> Discriminator {
        let mut init = Init::new(seed, device);
        let sizes = p.sizes(1);
        let e = &p.economy;
        Discriminator {
            sigma: init.constant(p.steps, e.alpha),
            mu: if p.mu_known {
                Vec::new()
            } else {
                (0..p.steps)
                    .map(|_| Mlp::torch_default(&mut init, &sizes))
                    .collect()
            },
            s0: init.constant(1, e.s_bar0()),
        }
    }
}

/// Everything one rollout computes: both losses and the evaluation metrics.
pub struct Rollout {
    /// Generator loss L_G.
    pub gen_loss: Tensor<1>,
    /// Terminal loss mean (S_K − 𝔖)².
    pub term: Tensor<1>,
    /// Reinforcement link L_link.
    pub link: Tensor<1>,
    /// Discriminator regularisation 1e-3(mean σ² + mean μ²).
    pub disc_reg: Tensor<1>,
    /// Per-path utility −(1/N)Σₙ(1/K²)Σₖℓⁿ (unweighted), `[M]` on the host when recorded.
    pub utility: Option<Vec<f64>>,
    /// Recorded path data (when asked).
    paths: Option<RganPaths>,
}

/// Host copies of the paths of a recorded rollout.
#[derive(Debug, Clone, Default, PartialEq)]
struct RganPaths {
    /// σ_k, k = 0..K−1.
    pub sigma: Vec<f64>,
    /// μ_k per path, `[k][path]`.
    pub mu: Vec<Vec<f64>>,
    /// Trading rates of path 0, `[k][agent]`.
    pub rate0: Vec<Vec<f64>>,
    /// Terminal price error S_K − 𝔖 per path.
    pub terminal_error: Vec<f64>,
    /// Clearing error (1/N)Σφ̇ⁿ per path, averaged over k of its square.
    pub clear: Vec<f64>,
    /// Reinforcement-link penalty per path (zeros without the link).
    pub link: Vec<f64>,
}

fn row(values: &[f64], device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(values.to_vec(), [1, values.len()]), device)
}

/// Brownian increments `[M, K]`.
pub fn increments(rng: &mut ChaCha8Rng, paths: usize, p: &RganProblem) -> Vec<f64> {
    brownian_increments(rng, paths, p.steps, p.economy.horizon / p.steps as f64)
}

/// Rolls the market forward (spec rgan §4.3) and computes the losses (§4.4).
pub fn rollout(
    g: &Generator,
    d: &Discriminator,
    p: &RganProblem,
    dw: &[f64],
    record: bool,
) -> Rollout {
    let e = &p.economy;
    let device = d.s0.val().device();
    let (n, k_steps) = (e.agents(), p.steps);
    let m = dw.len() / k_steps;
    let dt = e.horizon / k_steps as f64;
    let gamma = row(&e.gamma, &device);
    let xi = row(&e.xi, &device);
    let xi_over_alpha = row(
        &e.xi.iter().map(|x| x / e.alpha).collect::<Vec<_>>(),
        &device,
    );
    let max_xi = e.xi.iter().map(|x| x.abs()).fold(0.0, f64::max);
    let weights = row(
        &e.xi
            .iter()
            .map(|x| {
                if *x == 0.0 {
                    1.0
                } else {
                    (max_xi / x.abs()).powi(2)
                }
            })
            .collect::<Vec<_>>(),
        &device,
    );
    let dw_all = Tensor::<2>::from_data(TensorData::new(dw.to_vec(), [m, k_steps]), &device);
    let ones = Tensor::<2>::ones([m, 1], &device);
    let phibar0 = row(&e.phi0(), &device);
    let mut phi = Tensor::<2>::zeros([m, n], &device) + phibar0.clone();
    let mut w = Tensor::<2>::zeros([m, 1], &device);
    let mut s = Tensor::<2>::zeros([m, 1], &device) + d.s0.val().unsqueeze::<2>();
    let sigma_all = d.sigma.val().abs();
    let mut util = Tensor::<2>::zeros([m, n], &device);
    let mut util_w = Tensor::<2>::zeros([m, n], &device);
    let mut clear = Tensor::<2>::zeros([m, 1], &device);
    let mut rate_sq = Tensor::<2>::zeros([m, n], &device);
    let mut mu_sq = Tensor::<2>::zeros([m, 1], &device);
    let mut drivers = Vec::with_capacity(k_steps);
    let mut rec = record.then(RganPaths::default);
    for k in 0..k_steps {
        let dwk = dw_all.clone().narrow(1, k, 1);
        let phibar = phibar0.clone() - w.clone() * xi_over_alpha.clone();
        let dphi = phi.clone() - phibar;
        let sigma = sigma_all.clone().narrow(0, k, 1).unsqueeze::<2>();
        let input = Tensor::cat(vec![dphi, w.clone(), ones.clone()], 1);
        // σφⁿ + ξₙW, the agents' total exposures
        let expo = phi.clone() * sigma.clone() + w.clone() * xi.clone();
        let mu = if p.mu_known {
            (expo.clone() * gamma.clone()).mean_dim(1) * sigma.clone()
        } else {
            d.mu[k].forward(input.clone(), Activation::Tanh)
        };
        let rate = g.nets[k].forward(input, Activation::Tanh);
        let cost = rate
            .clone()
            .abs()
            .powf_scalar(e.q)
            .mul_scalar(0.5 * e.lambda);
        let ell = -(mu.clone() * phi.clone())
            + (expo.clone().powf_scalar(2.0) * gamma.clone()).mul_scalar(0.5)
            + cost;
        util = util + ell.clone();
        util_w = util_w + ell * weights.clone();
        drivers.push(mu.clone() - expo * gamma.clone() * sigma.clone());
        let mean_rate = rate.clone().mean_dim(1);
        clear = clear + mean_rate.clone().powf_scalar(2.0);
        rate_sq = rate_sq + rate.clone().powf_scalar(2.0);
        mu_sq = mu_sq + mu.clone().powf_scalar(2.0);
        if let Some(r) = rec.as_mut() {
            r.mu.push(host(mu.clone()));
            let all = host(rate.clone().narrow(0, 0, 1));
            r.rate0.push(all);
        }
        s = s + mu.mul_scalar(dt) + sigma * dwk.clone();
        phi = phi + rate.mul_scalar(dt);
        w = w + dwk;
    }
    let kf = k_steps as f64;
    let terminal = s - w.mul_scalar(e.alpha).add_scalar(e.beta * e.horizon);
    let term = terminal.clone().powf_scalar(2.0).mean();
    let clear_path = clear.div_scalar(kf);
    let gen_loss = util_w.div_scalar(kf).mean_dim(1).mean()
        + rate_sq.div_scalar(kf).mean().mul_scalar(1e-3)
        + clear_path.clone().mean();
    // Reinforcement link: FOC-implied rates from the backward sums of the driver must clear.
    let p_exp = 1.0 / (e.q - 1.0);
    let mut link = Tensor::<2>::zeros([m, 1], &device);
    if p.link {
        let mut y = Tensor::<2>::zeros([m, n], &device);
        for (k, r) in drivers.into_iter().enumerate().rev() {
            y = y + r;
            let psi = if e.q == 2.0 {
                y.clone()
            } else {
                y.clone().sign() * y.clone().abs().powf_scalar(p_exp)
            };
            let implied = psi.div_scalar((k_steps - k) as f64).mean_dim(1);
            link = link + implied.powf_scalar(2.0);
        }
    }
    let disc_reg =
        (sigma_all.clone().powf_scalar(2.0).mean() + mu_sq.div_scalar(kf).mean()).mul_scalar(1e-3);
    let utility = record.then(|| host(util.div_scalar(-kf * kf).mean_dim(1)));
    if let Some(r) = rec.as_mut() {
        r.sigma = host(sigma_all);
        r.terminal_error = host(terminal);
        r.clear = host(clear_path);
        r.link = host(link.clone());
    }
    Rollout {
        gen_loss,
        term,
        link: link.mean(),
        disc_reg,
        utility,
        paths: rec,
    }
}

/// Training schedule of the alternating rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct RganSchedule {
    /// Adam steps of each generator and each discriminator phase, per round (the last entry
    /// repeats for later rounds).
    pub phase_steps: Vec<usize>,
    /// Learning rate per round (the last entry repeats).
    pub lr: Vec<f64>,
    /// Number of rounds.
    pub rounds: usize,
    /// Re-initialise both networks at the start of every round (the authors' choice) instead
    /// of warm-starting from the previous round.
    pub reinit: bool,
    /// Paths per Adam step.
    pub batch: usize,
    /// κ of the terminal-loss weight c = κ·L_link/L_term (μ learned), both measured at the
    /// first step of a freshly initialised discriminator: every phase with `reinit`, only the
    /// first with warm starts. The authors use κ = 3000 with their random initial prices.
    pub terminal_ratio: f64,
}

/// One logged phase.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseLog {
    /// Round index.
    pub round: usize,
    /// `generator` or `discriminator`.
    pub phase: &'static str,
    /// Loss at the phase's first and last step.
    pub first_loss: f64,
    /// Loss at the last step.
    pub last_loss: f64,
    /// Terminal-loss weight c of a discriminator phase (NaN for a generator phase).
    pub terminal_weight: f64,
    /// Test metrics after the phase.
    pub metrics: Metrics,
    /// Standard error of the mean path-wise starting price on the test paths (of the discount).
    pub s0_se: f64,
    /// Mean path-wise starting price βT + αW_T − Σμ_kΔt − Σσ_kΔW_k on the test paths.
    pub start_mean: f64,
    /// Adam steps the phase took.
    pub steps: usize,
}

impl PhaseLog {
    fn new(round: usize, phase: &'static str, log: &TrainLog, sim: &Simulation) -> PhaseLog {
        PhaseLog {
            round,
            phase,
            first_loss: log.loss.first().copied().unwrap_or(f64::NAN),
            last_loss: log.loss.last().copied().unwrap_or(f64::NAN),
            terminal_weight: f64::NAN,
            metrics: sim.metrics,
            s0_se: sim.s0_se,
            start_mean: sim.start_mean,
            steps: log.step.last().copied().unwrap_or(0),
        }
    }
}

/// Evaluates on the fixed test increments: the paper's columns and the paths of the figures.
pub fn evaluate(g: &Generator, d: &Discriminator, p: &RganProblem, dw: &[f64]) -> Simulation {
    // Untracked copies: the autodiff backend would otherwise record the whole rollout of the
    // test paths (GBs at 3000 paths × 100 steps) and keep it until the next backward pass.
    let (g, d) = (&g.clone().no_grad(), &d.clone().no_grad());
    let r = rollout(g, d, p, dw, true);
    let paths = r.paths.unwrap_or_default();
    let u = r.utility.unwrap_or_default();
    let mean_mu: Vec<f64> = paths.mu.iter().map(|v| mean(v)).collect();
    let s0: f64 = d.s0.val().into_scalar();
    // The path-wise starting prices are S₀ − (S_K − 𝔖).
    let starts: Vec<f64> = paths.terminal_error.iter().map(|x| s0 - x).collect();
    let metrics = Metrics {
        s0,
        mu0: mean_mu.first().copied().unwrap_or(f64::NAN),
        sigma0: paths.sigma.first().copied().unwrap_or(f64::NAN),
        ..Metrics::from_paths(&u, &paths.clear, &paths.terminal_error)
    };
    Simulation {
        metrics,
        s0_se: standard_error(&starts),
        start_mean: mean(&starts),
        sigma: paths.sigma,
        mean_mu,
        mu_path: paths.mu.iter().map(|v| v[0]).collect(),
        rate_path: paths.rate0,
    }
}

/// Number of shards each training batch is split into: their losses and gradients are computed
/// in parallel and summed in shard order, so that a training run gives bit-identical networks
/// whatever the number of threads (a fixed count, not the number of cores).
pub const SHARDS: usize = 4;

/// A batch of increments `[M, K]` (row-major) cut into [`SHARDS`] contiguous blocks of paths,
/// each with its share of the batch, followed by `extra`.
fn shard_paths<T: Clone>(dw: &[f64], steps: usize, extra: T) -> Vec<(f64, (Vec<f64>, T))> {
    let m = dw.len() / steps;
    split_ranges(m, SHARDS)
        .into_iter()
        .map(|r| {
            let share = r.len() as f64 / m as f64;
            let rows = dw[r.start * steps..r.end * steps].to_vec();
            (share, (rows, extra.clone()))
        })
        .collect()
}

/// One generator phase: Adam on the generator loss against the frozen market `frozen_d`, the
/// batch of each step from `batch(k)` (increments `[M, K]`), sharded ([`SHARDS`]); `check` may
/// end it early.
pub fn generator_phase(
    g: Generator,
    frozen_d: &Discriminator,
    p: &RganProblem,
    schedule: &Schedule,
    hooks: &Hooks,
    mut batch: impl FnMut(usize) -> Vec<f64>,
    check: Option<StopCheck<'_, Generator>>,
) -> Result<(Generator, TrainLog)> {
    train_sharded(
        g,
        schedule,
        hooks,
        |_, k| shard_paths(&batch(k), p.steps, ()),
        |gm, (dw, ())| rollout(gm, frozen_d, p, dw, false).gen_loss,
        check,
    )
}

/// One discriminator phase against the frozen agents `frozen_g`: the loss c·L_term + L_link +
/// regularisation, sharded ([`SHARDS`]). With `ratio` = Some(κ), c = κ·L_link/L_term is measured
/// on the full batch of the first step at which `weight` is still unset (and stored there);
/// `None` means c = 1. `check` may end the phase early.
#[allow(clippy::too_many_arguments)]
pub fn discriminator_phase(
    d: Discriminator,
    frozen_g: &Generator,
    p: &RganProblem,
    schedule: &Schedule,
    hooks: &Hooks,
    ratio: Option<f64>,
    weight: &mut Option<f64>,
    mut batch: impl FnMut(usize) -> Vec<f64>,
    check: Option<StopCheck<'_, Discriminator>>,
) -> Result<(Discriminator, TrainLog)> {
    train_sharded(
        d,
        schedule,
        hooks,
        |dm, k| {
            let dw = batch(k);
            let c = match ratio {
                None => 1.0,
                Some(kappa) => *weight.get_or_insert_with(|| {
                    let r = rollout(frozen_g, &dm.clone().no_grad(), p, &dw, false);
                    let link: f64 = r.link.into_scalar();
                    let term: f64 = r.term.into_scalar();
                    kappa * link / term.max(1e-300)
                }),
            };
            shard_paths(&dw, p.steps, c)
        },
        |dm, (dw, c)| {
            let r = rollout(frozen_g, dm, p, dw, false);
            r.term.mul_scalar(*c) + r.link + r.disc_reg
        },
        check,
    )
}

/// A trained pair and its log.
pub struct TrainedRgan {
    /// The generator.
    pub generator: Generator,
    /// The discriminator.
    pub discriminator: Discriminator,
    /// One entry per phase.
    pub log: Vec<PhaseLog>,
}

/// The adaptive schedule's stopping rule: every `every` Adam steps the pair is evaluated on a
/// fixed validation set (its own paths, not the test paths), and a phase ends at the first check
/// where none of its metrics improved by more than one standard error of the paired change
/// ([`improves`]): the generator's per-path objective −utility + clearing; the discriminator's
/// terminal error, link penalty, and S₀ (moved by more than the standard error of the mean
/// path-wise start). Training ends after a round (from `min_rounds` on) whose end improves on the
/// previous round's end by none of these; the schedule's phase steps and rounds are the caps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopRule {
    /// Adam steps between validation checks.
    pub every: usize,
    /// Validation paths.
    pub valid_paths: usize,
    /// Rounds run before the round rule may end training.
    pub min_rounds: usize,
}

/// Per-path validation values of a pair.
struct Validation {
    /// −utility + clearing per path (the generator's objective, unweighted).
    objective: Vec<f64>,
    /// Squared terminal error per path.
    term: Vec<f64>,
    /// Link penalty per path.
    link: Vec<f64>,
    /// S₀.
    s0: f64,
    /// Standard error of the mean path-wise start.
    s0_se: f64,
}

impl Validation {
    fn of(g: &Generator, d: &Discriminator, p: &RganProblem, dw: &[f64]) -> Validation {
        // Untracked copies, as in `evaluate`: no autodiff graph of the validation rollout.
        let (g, d) = (&g.clone().no_grad(), &d.clone().no_grad());
        let r = rollout(g, d, p, dw, true);
        let paths = r.paths.unwrap_or_default();
        let u = r.utility.unwrap_or_default();
        let s0: f64 = d.s0.val().into_scalar();
        let starts: Vec<f64> = paths.terminal_error.iter().map(|x| s0 - x).collect();
        Validation {
            objective: u.iter().zip(&paths.clear).map(|(u, c)| c - u).collect(),
            term: paths.terminal_error.iter().map(|x| x * x).collect(),
            link: paths.link,
            s0,
            s0_se: standard_error(&starts),
        }
    }

    /// Whether the generator's objective improved on `prev`.
    fn generator_improves(&self, prev: &Validation) -> bool {
        improves(&prev.objective, &self.objective)
    }

    /// Whether the discriminator's metrics improved on `prev` (or S₀ still moves).
    fn discriminator_improves(&self, prev: &Validation) -> bool {
        improves(&prev.term, &self.term)
            || improves(&prev.link, &self.link)
            || (self.s0 - prev.s0).abs() > prev.s0_se.max(self.s0_se)
    }
}

/// Runs the alternating rounds on `device`, deterministically under `seed`; `test_dw` is the
/// fixed test set used for the per-phase metrics. `on_phase` reports each finished phase.
pub fn train_rgan(
    p: &RganProblem,
    sched: &RganSchedule,
    seed: u64,
    test_dw: &[f64],
    hooks: &Hooks,
    on_phase: &dyn Fn(&PhaseLog),
    device: &Device,
) -> Result<TrainedRgan> {
    train_rounds(p, sched, None, seed, test_dw, hooks, on_phase, device)
}

/// [`train_rgan`] with the stopping rule `stop`: the schedule's phase steps and rounds become
/// caps, and each phase and the training end when validation stops improving.
#[allow(clippy::too_many_arguments)]
pub fn train_rgan_adaptive(
    p: &RganProblem,
    sched: &RganSchedule,
    stop: &StopRule,
    seed: u64,
    test_dw: &[f64],
    hooks: &Hooks,
    on_phase: &dyn Fn(&PhaseLog),
    device: &Device,
) -> Result<TrainedRgan> {
    if stop.every == 0 || stop.valid_paths < 2 {
        return Err(DeepError::InvalidConfig(
            "the stopping rule needs a check interval ≥ 1 and ≥ 2 validation paths".into(),
        ));
    }
    train_rounds(p, sched, Some(stop), seed, test_dw, hooks, on_phase, device)
}

#[allow(clippy::too_many_arguments)]
fn train_rounds(
    p: &RganProblem,
    sched: &RganSchedule,
    stop: Option<&StopRule>,
    seed: u64,
    test_dw: &[f64],
    hooks: &Hooks,
    on_phase: &dyn Fn(&PhaseLog),
    device: &Device,
) -> Result<TrainedRgan> {
    p.validate()?;
    if sched.rounds == 0 || sched.phase_steps.is_empty() || sched.lr.is_empty() || sched.batch < 2 {
        return Err(DeepError::InvalidConfig(
            "the schedule needs rounds ≥ 1, phase steps, learning rates and batch ≥ 2".into(),
        ));
    }
    let mut g = Generator::new(p, derive_seed(seed, 10), device);
    let mut d = Discriminator::new(p, derive_seed(seed, 11), device);
    let mut batches = stream(seed, 12);
    // The validation paths of the stopping rule (a stream of their own: the batches and the
    // non-adaptive schedules are unaffected).
    let valid_dw = stop.map(|s| increments(&mut stream(seed, 13), s.valid_paths, p));
    let mut log = Vec::new();
    let pick = |v: &[usize], r: usize| v[r.min(v.len() - 1)];
    // The terminal-loss weight c = κ·L_link/L_term is measured at the first step of a phase
    // whose discriminator is freshly initialised (spec rgan §4.4): every phase with `reinit`, only
    // the first one with warm starts (a warm discriminator has L_term ≈ 0 and c would explode).
    let mut weight: Option<f64> = None;
    let mut round_start: Option<Validation> = None;
    for round in 0..sched.rounds {
        let steps = pick(&sched.phase_steps, round);
        let lr = sched.lr[round.min(sched.lr.len() - 1)];
        // The adaptive schedule logs at each check, like its stopping rule looks.
        let schedule = Schedule {
            steps,
            lr,
            lr_final: lr,
            log_every: stop.map_or(steps, |rule| rule.every),
        };
        // Generator phase against the frozen market.
        if sched.reinit {
            g = Generator::new(p, derive_seed(seed, 100 + 2 * round as u64), device);
        }
        let frozen_d = d.clone().no_grad();
        let mut prev = valid_dw.as_deref().map(|v| Validation::of(&g, &d, p, v));
        let mut g_stalls = |gm: &Generator, _: usize| {
            let (Some(vdw), Some(prev)) = (valid_dw.as_deref(), prev.as_mut()) else {
                return false;
            };
            let cur = Validation::of(gm, &d, p, vdw);
            let better = cur.generator_improves(prev);
            *prev = cur;
            !better
        };
        let check = stop.map(|rule| StopCheck {
            every: rule.every,
            stop: &mut g_stalls,
        });
        let (g_new, g_log) = generator_phase(
            g,
            &frozen_d,
            p,
            &schedule,
            hooks,
            |_| increments(&mut batches, sched.batch, p),
            check,
        )?;
        g = g_new;
        let entry = PhaseLog::new(round, "generator", &g_log, &evaluate(&g, &d, p, test_dw));
        on_phase(&entry);
        log.push(entry);

        // Discriminator phase against the frozen agents.
        if sched.reinit {
            d = Discriminator::new(p, derive_seed(seed, 101 + 2 * round as u64), device);
        }
        let frozen_g = g.clone().no_grad();
        if sched.reinit {
            weight = None;
        }
        let mut prev = valid_dw.as_deref().map(|v| Validation::of(&g, &d, p, v));
        let mut d_stalls = |dm: &Discriminator, _: usize| {
            let (Some(vdw), Some(prev)) = (valid_dw.as_deref(), prev.as_mut()) else {
                return false;
            };
            let cur = Validation::of(&g, dm, p, vdw);
            let better = cur.discriminator_improves(prev);
            *prev = cur;
            !better
        };
        let check = stop.map(|rule| StopCheck {
            every: rule.every,
            stop: &mut d_stalls,
        });
        let (d_new, d_log) = discriminator_phase(
            d,
            &frozen_g,
            p,
            &schedule,
            hooks,
            (!p.mu_known && p.link).then_some(sched.terminal_ratio),
            &mut weight,
            |_| increments(&mut batches, sched.batch, p),
            check,
        )?;
        d = d_new;
        let entry = PhaseLog {
            terminal_weight: if p.mu_known || !p.link {
                1.0
            } else {
                weight.unwrap_or(f64::NAN)
            },
            ..PhaseLog::new(
                round,
                "discriminator",
                &d_log,
                &evaluate(&g, &d, p, test_dw),
            )
        };
        on_phase(&entry);
        log.push(entry);

        // The round rule: stop once a whole round improved on nothing.
        if let (Some(rule), Some(vdw)) = (stop, &valid_dw) {
            let end = Validation::of(&g, &d, p, vdw);
            let stalled = round_start.as_ref().is_some_and(|prev| {
                !end.generator_improves(prev) && !end.discriminator_improves(prev)
            });
            if stalled && round + 1 >= rule.min_rounds {
                break;
            }
            round_start = Some(end);
        }
    }
    Ok(TrainedRgan {
        generator: g,
        discriminator: d,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case_a(mu_known: bool) -> RganProblem {
        RganProblem {
            economy: Economy::case_a(),
            steps: 20,
            mu_known,
            link: true,
            width: 8,
            depth: 2,
        }
    }

    #[test]
    fn the_link_vanishes_exactly_under_the_drift_identity() {
        // For q = 2 the implied aggregate rate is Σₙ backward sums of μ − γₙσ(σφⁿ + ξₙW), which
        // the drift identity makes zero step by step, whatever the agents do (spec rgan §3).
        let p = case_a(true);
        let device = crate::deep::device::test_device();
        let g = Generator::new(&p, 1, &device);
        let d = Discriminator::new(&p, 2, &device);
        let dw = increments(&mut stream(5, 0), 64, &p);
        let r = rollout(&g, &d, &p, &dw, false);
        let link: f64 = r.link.into_scalar();
        assert!(link < 1e-24, "link = {link:e}");
        // With a drift network instead, the link is a real penalty.
        let p = case_a(false);
        let d = Discriminator::new(&p, 2, &device);
        let link: f64 = rollout(&g, &d, &p, &dw, false).link.into_scalar();
        assert!(link > 1e-6, "link = {link:e}");
    }

    #[test]
    fn alternating_rounds_run_and_are_deterministic() {
        let p = case_a(false);
        let sched = RganSchedule {
            phase_steps: vec![3],
            lr: vec![1e-3],
            rounds: 2,
            reinit: true,
            batch: 16,
            terminal_ratio: 3000.0,
        };
        let test = increments(&mut stream(9, 3), 32, &p);
        let run = || {
            let hooks = Hooks {
                progress: &|_, _| {},
                cancelled: &|| false,
            };
            let device = crate::deep::device::test_device();
            let t = train_rgan(&p, &sched, 4, &test, &hooks, &|_| {}, &device).unwrap();
            t.log.iter().map(|l| l.metrics).collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a.len(), 4, "one entry per phase");
        assert_eq!(a, b, "same seed, same metrics");
        // The shards are fixed, not the threads: one and two threads give the same bits.
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map(|pool| pool.install(run))
                .unwrap()
        };
        assert_eq!(on(1), a, "one thread");
        assert_eq!(on(2), a, "two threads");
        assert!(a.iter().all(|m| m.term.is_finite() && m.clear.is_finite()));
    }

    #[test]
    fn the_adaptive_schedule_without_checks_is_the_fixed_one_and_stops_within_its_caps() {
        let p = case_a(false);
        let sched = RganSchedule {
            phase_steps: vec![6],
            lr: vec![1e-3],
            rounds: 2,
            reinit: false,
            batch: 16,
            terminal_ratio: 0.01,
        };
        let test = increments(&mut stream(9, 3), 32, &p);
        let hooks = Hooks {
            progress: &|_, _| {},
            cancelled: &|| false,
        };
        let device = crate::deep::device::test_device();
        let fixed = train_rgan(&p, &sched, 4, &test, &hooks, &|_| {}, &device).unwrap();
        // No check ever falls inside a phase and the round rule needs 99 rounds: the same Adam
        // steps on the same batches, bit for bit.
        let never = StopRule {
            every: 1000,
            valid_paths: 16,
            min_rounds: 99,
        };
        let same =
            train_rgan_adaptive(&p, &sched, &never, 4, &test, &hooks, &|_| {}, &device).unwrap();
        let key = |t: &TrainedRgan| {
            t.log
                .iter()
                .map(|l| {
                    (
                        l.first_loss,
                        l.last_loss,
                        l.metrics,
                        l.s0_se,
                        l.start_mean,
                        l.steps,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(key(&fixed), key(&same));
        assert!(fixed.log.iter().all(|l| l.steps == 6));
        assert!(fixed.log.iter().all(|l| l.s0_se > 0.0 && l.s0_se < 1.0));
        // Checking every 2 steps: each phase takes 2, 4 or 6 steps, never more than its cap.
        let rule = StopRule {
            every: 2,
            valid_paths: 16,
            min_rounds: 1,
        };
        let t = train_rgan_adaptive(&p, &sched, &rule, 4, &test, &hooks, &|_| {}, &device).unwrap();
        assert!(!t.log.is_empty() && t.log.len() <= 4);
        assert!(
            t.log.iter().all(|l| [2, 4, 6].contains(&l.steps)),
            "{:?}",
            t.log
        );
        let bad = StopRule { every: 0, ..rule };
        assert!(train_rgan_adaptive(&p, &sched, &bad, 4, &test, &hooks, &|_| {}, &device).is_err());
    }

    #[test]
    fn rejects_the_drift_identity_where_it_does_not_hold() {
        let mut p = case_a(true);
        p.economy.q = 1.5;
        assert!(p.validate().is_err());
        p.mu_known = false;
        assert!(p.validate().is_ok());
    }
}
