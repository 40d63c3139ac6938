//! The N-agent quadratic-cost equilibrium of the Reinforced-GAN paper (spec rgan §1.6): the
//! Riccati system for (H, F) in τ = T − t, the deterministic volatility σ_t = c(T − t), the
//! linear-feedback trading rates, the drift identity μ = (1/N)Σγₙσ(σφⁿ + ξₙW), and the
//! Monte-Carlo initial price with the path-wise shift that makes S_T = 𝔖 hold exactly.
//!
//! Units are the paper's normalised ones (α = 1, β = 2, s = 1, λ = 1e-2); nothing here knows
//! about networks (the R-GAN solver lives in `deep`).

use super::ode::{OdeOptions, dopri5};
use super::stats::Welford;
use super::{FinanceError, Result};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The N-agent economy (spec rgan §1.1, §5).
#[derive(Debug, Clone, PartialEq)]
pub struct Economy {
    /// Risk aversions γₙ.
    pub gamma: Vec<f64>,
    /// Endowment loadings ξₙ (ξⁿ_t = ξₙ W_t).
    pub xi: Vec<f64>,
    /// Terminal payoff volatility α (𝔖 = βT + αW_T).
    pub alpha: f64,
    /// Terminal payoff drift β.
    pub beta: f64,
    /// Supply s.
    pub s: f64,
    /// Cost level λ.
    pub lambda: f64,
    /// Cost elasticity q ∈ (1, 2].
    pub q: f64,
    /// Horizon T.
    pub horizon: f64,
}

impl Economy {
    /// Case A of spec rgan §5: 10 agents, quadratic costs, T = 0.2.
    pub fn case_a() -> Economy {
        Economy {
            gamma: (0..10).map(|i| 1.0 + 0.1 * i as f64).collect(),
            xi: [
                -2.89, -1.49, -1.18, 1.40, 1.91, 2.70, -2.22, -3.15, 2.63, 2.29,
            ]
            .iter()
            .map(|x| -10.0 * x)
            .collect(),
            alpha: 1.0,
            beta: 2.0,
            s: 1.0,
            lambda: 1e-2,
            q: 2.0,
            horizon: 0.2,
        }
    }

    /// Number of agents N.
    pub fn agents(&self) -> usize {
        self.gamma.len()
    }

    /// Aggregate risk aversion γ̄ = (Σ 1/γₙ)⁻¹.
    pub fn gamma_bar(&self) -> f64 {
        1.0 / self.gamma.iter().map(|g| 1.0 / g).sum::<f64>()
    }

    /// Frictionless drift μ̄ = γ̄α²s.
    pub fn mu_bar(&self) -> f64 {
        self.gamma_bar() * self.alpha * self.alpha * self.s
    }

    /// Initial holdings φⁿ₀ = sγ̄/γₙ.
    pub fn phi0(&self) -> Vec<f64> {
        let gb = self.gamma_bar();
        self.gamma.iter().map(|g| self.s * gb / g).collect()
    }

    /// Frictionless initial price S̄₀ = (β − μ̄)T.
    pub fn s_bar0(&self) -> f64 {
        (self.beta - self.mu_bar()) * self.horizon
    }

    /// Checks N ≥ 2, positive γ, λ, α, s, T, q ∈ (1, 2], matching lengths and, when
    /// `zero_sum`, Σξ = 0.
    pub fn validate(&self, zero_sum: bool) -> Result<()> {
        let bad = |m: String| Err(FinanceError::InvalidConfig(m));
        let n = self.agents();
        if n < 2 {
            return bad(format!("need at least 2 agents, got {n}"));
        }
        if self.xi.len() != n {
            return bad(format!(
                "{} risk aversions but {} endowment loadings ξ",
                n,
                self.xi.len()
            ));
        }
        if let Some(g) = self.gamma.iter().find(|g| !(g.is_finite() && **g > 0.0)) {
            return bad(format!("risk aversions γ must be > 0, got {g}"));
        }
        for (name, v) in [
            ("lambda", self.lambda),
            ("alpha", self.alpha),
            ("s", self.s),
            ("horizon", self.horizon),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be a finite number > 0, got {v}"));
            }
        }
        if !(self.q > 1.0 && self.q <= 2.0) {
            return bad(format!("q must lie in (1, 2], got {}", self.q));
        }
        let sum: f64 = self.xi.iter().sum();
        let scale: f64 = self.xi.iter().map(|x| x.abs()).sum::<f64>().max(1.0);
        if zero_sum && sum.abs() > 1e-12 * scale {
            return bad(format!(
                "the endowment loadings must sum to zero (Σξ = {sum}); aggregate shocks are not modelled"
            ));
        }
        Ok(())
    }
}

