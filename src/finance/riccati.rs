//! The Herdegen–Muhle-Karbe–Possamaï Riccati benchmark for quadratic costs with endogenous
//! volatility (GMS Example 6.1, spec gms-fbsde §3), and the exact backward recursion of its
//! N-step Euler discretisation (§4.4), against which a trained deep solver is compared.
//!
//! The six coefficients A…F are integrated in τ = T − t with per-component scaling
//! (C/λ, D/φ₀, λE), so that every unknown is of order one. Deep solvers live elsewhere.

use super::calibration::Frictionless;
use super::ode::{OdeOptions, dopri5};
use super::{FinanceError, Result, check_positive};

/// The parameters of Example 6.1 with quadratic costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiccatiParams {
    /// The frictionless economy (σ is the Bachelier volatility a, s the supply, γ¹, γ²).
    pub fr: Frictionless,
    /// Quadratic cost level λ (G = λx²/2).
    pub lambda: f64,
    /// Endowment loading β = β¹ = −β².
    pub beta: f64,
    /// Horizon T (days).
    pub horizon: f64,
    /// Frictionless initial price S̄₀.
    pub s_bar0: f64,
}

impl RiccatiParams {
    /// The paper's calibration: a = 1.88, γ̄ = 8.31e-14, κ = 1/2, s = 2.46e11, λ = 1.08e-10,
    /// β = 2.19e10, T = 20, S̄₀ = 64.11.
    pub fn paper() -> Self {
        RiccatiParams {
            fr: Frictionless::paper(),
            lambda: 1.08e-10,
            beta: 2.19e10,
            horizon: 20.0,
            s_bar0: 64.11,
        }
    }

    fn validate(&self) -> Result<()> {
        check_positive("lambda", self.lambda)?;
        check_positive("horizon", self.horizon)?;
        if !self.beta.is_finite() {
            return Err(FinanceError::InvalidParameter {
                name: "beta",
                requirement: "be finite",
                value: self.beta,
            });
        }
        Ok(())
    }

    fn c1(&self) -> f64 {
        0.5 * (self.fr.gamma1 - self.fr.gamma2)
    }

    fn c2(&self) -> f64 {
        0.5 * (self.fr.gamma1 + self.fr.gamma2)
    }
}

/// The continuous-time solution on a grid of times t.
#[derive(Debug, Clone, PartialEq)]
pub struct RiccatiSolution {
    /// Times t (days).
    pub t: Vec<f64>,
    /// Volatility correction σ_t − a = B(T − t).
    pub vol_correction: Vec<f64>,
    /// Mean price correction E[S_t − S̄_t] = A(T − t) + C(T − t) φ₀.
    pub mean_price_correction: Vec<f64>,
    /// ΔS₀ = S₀ − S̄₀.
    pub delta_s0: f64,
    /// σ₀ − a.
    pub sigma0_minus_a: f64,
}

impl RiccatiSolution {
    /// Initial volatility increase in % of a.
    pub fn vol_increase_pct(&self, a: f64) -> f64 {
        vol_increase_pct(self.sigma0_minus_a, a)
    }

    /// Liquidity premium −ΔS₀/T in % per year of `price` (`days` trading days a year).
    pub fn liquidity_premium_pct(&self, horizon: f64, days: f64, price: f64) -> f64 {
        liquidity_premium_pct(self.delta_s0, horizon, days, price)
    }
}

/// Initial volatility increase (σ₀ − a)/a in %.
pub fn vol_increase_pct(sigma0_minus_a: f64, a: f64) -> f64 {
    100.0 * sigma0_minus_a / a
}

/// Liquidity premium −ΔS₀/T in % per year of `price` (`days` trading days a year, spec §6).
pub fn liquidity_premium_pct(delta_s0: f64, horizon: f64, days: f64, price: f64) -> f64 {
    -delta_s0 / horizon * days / price * 100.0
}

