//! The GMS deep BSDE solvers (spec gms-fbsde §4), Han–Jentzen–E style: trainable initial values,
//! one small network per time step giving the controls from the forward state, an explicit Euler
//! rollout of the coupled system and the squared (clipped) terminal residual as the loss.
//!
//! * **Exogenous volatility** (Figure 4, §4.3): state X = φ¹ − φ̄¹ and marginal cost Y,
//!   dX = (G')⁻¹(Y)dt + ϑdW, dY = ZdW + γ̃σ²X dt, Y_T = 0; the network gives Z.
//! * **Endogenous volatility** (Figures 5–6, §4.2): holdings φ, Y, and the price, written as the
//!   price correction D = S − S̄ (so D_T = 0 replaces S_T = 𝔖 and D₀ = ΔS₀ starts at 0, the
//!   "faster initialisation" of spec §9; the Euler scheme is algebraically the authors').
//!   The networks give Z and σ/a − 1.
//!
//! Deliberate differences from the authors' TensorFlow code, documented in the README: the
//! per-step networks are plain MLPs with biases (no batch-statistics batch norm, so a path's
//! controls do not depend on the rest of its batch) on inputs scaled by fixed constants, and the
//! Z- and σ-networks of a time step share one MLP with two outputs.

use super::nets::{Activation, Init, Mlp};
use super::train::{Hooks, Schedule, TrainLog, train};
use super::{DeepError, Result, brownian_increments, derive_seed, host, stream};
use crate::finance::calibration::Frictionless;
use burn::module::{Module, Param};
use burn::prelude::{Device, Tensor};
use burn::tensor::TensorData;
use rand::rngs::ChaCha8Rng;

/// Which FBSDE the solver rolls out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Constant volatility σ = a: (6.14)–(6.15), loss E|Y_T|².
    Exogenous,
    /// Equilibrium volatility: (6.11)–(6.13), loss E|Y_T|² + E|S_T − 𝔖|².
    Endogenous,
}

impl Variant {
    /// Parses `exogenous` / `endogenous`.
    pub fn parse(s: &str) -> Option<Variant> {
        match s {
            "exogenous" => Some(Variant::Exogenous),
            "endogenous" => Some(Variant::Endogenous),
            _ => None,
        }
    }
}

/// The economy and its discretisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BsdeProblem {
    /// Which system.
    pub variant: Variant,
    /// The frictionless calibration (σ = a, s, γ¹, γ², γ̄).
    pub fr: Frictionless,
    /// Cost elasticity q ∈ (1, 2].
    pub q: f64,
    /// Cost level λ.
    pub lambda: f64,
    /// Endowment loading β (ζ¹ = −ζ² = βW).
    pub beta: f64,
    /// Horizon T (days).
    pub horizon: f64,
    /// Number of Euler steps N.
    pub steps: usize,
    /// Clip level of the terminal residuals (and of Y before the rate when q < 2).
    pub clip: f64,
}

impl BsdeProblem {
    /// Checks the ranges (q ∈ (1, 2], N ≥ 2, positive levels and horizon).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DeepError::InvalidConfig(m));
        if !(self.q > 1.0 && self.q <= 2.0) {
            return bad(format!("q must lie in (1, 2], got {}", self.q));
        }
        if self.steps < 2 {
            return bad(format!("need N ≥ 2 time steps, got {}", self.steps));
        }
        for (name, v) in [
            ("lambda", self.lambda),
            ("beta", self.beta),
            ("horizon", self.horizon),
            ("clip", self.clip),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be a finite number > 0, got {v}"));
            }
        }
        Ok(())
    }

    /// Step size Δt = T/N.
    pub fn dt(&self) -> f64 {
        self.horizon / self.steps as f64
    }

    /// Volatility of the state, ϑ = β/σ.
    pub fn theta(&self) -> f64 {
        self.beta / self.fr.sigma
    }

    /// Number of per-step controls (Z; or Z and σ/a − 1).
    fn outputs(&self) -> usize {
        match self.variant {
            Variant::Exogenous => 1,
            Variant::Endogenous => 2,
        }
    }

    /// Number of network inputs (the state; plus W when the endowment enters the price).
    fn inputs(&self) -> usize {
        match self.variant {
            Variant::Exogenous => 1,
            Variant::Endogenous => 2,
        }
    }

    /// The trading rate (G')⁻¹(y) = sign(y)(|y|/λ)^{1/(q−1)}, as a tensor op.
    fn rate(&self, y: Tensor<2>) -> Tensor<2> {
        if self.q == 2.0 {
            y.div_scalar(self.lambda)
        } else {
            let p = 1.0 / (self.q - 1.0);
            y.clone().sign() * y.abs().div_scalar(self.lambda).powf_scalar(p)
        }
    }
}

