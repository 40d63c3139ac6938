//! The N-agent quadratic-cost equilibrium of the Reinforced-GAN paper (spec rgan §1.6): the
//! Riccati system for (H, F) in τ = T − t, the deterministic volatility σ_t = c(T − t), the
//! linear-feedback trading rates, the drift identity μ = (1/N)Σγₙσ(σφⁿ + ξₙW), and the
//! Monte-Carlo initial price with the path-wise shift that makes S_T = 𝔖 hold exactly.
//!
//! Units are the paper's normalised ones (α = 1, β = 2, s = 1, λ = 1e-2); nothing here knows
//! about networks (the R-GAN solver lives in `deep`).

use super::ode::{OdeOptions, dopri5};
use super::stats::{mean, standard_error};
use super::{FinanceError, Result};

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

    /// Case B: 2 agents, q = 3/2, T = 0.4, γ = (1, 2), ξ = (3, −3).
    pub fn case_b() -> Economy {
        Economy {
            gamma: vec![1.0, 2.0],
            xi: vec![3.0, -3.0],
            q: 1.5,
            horizon: 0.4,
            ..Economy::case_a()
        }
    }

    /// Case C: case A's agents with q = 3/2.
    pub fn case_c() -> Economy {
        Economy {
            q: 1.5,
            ..Economy::case_a()
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

/// Which time each Euler step k of the ground truth reads the Riccati solution at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigmaGrid {
    /// σ_k = c(T − t_k) (and F, H at t_k): σ₀ = c(T), the step's left end (Euler-consistent).
    #[default]
    Aligned,
    /// σ_k = c(T − t_{k+1}) (and F, H at t_{k+1}): one step late, as the authors' code indexes
    /// it; σ₀ = c(T − Δt), and the last step has σ = α and no trading.
    Lagged,
}

impl SigmaGrid {
    /// Parses `aligned` or `lagged`.
    pub fn parse(s: &str) -> Option<SigmaGrid> {
        match s {
            "aligned" => Some(SigmaGrid::Aligned),
            "lagged" => Some(SigmaGrid::Lagged),
            _ => None,
        }
    }
}

/// Solves the (H, F) Riccati system (quadratic costs; the agent with the largest γ must come
/// last) on the grid of `steps` intervals, σ_k aligned with t_k.
pub fn ground_truth(e: &Economy, steps: usize) -> Result<GroundTruth> {
    ground_truth_on(e, steps, SigmaGrid::Aligned)
}

/// [`ground_truth`] with the time grid of σ, F and H chosen by `grid` (the last entry, k = K,
/// is c(0) = α on both grids).
pub fn ground_truth_on(e: &Economy, steps: usize, grid: SigmaGrid) -> Result<GroundTruth> {
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
    // index k (time t_k) ↔ τ index steps − k; lagged: t_{k+1}
    let lag = usize::from(grid == SigmaGrid::Lagged);
    let at = |k: usize| &states[steps - (k + lag).min(steps)];
    Ok(GroundTruth {
        t: (0..=steps).map(|k| k as f64 * dt).collect(),
        sigma: (0..=steps).map(|k| c_of(&at(k)[..m])).collect(),
        h: (0..=steps).map(|k| at(k)[..m].to_vec()).collect(),
        f: (0..=steps).map(|k| at(k)[m..].to_vec()).collect(),
    })
}

/// The exact liquidity discount S̄₀ − E S₀ of the Euler-discretised ground truth on its grid:
/// γ̄s Σₖ(σₖ² − α²)Δt. (E φⁿ_k = φ̄ⁿ₀ because the feedback is linear in φ − φ̄₀ and W, and
/// E W = 0, so E μ_k = γ̄sσₖ²; E Σσₖ ΔW_k = 0; hence E S₀ = βT − γ̄sΣσₖ²Δt.)
pub fn exact_discount(e: &Economy, g: &GroundTruth) -> f64 {
    sigma_discount(e, &g.sigma[..g.t.len() - 1])
}

/// The discount γ̄s Σₖ(σₖ² − α²)Δt that volatilities `sigma` (σ_k, k = 0..K−1, on the Euler grid
/// Δt = T/K) imply when E μ_k = γ̄sσ_k²: the truth's [`exact_discount`], or what a learned σ
/// alone implies.
pub fn sigma_discount(e: &Economy, sigma: &[f64]) -> f64 {
    let dt = e.horizon / sigma.len().max(1) as f64;
    let a2 = e.alpha * e.alpha;
    e.gamma_bar() * e.s * sigma.iter().map(|s| (s * s - a2) * dt).sum::<f64>()
}

/// The continuous-time discount γ̄s∫₀ᵀ(σ_t² − α²)dt (Simpson's rule on `steps`, even, intervals
/// of the Riccati σ): the limit of [`exact_discount`] as K → ∞.
pub fn continuous_discount(e: &Economy, steps: usize) -> Result<f64> {
    let steps = steps + steps % 2;
    let g = ground_truth(e, steps)?;
    let h = e.horizon / steps as f64;
    let a2 = e.alpha * e.alpha;
    let f = |k: usize| g.sigma[k] * g.sigma[k] - a2;
    let inner: f64 = (1..steps)
        .map(|k| if k % 2 == 1 { 4.0 } else { 2.0 } * f(k))
        .sum();
    Ok(e.gamma_bar() * e.s * h / 3.0 * (f(0) + inner + f(steps)))
}

/// The paper's table columns for one solution (spec rgan §6), on a set of test paths.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// ΣJ: −(1/N)Σₙ E[(1/K²)Σₖℓⁿ] with ℓ = −μφ + (γ/2)(σφ + ξW)² + (λ/2)|φ̇|^q (spec §6).
    pub utility: f64,
    /// Standard error of ΣJ.
    pub utility_se: f64,
    /// Clearing error: mean over paths and steps of ((1/N)Σₙφ̇ⁿ)².
    pub clear: f64,
    /// Standard error of the clearing error (over paths).
    pub clear_se: f64,
    /// Terminal error mean (S_K − βT − αW_K)².
    pub term: f64,
    /// Standard error of the terminal error.
    pub term_se: f64,
    /// S₀.
    pub s0: f64,
    /// E μ₀.
    pub mu0: f64,
    /// σ₀.
    pub sigma0: f64,
}

