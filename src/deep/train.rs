//! The Adam training loop shared by the neural solvers, with a geometric learning-rate
//! schedule, a loss log, progress and cancellation callbacks and a divergence check, and the
//! conversion of a trained module to and from burnpack bytes (stored as a pipeline artifact).

use super::{DeepError, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
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