/// The trainable model: initial values and one MLP per time step t₁ … t_{N−1}.
#[derive(Module, Debug)]
pub struct BsdeModel {
    /// Y₀ (marginal cost at t = 0).
    pub y0: Param<Tensor<1>>,
    /// Z₀.
    pub z0: Param<Tensor<1>>,
    /// ΔS₀ = S₀ − S̄₀ (endogenous only).
    pub d0: Param<Tensor<1>>,
    /// σ₀/a − 1 (endogenous only).
    pub v0: Param<Tensor<1>>,
    /// The per-step networks.
    pub nets: Vec<Mlp>,
}

/// Network shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetShape {
    /// Hidden width.
    pub width: usize,
    /// Number of hidden layers.
    pub hidden: usize,
}

impl BsdeModel {
    /// A fresh model with parameters drawn from `seed`.
    pub fn new(p: &BsdeProblem, shape: NetShape, seed: u64, device: &Device) -> BsdeModel {
        let mut init = Init::new(seed, device);
        let mut sizes = vec![p.inputs()];
        sizes.extend(std::iter::repeat_n(shape.width, shape.hidden));
        sizes.push(p.outputs());
        BsdeModel {
            y0: init.constant(1, 0.0),
            z0: init.constant(1, 0.0),
            d0: init.constant(1, 0.0),
            v0: init.constant(1, 0.0),
            nets: (1..p.steps)
                .map(|_| Mlp::new(&mut init, &sizes, 0.1))
                .collect(),
        }
    }

    /// The trained scalars (Y₀, Z₀, ΔS₀, σ₀ − a).
    pub fn initial_values(&self, p: &BsdeProblem) -> InitialValues {
        let get = |t: &Param<Tensor<1>>| -> f64 { t.val().into_scalar() };
        InitialValues {
            y0: get(&self.y0),
            z0: get(&self.z0),
            delta_s0: get(&self.d0),
            sigma0_minus_a: p.fr.sigma * get(&self.v0),
        }
    }
}

/// Trained initial values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InitialValues {
    /// Y₀.
    pub y0: f64,
    /// Z₀.
    pub z0: f64,
    /// ΔS₀ = S₀ − S̄₀ (0 for exogenous volatility).
    pub delta_s0: f64,
    /// σ₀ − a (0 for exogenous volatility).
    pub sigma0_minus_a: f64,
}

/// Brownian increments for `batch` paths: `[batch, N]`, N(0, Δt) entries, row-major.
pub fn increments(rng: &mut ChaCha8Rng, batch: usize, p: &BsdeProblem) -> Vec<f64> {
    brownian_increments(rng, batch, p.steps, p.dt())
}

/// Per-step states of a rollout on the host, `[n][path]`, n = 0..=N.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Paths {
    /// Brownian motion W_n.
    pub w: Vec<Vec<f64>>,
    /// State: X_n = φ¹ − φ̄¹ (exogenous) or φ_n − φ₀ (endogenous), in shares.
    pub x: Vec<Vec<f64>>,
    /// Marginal cost Y_n.
    pub y: Vec<Vec<f64>>,
    /// Price correction S_n − S̄_n (endogenous; zeros otherwise).
    pub d: Vec<Vec<f64>>,
    /// Volatility σ_n (n < N; the last entry repeats σ_{N−1}).
    pub sigma: Vec<Vec<f64>>,
}

