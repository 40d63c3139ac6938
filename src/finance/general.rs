//! The long-run ODE (3.5) for a general convex cost `G`, solved directly in its first-order form
//! `(δ²/2) g' = B x² + C − G*(g)`, `B = (γ¹+γ²)σ²/4` (spec §3, §10.1 item 7): shooting on the
//! constant `C` so that `g(0) = 0`, starting at `x = −x_max` on the growth branch (3.6).
//!
//! Also the stationary turnover and variance of the state (3.7) for the solved `g`. The
//! closed-form rescaling for pure powers lives in `power`.

use super::costs::Cost;
use super::ode::{OdeOptions, brent, radau5};
use super::power::rescaling;
use super::{FinanceError, Result, check_positive};

/// The problem data of (3.5).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneralProblem {
    /// The cost on the trading rate.
    pub cost: Cost,
    /// Noise loading δ = β/σ.
    pub delta: f64,
    /// γ¹ + γ².
    pub gamma_sum: f64,
    /// Absolute volatility σ.
    pub sigma: f64,
}

/// Numerical settings of [`solve_general`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneralOptions {
    /// Half-width of the domain; `None` derives it from the power terms (12/c1, spec §10.1).
    pub x_max: Option<f64>,
    /// Number of grid intervals on `[−x_max, 0]`.
    pub n_half: usize,
    /// Relative tolerance of the integrator.
    pub rtol: f64,
}

impl Default for GeneralOptions {
    fn default() -> Self {
        Self {
            x_max: None,
            n_half: 2400,
            rtol: 1e-12,
        }
    }
}

/// The solution `g` of (3.5) on a symmetric grid, with diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneralSolution {
    /// The problem that was solved.
    pub problem: GeneralProblem,
    /// Uniform grid on `[−x_max, x_max]`.
    pub x: Vec<f64>,
    /// `g(x_i)` (odd, decreasing).
    pub g: Vec<f64>,
    /// `g'(x_i)` from the first-order form (even).
    pub gp: Vec<f64>,
    /// Trading rate `(G*)'(g(x_i))` (odd).
    pub rate: Vec<f64>,
    /// The integration constant `C = (δ²/2) g'(0) < 0`.
    pub c: f64,
    /// Half-width of the grid.
    pub x_max: f64,
    /// `g(0)` of the final integration (shooting miss).
    pub g_at_zero: f64,
    /// Max relative residual of the first-order form with `g'` by 4th-order differences of `g`.
    pub max_rel_residual_first_order: f64,
    /// Max relative residual of (3.5) with `g''` by 4th-order differences of `g'`.
    pub max_rel_residual_second_order: f64,
}

/// Stationary turnover and variance of the state variable (3.7).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StationaryMoments {
    /// Expected turnover `E_ν |(G*)'(g(X))|` (shares/day).
    pub turnover: f64,
    /// Stationary variance of X.
    pub variance: f64,
    /// Stationary sd of X.
    pub sd_x: f64,
}

impl GeneralProblem {
    /// Validates the data (cost parameters, δ > 0, γ¹+γ² > 0, σ > 0).
    pub fn validate(&self) -> Result<()> {
        self.cost.validate()?;
        check_positive("delta", self.delta)?;
        check_positive("gamma1 + gamma2", self.gamma_sum)?;
        check_positive("sigma", self.sigma)?;
        Ok(())
    }

    fn a(&self) -> f64 {
        0.5 * self.delta * self.delta
    }

    fn b(&self) -> f64 {
        0.25 * self.gamma_sum * self.sigma * self.sigma
    }

    /// Default half-width: `12/min_i c1(k λ_i, q_i)` over the `k` power terms.
    pub fn default_x_max(&self) -> Result<f64> {
        let terms = self.cost.terms();
        let k = terms.len() as f64;
        let mut c1_min = f64::INFINITY;
        for t in &terms {
            let scale = if terms.len() == 1 { 1.0 } else { k };
            let r = rescaling(
                t.q,
                t.lambda * scale,
                self.delta,
                self.gamma_sum,
                self.sigma,
            )?;
            c1_min = c1_min.min(r.c1);
        }
        Ok(12.0 / c1_min)
    }