impl Metrics {
    /// The columns from per-path values: utility, clearing error and terminal error.
    pub fn from_paths(utility: &[f64], clear: &[f64], terminal_error: &[f64]) -> Metrics {
        let sq: Vec<f64> = terminal_error.iter().map(|x| x * x).collect();
        Metrics {
            utility: mean(utility),
            utility_se: standard_error(utility),
            clear: mean(clear),
            clear_se: standard_error(clear),
            term: mean(&sq),
            term_se: standard_error(&sq),
            ..Metrics::default()
        }
    }
}

/// What a policy sees at step k of one path.
pub struct State<'a> {
    /// Step index k.
    pub k: usize,
    /// W_{t_k}.
    pub w: f64,
    /// ΔW_k = W_{t_{k+1}} − W_{t_k}.
    pub dw: f64,
    /// Holdings φⁿ_{t_k}.
    pub phi: &'a [f64],
}

/// A simulated benchmark: the table columns and the paths that the figures show.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// The table columns.
    pub metrics: Metrics,
    /// Standard error of the mean of the shifted starting prices (the path-wise S₀ estimates
    /// βT + αW_T − Σμ_kΔt − Σσ_kΔW_k): S₀'s standard error when S₀ is that mean.
    pub s0_se: f64,
    /// Mean of the shifted starting prices (= S₀ when S₀ is not given).
    pub start_mean: f64,
    /// σ_k, k = 0..K−1 (on path 0).
    pub sigma: Vec<f64>,
    /// E μ_k over the paths.
    pub mean_mu: Vec<f64>,
    /// μ_k on path 0.
    pub mu_path: Vec<f64>,
    /// Trading rates on path 0, `[k][n]`.
    pub rate_path: Vec<Vec<f64>>,
}