/// The Riccati solution on a time grid.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Grid t_k = kT/K, k = 0..=K.
    pub t: Vec<f64>,
    /// σ(t_k) = c(T − t_k).
    pub sigma: Vec<f64>,
    /// H_n(T − t_k), n < N, per k.
    pub h: Vec<Vec<f64>>,
    /// F_{nm}(T − t_k), row-major (N−1)², per k.
    pub f: Vec<Vec<f64>>,
}

/// Solves the (H, F) Riccati system (quadratic costs; the agent with the largest γ must come
/// last) on the grid of `steps` intervals.
pub fn ground_truth(e: &Economy, steps: usize) -> Result<GroundTruth> {
    e.validate(true)?;
    if e.q != 2.0 {
        return Err(FinanceError::InvalidConfig(format!(
            "the N-agent ground truth needs quadratic costs (q = 2), got q = {}",
            e.q
        )));
    }
    let n = e.agents();
    let last = e.gamma[n - 1];
    if e.gamma.iter().any(|&g| g > last) {
        return Err(FinanceError::InvalidConfig(
            "order the agents so that the last has the largest risk aversion".into(),
        ));
    }
    if steps < 1 {
        return Err(FinanceError::InvalidConfig(
            "need at least one time step".into(),
        ));
    }
    let m = n - 1;
    let gb = e.gamma_bar();
    let nf = n as f64;
    // coef[n][m] = γ_m(N·1{n=m} − 1) + γ_N
    let coef = |i: usize, j: usize| e.gamma[j] * (if i == j { nf - 1.0 } else { -1.0 }) + last;
    let c_of = |h: &[f64]| {
        e.alpha
            + gb * (0..m)
                .map(|j| (1.0 / e.gamma[j] - 1.0 / last) * h[j])
                .sum::<f64>()
    };
    let rhs = |_: f64, y: &[f64], dy: &mut [f64]| {
        let (h, f) = y.split_at(m);
        let c = c_of(h);
        for i in 0..m {
            let forcing: f64 = (0..m).map(|j| coef(i, j) * e.xi[j]).sum();
            let fh: f64 = (0..m).map(|k| f[i * m + k] * h[k]).sum();
            dy[i] = c / nf * forcing - fh / e.lambda;
            for j in 0..m {
                let ff: f64 = (0..m).map(|k| f[i * m + k] * f[k * m + j]).sum();
                dy[m + i * m + j] = c * c / nf * coef(i, j) - ff / e.lambda;
            }
        }
    };
    let dt = e.horizon / steps as f64;
    // τ from 0 to T; τ_j = jΔt corresponds to t = T − τ_j.
    let taus: Vec<f64> = (0..=steps).map(|j| j as f64 * dt).collect();
    let opts = OdeOptions {
        rtol: 1e-11,
        atol: 1e-13,
        ..OdeOptions::default()
    };
    let sol = dopri5(rhs, 0.0, &vec![0.0; m + m * m], &taus[1..], &opts)?;
    let mut states = vec![vec![0.0; m + m * m]];
    states.extend(sol.y);
    // index k (time t_k) ↔ τ index steps − k
    let at = |k: usize| &states[steps - k];
    Ok(GroundTruth {
        t: (0..=steps).map(|k| k as f64 * dt).collect(),
        sigma: (0..=steps).map(|k| c_of(&at(k)[..m])).collect(),
        h: (0..=steps).map(|k| at(k)[..m].to_vec()).collect(),
        f: (0..=steps).map(|k| at(k)[m..].to_vec()).collect(),
    })
}

