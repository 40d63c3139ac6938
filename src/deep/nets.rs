//! Network building blocks: [`Init`] draws every parameter from a seeded ChaCha8 stream on the
//! host and gives it a deterministic id (so training and checkpoints are bit-reproducible), and
//! [`Mlp`] is a fully connected network with biases and a chosen hidden activation, initialised
//! Glorot-normal (GMS solvers) or as PyTorch does (Reinforced-GAN).

use burn::module::{Module, Param, ParamId};
use burn::nn::Linear;
use burn::prelude::{Device, Tensor};
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Seeded parameter factory.
pub struct Init {
    rng: ChaCha8Rng,
    next_id: u64,
    device: Device,
}

impl Init {
    /// A factory drawing from `seed` and placing tensors on `device`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Init {
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_id: 1,
            device: device.clone(),
        }
    }

    fn param<const D: usize>(&mut self, values: Vec<f64>, shape: [usize; D]) -> Param<Tensor<D>> {
        let t = Tensor::<D>::from_data(TensorData::new(values, shape), &self.device).require_grad();
        let id = ParamId::from(self.next_id);
        self.next_id += 1;
        Param::initialized(id, t)
    }

    /// A `[rows, cols]` matrix with i.i.d. N(0, std²) entries.
    pub fn normal(&mut self, rows: usize, cols: usize, std: f64) -> Param<Tensor<2>> {
        let v = (0..rows * cols)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                std * z
            })
            .collect();
        self.param(v, [rows, cols])
    }

    /// A `[rows, cols]` matrix (or a vector when `rows` is 0) with i.i.d. U(−b, b) entries.
    pub fn uniform_matrix(&mut self, rows: usize, cols: usize, b: f64) -> Param<Tensor<2>> {
        let v = (0..rows * cols).map(|_| self.uniform(b)).collect();
        self.param(v, [rows, cols])
    }

    /// A vector of `n` i.i.d. U(−b, b) entries.
    pub fn uniform_vector(&mut self, n: usize, b: f64) -> Param<Tensor<1>> {
        let v = (0..n).map(|_| self.uniform(b)).collect();
        self.param(v, [n])
    }

    fn uniform(&mut self, b: f64) -> f64 {
        let u: f64 = rand::RngExt::random(&mut self.rng);
        b * (2.0 * u - 1.0)
    }

    /// A vector of `n` copies of `value`.
    pub fn constant(&mut self, n: usize, value: f64) -> Param<Tensor<1>> {
        self.param(vec![value; n], [n])
    }
}

/// Hidden-layer activation of an [`Mlp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// max(0, x), as in GMS (7.5).
    Relu,
    /// tanh, as in the Reinforced-GAN networks.
    Tanh,
}

/// A fully connected network `in → hidden… → out` with biases.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The affine layers; the activation acts between them, not after the last.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Glorot-normal weights (std √(2/(fan_in+fan_out))), zero biases; the output layer's weights
    /// are scaled by `out_gain` so that a fresh network starts near zero.
    pub fn new(init: &mut Init, sizes: &[usize], out_gain: f64) -> Mlp {
        let n = sizes.len() - 1;
        let layers = (0..n)
            .map(|i| {
                let (fi, fo) = (sizes[i], sizes[i + 1]);
                let gain = if i + 1 == n { out_gain } else { 1.0 };
                let std = gain * (2.0 / (fi + fo) as f64).sqrt();
                Linear {
                    weight: init.normal(fi, fo, std),
                    bias: Some(init.constant(fo, 0.0)),
                }
            })
            .collect();
        Mlp { layers }
    }

    /// PyTorch's default initialisation: weights and biases U(±1/√fan_in).
    pub fn torch_default(init: &mut Init, sizes: &[usize]) -> Mlp {
        let layers = sizes
            .windows(2)
            .map(|w| {
                let b = 1.0 / (w[0] as f64).sqrt();
                Linear {
                    weight: init.uniform_matrix(w[0], w[1], b),
                    bias: Some(init.uniform_vector(w[1], b)),
                }
            })
            .collect();
        Mlp { layers }
    }

    /// Applies the network to `[batch, in]` inputs.
    pub fn forward(&self, mut x: Tensor<2>, act: Activation) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = match act {
                    Activation::Relu => relu(x),
                    // One autodiff operation whose backward reuses the output (super::tanh).
                    Activation::Tanh => super::tanh::tanh(x),
                };
            }
        }
        x
    }
}