/// Simulates a market given by `policy` (which returns (σ_k, μ_k) and writes the N trading
/// rates) on the Brownian increments `dw` (`[paths × steps]`, row-major). Each path's price is
/// shifted so that S_K = βT + αW_K; S₀ is `s0` when given (the terminal error is then its
/// distance to the shifted start) or else the mean of the shifted starts (spec rgan §1.6).
pub fn simulate(
    e: &Economy,
    steps: usize,
    dw: &[f64],
    s0: Option<f64>,
    mut policy: impl FnMut(&State, &mut [f64]) -> (f64, f64),
) -> Simulation {
    let n = e.agents();
    let paths = dw.len() / steps;
    let dt = e.horizon / steps as f64;
    let kf = steps as f64;
    let phi0 = e.phi0();
    let mut starts = Vec::with_capacity(paths);
    let (mut utility, mut clear) = (Vec::with_capacity(paths), Vec::with_capacity(paths));
    let mut mean_mu = vec![0.0; steps];
    let (mut sigma, mut mu_path, mut rate_path) = (Vec::new(), Vec::new(), Vec::new());
    let mut rates = vec![0.0; n];
    for (p, incr) in dw.chunks_exact(steps).enumerate() {
        let mut phi = phi0.clone();
        let (mut w, mut gain, mut loss, mut cl) = (0.0, 0.0, 0.0, 0.0);
        for (k, &d) in incr.iter().enumerate() {
            let state = State {
                k,
                w,
                dw: d,
                phi: &phi,
            };
            let (sig, mu) = policy(&state, &mut rates);
            for i in 0..n {
                let expo = sig * phi[i] + e.xi[i] * w;
                loss += -mu * phi[i]
                    + 0.5 * e.gamma[i] * expo * expo
                    + 0.5 * e.lambda * rates[i].abs().powf(e.q);
            }
            let mean_rate = rates.iter().sum::<f64>() / n as f64;
            cl += mean_rate * mean_rate;
            mean_mu[k] += mu / paths as f64;
            if p == 0 {
                sigma.push(sig);
                mu_path.push(mu);
                rate_path.push(rates.clone());
            }
            gain += mu * dt + sig * d;
            for i in 0..n {
                phi[i] += rates[i] * dt;
            }
            w += d;
        }
        starts.push(e.beta * e.horizon + e.alpha * w - gain);
        utility.push(-loss / (n as f64 * kf * kf));
        clear.push(cl / kf);
    }
    let start_mean = mean(&starts);
    let s0 = s0.unwrap_or(start_mean);
    let terminal: Vec<f64> = starts.iter().map(|x| s0 - x).collect();
    let metrics = Metrics {
        s0,
        mu0: mean_mu.first().copied().unwrap_or(f64::NAN),
        sigma0: sigma.first().copied().unwrap_or(f64::NAN),
        ..Metrics::from_paths(&utility, &clear, &terminal)
    };
    Simulation {
        metrics,
        s0_se: standard_error(&starts),
        start_mean,
        sigma,
        mean_mu,
        mu_path,
        rate_path,
    }
}

/// Simulates the ground truth (its K steps on the grid of `g`) with S₀ the mean of the shifted
/// starts.
pub fn simulate_truth(e: &Economy, g: &GroundTruth, dw: &[f64]) -> Simulation {
    let n = e.agents();
    let m = n - 1;
    let gb = e.gamma_bar();
    simulate(e, g.t.len() - 1, dw, None, |st, rates| {
        let (k, w, phi) = (st.k, st.w, st.phi);
        let sigma = g.sigma[k];
        for (i, rate) in rates.iter_mut().enumerate().take(m) {
            let fx: f64 = (0..m)
                .map(|j| g.f[k][i * m + j] * (phi[j] - e.s * gb / e.gamma[j]))
                .sum();
            *rate = -(fx + g.h[k][i] * w) / e.lambda;
        }
        rates[m] = -rates[..m].iter().sum::<f64>();
        (sigma, drift_identity(e, sigma, w, phi))
    })
}

/// The drift identity μ = (1/N)Σₙγₙσ(σφⁿ + ξₙW) (spec rgan §1.5).
pub fn drift_identity(e: &Economy, sigma: f64, w: f64, phi: &[f64]) -> f64 {
    (0..e.agents())
        .map(|i| e.gamma[i] * sigma * (sigma * phi[i] + e.xi[i] * w))
        .sum::<f64>()
        / e.agents() as f64
}