/// Rolls the Euler scheme forward on the increments `dw` (`[batch, N]`); returns the loss and,
/// when `record` is set, the paths.
pub fn rollout(
    model: &BsdeModel,
    p: &BsdeProblem,
    dw: &[f64],
    record: bool,
) -> (Tensor<1>, Option<Paths>) {
    let device = model.y0.val().device();
    let n = p.steps;
    let batch = dw.len() / n;
    let dt = p.dt();
    let (a, s) = (p.fr.sigma, p.fr.s);
    let (c1, c2) = (
        0.5 * (p.fr.gamma1 - p.fr.gamma2),
        0.5 * (p.fr.gamma1 + p.fr.gamma2),
    );
    let theta = p.theta();
    let x_norm = 1.0 / (theta * p.horizon.sqrt());
    let w_norm = 1.0 / p.horizon.sqrt();
    let dw_all = Tensor::<2>::from_data(TensorData::new(dw.to_vec(), [batch, n]), &device);
    let zeros = || Tensor::<2>::zeros([batch, 1], &device);
    let scalar = |v: &Param<Tensor<1>>| zeros() + v.val().unsqueeze::<2>();
    let endogenous = p.variant == Variant::Endogenous;

    // X is carried in shares / s to keep magnitudes near 1.
    let mut xs = zeros();
    let mut w = zeros();
    let mut y = scalar(&model.y0);
    let mut z = scalar(&model.z0);
    let mut d = scalar(&model.d0);
    let mut v = scalar(&model.v0);
    let mut paths = record.then(Paths::default);
    for k in 0..n {
        let dwk = dw_all.clone().narrow(1, k, 1);
        let x_sh = xs.clone().mul_scalar(s);
        let (dy, dd) = if endogenous {
            let sigma = v.clone().add_scalar(1.0).mul_scalar(a);
            // σX + βW, the endowment-adjusted exposure
            let expo = sigma.clone() * x_sh.clone() + w.clone().mul_scalar(p.beta);
            let dy = z.clone() * dwk.clone() + (sigma.clone() * expo.clone()).mul_scalar(c2 * dt);
            let excess_var = sigma.clone().powf_scalar(2.0).sub_scalar(a * a);
            let dd = sigma.clone().sub_scalar(a) * dwk.clone()
                + (excess_var.mul_scalar(p.fr.gamma_bar * s)
                    + (sigma.clone() * expo).mul_scalar(c1))
                .mul_scalar(dt);
            if let Some(pp) = paths.as_mut() {
                pp.sigma.push(host(sigma));
            }
            (dy, Some(dd))
        } else {
            let dy = z.clone() * dwk.clone() + x_sh.clone().mul_scalar(c2 * a * a * dt);
            if let Some(pp) = paths.as_mut() {
                pp.sigma.push(vec![a; batch]);
            }
            (dy, None)
        };
        if let Some(pp) = paths.as_mut() {
            pp.w.push(host(w.clone()));
            pp.x.push(host(x_sh));
            pp.y.push(host(y.clone()));
            pp.d.push(if endogenous {
                host(d.clone())
            } else {
                vec![0.0; batch]
            });
        }
        // For q < 2, Y is clipped before the rate and carried on clipped (spec §4.2 step 3).
        let y_used = if p.q < 2.0 {
            y.clamp(-p.clip, p.clip)
        } else {
            y
        };
        let mut dx = p.rate(y_used.clone()).mul_scalar(dt / s);
        if !endogenous {
            dx = dx + dwk.clone().mul_scalar(theta / s);
        }
        xs = xs + dx;
        y = y_used + dy;
        if let Some(dd) = dd {
            d = d + dd;
        }
        w = w + dwk;
        if k + 1 < n {
            let u1 = xs.clone().mul_scalar(s * x_norm);
            let input = if endogenous {
                Tensor::cat(vec![u1, w.clone().mul_scalar(w_norm)], 1)
            } else {
                u1
            };
            let out = model.nets[k].forward(input, Activation::Relu);
            z = out.clone().narrow(1, 0, 1);
            if endogenous {
                v = out.narrow(1, 1, 1);
            }
        }
    }
    let mut residual = y.clone().clamp(-p.clip, p.clip).powf_scalar(2.0);
    if endogenous {
        residual = residual + d.clone().clamp(-p.clip, p.clip).powf_scalar(2.0);
    }
    if let Some(pp) = paths.as_mut() {
        pp.w.push(host(w));
        pp.x.push(host(xs.mul_scalar(s)));
        pp.y.push(host(y));
        pp.d.push(if endogenous {
            host(d)
        } else {
            vec![0.0; batch]
        });
        let last = pp.sigma.last().cloned().unwrap_or_default();
        pp.sigma.push(last);
    }
    (residual.mean(), paths)
}

/// Training settings besides the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSettings {
    /// Network shape.
    pub shape: NetShape,
    /// Paths per Adam step (fresh each step).
    pub batch: usize,
    /// Size of the fixed validation batch.
    pub valid_batch: usize,
    /// Adam schedule.
    pub schedule: Schedule,
}

/// A trained solver: the model, its loss history and its initial values.
pub struct Trained {
    /// The model (autodiff stripped).
    pub model: BsdeModel,
    /// Loss history.
    pub log: TrainLog,
    /// Trained initial values.
    pub initial: InitialValues,
}