/// Solves the six Riccati equations on [0, T] and reports them at the times `t` (ascending,
/// within [0, T]).
pub fn solve(p: &RiccatiParams, t: &[f64]) -> Result<RiccatiSolution> {
    p.validate()?;
    if t.iter().any(|&x| !(0.0..=p.horizon).contains(&x)) {
        return Err(FinanceError::InvalidConfig(format!(
            "output times must lie in [0, {}]",
            p.horizon
        )));
    }
    let (a, s, g2, gbar) = (p.fr.sigma, p.fr.s, p.fr.gamma2, p.fr.gamma_bar);
    let (c1, c2, lam, beta, phi0) = (p.c1(), p.c2(), p.lambda, p.beta, p.fr.phi1_0);
    // y = (A, B, C/λ, D/φ₀, λE, F) as functions of τ.
    let rhs = |_tau: f64, y: &[f64], dy: &mut [f64]| {
        let sigma = a + y[1];
        let s2 = sigma * sigma;
        let (c, d, e, f) = (lam * y[2], phi0 * y[3], y[4] / lam, y[5]);
        dy[0] = gbar * s * a * a - 0.5 * g2 * s * s2 + c * d;
        dy[1] = -c1 * beta * sigma + c * e;
        dy[2] = (-c1 * s2 + c * f) / lam;
        dy[3] = (0.5 * g2 * s / lam * s2 + d * f) / phi0;
        dy[4] = lam * (-(c2 * beta / lam) * sigma + e * f);
        dy[5] = -(c2 / lam) * s2 + f * f;
    };
    let mut taus: Vec<f64> = t.iter().map(|&x| p.horizon - x).collect();
    taus.push(p.horizon);
    let mut sorted = taus.clone();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let opts = OdeOptions {
        rtol: 1e-12,
        atol: 1e-15,
        ..OdeOptions::default()
    };
    let mut grid = sorted.clone();
    if grid[0] > 0.0 {
        grid.insert(0, 0.0);
    }
    let sol = dopri5(rhs, 0.0, &[0.0; 6], &grid[1..], &opts)?;
    let at = |tau: f64| -> [f64; 6] {
        if tau == 0.0 {
            return [0.0; 6];
        }
        let i = sol
            .t
            .iter()
            .position(|&x| x == tau)
            .unwrap_or(sol.t.len() - 1);
        let y = &sol.y[i];
        [y[0], y[1], y[2], y[3], y[4], y[5]]
    };
    let price = |y: [f64; 6]| y[0] + lam * y[2] * phi0;
    let end = at(p.horizon);
    Ok(RiccatiSolution {
        t: t.to_vec(),
        vol_correction: t.iter().map(|&x| at(p.horizon - x)[1]).collect(),
        mean_price_correction: t.iter().map(|&x| price(at(p.horizon - x))).collect(),
        delta_s0: price(end),
        sigma0_minus_a: end[1],
    })
}

/// The exact solution of the N-step Euler scheme (spec §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscreteSolution {
    /// σ_n, n = 0..N−1 (σ_n = b_{n+1}).
    pub sigma: Vec<f64>,
    /// S₀ = α₀ + k₀ φ₀.
    pub s0: f64,
    /// ΔS₀ = S₀ − S̄₀.
    pub delta_s0: f64,
    /// Z₀ = λ e₁.
    pub z0: f64,
    /// Z_n = λ e_{n+1}, n = 0..N−1 (deterministic controls of the scheme).
    pub z: Vec<f64>,
    /// Rate coefficients (d_n, e_n, f_n), n = 0..N−1: φ̇_n = d_n + e_n W_n + f_n φ_n.
    pub rate_coef: Vec<[f64; 3]>,
    /// Price coefficients (α_n, b_n, k_n), n = 0..N: S_n = α_n + b_n W_n + k_n φ_n.
    pub price_coef: Vec<[f64; 3]>,
    /// Step size Δt.
    pub dt: f64,
    /// φ₀ (agent 1's initial holding).
    pub phi0: f64,
    /// Frictionless price parameters: S̄_n = terminal + aW_n − μ̄(T − t_n), as (terminal, a, μ̄, T).
    pub frictionless: [f64; 4],
}

impl DiscreteSolution {
    /// The price correction S_n − S̄_n, n = 0..N, along one Brownian path W_0..W_N of the scheme.
    pub fn price_correction_path(&self, w: &[f64]) -> Vec<f64> {
        let [terminal, a, mu_bar, horizon] = self.frictionless;
        let mut phi = self.phi0;
        (0..self.price_coef.len())
            .map(|n| {
                let [al, b, k] = self.price_coef[n];
                let s = al + b * w[n] + k * phi;
                let s_bar = terminal + a * w[n] - mu_bar * (horizon - n as f64 * self.dt);
                if let Some([d, e, f]) = self.rate_coef.get(n) {
                    phi += (d + e * w[n] + f * phi) * self.dt;
                }
                s - s_bar
            })
            .collect()
    }
}

