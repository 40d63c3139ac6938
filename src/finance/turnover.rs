//! Turnover and variance matching of cost levels (spec §4, §5.3–5.4, (B.6)–(B.8)).
//!
//! `match_*` functions take the proportional cost `λ_p` and the target turnover ShTu and return
//! the calibrated model (cost level λ, endowment loading β, δ = β/σ, stationary sd of X and the
//! expected turnover, which equals ShTu by construction). `*_from_pair` functions evaluate a
//! model for a given (λ, β), e.g. the published pairs. The ODE solutions themselves live in
//! `power` and `general`.

use super::calibration::Frictionless;
use super::power::{NormalisedPower, rescaling};
use super::{Result, check_positive, check_q};
use std::f64::consts::PI;

/// Proportional-cost model: doubly reflected BM on `[-ℓ, ℓ]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProportionalModel {
    /// Proportional cost λ_p (\$/share).
    pub lambda: f64,
    /// No-trade half-width ℓ (shares).
    pub ell: f64,
    /// Endowment loading β (\$/day).
    pub beta: f64,
    /// Noise loading δ = β/σ (shares/√day).
    pub delta: f64,
    /// Stationary sd of X, ℓ/√3.
    pub sd_x: f64,
    /// Expected daily turnover δ²/(2ℓ).
    pub turnover: f64,
}

/// Quadratic-cost model: Ornstein–Uhlenbeck state with speed k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuadraticModel {
    /// Cost level λ (G = λv²/2).
    pub lambda: f64,
    /// Endowment loading β.
    pub beta: f64,
    /// Noise loading δ = β/σ.
    pub delta: f64,
    /// Mean-reversion speed k = σ√((γ¹+γ²)/(2λ)) (1/day).
    pub k: f64,
    /// Stationary sd of X, δ/√(2k).
    pub sd_x: f64,
    /// Expected daily turnover δ√(k/π).
    pub turnover: f64,
}

/// Power-cost model `G = λ|v|^q/q` in the rescaled form of Appendix B.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerModel {
    /// Elasticity q.
    pub q: f64,
    /// Cost level λ.
    pub lambda: f64,
    /// Endowment loading β.
    pub beta: f64,
    /// Noise loading δ = β/σ.
    pub delta: f64,
    /// Rescaling constant c0 of (B.1).
    pub c0: f64,
    /// Rescaling constant c1 of (B.1).
    pub c1: f64,
    /// Normalised constant c_q.
    pub c: f64,
    /// Universal integral Z_q.
    pub z: f64,
    /// Universal integral V_q.
    pub v: f64,
    /// Stationary sd of X, √V_q/c1.
    pub sd_x: f64,
    /// Expected daily turnover δ²c1/Z_q.
    pub turnover: f64,
}

impl PowerModel {
    /// Trading rate `(δ²c1/2) H̃(c1 x)` at state `x` (needs the matching normalised solution).
    pub fn rate(&self, np: &NormalisedPower, x: f64) -> f64 {
        np.rate(x, self.delta, self.c1)
    }

    /// Marginal cost `g(x) = c0 g̃(c1 x)`.
    pub fn g(&self, np: &NormalisedPower, x: f64) -> f64 {
        self.c0 * np.g_tilde(self.c1 * x)
    }
}

fn check_targets(lambda_p: f64, shtu: f64) -> Result<()> {
    check_positive("lambda_p", lambda_p)?;
    check_positive("ShTu", shtu)?;
    Ok(())
}

/// Proportional costs: `ℓ = √(6λ_p ShTu/((γ¹+γ²)σ²))`, `β = σ√(2ℓ ShTu)` (spec §5.3 step 7).
pub fn match_proportional(
    lambda_p: f64,
    shtu: f64,
    fr: &Frictionless,
) -> Result<ProportionalModel> {
    check_targets(lambda_p, shtu)?;
    let s2 = fr.sigma * fr.sigma;
    let ell = (6.0 * lambda_p * shtu / (fr.gamma_sum() * s2)).sqrt();
    let beta = fr.sigma * (2.0 * ell * shtu).sqrt();
    proportional_from_pair(lambda_p, beta, fr)
}

