//! The finite-horizon decoupling field of the exogenous-volatility model, PDE (6.16):
//!
//! ∂ₜf + (G')⁻¹(f) ∂ₓf + (ϑ²/2) ∂ₓₓf = γ̃σ² x,  f(T, x) = 0,  γ̃ = (γ¹+γ²)/2,
//!
//! solved backwards in τ = T − t by the method of lines on a truncated uniform grid: first-order
//! upwind differences for the transport term (the direction follows the sign of the trading rate),
//! central differences for the diffusion, and the strong-stability-preserving two-stage Runge–Kutta
//! (Heun) step at a CFL- and diffusion-limited time step. For quadratic costs the exact solution
//! is f(t, x) = −λk·tanh(k(T−t))·x with k = σ√(γ̃/λ) ([`quadratic_exact`]).
//!
//! The long-run (stationary) limit, ODE (3.5), lives in `power` / `general`.

use super::costs::Cost;
use super::{FinanceError, Result, check_positive};

/// The PDE's data: the cost, the diffusion ϑ of the state and the slope γ̃σ² of the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct FiniteHorizonProblem {
    /// The trading cost G.
    pub cost: Cost,
    /// Volatility of the state X, ϑ = β/σ in Example 6.1 (shares/√day).
    pub theta: f64,
    /// γ̃σ² = ((γ¹+γ²)/2)σ², the slope of the right-hand side in x.
    pub slope: f64,
    /// Horizon T (days).
    pub horizon: f64,
}

/// Discretisation of the truncated domain [−L, L].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Half-width L of the domain (shares).
    pub half_width: f64,
    /// Number of nodes (odd, so that x = 0 is a node).
    pub nodes: usize,
    /// Safety factor on the explicit stability limits (≤ 0.9).
    pub courant: f64,
}

/// The field f(t, x) on the grid at the requested times.
#[derive(Debug, Clone, PartialEq)]
pub struct FiniteHorizonSolution {
    /// Grid nodes x (shares).
    pub x: Vec<f64>,
    /// Requested times t (days), ascending.
    pub t: Vec<f64>,
    /// `f[i][j]` = f(t[i], x[j]).
    pub f: Vec<Vec<f64>>,
    /// Number of time steps taken.
    pub steps: usize,
}

impl FiniteHorizonSolution {
    /// f(t[i], x) by linear interpolation in x (clamped to the domain).
    pub fn f_at(&self, i: usize, x: f64) -> f64 {
        interpolate(&self.x, &self.f[i], x)
    }
}

/// Linear interpolation of (xs, ys) at x, clamped to the ends; xs ascending and uniform or not.
pub fn interpolate(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    let n = xs.len();
    if x <= xs[0] {
        return ys[0];
    }
    if x >= xs[n - 1] {
        return ys[n - 1];
    }
    let j = xs.partition_point(|&v| v <= x).clamp(1, n - 1);
    let w = (x - xs[j - 1]) / (xs[j] - xs[j - 1]);
    ys[j - 1] + w * (ys[j] - ys[j - 1])
}

/// Exact solution for quadratic costs λv²/2: f(t, x) = −λk·tanh(k(T−t))·x, k = √(slope/λ).
pub fn quadratic_exact(lambda: f64, slope: f64, horizon: f64, t: f64, x: f64) -> f64 {
    let k = (slope / lambda).sqrt();
    -lambda * k * (k * (horizon - t)).tanh() * x
}