    /// Shooting miss `g(0; C)` with the sign-preserving conjugate (spec §10.1 item 4).
    pub fn shooting_miss(&self, c: f64, x_max: f64, rtol: f64) -> Result<f64> {
        let (a, b) = (self.a(), self.b());
        let g0 = self.start_value(c, x_max)?;
        let sol = radau5(
            |x, s, d| d[0] = (b * x * x + c - s[0].signum() * self.cost.conjugate(s[0])) / a,
            |_, s, j| j[0] = -self.cost.rate(s[0].abs()) / a,
            -x_max,
            &[g0],
            &[0.0],
            &self.options(x_max, g0, rtol),
        )?;
        Ok(sol.last()[0])
    }

    /// Starting value `g(−x_max)` on the growth branch: `(G*)^{-1}(B x² + C − A g'_as)` with the
    /// leading-order slope `g'_as = 2Bx/(G*)'(g₁)`, `g₁ = (G*)^{-1}(B x²)` (exact for q = 2).
    pub fn start_value(&self, c: f64, x_max: f64) -> Result<f64> {
        let (a, b) = (self.a(), self.b());
        let bl2 = b * x_max * x_max;
        let g1 = self.cost.conjugate_inverse(bl2)?;
        let slope = -2.0 * b * x_max / self.cost.rate(g1);
        self.cost.conjugate_inverse((bl2 + c - a * slope).max(0.0))
    }

    fn options(&self, x_max: f64, g_scale: f64, rtol: f64) -> OdeOptions {
        OdeOptions {
            rtol,
            atol: rtol * 1e-3 * g_scale.abs().max(f64::MIN_POSITIVE),
            h0: Some(x_max * 1e-5),
            h_max: x_max / 24.0,
            max_steps: 2_000_000,
        }
    }
}

