//! Early stopping for the adaptive R-GAN schedule: an Adam loop that consults a check every few
//! steps and ends when it says so, and the test "improved by more than its standard error" on a
//! fixed validation set, paired path by path (the change of a metric on the same paths has a
//! far smaller standard error than the metric itself).

use super::train::{Hooks, TrainLog};
use super::{DeepError, Result};
use crate::finance::stats::{mean, standard_error};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::Tensor;

/// Whether the per-path values `cur` improve on `prev` (lower is better, the same paths in the
/// same order) by more than one standard error of the paired change.
pub fn improves(prev: &[f64], cur: &[f64]) -> bool {
    if prev.len() != cur.len() || prev.len() < 2 {
        return false;
    }
    let d: Vec<f64> = prev.iter().zip(cur).map(|(a, b)| a - b).collect();
    let (m, se) = (mean(&d), standard_error(&d));
    m.is_finite() && m > se
}

/// Adam (as [`super::train::train`]: β₁ = 0.9, β₂ = 0.999, ε = 1e-8, constant `lr`) for at
/// most `max_steps` steps; after every `every` steps (and never after the last) `stop(model,
/// steps_done)` decides whether to end. Returns the model, the loss log (the first step, one
/// entry per check, and the steps taken with the last training loss) and the steps taken.
pub fn train_until<M: Module>(
    mut model: M,
    max_steps: usize,
    lr: f64,
    every: usize,
    hooks: &Hooks,
    mut batch_loss: impl FnMut(&M, usize) -> Tensor<1>,
    mut stop: impl FnMut(&M, usize) -> bool,
) -> Result<(M, TrainLog, usize)> {
    if max_steps == 0 || every == 0 || !(lr.is_finite() && lr > 0.0) {
        return Err(DeepError::InvalidConfig(format!(
            "adaptive training needs steps ≥ 1, a check interval ≥ 1 and lr > 0 (got {max_steps}, {every}, {lr})"
        )));
    }
    let mut opt = AdamConfig::new().with_epsilon(1e-8).init();
    let mut log = TrainLog::default();
    let (mut done, mut last) = (0, f64::NAN);
    while done < max_steps {
        if (hooks.cancelled)() {
            return Err(DeepError::Interrupted);
        }
        let loss = batch_loss(&model, done);
        let value: f64 = loss.clone().into_scalar();
        if !value.is_finite() {
            return Err(DeepError::Diverged {
                step: done,
                loss: value,
            });
        }
        last = value;
        if done % every == 0 {
            log.step.push(done);
            log.loss.push(value);
            log.valid.push(value);
            log.lr.push(lr);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(lr, model, grads);
        done += 1;
        (hooks.progress)(done, value);
        if done % every == 0 && done < max_steps && stop(&model, done) {
            break;
        }
    }
    // The last entry, as `train` writes it: the steps taken and the last training loss.
    log.step.push(done);
    log.loss.push(last);
    log.valid.push(last);
    log.lr.push(lr);
    Ok((model, log, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn improvement_must_exceed_the_paired_standard_error() {
        let prev: Vec<f64> = (0..100).map(|i| 1.0 + (i as f64 * 0.37).sin()).collect();
        // A uniform decrease of 1e-3 on every path: mean 1e-3, standard error 0: improved.
        let better: Vec<f64> = prev.iter().map(|x| x - 1e-3).collect();
        assert!(improves(&prev, &better));
        // Noise of ±1e-2 around a 1e-4 decrease: the change is within one standard error
        // (≈ 7e-4): not improved.
        let noisy: Vec<f64> = prev
            .iter()
            .enumerate()
            .map(|(i, x)| x - 1e-4 + if i % 2 == 0 { 1e-2 } else { -1e-2 })
            .collect();
        assert!(!improves(&prev, &noisy));
        // A worse set, mismatched lengths and a single path never count as improvements.
        let worse: Vec<f64> = prev.iter().map(|x| x + 1e-3).collect();
        assert!(!improves(&prev, &worse));
        assert!(!improves(&prev[..10], &better));
        assert!(!improves(&prev[..1], &better[..1]));
    }
}
