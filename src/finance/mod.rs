//! Pure mathematics of the exogenous-volatility model of Gonon–Muhle-Karbe–Shi (arXiv 1905.05027):
//! cost functions and their Legendre transforms, the long-run ODE (3.5) for power and general
//! convex costs, the frictionless calibration, turnover/variance matching of the cost levels, and
//! the Monte-Carlo simulation of the state variable with its summary statistics.
//!
//! Everything here is plain functions on `f64` and slices: no engine types, no I/O, no data
//! frames. Invalid inputs are reported as [`FinanceError`]. The stage adapters that wire these
//! functions into pipelines live elsewhere (`crate::stages`).

pub mod calibration;
pub mod costs;
pub mod general;
pub mod nagent;
pub mod ode;
pub mod pde;
pub mod power;
pub mod riccati;
pub mod sde;
pub mod stats;
pub mod turnover;
pub mod ziggurat;

/// Errors for invalid model inputs and for numerical procedures that failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FinanceError {
    /// A parameter is outside its admissible range (or not finite).
    #[error("{name} must {requirement}, got {value}")]
    InvalidParameter {
        /// The parameter's name as used in the spec (e.g. `q`, `lambda`).
        name: &'static str,
        /// What the parameter must satisfy, e.g. "lie in (1, 2]".
        requirement: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A configuration value (count, size, list) is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The caller asked to stop (e.g. Ctrl-C) before the computation finished.
    #[error("interrupted")]
    Interrupted,
    /// A numerical procedure (integrator, root finder, shooting) did not converge.
    #[error("numerical failure in {what}: {detail}")]
    Numerical {
        /// The procedure that failed.
        what: &'static str,
        /// Details (step size, bracket, residual).
        detail: String,
    },
}

/// Shorthand result type of this module.
pub type Result<T> = std::result::Result<T, FinanceError>;

/// Fails unless `value` is finite.
pub(crate) fn check_finite(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(FinanceError::InvalidParameter {
            name,
            requirement: "be finite",
            value,
        })
    }
}

/// Fails unless `value` is finite and strictly positive.
pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(FinanceError::InvalidParameter {
            name,
            requirement: "be finite and > 0",
            value,
        })
    }
}

/// Fails unless the power-cost elasticity satisfies `1 < q <= 2`.
pub(crate) fn check_q(q: f64) -> Result<f64> {
    if q.is_finite() && q > 1.0 && q <= 2.0 {
        Ok(q)
    } else {
        Err(FinanceError::InvalidParameter {
            name: "q",
            requirement: "lie in (1, 2]",
            value: q,
        })
    }
}

/// `sign(x) * |x|^a`, the only safe way to take fractional powers of signed quantities.
pub(crate) fn signed_pow(x: f64, a: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x.signum() * x.abs().powf(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_clear() {
        let e = check_q(0.9).unwrap_err();
        assert_eq!(e.to_string(), "q must lie in (1, 2], got 0.9");
        assert!(check_q(2.5).is_err());
        assert!(check_q(f64::NAN).is_err());
        assert!(check_q(2.0).is_ok());
        let e = check_positive("lambda", -1.0).unwrap_err();
        assert_eq!(e.to_string(), "lambda must be finite and > 0, got -1");
        assert!(check_positive("sigma", 0.0).is_err());
        assert!(check_finite("x", f64::INFINITY).is_err());
    }

    #[test]
    fn signed_pow_is_odd() {
        assert_eq!(signed_pow(-8.0, 1.0 / 3.0), -2.0);
        assert_eq!(signed_pow(0.0, 0.5), 0.0);
        assert!((signed_pow(4.0, 0.5) - 2.0).abs() < 1e-15);
    }
}
