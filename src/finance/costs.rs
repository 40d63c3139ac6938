//! Cost specifications on the trading rate (spec §3): power costs `G(v) = λ|v|^q/q`, quadratic
//! costs, and positive combinations of powers, together with `G`, `G'`, the Legendre transform
//! `G*`, its derivative `(G*)' = (G')^{-1}` and the inverse `(G*)^{-1}` on the positive branch.
//!
//! Closed forms are used for a single power; combinations use monotone root solves. Proportional
//! costs are not a rate cost and live in `turnover` / `sde`.

use super::ode::brent;
use super::{FinanceError, Result, check_positive, check_q, signed_pow};

/// One term `λ|v|^q/q` of a cost function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerTerm {
    /// Cost level λ > 0.
    pub lambda: f64,
    /// Elasticity q in (1, 2].
    pub q: f64,
}

/// A convex, even cost `G` on the trading rate.
#[derive(Debug, Clone, PartialEq)]
pub enum Cost {
    /// `G(v) = λ|v|^q/q` with `1 < q <= 2`.
    Power {
        /// Cost level λ > 0.
        lambda: f64,
        /// Elasticity q in (1, 2].
        q: f64,
    },
    /// `G(v) = λ v²/2` (the power cost with q = 2).
    Quadratic {
        /// Cost level λ > 0.
        lambda: f64,
    },
    /// `G(v) = Σ λ_i |v|^{q_i}/q_i`, a positive combination of power costs.
    Combination(Vec<PowerTerm>),
}

impl Cost {
    /// Checks the parameters (λ > 0, 1 < q <= 2, non-empty combination).
    pub fn validate(&self) -> Result<()> {
        for t in self.iter_terms() {
            check_positive("lambda", t.lambda)?;
            check_q(t.q)?;
        }
        if self.iter_terms().next().is_none() {
            return Err(FinanceError::InvalidConfig(
                "a cost combination needs at least one term".into(),
            ));
        }
        Ok(())
    }

    /// Builds a validated cost, returning it or the first invalid parameter.
    pub fn validated(self) -> Result<Self> {
        self.validate()?;
        Ok(self)
    }

    /// The cost as a list of power terms.
    pub fn terms(&self) -> Vec<PowerTerm> {
        match self {
            Cost::Power { lambda, q } => vec![PowerTerm {
                lambda: *lambda,
                q: *q,
            }],
            Cost::Quadratic { lambda } => vec![PowerTerm {
                lambda: *lambda,
                q: 2.0,
            }],
            Cost::Combination(ts) => ts.clone(),
        }
    }

