//! The Adam training loop shared by the neural solvers, with a geometric learning-rate
//! schedule, a loss log, progress and cancellation callbacks and a divergence check, and the
//! conversion of a trained module to and from burnpack bytes (stored as a pipeline artifact).

use super::{DeepError, Result};
use burn::module::{Module, ModuleMapper, Param};
use burn::optim::{AdamConfig, GradientsAccumulator, GradientsParams};
use burn::prelude::Tensor;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

/// How long and how fast to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Number of Adam steps.
    pub steps: usize,
    /// Learning rate at the first step.
    pub lr: f64,
    /// Learning rate at the last step (geometric interpolation in between).
    pub lr_final: f64,
    /// Log the training and validation loss every this many steps (and at the end).
    pub log_every: usize,
}

impl Schedule {
    /// Checks that the schedule can run.
    pub fn validate(&self) -> Result<()> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if self.steps == 0 || !ok(self.lr) || !ok(self.lr_final) || self.log_every == 0 {
            return Err(DeepError::InvalidConfig(format!(
                "training needs steps ≥ 1, positive learning rates and log_every ≥ 1, got {self:?}"
            )));
        }
        Ok(())
    }

    /// The learning rate at step `k` (0-based).
    pub fn lr_at(&self, k: usize) -> f64 {
        if self.steps <= 1 {
            return self.lr;
        }
        let frac = k as f64 / (self.steps - 1) as f64;
        self.lr * (self.lr_final / self.lr).powf(frac)
    }
}

/// Callbacks from the loop to its caller.
pub struct Hooks<'a> {
    /// Called after every step with (steps done, current training loss).
    pub progress: &'a dyn Fn(usize, f64),
    /// Polled every step; `true` stops training with [`DeepError::Interrupted`].
    pub cancelled: &'a dyn Fn() -> bool,
}

/// The loss history of a training run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainLog {
    /// Step index of each entry (0 = before the first update).
    pub step: Vec<usize>,
    /// Training (mini-batch) loss.
    pub loss: Vec<f64>,
    /// Loss on the fixed validation batch.
    pub valid: Vec<f64>,
    /// Learning rate used at that step.
    pub lr: Vec<f64>,
}