/// Solves (3.5) for a general convex cost by shooting on `C` (see module docs).
pub fn solve_general(problem: &GeneralProblem, o: &GeneralOptions) -> Result<GeneralSolution> {
    problem.validate()?;
    check_positive("rtol", o.rtol)?;
    if o.n_half < 8 {
        return Err(FinanceError::InvalidConfig(format!(
            "n_half must be at least 8, got {}",
            o.n_half
        )));
    }
    let x_max = match o.x_max {
        Some(v) => check_positive("x_max", v)?,
        None => problem.default_x_max()?,
    };
    let (a, b) = (problem.a(), problem.b());
    let bl2 = b * x_max * x_max;
    // bracket C in (−B x_max², 0]: F(0) > 0, expand downwards until F < 0
    let miss = |c: f64| problem.shooting_miss(c, x_max, o.rtol);
    let f_hi = miss(0.0)?;
    let mut c_lo = -4.0 * bl2 / 144.0;
    let mut f_lo = miss(c_lo)?;
    while f_lo >= 0.0 && c_lo > -0.5 * bl2 {
        c_lo *= 2.0;
        f_lo = miss(c_lo)?;
    }
    if !(f_hi > 0.0 && f_lo < 0.0) {
        return Err(FinanceError::Numerical {
            what: "general shooting",
            detail: format!("no sign change of g(0; C) on [{c_lo:e}, 0] (x_max = {x_max:e})"),
        });
    }
    let mut first_err = None;
    let c = brent(
        |c| match miss(c) {
            Ok(v) => v,
            Err(e) => {
                first_err.get_or_insert(e);
                f64::NAN
            }
        },
        c_lo,
        0.0,
        1e-15 * c_lo.abs(),
    );
    if let Some(e) = first_err {
        return Err(e);
    }
    let c = c?;
    // final pass on the grid
    let n = o.n_half;
    let dx = x_max / n as f64;
    let half: Vec<f64> = (0..=n)
        .map(|i| if i == n { 0.0 } else { -x_max + i as f64 * dx })
        .collect();
    let g0 = problem.start_value(c, x_max)?;
    let cost = &problem.cost;
    let sol = radau5(
        |x, s, d| d[0] = (b * x * x + c - cost.conjugate(s[0])) / a,
        |_, s, j| j[0] = -cost.rate(s[0]) / a,
        -x_max,
        &[g0],
        &half[1..],
        &problem.options(x_max, g0, o.rtol),
    )?;
    let g_at_zero = sol.last()[0];
    let m = 2 * n + 1;
    let mut x = vec![0.0; m];
    let mut g = vec![0.0; m];
    for i in 0..=n {
        let gi = if i == 0 {
            g0
        } else if i == n {
            0.0
        } else {
            sol.y[i - 1][0]
        };
        x[i] = half[i];
        x[m - 1 - i] = -half[i];
        g[i] = gi;
        g[m - 1 - i] = -gi;
    }
    let gp: Vec<f64> = x
        .iter()
        .zip(&g)
        .map(|(&xi, &gi)| (b * xi * xi + c - cost.conjugate(gi)) / a)
        .collect();
    let rate: Vec<f64> = g.iter().map(|&gi| cost.rate(gi)).collect();
    // pointwise relative residuals; points whose terms are all below 1e-9 of the largest (the
    // neighbourhood of x = 0, where everything vanishes) are skipped
    let mut res1 = Vec::with_capacity(m);
    let mut res2 = Vec::with_capacity(m);
    for i in 2..m - 2 {
        let d1 = (-g[i + 2] + 8.0 * g[i + 1] - 8.0 * g[i - 1] + g[i - 2]) / (12.0 * dx);
        let lhs = a * d1;
        let rhs = b * x[i] * x[i] + c - cost.conjugate(g[i]);
        let scale = lhs.abs() + b * x[i] * x[i] + c.abs() + cost.conjugate(g[i]);
        res1.push(((lhs - rhs).abs(), scale));
        let d2 = (-gp[i + 2] + 8.0 * gp[i + 1] - 8.0 * gp[i - 1] + gp[i - 2]) / (12.0 * dx);
        let t1 = a * d2;
        let t2 = rate[i] * gp[i];
        let t3 = 2.0 * b * x[i];
        res2.push(((t1 + t2 - t3).abs(), t1.abs() + t2.abs() + t3.abs()));
    }
    let worst = |v: &[(f64, f64)]| {
        let smax = v.iter().fold(0.0f64, |acc, r| acc.max(r.1));
        v.iter()
            .filter(|r| r.1 > 1e-9 * smax)
            .fold(0.0f64, |acc, r| acc.max(r.0 / r.1))
    };
    let r1 = worst(&res1);
    let r2 = worst(&res2);
    Ok(GeneralSolution {
        problem: problem.clone(),
        x,
        g,
        gp,
        rate,
        c,
        x_max,
        g_at_zero,
        max_rel_residual_first_order: r1,
        max_rel_residual_second_order: r2,
    })
}

impl GeneralSolution {
    fn dx(&self) -> f64 {
        self.x[1] - self.x[0]
    }

    /// `g(x)` by cubic Hermite interpolation on the grid (clamped to the grid ends).
    pub fn g_at(&self, x: f64) -> f64 {
        let dx = self.dx();
        let last = self.x.len() - 2;
        let xc = x.clamp(-self.x_max, self.x_max);
        let i = (((xc + self.x_max) / dx).floor().max(0.0) as usize).min(last);
        let t = (xc - self.x[i]) / dx;
        let (t2, t3) = (t * t, t * t * t);
        (2.0 * t3 - 3.0 * t2 + 1.0) * self.g[i]
            + (t3 - 2.0 * t2 + t) * dx * self.gp[i]
            + (-2.0 * t3 + 3.0 * t2) * self.g[i + 1]
            + (t3 - t2) * dx * self.gp[i + 1]
    }

    /// Trading rate `(G*)'(g(x))` at any `x` in the grid range.
    pub fn rate_at(&self, x: f64) -> f64 {
        self.problem.cost.rate(self.g_at(x))
    }