/// Monte-Carlo statistics of the ground truth along simulated paths.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthPaths {
    /// Mean of the shifted initial prices S₀.
    pub s0: f64,
    /// Standard error of that mean.
    pub s0_se: f64,
    /// μ_k on path 0, k = 0..K−1.
    pub mu_path: Vec<f64>,
    /// Trading rates φ̇ⁿ_k on path 0, `[k][n]`.
    pub rate_path: Vec<Vec<f64>>,
    /// Mean over paths and steps of ((1/N)Σₙφ̇ⁿ)².
    pub clearing: f64,
}

/// Simulates `paths` Euler paths of the ground truth (K steps of the grid of `g`), shifting each
/// price path so that S_K = βT + αW_K.
pub fn simulate_truth(e: &Economy, g: &GroundTruth, paths: usize, seed: u64) -> TruthPaths {
    let n = e.agents();
    let m = n - 1;
    let k_steps = g.t.len() - 1;
    let dt = e.horizon / k_steps as f64;
    let gb = e.gamma_bar();
    let phi0 = e.phi0();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s0s = Welford::default();
    let mut clear = 0.0;
    let mut mu_path = Vec::new();
    let mut rate_path = Vec::new();
    for p in 0..paths {
        let mut phi = phi0.clone();
        let mut w = 0.0;
        let mut gain = 0.0; // Σ μΔt + σΔW
        for k in 0..k_steps {
            let sigma = g.sigma[k];
            let mu: f64 = (0..n)
                .map(|i| e.gamma[i] * sigma * (sigma * phi[i] + e.xi[i] * w))
                .sum::<f64>()
                / n as f64;
            let mut rates = vec![0.0; n];
            for (i, rate) in rates.iter_mut().enumerate().take(m) {
                let fx: f64 = (0..m)
                    .map(|j| g.f[k][i * m + j] * (phi[j] - e.s * gb / e.gamma[j]))
                    .sum();
                *rate = -(fx + g.h[k][i] * w) / e.lambda;
            }
            rates[m] = -rates[..m].iter().sum::<f64>();
            let mean_rate = rates.iter().sum::<f64>() / n as f64;
            clear += mean_rate * mean_rate;
            if p == 0 {
                mu_path.push(mu);
                rate_path.push(rates.clone());
            }
            let z: f64 = StandardNormal.sample(&mut rng);
            let dw = dt.sqrt() * z;
            gain += mu * dt + sigma * dw;
            for i in 0..n {
                phi[i] += rates[i] * dt;
            }
            w += dw;
        }
        let s0 = e.beta * e.horizon + e.alpha * w - gain;
        s0s.push(s0);
    }
    TruthPaths {
        s0: s0s.mean,
        s0_se: s0s.sd() / (s0s.n as f64).sqrt(),
        mu_path,
        rate_path,
        clearing: clear / (paths as f64 * k_steps as f64),
    }
}

/// The GMS leading-order equilibrium for two agents and power costs (spec rgan §1.6): constant
/// σ, the state-dependent drift and trading rate, the price offset as the authors coded it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadingOrder {
    /// Constant volatility σ.
    pub sigma: f64,
    /// S₀ as in the authors' code: (β − α)T + 1.976·γ̄γ̂γ̃^{3/7}α^{8/7}sλ^{4/7}T (spec §1.6 caveat).
    pub s0: f64,
    /// μ₀ = γ̄sσ².
    pub mu0: f64,
    /// Rate scale (qγ₁ξ⁴/(8λα²))^{1/(q+2)}.
    pub rate_scale: f64,
    /// State scale: x = state_scale · Δφ¹.
    pub state_scale: f64,
}