/// Solves (6.16) backwards from f(T, ·) = 0 and reports f at the times `t_out` ⊂ [0, T].
/// `cancelled` is polled between steps.
pub fn solve_finite_horizon(
    p: &FiniteHorizonProblem,
    grid: &Grid,
    t_out: &[f64],
    cancelled: &dyn Fn() -> bool,
) -> Result<FiniteHorizonSolution> {
    p.cost.validate()?;
    check_positive("theta", p.theta)?;
    check_positive("slope", p.slope)?;
    check_positive("horizon", p.horizon)?;
    check_positive("half_width", grid.half_width)?;
    if grid.nodes < 5 || grid.nodes.is_multiple_of(2) {
        return Err(FinanceError::InvalidConfig(format!(
            "the PDE grid needs an odd number ≥ 5 of nodes, got {}",
            grid.nodes
        )));
    }
    if !(grid.courant > 0.0 && grid.courant <= 0.9) {
        return Err(FinanceError::InvalidConfig(format!(
            "courant factor must lie in (0, 0.9], got {}",
            grid.courant
        )));
    }
    let mut t = t_out.to_vec();
    if t.iter().any(|&v| !(0.0..=p.horizon).contains(&v)) {
        return Err(FinanceError::InvalidConfig(format!(
            "output times must lie in [0, T = {}]",
            p.horizon
        )));
    }
    t.sort_by(f64::total_cmp);
    t.dedup();

    let m = grid.nodes;
    let h = 2.0 * grid.half_width / (m - 1) as f64;
    let x: Vec<f64> = (0..m).map(|j| -grid.half_width + j as f64 * h).collect();
    let diff = 0.5 * p.theta * p.theta;
    let rhs = |f: &[f64], out: &mut [f64]| {
        for j in 0..m {
            let v = p.cost.rate(f[j]);
            // τ-form: f_τ = v f_x + (ϑ²/2) f_xx − slope·x; information travels against v.
            let fx = if v > 0.0 {
                if j + 1 < m {
                    (f[j + 1] - f[j]) / h
                } else {
                    (f[j] - f[j - 1]) / h
                }
            } else if j > 0 {
                (f[j] - f[j - 1]) / h
            } else {
                (f[1] - f[0]) / h
            };
            let c = j.clamp(1, m - 2);
            let fxx = (f[c + 1] - 2.0 * f[c] + f[c - 1]) / (h * h);
            out[j] = v * fx + diff * fxx - p.slope * x[j];
        }
    };
    // Stable step: diffusion limit h²/(2·diff) and the CFL limit h/max|v|, re-evaluated per step.
    let dt_diff = h * h / (2.0 * diff);
    let mut f = vec![0.0; m];
    let (mut k1, mut k2, mut stage) = (vec![0.0; m], vec![0.0; m], vec![0.0; m]);
    let mut out: Vec<(f64, Vec<f64>)> = Vec::with_capacity(t.len());
    // Output times in τ, descending t ⇒ ascending τ.
    let mut pending: Vec<f64> = t.iter().rev().copied().collect();
    let mut tau = 0.0;
    let mut steps = 0usize;
    while let Some(&next_t) = pending.first() {
        let target = p.horizon - next_t;
        if tau >= target - 1e-12 * p.horizon {
            out.push((next_t, f.clone()));
            pending.remove(0);
            continue;
        }
        if cancelled() {
            return Err(FinanceError::Interrupted);
        }
        let vmax = f.iter().map(|&y| p.cost.rate(y).abs()).fold(0.0, f64::max);
        let dt_cfl = if vmax > 0.0 { h / vmax } else { f64::INFINITY };
        let dt = (grid.courant * dt_diff.min(dt_cfl)).min(target - tau);
        rhs(&f, &mut k1);
        for j in 0..m {
            stage[j] = f[j] + dt * k1[j];
        }
        rhs(&stage, &mut k2);
        for j in 0..m {
            f[j] += 0.5 * dt * (k1[j] + k2[j]);
        }
        if f.iter().any(|v| !v.is_finite()) {
            return Err(FinanceError::Numerical {
                what: "finite-horizon PDE",
                detail: format!("non-finite value at τ = {tau} (step {steps})"),
            });
        }
        tau += dt;
        steps += 1;
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(FiniteHorizonSolution {
        x,
        t: out.iter().map(|(t, _)| *t).collect(),
        f: out.into_iter().map(|(_, f)| f).collect(),
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finance::calibration::Frictionless;

    fn paper(cost: Cost, beta: f64, horizon: f64) -> FiniteHorizonProblem {
        let fr = Frictionless::paper();
        FiniteHorizonProblem {
            cost,
            theta: beta / fr.sigma,
            slope: fr.gamma_tilde() * fr.sigma * fr.sigma,
            horizon,
        }
    }

    #[test]
    fn quadratic_matches_tanh_solution() {
        let lambda = 1.08e-10;
        let p = paper(Cost::Quadratic { lambda }, 2.19e10, 25.0);
        let grid = Grid {
            half_width: 4e11,
            nodes: 801,
            courant: 0.8,
        };
        let s = solve_finite_horizon(&p, &grid, &[0.0, 2.0, 20.0], &|| false).unwrap();
        for (i, &t) in s.t.iter().enumerate() {
            for x in [-1e11, -3e10, 5e9, 6e10] {
                let exact = quadratic_exact(lambda, p.slope, p.horizon, t, x);
                let rel = (s.f_at(i, x) - exact).abs() / exact.abs();
                // the exact field is linear in x, which the upwind scheme reproduces exactly;
                // what remains is the O(dt²) time error
                assert!(rel < 1e-5, "t = {t}, x = {x}: rel error {rel}");
            }
        }
    }

    #[test]
    fn power_rate_at_t2_matches_spec() {
        // spec gms-fbsde §8 E: finite T = 25 rate at t = 2, X = −3e10 is 2.0355e9 (rel 3e-3).
        let cost = Cost::Power {
            lambda: 5.22e-6,
            q: 1.5,
        };
        let p = paper(cost.clone(), 2.33e10, 25.0);
        let grid = Grid {
            half_width: 4e11,
            nodes: 1601,
            courant: 0.8,
        };
        let s = solve_finite_horizon(&p, &grid, &[2.0], &|| false).unwrap();
        let rate = cost.rate(s.f_at(0, -3e10));
        assert!(
            (rate / 2.0355e9 - 1.0).abs() < 3e-3,
            "rate at t = 2, X = −3e10: {rate:e}"
        );
    }

    #[test]
    fn rejects_bad_grids() {
        let p = paper(Cost::Quadratic { lambda: 1e-10 }, 2e10, 5.0);
        let even = Grid {
            half_width: 1e11,
            nodes: 100,
            courant: 0.5,
        };
        assert!(solve_finite_horizon(&p, &even, &[0.0], &|| false).is_err());
        let ok = Grid { nodes: 101, ..even };
        assert!(solve_finite_horizon(&p, &ok, &[6.0], &|| false).is_err());
    }
}