/// Trains a fresh model for problem `p` on `device`, deterministically under `seed`.
pub fn train_bsde(
    p: &BsdeProblem,
    settings: &TrainSettings,
    seed: u64,
    hooks: &Hooks,
    device: &Device,
) -> Result<Trained> {
    p.validate()?;
    if settings.batch < 2 || settings.valid_batch < 2 || settings.shape.width == 0 {
        return Err(DeepError::InvalidConfig(
            "batch and valid_batch must be ≥ 2 and width ≥ 1".into(),
        ));
    }
    let model = BsdeModel::new(p, settings.shape, derive_seed(seed, 0), device);
    let mut batches = stream(seed, 1);
    let valid_dw = increments(&mut stream(seed, 2), settings.valid_batch, p);
    let (model, log) = train(
        model,
        &settings.schedule,
        hooks,
        |m, _| {
            let dw = increments(&mut batches, settings.batch, p);
            rollout(m, p, &dw, false).0
        },
        Some(&mut |m: &BsdeModel| -> f64 {
            rollout(&m.valid(), p, &valid_dw, false).0.into_scalar()
        }),
    )?;
    let model = model.valid();
    let initial = model.initial_values(p);
    Ok(Trained {
        model,
        log,
        initial,
    })
}

/// Evaluates a model on `paths` fresh test paths drawn from `seed`: the loss and the paths.
pub fn evaluate(model: &BsdeModel, p: &BsdeProblem, paths: usize, seed: u64) -> (f64, Paths) {
    let dw = increments(&mut stream(seed, 3), paths, p);
    let (loss, recorded) = rollout(model, p, &dw, true);
    (loss.into_scalar(), recorded.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(q: f64) -> BsdeProblem {
        BsdeProblem {
            variant: Variant::Endogenous,
            fr: Frictionless::paper(),
            q,
            lambda: 1.08e-10,
            beta: 2.19e10,
            horizon: 20.0,
            steps: 40,
            clip: 500.0,
        }
    }

    #[test]
    fn rejects_bad_problems() {
        assert!(problem(2.5).validate().is_err());
        assert!(problem(1.0).validate().is_err());
        assert!(
            BsdeProblem {
                steps: 1,
                ..problem(2.0)
            }
            .validate()
            .is_err()
        );
        assert!(
            BsdeProblem {
                horizon: 0.0,
                ..problem(2.0)
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn rollout_of_the_exact_discrete_controls_has_zero_loss() {
        // For q = 2 the exact discrete solution has deterministic σ_n and Z_n (spec §4.4):
        // a model whose networks output exactly those constants must end with Y_N = D_N = 0.
        use crate::finance::riccati::{RiccatiParams, discrete};
        let p = problem(2.0);
        let device = crate::deep::device::test_device();
        let rp = RiccatiParams {
            fr: p.fr,
            lambda: p.lambda,
            beta: p.beta,
            horizon: p.horizon,
            s_bar0: 64.11,
        };
        let c = discrete(&rp, p.steps).unwrap();
        let shape = NetShape {
            width: 3,
            hidden: 1,
        };
        let mut init = Init::new(1, &device);
        let mut m = BsdeModel::new(&p, shape, 1, &device);
        m.y0 = init.constant(1, 0.0);
        m.z0 = init.constant(1, c.z[0]);
        m.d0 = init.constant(1, c.delta_s0);
        m.v0 = init.constant(1, c.sigma[0] / p.fr.sigma - 1.0);
        for (k, net) in m.nets.iter_mut().enumerate() {
            // zero weights, biases = the constants of step k + 1
            let last = net.layers.len() - 1;
            for (i, l) in net.layers.iter_mut().enumerate() {
                let [fi, fo] = l.weight.val().dims();
                l.weight = init.normal(fi, fo, 0.0);
                l.bias = Some(if i == last {
                    let z = c.z[k + 1];
                    let v = c.sigma[k + 1] / p.fr.sigma - 1.0;
                    let b = Tensor::<1>::from_data(TensorData::new(vec![z, v], [2]), &device);
                    Param::from_tensor(b)
                } else {
                    init.constant(fo, 0.0)
                });
            }
        }
        let dw = increments(&mut stream(3, 0), 64, &p);
        let (loss, paths) = rollout(&m, &p, &dw, true);
        let loss: f64 = loss.into_scalar();
        assert!(
            loss < 1e-20,
            "terminal loss of the exact controls: {loss:e}"
        );
        let paths = paths.unwrap();
        assert!((paths.d[0][0] - -0.0292045198).abs() < 1e-9);
        // the scheme's price corrections equal the recursion's along every path
        let exact = c.price_correction_path(&paths.w.iter().map(|w| w[5]).collect::<Vec<_>>());
        for (n, e) in exact.iter().enumerate() {
            assert!(
                (paths.d[n][5] - e).abs() < 1e-10,
                "n = {n}: {} vs {e}",
                paths.d[n][5]
            );
        }
    }
}