/// The leading-order benchmark; `g_prime0` is g̃'(0) = −c_q of the normalised ODE (B.2).
pub fn leading_order(e: &Economy, g_prime0: f64) -> Result<LeadingOrder> {
    e.validate(true)?;
    if e.agents() != 2 {
        return Err(FinanceError::InvalidConfig(format!(
            "the leading-order benchmark is for 2 agents, got {}",
            e.agents()
        )));
    }
    let (g1, g2, q, a, lam) = (e.gamma[0], e.gamma[1], e.q, e.alpha, e.lambda);
    let xi = e.xi[0];
    let gt = 0.5 * (g1 + g2);
    let sigma = a
        + (g1 - g2) / (g1 + g2)
            * (lam / (2f64.powf(q - 1.0) * q)).powf(2.0 / (q + 2.0))
            * (gt * a * a).powf(q / (q + 2.0))
            * (a / xi).abs().powf((4.0 - 2.0 * q) / (q + 2.0))
            * g_prime0
            * xi.abs()
            / a;
    let gb = e.gamma_bar();
    let g_hat = (g1 - g2).abs() / (g1 + g2);
    let s0 = (e.beta - a) * e.horizon
        + 1.976
            * gb
            * g_hat
            * gt.powf(3.0 / 7.0)
            * a.powf(8.0 / 7.0)
            * e.s
            * lam.powf(4.0 / 7.0)
            * e.horizon;
    Ok(LeadingOrder {
        sigma,
        s0,
        mu0: gb * e.s * sigma * sigma,
        rate_scale: (q * g1 * xi.powi(4) / (8.0 * lam * a * a)).powf(1.0 / (q + 2.0)),
        state_scale: 2f64.powf((q - 1.0) / (q + 2.0))
            * (q * g1 * a * a / lam).powf(1.0 / (q + 2.0))
            * (a / xi).abs().powf(2.0 * q / (q + 2.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_a_ground_truth_matches_the_spec() {
        // spec rgan §1.6 / §6 A: σ₀ = 1.2454, S₀ = 0.3611, μ₀ = 0.2158, clearing 0.
        let e = Economy::case_a();
        let g = ground_truth(&e, 100).unwrap();
        assert!((g.sigma[0] - 1.2454).abs() < 5e-5, "σ₀ = {}", g.sigma[0]);
        assert!((g.sigma[100] - 1.0).abs() < 1e-12, "σ_T = α");
        let sim = simulate_truth(&e, &g, 3000, 0);
        assert!(
            (sim.mu_path[0] - 0.2158).abs() < 5e-5,
            "μ₀ = {}",
            sim.mu_path[0]
        );
        assert!(
            (sim.s0 - 0.3611).abs() < 2e-3,
            "S₀ = {} ± {}",
            sim.s0,
            sim.s0_se
        );
        assert!(sim.clearing < 1e-25, "clearing {}", sim.clearing);
    }

    #[test]
    fn case_b_leading_order_matches_the_spec() {
        // spec rgan §6 B, "Leading order": σ₀ = 1.072, μ₀ = 0.766, S₀ = 0.415.
        let e = Economy {
            gamma: vec![1.0, 2.0],
            xi: vec![3.0, -3.0],
            q: 1.5,
            horizon: 0.4,
            ..Economy::case_a()
        };
        let lo = leading_order(&e, -1.7711332).unwrap();
        assert!((lo.sigma - 1.072).abs() < 5e-4, "σ = {}", lo.sigma);
        assert!((lo.mu0 - 0.766).abs() < 5e-4, "μ₀ = {}", lo.mu0);
        assert!((lo.s0 - 0.415).abs() < 5e-4, "S₀ = {}", lo.s0);
    }

    #[test]
    fn rejects_bad_economies() {
        let mut e = Economy::case_a();
        e.xi[0] += 1.0;
        assert!(e.validate(true).is_err());
        let mut e = Economy::case_a();
        e.gamma.truncate(1);
        e.xi.truncate(1);
        assert!(e.validate(false).is_err());
        let e = Economy {
            q: 2.5,
            ..Economy::case_a()
        };
        assert!(e.validate(false).is_err());
    }
}