/// Backward recursion of the discrete scheme with `n` steps.
pub fn discrete(p: &RiccatiParams, n: usize) -> Result<DiscreteSolution> {
    p.validate()?;
    if n < 2 {
        return Err(FinanceError::InvalidConfig(format!(
            "need at least 2 time steps, got {n}"
        )));
    }
    let (a, s, g2, gbar, lam, beta, phi0) = (
        p.fr.sigma,
        p.fr.s,
        p.fr.gamma2,
        p.fr.gamma_bar,
        p.lambda,
        p.beta,
        p.fr.phi1_0,
    );
    let (c1, c2) = (p.c1(), p.c2());
    let dt = p.horizon / n as f64;
    // Bachelier drift b chosen so that the frictionless price starts at S̄₀.
    let b_drift = p.s_bar0 / p.horizon + gbar * s * a * a;
    let (mut d, mut e, mut f) = (0.0, 0.0, 0.0);
    let (mut alpha, mut b, mut k) = (b_drift * p.horizon, a, 0.0);
    let mut sigma = vec![0.0; n];
    let mut z = vec![0.0; n];
    let mut rate_coef = vec![[0.0; 3]; n];
    let mut price_coef = vec![[0.0; 3]; n + 1];
    price_coef[n] = [alpha, b, k];
    let mut e1 = 0.0;
    for i in (0..n).rev() {
        let sig = b;
        sigma[i] = sig;
        z[i] = lam * e;
        let rho = 1.0 - f * dt;
        let dn = (d + g2 * s * sig * sig * dt / (2.0 * lam)) / rho;
        let en = (e - c2 * sig * beta * dt / lam) / rho;
        let fnew = (f - c2 * sig * sig * dt / lam) / rho;
        if i == 0 {
            e1 = e;
        }
        let alpha_n = alpha + k * dn * dt - 0.5 * g2 * s * sig * sig * dt;
        let b_n = b + k * en * dt - c1 * beta * sig * dt;
        let k_n = k * (1.0 + fnew * dt) - c1 * sig * sig * dt;
        (d, e, f, alpha, b, k) = (dn, en, fnew, alpha_n, b_n, k_n);
        rate_coef[i] = [d, e, f];
        price_coef[i] = [alpha, b, k];
    }
    let s0 = alpha + k * phi0;
    Ok(DiscreteSolution {
        sigma,
        s0,
        delta_s0: s0 - p.s_bar0,
        z0: lam * e1,
        z,
        rate_coef,
        price_coef,
        dt,
        phi0,
        frictionless: [b_drift * p.horizon, a, gbar * s * a * a, p.horizon],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a / b - 1.0).abs()
    }

    #[test]
    fn continuous_benchmark_matches_the_spec() {
        let p = RiccatiParams::paper();
        let sol = solve(&p, &[0.0, 5.0, 10.0, 15.0, 19.5]).unwrap();
        assert!(rel(sol.delta_s0, -0.0297870754) < 1e-6, "{}", sol.delta_s0);
        assert!(
            rel(sol.sigma0_minus_a, 0.0301896957) < 1e-7,
            "{}",
            sol.sigma0_minus_a
        );
        assert!(rel(sol.vol_increase_pct(1.88), 1.60583488) < 1e-6);
        assert!(rel(sol.liquidity_premium_pct(20.0, 252.0, 124.11), 0.302406857) < 1e-6);
        for (got, want) in sol.vol_correction[1..]
            .iter()
            .zip([0.02721512, 0.02155903, 0.01225196, 0.00128281])
        {
            // The spec prints 8 decimals: agree to half a unit of the last one.
            assert!((got - want).abs() < 5e-9, "{got} vs {want}");
        }
        for (got, want) in
            sol.mean_price_correction[1..4]
                .iter()
                .zip([-0.01860512, -0.00906428, -0.00241554])
        {
            // The spec prints 8 decimals: agree to half a unit of the last one.
            assert!((got - want).abs() < 5e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn discrete_scheme_matches_the_checkpoint_and_converges() {
        let p = RiccatiParams::paper();
        let d40 = discrete(&p, 40).unwrap();
        assert!(rel(d40.delta_s0, -0.0292045198) < 1e-8, "{}", d40.delta_s0);
        assert!(
            rel(d40.s0 / 1.88, 34.0855295107) < 1e-10,
            "{}",
            d40.s0 / 1.88
        );
        assert!(rel(d40.z0, -0.0899500259) < 1e-8, "{}", d40.z0);
        assert_eq!(d40.sigma[39], 1.88, "σ_39 = a exactly");
        for (n, want) in [(80, -0.02949451), (320, -0.02971369), (1280, -0.02976871)] {
            let d = discrete(&p, n).unwrap();
            assert!(
                rel(d.delta_s0, want) < 1e-6,
                "N={n}: {} vs {want}",
                d.delta_s0
            );
        }
        assert!(discrete(&p, 1).is_err());
        assert!(solve(&RiccatiParams { horizon: -1.0, ..p }, &[0.0]).is_err());
    }
}