/// Simulates the frictionless benchmark (λ = 0, spec rgan §1.4): σ = α, μ = μ̄, holdings
/// φ̄ⁿ = sγ̄/γₙ − (ξₙ/α)W, i.e. discrete rates −(ξₙ/α)ΔW_k/Δt; S₀ = (β − α)T as the authors
/// coded it (spec §1.6 caveat).
pub fn simulate_frictionless(e: &Economy, steps: usize, dw: &[f64]) -> Simulation {
    let dt = e.horizon / steps as f64;
    let s0 = (e.beta - e.alpha) * e.horizon;
    simulate(e, steps, dw, Some(s0), |st, rates| {
        for (r, xi) in rates.iter_mut().zip(&e.xi) {
            *r = -xi / e.alpha * st.dw / dt;
        }
        (e.alpha, e.mu_bar())
    })
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

/// Simulates the leading-order equilibrium (spec rgan §1.6) for two agents: constant σ, the
/// drift with W at the step's right end (as the authors coded it), agent 1's rate
/// −sign(Δφ¹)·scale·|g(x)|^{1/(q−1)} with x = state_scale·Δφ¹, agent 2 the opposite; `g` is
/// the boundary-value solution g'' − g'|g/q|^{1/(q−1)} = 2x (the normalised g̃ of (B.2)).
pub fn simulate_leading_order(
    e: &Economy,
    lo: &LeadingOrder,
    g: impl Fn(f64) -> f64,
    steps: usize,
    dw: &[f64],
) -> Simulation {
    let (g1, g2, a, sig) = (e.gamma[0], e.gamma[1], e.alpha, lo.sigma);
    let xi = e.xi[0];
    let phi_bar0 = e.phi0()[0];
    let exponent = 1.0 / (e.q - 1.0);
    simulate(e, steps, dw, Some(lo.s0), |st, rates| {
        let dphi = st.phi[0] - (phi_bar0 - xi / a * st.w);
        let x = lo.state_scale * dphi;
        rates[0] = -dphi.signum() * lo.rate_scale * g(x).abs().powf(exponent);
        rates[1] = -rates[0];
        let mu = e.gamma_bar() * e.s * sig * sig
            + 0.5 * (g1 - g2) * sig * sig * dphi
            + 0.5 * xi * (sig / a) * (g1 - g2) * (a - sig) * (st.w + st.dw);
        (sig, mu)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finance::power::NormalisedPower;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn test_increments(paths: usize, steps: usize, horizon: f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let sd = (horizon / steps as f64).sqrt();
        (0..paths * steps)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                sd * z
            })
            .collect::<Vec<f64>>()
    }

    #[test]
    fn case_a_ground_truth_matches_the_spec() {
        // spec rgan §1.6 / §6 A: σ₀ = 1.2454, S₀ = 0.3611, μ₀ = 0.2158, clearing 0.
        let e = Economy::case_a();
        let g = ground_truth(&e, 100).unwrap();
        assert!((g.sigma[0] - 1.2454).abs() < 5e-5, "σ₀ = {}", g.sigma[0]);
        assert!((g.sigma[100] - 1.0).abs() < 1e-12, "σ_T = α");
        let sim = simulate_truth(&e, &g, &test_increments(3000, 100, e.horizon));
        let m = sim.metrics;
        assert!((m.mu0 - 0.2158).abs() < 5e-5, "μ₀ = {}", m.mu0);
        assert!(
            (m.s0 - 0.3611).abs() < 2e-3,
            "S₀ = {} ± {}",
            m.s0,
            sim.s0_se
        );
        // ΣJ = −0.2082 ± 3.3e-3 in the authors' table.
        assert!((m.utility + 0.2082).abs() < 0.01, "ΣJ = {}", m.utility);
        assert!(m.clear < 1e-25, "clearing {}", m.clear);
    }

    #[test]
    fn the_exact_discount_is_the_monte_carlo_one_and_the_lagged_grid_moves_s0_up() {
        let e = Economy::case_a();
        let dw = test_increments(3000, 100, e.horizon);
        let g = ground_truth(&e, 100).unwrap();
        let sim = simulate_truth(&e, &g, &dw);
        let exact = exact_discount(&e, &g);
        // The Monte-Carlo discount S̄₀ − S₀ agrees with the exact one within 3 standard errors.
        let mc = e.s_bar0() - sim.metrics.s0;
        assert!(
            (mc - exact).abs() < 3.0 * sim.s0_se,
            "MC {mc} ± {} vs exact {exact}",
            sim.s0_se
        );
        // Case A: S̄₀ = 0.37216, discount ≈ 0.0110 (S₀ = 0.3611 aligned).
        assert!((e.s_bar0() - exact - 0.3611).abs() < 1e-4, "{exact}");
        // The lagged grid: σ₀ = c(T − Δt), S₀ 0.3612 (one step of (σ₀² − α²)γ̄sΔt ≈ 1.5e-4 less
        // discount).
        let l = ground_truth_on(&e, 100, SigmaGrid::Lagged).unwrap();
        assert_eq!(l.sigma[0], g.sigma[1]);
        assert_eq!(l.sigma[99], 1.0);
        assert_eq!(l.sigma[100], 1.0);
        let lagged = exact_discount(&e, &l);
        let shift = e.gamma_bar() * e.s * (g.sigma[0].powi(2) - 1.0) * e.horizon / 100.0;
        assert!(((exact - lagged) - shift).abs() < 1e-15);
        assert!((e.s_bar0() - lagged - 0.3612).abs() < 1e-4, "{lagged}");
        let lsim = simulate_truth(&e, &l, &dw);
        assert!(
            (lsim.metrics.s0 - 0.3612).abs() < 2e-3,
            "{}",
            lsim.metrics.s0
        );
        assert!(lsim.metrics.clear < 1e-25);
        // The continuum limit lies between the two Euler grids (σ decreases in t).
        let limit = continuous_discount(&e, 4000).unwrap();
        assert!(lagged < limit && limit < exact, "{lagged} {limit} {exact}");
    }

    #[test]
    fn case_b_leading_order_matches_the_spec() {
        // spec rgan §6 B, "Leading order": σ₀ = 1.072, μ₀ = 0.766, S₀ = 0.415, ΣJ = −8.94e-4,
        // clearing 0 to rounding, terminal 7.47e-3 (the S₀ offset of the authors' code).
        let e = Economy::case_b();
        let np = NormalisedPower::solve(e.q).unwrap();
        let lo = leading_order(&e, -np.c).unwrap();
        assert!((lo.sigma - 1.072).abs() < 5e-4, "σ = {}", lo.sigma);
        assert!((lo.mu0 - 0.766).abs() < 5e-4, "μ₀ = {}", lo.mu0);
        assert!((lo.s0 - 0.415).abs() < 5e-4, "S₀ = {}", lo.s0);
        let dw = test_increments(3000, 100, e.horizon);
        let sim = simulate_leading_order(&e, &lo, |x| np.g_tilde(x), 100, &dw);
        let m = sim.metrics;
        assert!((m.utility + 8.94e-4).abs() < 1.5e-4, "ΣJ = {:e}", m.utility);
        assert!(m.clear < 1e-25, "clearing {:e}", m.clear);
        assert!((m.term - 7.47e-3).abs() < 1e-3, "terminal {:e}", m.term);
    }

    #[test]
    fn the_normalised_ode_solves_the_leading_order_boundary_value_problem() {
        // g'' − g'|g/q|^{1/(q−1)} = 2x on (0, 50], g(0) = 0, g'(0) = −c_q, and g(50) on the
        // asymptote −q(q−1)^{(1−q)/q}x^{2(q−1)/q} (spec rgan §1.6).
        let q = 1.5;
        let np = NormalisedPower::solve(q).unwrap();
        let g = |x: f64| np.g_tilde(x);
        assert!(g(0.0).abs() < 1e-9);
        let h = 1e-3;
        for x in [0.25, 0.5, 1.0, 2.0, 4.0, 8.0] {
            let d1 = (g(x + h) - g(x - h)) / (2.0 * h);
            let d2 = (g(x + h) - 2.0 * g(x) + g(x - h)) / (h * h);
            let residual = d2 - d1 * (g(x) / q).abs().powf(1.0 / (q - 1.0)) - 2.0 * x;
            assert!(
                residual.abs() < 1e-3 * (1.0 + 2.0 * x),
                "x = {x}: residual {residual:e}"
            );
        }
        let asym = |x: f64| -q * (q - 1.0).powf((1.0 - q) / q) * x.powf(2.0 * (q - 1.0) / q);
        assert!((g(50.0) / asym(50.0) - 1.0).abs() < 1e-3);
        // On the grid's edge the solution has already joined its asymptote.
        assert!(
            (g(11.9) / asym(11.9) - 1.0).abs() < 1e-2,
            "{} vs {}",
            g(11.9),
            asym(11.9)
        );
    }

    #[test]
    fn case_c_frictionless_row_matches_the_spec() {
        // spec rgan §6 C, "Frictionless": ΣJ = −0.480, clearing 2.3e-9 (rounding), terminal
        // 2.91e-2, σ₀ = 1, μ₀ = 0.139.
        let e = Economy::case_c();
        let sim = simulate_frictionless(&e, 100, &test_increments(3000, 100, e.horizon));
        let m = sim.metrics;
        assert!((m.utility + 0.480).abs() < 0.02, "ΣJ = {}", m.utility);
        assert!(m.clear < 1e-20, "clearing {:e}", m.clear);
        assert!((m.term - 2.91e-2).abs() < 1e-3, "terminal {:e}", m.term);
        assert!(m.sigma0 == 1.0 && (m.mu0 - e.mu_bar()).abs() < 1e-12);
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