/// Proportional model for a given (λ_p, β): ℓ from (4.6), turnover δ²/(2ℓ).
pub fn proportional_from_pair(
    lambda_p: f64,
    beta: f64,
    fr: &Frictionless,
) -> Result<ProportionalModel> {
    check_positive("lambda_p", lambda_p)?;
    check_positive("beta", beta)?;
    let delta = beta / fr.sigma;
    let ell = (3.0 * lambda_p * delta * delta / (fr.gamma_sum() * fr.sigma * fr.sigma)).cbrt();
    Ok(ProportionalModel {
        lambda: lambda_p,
        ell,
        beta,
        delta,
        sd_x: ell / 3f64.sqrt(),
        turnover: delta * delta / (2.0 * ell),
    })
}

/// Quadratic costs matched to turnover and proportional variance: `λ₂ = 2λ_p/(π ShTu)`.
pub fn match_quadratic(lambda_p: f64, shtu: f64, fr: &Frictionless) -> Result<QuadraticModel> {
    check_targets(lambda_p, shtu)?;
    let lambda = 2.0 * lambda_p / (PI * shtu);
    let beta = shtu * (PI * fr.sigma).sqrt() * (2.0 * lambda / fr.gamma_sum()).powf(0.25);
    quadratic_from_pair(lambda, beta, fr)
}

/// Quadratic model for a given (λ, β): OU speed, stationary sd and turnover.
pub fn quadratic_from_pair(lambda: f64, beta: f64, fr: &Frictionless) -> Result<QuadraticModel> {
    check_positive("lambda", lambda)?;
    check_positive("beta", beta)?;
    let delta = beta / fr.sigma;
    let k = fr.sigma * (fr.gamma_sum() / (2.0 * lambda)).sqrt();
    Ok(QuadraticModel {
        lambda,
        beta,
        delta,
        k,
        sd_x: delta / (2.0 * k).sqrt(),
        turnover: delta * (k / PI).sqrt(),
    })
}

/// Power costs matched to turnover and proportional variance ((B.8), then (B.6)); solves the
/// normalised problem for `q` first.
pub fn match_power(
    q: f64,
    lambda_p: f64,
    shtu: f64,
    fr: &Frictionless,
) -> Result<(PowerModel, NormalisedPower)> {
    let np = NormalisedPower::solve(q)?;
    let m = match_power_with(&np, lambda_p, shtu, fr)?;
    Ok((m, np))
}

/// Power costs matched with an already solved normalised problem (reuse across calls).
pub fn match_power_with(
    np: &NormalisedPower,
    lambda_p: f64,
    shtu: f64,
    fr: &Frictionless,
) -> Result<PowerModel> {
    check_targets(lambda_p, shtu)?;
    let q = check_q(np.q)?;
    let (z, v) = (np.z, np.v);
    let lambda = 2f64.powf(q - 1.0) * q * lambda_p / (v * z.powf(q) * shtu.powf(q - 1.0));
    let delta4 = (shtu * z).powf(q + 2.0) * lambda
        / (2f64.powf(q - 1.0) * q * fr.gamma_tilde() * fr.sigma * fr.sigma);
    let beta = fr.sigma * delta4.powf(0.25);
    power_from_pair(np, lambda, beta, fr)
}

/// Power model for a given (λ, β): c0, c1, stationary sd √V/c1 and turnover δ²c1/Z.
pub fn power_from_pair(
    np: &NormalisedPower,
    lambda: f64,
    beta: f64,
    fr: &Frictionless,
) -> Result<PowerModel> {
    check_positive("lambda", lambda)?;
    check_positive("beta", beta)?;
    let q = check_q(np.q)?;
    let delta = beta / fr.sigma;
    let r = rescaling(q, lambda, delta, fr.gamma_sum(), fr.sigma)?;
    Ok(PowerModel {
        q,
        lambda,
        beta,
        delta,
        c0: r.c0,
        c1: r.c1,
        c: np.c,
        z: np.z,
        v: np.v,
        sd_x: np.v.sqrt() / r.c1,
        turnover: delta * delta * r.c1 / np.z,
    })
}

#[cfg(test)]
mod tests {
    use super::super::calibration::back_out_from_quadratic;
    use super::*;
    use std::sync::OnceLock;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    fn targets() -> (Frictionless, f64, f64) {
        let fr = Frictionless::paper();
        let b = back_out_from_quadratic(1.08e-10, 2.19e10, &fr).unwrap();
        (fr, b.lambda_p, b.shtu)
    }