    /// Iterates over the power terms without allocating.
    pub fn iter_terms(&self) -> impl Iterator<Item = PowerTerm> + '_ {
        let (single, many): (Option<PowerTerm>, &[PowerTerm]) = match self {
            Cost::Power { lambda, q } => (
                Some(PowerTerm {
                    lambda: *lambda,
                    q: *q,
                }),
                &[],
            ),
            Cost::Quadratic { lambda } => (
                Some(PowerTerm {
                    lambda: *lambda,
                    q: 2.0,
                }),
                &[],
            ),
            Cost::Combination(ts) => (None, ts.as_slice()),
        };
        single.into_iter().chain(many.iter().copied())
    }

    /// The single power term if the cost is a pure power (or quadratic).
    pub fn as_power(&self) -> Option<PowerTerm> {
        match self {
            Cost::Combination(ts) if ts.len() == 1 => Some(ts[0]),
            Cost::Combination(_) => None,
            _ => self.iter_terms().next(),
        }
    }

    /// `G(v)`.
    pub fn g(&self, v: f64) -> f64 {
        self.iter_terms()
            .map(|t| t.lambda * v.abs().powf(t.q) / t.q)
            .sum()
    }

    /// `G'(v)` (odd, increasing).
    pub fn g_prime(&self, v: f64) -> f64 {
        self.iter_terms()
            .map(|t| t.lambda * signed_pow(v, t.q - 1.0))
            .sum()
    }

    /// `G''(v)` for `v ≠ 0` (infinite at 0 when some q < 2).
    pub fn g_second(&self, v: f64) -> f64 {
        self.iter_terms()
            .map(|t| {
                if t.q == 2.0 {
                    t.lambda
                } else {
                    t.lambda * (t.q - 1.0) * v.abs().powf(t.q - 2.0)
                }
            })
            .sum()
    }

    /// `(G*)'(y) = (G')^{-1}(y)`: the trading rate at marginal cost `y` (odd, increasing).
    pub fn rate(&self, y: f64) -> f64 {
        if y == 0.0 || y.is_nan() {
            return if y.is_nan() { f64::NAN } else { 0.0 };
        }
        if let Some(t) = self.as_power() {
            return signed_pow(y / t.lambda, 1.0 / (t.q - 1.0));
        }
        let a = y.abs();
        // each term alone gives an upper bound on the root
        let hi = self
            .iter_terms()
            .map(|t| (a / t.lambda).powf(1.0 / (t.q - 1.0)))
            .fold(f64::INFINITY, f64::min);
        let v = brent(|v| self.g_prime(v) - a, 0.0, hi, 1e-16 * hi).unwrap_or(hi);
        v.copysign(y)
    }

    /// Derivative of `(G*)'` at `y`, i.e. `1/G''((G')^{-1}(y))` (0 at y = 0 when some q < 2).
    pub fn rate_derivative(&self, y: f64) -> f64 {
        if let Some(t) = self.as_power() {
            let a = 1.0 / (t.q - 1.0);
            if t.q == 2.0 {
                return 1.0 / t.lambda;
            }
            return a / t.lambda * (y.abs() / t.lambda).powf(a - 1.0);
        }
        let v = self.rate(y);
        if v == 0.0 {
            let quad: f64 = self
                .iter_terms()
                .filter(|t| t.q == 2.0)
                .map(|t| t.lambda)
                .sum();
            let any_sub_quadratic = self.iter_terms().any(|t| t.q < 2.0);
            return if any_sub_quadratic || quad == 0.0 {
                0.0
            } else {
                1.0 / quad
            };
        }
        1.0 / self.g_second(v)
    }

    /// The Legendre transform `G*(y) = sup_v {v y − G(v)}` (even, convex).
    pub fn conjugate(&self, y: f64) -> f64 {
        if let Some(t) = self.as_power() {
            let p = t.q / (t.q - 1.0);
            return (t.q - 1.0) / t.q * t.lambda.powf(-1.0 / (t.q - 1.0)) * y.abs().powf(p);
        }
        let v = self.rate(y);
        v * y - self.g(v)
    }

    /// `(G*)^{-1}(z)` on the positive branch: the `y >= 0` with `G*(y) = z` (for `z >= 0`).
    pub fn conjugate_inverse(&self, z: f64) -> Result<f64> {
        if !(z.is_finite() && z >= 0.0) {
            return Err(FinanceError::InvalidParameter {
                name: "z",
                requirement: "be finite and >= 0 for (G*)^{-1}",
                value: z,
            });
        }
        if z == 0.0 {
            return Ok(0.0);
        }
        if let Some(t) = self.as_power() {
            let p = t.q / (t.q - 1.0);
            let k = (t.q - 1.0) / t.q * t.lambda.powf(-1.0 / (t.q - 1.0));
            return Ok((z / k).powf(1.0 / p));
        }
        let mut hi = 1.0;
        let mut tries = 0;
        while self.conjugate(hi) < z {
            hi *= 2.0;
            tries += 1;
            if tries > 2000 {
                return Err(FinanceError::Numerical {
                    what: "conjugate_inverse",
                    detail: format!("no bracket for z = {z}"),
                });
            }
        }
        let mut lo = hi;
        while self.conjugate(lo) > z && lo > 1e-300 {
            lo *= 0.5;
        }
        brent(|y| self.conjugate(y) - z, lo, hi, 1e-16 * hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combo() -> Cost {
        Cost::Combination(vec![
            PowerTerm {
                lambda: 1.0,
                q: 2.0,
            },
            PowerTerm {
                lambda: 0.5,
                q: 1.5,
            },
        ])
    }

    #[test]
    fn validation_rejects_bad_parameters() {
        assert!(
            Cost::Power {
                lambda: 1.0,
                q: 1.0
            }
            .validate()
            .is_err()
        );
        assert!(
            Cost::Power {
                lambda: 1.0,
                q: 2.1
            }
            .validate()
            .is_err()
        );
        assert!(
            Cost::Power {
                lambda: 0.0,
                q: 1.5
            }
            .validate()
            .is_err()
        );
        assert!(Cost::Quadratic { lambda: f64::NAN }.validate().is_err());
        assert!(Cost::Combination(vec![]).validate().is_err());
        let e = Cost::Power {
            lambda: 1.0,
            q: 0.9,
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.to_string(), "q must lie in (1, 2], got 0.9");
        assert!(combo().validate().is_ok());
    }

    #[test]
    fn power_closed_forms_are_consistent() {
        let c = Cost::Power {
            lambda: 0.7,
            q: 1.5,
        };
        for &y in &[-3.0, -0.2, 0.4, 2.5] {
            let v = c.rate(y);
            assert!((c.g_prime(v) - y).abs() < 1e-13 * y.abs().max(1.0));
            // Fenchel equality
            assert!((c.conjugate(y) - (v * y - c.g(v))).abs() < 1e-12);
            let z = c.conjugate(y);
            assert!((c.conjugate_inverse(z).unwrap() - y.abs()).abs() < 1e-12);
            let h = 1e-6;
            let fd = (c.rate(y + h) - c.rate(y - h)) / (2.0 * h);
            assert!((fd - c.rate_derivative(y)).abs() < 1e-6 * fd.abs().max(1.0));
        }
        let quad = Cost::Quadratic { lambda: 2.0 };
        assert!((quad.conjugate(3.0) - 9.0 / 4.0).abs() < 1e-15);
        assert!((quad.rate(3.0) - 1.5).abs() < 1e-15);
    }

    #[test]
    fn combination_inverts_by_root_solve() {
        let c = combo();
        for &y in &[-5.0, -0.01, 0.3, 7.0] {
            let v = c.rate(y);
            assert!(
                (c.g_prime(v) - y).abs() < 1e-12 * y.abs().max(1.0),
                "y={y} v={v}"
            );
            let z = c.conjugate(y);
            assert!(z > 0.0);
            let yy = c.conjugate_inverse(z).unwrap();
            assert!((yy - y.abs()).abs() < 1e-10 * y.abs().max(1.0));
            let h = 1e-6 * y.abs();
            let fd = (c.conjugate(y + h) - c.conjugate(y - h)) / (2.0 * h);
            assert!((fd - v).abs() < 1e-6 * v.abs());
        }
        assert_eq!(c.rate(0.0), 0.0);
        assert_eq!(c.rate_derivative(0.0), 0.0);
        assert!(c.conjugate_inverse(-1.0).is_err());
    }
}