    /// Stationary turnover and variance from `ν ∝ exp((2/δ²)∫_0^x (G*)'(g))` by corrected
    /// trapezoidal quadrature on the grid.
    pub fn stationary_moments(&self) -> StationaryMoments {
        let dx = self.dx();
        let k = 2.0 / (self.problem.delta * self.problem.delta);
        let m = self.x.len();
        let mid = m / 2;
        let drate: Vec<f64> = self
            .g
            .iter()
            .zip(&self.gp)
            .map(|(&g, &gp)| self.problem.cost.rate_derivative(g) * gp)
            .collect();
        // potential Φ with Φ(0) = 0, Hermite-corrected trapezoid outwards from 0
        let mut phi = vec![0.0; m];
        for i in (0..mid).rev() {
            let inc = 0.5 * dx * (self.rate[i] + self.rate[i + 1])
                + dx * dx / 12.0 * (drate[i] - drate[i + 1]);
            phi[i] = phi[i + 1] - k * inc;
        }
        for i in mid + 1..m {
            phi[i] = phi[m - 1 - i];
        }
        let w: Vec<f64> = phi.iter().map(|p| p.exp()).collect();
        // Euler–Maclaurin corrected trapezoid on [−x_max, 0] (all integrands are even), so the
        // kink of |rate| at 0 costs no accuracy
        let half = |f: &dyn Fn(usize) -> f64, df: &dyn Fn(usize) -> f64| -> f64 {
            let mut s = -0.5 * (f(0) + f(mid));
            for i in 0..=mid {
                s += f(i);
            }
            2.0 * (s * dx + dx * dx / 12.0 * (df(0) - df(mid)))
        };
        let dw = |i: usize| k * self.rate[i] * w[i];
        let z = half(&|i| w[i], &dw);
        // on the left half rate >= 0, so |rate| = rate there
        let turnover = half(&|i| self.rate[i] * w[i], &|i| {
            drate[i] * w[i] + self.rate[i] * dw(i)
        }) / z;
        let variance = half(&|i| self.x[i] * self.x[i] * w[i], &|i| {
            2.0 * self.x[i] * w[i] + self.x[i] * self.x[i] * dw(i)
        }) / z;
        StationaryMoments {
            turnover,
            variance,
            sd_x: variance.sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::calibration::{Frictionless, back_out_from_quadratic};
    use super::super::costs::PowerTerm;
    use super::super::power::NormalisedPower;
    use super::super::turnover::{match_power_with, match_quadratic};
    use super::*;

    fn calibrated() -> (Frictionless, f64, f64) {
        let fr = Frictionless::paper();
        let b = back_out_from_quadratic(1.08e-10, 2.19e10, &fr).unwrap();
        (fr, b.lambda_p, b.shtu)
    }

    fn compare_with_power(q: f64) {
        let (fr, lp, shtu) = calibrated();
        let np = NormalisedPower::solve(q).unwrap();
        let m = match_power_with(&np, lp, shtu, &fr).unwrap();
        let cost = if q == 2.0 {
            Cost::Quadratic { lambda: m.lambda }
        } else {
            Cost::Power {
                lambda: m.lambda,
                q,
            }
        };
        let prob = GeneralProblem {
            cost,
            delta: m.delta,
            gamma_sum: fr.gamma_sum(),
            sigma: fr.sigma,
        };
        let sol = solve_general(&prob, &GeneralOptions::default()).unwrap();
        assert!((sol.x_max * m.c1 - 12.0).abs() < 1e-9);
        let gmax = sol.g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let mut worst_pointwise: f64 = 0.0;
        let mut worst_global: f64 = 0.0;
        for (&x, &g) in sol.x.iter().zip(&sol.g) {
            let want = m.c0 * np.g_tilde(m.c1 * x);
            worst_global = worst_global.max((g - want).abs() / gmax);
            if (m.c1 * x).abs() > 0.05 && (m.c1 * x).abs() < 11.0 {
                worst_pointwise = worst_pointwise.max((g - want).abs() / want.abs());
            }
        }
        assert!(worst_global < 1e-6, "q={q}: global {worst_global:e}");
        assert!(
            worst_pointwise < 1e-6,
            "q={q}: pointwise {worst_pointwise:e}"
        );
        // C = (δ²/2) g'(0) = −A c0 c1 c_q
        let c_want = -0.5 * m.delta * m.delta * m.c0 * m.c1 * np.c;
        assert!(
            (sol.c - c_want).abs() / c_want.abs() < 1e-6,
            "C {} vs {}",
            sol.c,
            c_want
        );
        assert!(sol.max_rel_residual_first_order < 1e-6);
        assert!(sol.max_rel_residual_second_order < 1e-3);
        let mom = sol.stationary_moments();
        assert!(
            (mom.turnover / shtu - 1.0).abs() < 1e-6,
            "turnover {}",
            mom.turnover
        );
        assert!((mom.sd_x / m.sd_x - 1.0).abs() < 1e-6, "sd {}", mom.sd_x);
    }

    #[test]
    fn agrees_with_rescaled_power_q_three_halves() {
        compare_with_power(1.5);
    }

    #[test]
    fn agrees_with_rescaled_power_quadratic() {
        compare_with_power(2.0);
    }

    #[test]
    fn combination_cost_is_odd_decreasing_with_small_residual() {
        let (fr, lp, shtu) = calibrated();
        let quad = match_quadratic(lp, shtu, &fr).unwrap();
        let prob = GeneralProblem {
            cost: Cost::Combination(vec![
                PowerTerm {
                    lambda: quad.lambda,
                    q: 2.0,
                },
                PowerTerm {
                    lambda: 5.2142e-6,
                    q: 1.5,
                },
            ]),
            delta: quad.delta,
            gamma_sum: fr.gamma_sum(),
            sigma: fr.sigma,
        };
        let sol = solve_general(
            &prob,
            &GeneralOptions {
                n_half: 1200,
                ..GeneralOptions::default()
            },
        )
        .unwrap();
        assert!(sol.c < 0.0);
        let gmax = sol.g[0];
        assert!(
            sol.g_at_zero.abs() < 1e-9 * gmax,
            "g(0) = {:e}",
            sol.g_at_zero
        );
        for w in sol.g.windows(2) {
            assert!(w[1] < w[0]);
        }
        let m = sol.g.len();
        for i in 0..m {
            assert_eq!(sol.g[i], -sol.g[m - 1 - i]);
            assert!(sol.x[i] * sol.g[i] <= 0.0);
        }
        assert!(
            sol.max_rel_residual_first_order < 1e-6,
            "{:e}",
            sol.max_rel_residual_first_order
        );
        assert!(
            sol.max_rel_residual_second_order < 1e-2,
            "{:e}",
            sol.max_rel_residual_second_order
        );
        // costlier than either term alone: less turnover than the quadratic model
        let mom = sol.stationary_moments();
        assert!(mom.turnover < quad.turnover && mom.turnover > 0.0);
        assert!(mom.sd_x > quad.sd_x);
        // growth condition (3.6): G*(g(x))/x² → (γ¹+γ²)σ²/4
        let b = 0.25 * fr.gamma_sum() * fr.sigma * fr.sigma;
        let ratio = prob.cost.conjugate(sol.g[0]) / (sol.x[0] * sol.x[0]);
        assert!((ratio / b - 1.0).abs() < 0.05, "ratio {}", ratio / b);
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let prob = GeneralProblem {
            cost: Cost::Power {
                lambda: 1.0,
                q: 0.5,
            },
            delta: 1.0,
            gamma_sum: 1.0,
            sigma: 1.0,
        };
        assert!(solve_general(&prob, &GeneralOptions::default()).is_err());
        let prob = GeneralProblem {
            cost: Cost::Quadratic { lambda: 1.0 },
            delta: -1.0,
            gamma_sum: 1.0,
            sigma: 1.0,
        };
        assert!(solve_general(&prob, &GeneralOptions::default()).is_err());
    }
}
