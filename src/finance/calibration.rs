//! Frictionless calibration (spec §2, §5.1–5.2): risk aversions from `γ̄` (or from `μ̄`) and the
//! ratio `κ = γ¹/γ²`, the frictionless drift, the initial allocations and the liquidity-premium
//! loading, plus the back-out of `(ShTu, λ_p)` from a published quadratic pair (spec §6).
//!
//! Cost-level matching (turnover, variance) lives in `turnover`.

use super::{Result, check_positive};

/// Default ratio of risk aversions `κ = γ¹/γ²` (the code's `kappa`).
pub const DEFAULT_KAPPA: f64 = 0.5;

/// The frictionless economy: inputs and derived quantities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frictionless {
    /// Absolute daily volatility σ (\$/(share·√day)).
    pub sigma: f64,
    /// Shares outstanding s.
    pub s: f64,
    /// Ratio of risk aversions κ = γ¹/γ².
    pub kappa: f64,
    /// Aggregate risk aversion γ̄ = γ¹γ²/(γ¹+γ²).
    pub gamma_bar: f64,
    /// Risk aversion of agent 1, γ̄(κ+1).
    pub gamma1: f64,
    /// Risk aversion of agent 2, γ̄(κ+1)/κ.
    pub gamma2: f64,
    /// Frictionless drift μ̄ = γ̄ s σ² (\$/share/day).
    pub mu_bar: f64,
    /// Agent 1's initial (frictionless) holding γ² s/(γ¹+γ²).
    pub phi1_0: f64,
    /// Agent 2's initial holding γ¹ s/(γ¹+γ²).
    pub phi2_0: f64,
    /// Premium loading (γ¹−γ²)σ²/2: μ_t − μ̄ = loading · X_t.
    pub premium_loading: f64,
}

impl Frictionless {
    /// Calibrates from σ, s, the aggregate risk aversion γ̄ and κ = γ¹/γ².
    pub fn from_gamma_bar(sigma: f64, s: f64, gamma_bar: f64, kappa: f64) -> Result<Self> {
        check_positive("sigma", sigma)?;
        check_positive("s", s)?;
        check_positive("gamma_bar", gamma_bar)?;
        check_positive("kappa", kappa)?;
        let gamma1 = gamma_bar * (kappa + 1.0);
        let gamma2 = gamma_bar * (kappa + 1.0) / kappa;
        let sum = gamma1 + gamma2;
        Ok(Self {
            sigma,
            s,
            kappa,
            gamma_bar,
            gamma1,
            gamma2,
            mu_bar: gamma_bar * s * sigma * sigma,
            phi1_0: gamma2 * s / sum,
            phi2_0: gamma1 * s / sum,
            premium_loading: 0.5 * (gamma1 - gamma2) * sigma * sigma,
        })
    }

    /// Calibrates from σ, s, the target drift μ̄ (γ̄ = μ̄/(s σ²)) and κ.
    pub fn from_mu_bar(sigma: f64, s: f64, mu_bar: f64, kappa: f64) -> Result<Self> {
        check_positive("sigma", sigma)?;
        check_positive("s", s)?;
        check_positive("mu_bar", mu_bar)?;
        Self::from_gamma_bar(sigma, s, mu_bar / (s * sigma * sigma), kappa)
    }

    /// The paper's calibration: σ = 1.88, s = 2.46e11, γ̄ = 8.31e-14, κ = 0.5.
    pub fn paper() -> Self {
        Self {
            sigma: 1.88,
            s: 2.46e11,
            kappa: 0.5,
            gamma_bar: 8.31e-14,
            gamma1: 8.31e-14 * 1.5,
            gamma2: 8.31e-14 * 3.0,
            mu_bar: 8.31e-14 * 2.46e11 * 1.88 * 1.88,
            phi1_0: 2.0 / 3.0 * 2.46e11,
            phi2_0: 1.0 / 3.0 * 2.46e11,
            premium_loading: 0.5 * (8.31e-14 * 1.5 - 8.31e-14 * 3.0) * 1.88 * 1.88,
        }
    }