    fn q15() -> &'static NormalisedPower {
        static S: OnceLock<NormalisedPower> = OnceLock::new();
        S.get_or_init(|| NormalisedPower::solve(1.5).unwrap())
    }

    #[test]
    fn proportional_matching() {
        let (fr, lp, shtu) = targets();
        let m = match_proportional(lp, shtu, &fr).unwrap();
        assert!(rel(m.ell, 5.10109044503e10) < 1e-9, "ell {}", m.ell);
        assert!(rel(m.beta, 2.57450926608e10) < 1e-9, "beta {}", m.beta);
        assert!(rel(m.sd_x, 2.9451159416e10) < 1e-9, "sd {}", m.sd_x);
        assert!(rel(m.turnover, shtu) < 1e-12);
        // variance identity ℓ²/3 = λ_p ShTu/(γ̃σ²)
        assert!(rel(m.sd_x.powi(2), lp * shtu / (fr.gamma_tilde() * 1.88 * 1.88)) < 1e-12);
    }

    #[test]
    fn quadratic_matching() {
        let (fr, lp, shtu) = targets();
        let m = match_quadratic(lp, shtu, &fr).unwrap();
        assert!(rel(m.lambda, 1.08e-10) < 1e-12);
        assert!(rel(m.beta, 2.19e10) < 1e-12);
        assert!(rel(m.k, 0.0782235897923) < 1e-9, "k {}", m.k);
        assert!(rel(m.sd_x, 2.9451159416e10) < 1e-9);
        assert!(rel(m.turnover, shtu) < 1e-12);
        let p = match_proportional(lp, shtu, &fr).unwrap();
        assert!(rel(m.beta, (PI / 6.0).powf(0.25) * p.beta) < 1e-12);
    }

    #[test]
    fn power_matching_q_three_halves() {
        let (fr, lp, shtu) = targets();
        let m = match_power_with(q15(), lp, shtu, &fr).unwrap();
        assert!(
            rel(m.lambda, 5.21420062996e-6) < 1e-8,
            "lambda {:e}",
            m.lambda
        );
        assert!(rel(m.beta, 2.33232898501e10) < 1e-8, "beta {:e}", m.beta);
        assert!(rel(m.turnover, shtu) < 1e-12);
        assert!(rel(m.sd_x, 2.9451159416e10) < 1e-9);
    }

    #[test]
    fn power_published_pair() {
        let fr = Frictionless::paper();
        let np = q15();
        let m = power_from_pair(np, 5.22e-6, 2.33e10, &fr).unwrap();
        assert!(rel(m.c0, 0.16591922668) < 1e-10);
        assert!(rel(m.c1, 2.95984380947e-11) < 1e-10);
        let r = m.rate(np, -3e10);
        assert!(rel(r, 2_112_658_708.0) < 1e-7, "rate {r}");
        assert!(
            rel(m.turnover, 1_835_466_215.0) < 1e-7,
            "turnover {}",
            m.turnover
        );
        assert!(rel(m.sd_x, 2.94352972e10) < 1e-7, "sd {}", m.sd_x);
        // the rate equals (G*)'(g(x)) with the physical cost
        let g = m.g(np, -3e10);
        assert!(rel((g / 5.22e-6).powf(2.0), r) < 1e-12);
    }

    #[test]
    fn near_proportional_candidates() {
        let (fr, lp, shtu) = targets();
        for (q, lam, beta, tol) in [
            (1.1, 0.0323562598, 2.51388767e10, 1e-7),
            (1.01, 0.2458644381, 2.56811049e10, 1e-7),
            (1.2, 3.569e-3, 2.460e10, 5e-4),
            (1.05, 0.09883, 2.543e10, 5e-4),
        ] {
            let (m, _) = match_power(q, lp, shtu, &fr).unwrap();
            assert!(rel(m.lambda, lam) < tol, "q={q} lambda {:.10}", m.lambda);
            assert!(rel(m.beta, beta) < tol, "q={q} beta {:.9e}", m.beta);
            assert!(rel(m.turnover, shtu) < 1e-12);
        }
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let fr = Frictionless::paper();
        assert!(match_proportional(-0.3, 1e9, &fr).is_err());
        assert!(match_quadratic(0.3, 0.0, &fr).is_err());
        assert!(match_power(0.9, 0.3, 1e9, &fr).is_err());
        assert!(match_power(2.5, 0.3, 1e9, &fr).is_err());
        assert!(quadratic_from_pair(0.0, 1.0, &fr).is_err());
    }
}
