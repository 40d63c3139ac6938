//! Neural solvers on burn: the devices they compute on, each configured once for f64 (`device`:
//! flex on the CPU by default, libtorch and CUDA behind cargo features), per-time-step MLPs with
//! seeded host-side initialisation (`nets`), the Adam training loop with progress, cancellation and
//! divergence checks plus burnpack checkpoints as bytes (`train`), and the GMS deep BSDE solvers
//! for exogenous and endogenous volatility (`bsde`), and the Reinforced-GAN N-agent equilibrium
//! solver (`rgan`).
//!
//! Nothing here knows about the pipeline engine: stages pass plain parameters, a seed, callbacks
//! for progress and cancellation, and receive tables of numbers and checkpoint bytes.

pub mod bsde;
pub mod device;
pub mod nets;
pub mod rgan;
pub mod stopping;
pub mod tanh;
pub mod train;

pub use device::DeviceKind;

use burn::prelude::Tensor;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Errors of the neural solvers.
#[derive(Debug, thiserror::Error)]
pub enum DeepError {
    /// A problem or schedule parameter is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Training produced a non-finite loss or parameter.
    #[error("training diverged at step {step}: loss = {loss} (try a smaller learning rate)")]
    Diverged {
        /// The Adam step at which the loss became non-finite.
        step: usize,
        /// The offending loss value.
        loss: f64,
    },
    /// The caller asked to stop.
    #[error("interrupted")]
    Interrupted,
    /// A checkpoint could not be written or read.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The device is not compiled in, absent, or could not be configured.
    #[error("{0}")]
    Device(String),
}

/// Shorthand result type of this module.
pub type Result<T> = std::result::Result<T, DeepError>;

/// Stream `which` of the ChaCha8 generator seeded with `seed`: independent streams for parameter
/// initialisation, training batches, validation and test paths.
pub fn stream(seed: u64, which: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which);
    rng
}

/// A seed for a sub-generator (e.g. parameter initialisation), from stream `which` of `seed`.
pub fn derive_seed(seed: u64, which: u64) -> u64 {
    rand::Rng::next_u64(&mut stream(seed, which))
}

/// Brownian increments of `paths` paths with `steps` steps of size `dt`: `[paths, steps]`,
/// row-major, N(0, dt) entries.
pub fn brownian_increments(rng: &mut ChaCha8Rng, paths: usize, steps: usize, dt: f64) -> Vec<f64> {
    let sd = dt.sqrt();
    (0..paths * steps)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            sd * z
        })
        .collect()
}

/// A tensor's f64 values on the host (empty if the tensor is not f64).
fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_into_vec::<f64>().unwrap_or_default()
}