/// Trains `model` with Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8): `batch_loss(model, k)` builds the
/// differentiable loss of step k on a fresh batch; `valid_loss(model)`, if given, evaluates a
/// fixed validation batch without gradients (otherwise the log repeats the training loss).
pub fn train<M: Module>(
    mut model: M,
    schedule: &Schedule,
    hooks: &Hooks,
    mut batch_loss: impl FnMut(&M, usize) -> Tensor<1>,
    mut valid_loss: Option<&mut dyn FnMut(&M) -> f64>,
) -> Result<(M, TrainLog)> {
    schedule.validate()?;
    let mut opt = AdamConfig::new().with_epsilon(1e-8).init();
    let mut log = TrainLog::default();
    let mut last_train = f64::NAN;
    for k in 0..schedule.steps {
        if (hooks.cancelled)() {
            return Err(DeepError::Interrupted);
        }
        let loss = batch_loss(&model, k);
        let value: f64 = loss.clone().into_scalar();
        if !value.is_finite() {
            return Err(DeepError::Diverged {
                step: k,
                loss: value,
            });
        }
        last_train = value;
        let lr = schedule.lr_at(k);
        if k % schedule.log_every == 0 {
            log.step.push(k);
            log.loss.push(value);
            log.valid
                .push(valid_loss.as_mut().map_or(value, |f| f(&model)));
            log.lr.push(lr);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(lr, model, grads);
        (hooks.progress)(k + 1, value);
    }
    let last = valid_loss.as_mut().map_or(last_train, |f| f(&model));
    if !last.is_finite() {
        return Err(DeepError::Diverged {
            step: schedule.steps,
            loss: last,
        });
    }
    log.step.push(schedule.steps);
    log.loss.push(last);
    log.valid.push(last);
    log.lr.push(schedule.lr_final);
    Ok((model, log))
}

/// Trains `model` like [`train`], with each step's batch split into shards whose losses and
/// gradients are computed in parallel (rayon's pool) and summed in shard order.
///
/// `batch(model, k)` draws step k's data on the calling thread as `(weight, shard)` pairs, the
/// weights (each shard's share of the batch) summing to 1; `shard_loss(model, shard)` builds the
/// differentiable loss of one shard, a mean over its paths, so that the batch loss is
/// Σ weight·loss. The shards are fixed by the caller, not by the number of threads, and the sums
/// run in a fixed order: the result is bit-identical whatever the thread count.
///
/// With `check`, training may end early: after every `check.every` steps (never after the last)
/// `check.stop(model, steps_done)` says whether to end; the log's last entry is then the steps
/// taken.
pub fn train_sharded<M, S>(
    mut model: M,
    schedule: &Schedule,
    hooks: &Hooks,
    mut batch: impl FnMut(&M, usize) -> Vec<(f64, S)>,
    shard_loss: impl Fn(&M, &S) -> Tensor<1> + Sync,
    mut check: Option<StopCheck<'_, M>>,
) -> Result<(M, TrainLog)>
where
    M: Module + Sync,
    S: Send + Sync,
{
    use rayon::prelude::*;
    schedule.validate()?;
    if check.as_ref().is_some_and(|c| c.every == 0) {
        return Err(DeepError::InvalidConfig(
            "a stopping check needs an interval of at least 1 step".into(),
        ));
    }
    let mut opt = AdamConfig::new().with_epsilon(1e-8).init();
    let mut log = TrainLog::default();
    let mut last_train = f64::NAN;
    let mut done = schedule.steps;
    for k in 0..schedule.steps {
        if (hooks.cancelled)() {
            return Err(DeepError::Interrupted);
        }
        let shards = batch(&model, k);
        let parts: Vec<(f64, GradientsParams)> = shards
            .par_iter()
            .map(|(weight, shard)| {
                // Each shard differentiates its own copy of the parameters (fresh autodiff leaves,
                // same ids): burn's autodiff merges graphs that share a node, and a merge racing
                // with another shard's backward pass deadlocks.
                let local = model.clone().map(&mut FreshLeaves);
                let loss = shard_loss(&local, shard).mul_scalar(*weight);
                let value: f64 = loss.clone().into_scalar();
                (value, GradientsParams::from_grads(loss.backward(), &local))
            })
            .collect();
        let mut value = 0.0;
        let mut acc = GradientsAccumulator::<M>::new();
        for (v, grads) in parts {
            value += v;
            acc.accumulate(&model, grads);
        }
        if !value.is_finite() {
            return Err(DeepError::Diverged {
                step: k,
                loss: value,
            });
        }
        last_train = value;
        let lr = schedule.lr_at(k);
        if k % schedule.log_every == 0 {
            log.step.push(k);
            log.loss.push(value);
            log.valid.push(value);
            log.lr.push(lr);
        }
        model = opt.step(lr, model, acc.grads());
        (hooks.progress)(k + 1, value);
        if let Some(c) = check.as_mut()
            && (k + 1) % c.every == 0
            && k + 1 < schedule.steps
            && (c.stop)(&model, k + 1)
        {
            done = k + 1;
            break;
        }
    }
    if !last_train.is_finite() {
        return Err(DeepError::Diverged {
            step: done,
            loss: last_train,
        });
    }
    log.step.push(done);
    log.loss.push(last_train);
    log.valid.push(last_train);
    log.lr.push(schedule.lr_final);
    Ok((model, log))
}

/// A stopping check for [`train_sharded`]: consulted after every `every` steps.
pub struct StopCheck<'a, M> {
    /// Steps between checks (≥ 1).
    pub every: usize,
    /// `stop(model, steps_done)`: `true` ends training.
    pub stop: &'a mut dyn FnMut(&M, usize) -> bool,
}

/// Replaces every parameter by a new autodiff leaf with the same value, id and `require_grad`.
struct FreshLeaves;

impl ModuleMapper for FreshLeaves {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| t.detach())
    }
}

/// Contiguous near-equal parts of `0..n`: `parts` of them (fewer when `n < parts`), the first
/// `n % parts` one longer.
pub fn split_ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// The module's parameters as burnpack bytes (taken from its validation snapshot).
pub fn to_bytes<M: Module>(model: &M) -> Result<Vec<u8>> {
    let bytes = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| DeepError::Checkpoint(format!("{e:?}")))?;
    Ok(bytes.to_vec())
}

/// Loads burnpack bytes written by [`to_bytes`] into a module of the same architecture.
pub fn from_bytes<M: Module>(model: M, bytes: &[u8]) -> Result<M> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| DeepError::Checkpoint(format!("{e:?}")))?;
    model
        .try_load_record(record)
        .map_err(|e| DeepError::Checkpoint(format!("weights do not fit the model: {e:?}")))
}