    /// γ¹ + γ².
    pub fn gamma_sum(&self) -> f64 {
        self.gamma1 + self.gamma2
    }

    /// γ̃ = (γ¹ + γ²)/2 (the code's `gam`).
    pub fn gamma_tilde(&self) -> f64 {
        0.5 * self.gamma_sum()
    }
}

/// Turnover and proportional cost backed out of a published quadratic pair (spec §6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackOut {
    /// Average daily share turnover ShTu (shares/day, one side).
    pub shtu: f64,
    /// Proportional cost λ_p (\$/share).
    pub lambda_p: f64,
}

/// Backs out `(ShTu, λ_p)` from the quadratic pair `(λ₂, β₂)`:
/// `ShTu = β₂/(√(πσ)(2λ₂/(γ¹+γ²))^{1/4})`, `λ_p = π ShTu λ₂/2`.
pub fn back_out_from_quadratic(lambda2: f64, beta2: f64, fr: &Frictionless) -> Result<BackOut> {
    check_positive("lambda2", lambda2)?;
    check_positive("beta2", beta2)?;
    let pi = std::f64::consts::PI;
    let shtu = beta2 / ((pi * fr.sigma).sqrt() * (2.0 * lambda2 / fr.gamma_sum()).powf(0.25));
    Ok(BackOut {
        shtu,
        lambda_p: pi * shtu * lambda2 / 2.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    #[test]
    fn paper_calibration() {
        let fr = Frictionless::from_gamma_bar(1.88, 2.46e11, 8.31e-14, 0.5).unwrap();
        assert!(rel(fr.mu_bar, 0.07225232544) < 1e-10, "{}", fr.mu_bar);
        assert!(rel(fr.gamma1, 1.2465e-13) < 1e-14);
        assert!(rel(fr.gamma2, 2.493e-13) < 1e-14);
        assert!(rel(fr.phi1_0, 1.64e11) < 1e-14);
        assert!(rel(fr.phi1_0 + fr.phi2_0, fr.s) < 1e-15);
        assert!(rel(fr.premium_loading, -2.2028e-13) < 1e-4);
        let p = Frictionless::paper();
        for (a, b) in [
            (p.mu_bar, fr.mu_bar),
            (p.gamma1, fr.gamma1),
            (p.gamma2, fr.gamma2),
            (p.phi1_0, fr.phi1_0),
            (p.premium_loading, fr.premium_loading),
        ] {
            assert!(rel(a, b) < 1e-14);
        }
        let g = Frictionless::from_mu_bar(1.88, 2.46e11, fr.mu_bar, 0.5).unwrap();
        assert!(rel(g.gamma_bar, 8.31e-14) < 1e-14);
    }

    #[test]
    fn back_out_of_published_quadratic_pair() {
        let fr = Frictionless::paper();
        let b = back_out_from_quadratic(1.08e-10, 2.19e10, &fr).unwrap();
        assert!(rel(b.shtu, 1_838_146_833.6) < 1e-10, "{}", b.shtu);
        assert!(rel(b.lambda_p, 0.311834263795) < 1e-10, "{}", b.lambda_p);
    }

    #[test]
    fn bad_inputs_are_rejected() {
        assert!(Frictionless::from_gamma_bar(1.88, 2.46e11, 8.31e-14, 0.0).is_err());
        assert!(Frictionless::from_gamma_bar(1.88, 2.46e11, 8.31e-14, -1.0).is_err());
        assert!(Frictionless::from_gamma_bar(0.0, 2.46e11, 8.31e-14, 0.5).is_err());
        assert!(Frictionless::from_mu_bar(1.88, 2.46e11, f64::NAN, 0.5).is_err());
        let fr = Frictionless::paper();
        assert!(back_out_from_quadratic(-1.0, 2.19e10, &fr).is_err());
        let e = Frictionless::from_gamma_bar(1.88, 2.46e11, 8.31e-14, 0.0).unwrap_err();
        assert_eq!(e.to_string(), "kappa must be finite and > 0, got 0");
    }
}
