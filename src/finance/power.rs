//! Appendix B: the normalised power-cost problem. The constant `c_q` by robust shooting
//! (spec §10.1), the normalised solution `g̃` on a grid (extended oddly), the normalised trading
//! rate `H̃`, its potential `Ψ`, the universal integrals `Z_q`, `V_q`, and the rescaling
//! constants `c0`, `c1` of (B.1) that map `g̃` to the physical `g(x) = c0 g̃(c1 x)`.
//!
//! The matching of cost levels to turnover lives in `turnover`; general (non-power) costs are
//! solved in `general`.

use super::ode::{OdeOptions, brent, radau5};
use super::{FinanceError, Result, check_positive, check_q, signed_pow};

/// Default half-width `L` of the normalised domain `[-L, L]`.
pub const DEFAULT_L: f64 = 12.0;

/// Numerical settings of [`NormalisedPower::solve_with`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerSolveOptions {
    /// Half-width `L` of the domain (spec: 12).
    pub l: f64,
    /// Number of grid intervals on `[-L, 0]` (the output grid has `2 n_half + 1` points).
    pub n_half: usize,
    /// Relative tolerance of the Radau integrator.
    pub rtol: f64,
    /// Absolute tolerance of Brent's method on `c`.
    pub shoot_tol: f64,
}

impl Default for PowerSolveOptions {
    fn default() -> Self {
        Self {
            l: DEFAULT_L,
            n_half: 2400,
            rtol: 1e-12,
            shoot_tol: 1e-15,
        }
    }
}

/// The solved normalised power problem for one `q` (depends on `q` only).
#[derive(Debug, Clone, PartialEq)]
pub struct NormalisedPower {
    /// Elasticity q in (1, 2].
    pub q: f64,
    /// The normalised constant `c_q = −g̃'(0)`.
    pub c: f64,
    /// `Z_q = ∫ e^Ψ`.
    pub z: f64,
    /// `V_q = ∫ y² e^Ψ / Z_q`.
    pub v: f64,
    /// `E|Y| = ∫ |y| e^Ψ / Z_q` under the normalised stationary law.
    pub mean_abs_y: f64,
    /// The check `2 I_T / Z` (must equal `2/Z`, spec (B.5)).
    pub turnover_check: f64,
    /// `g̃(0)` of the final solve (should be ~1e-16).
    pub g_at_zero: f64,
    /// Half-width `L` of the grid.
    pub l: f64,
    /// Uniform grid `y_i` on `[-L, L]`.
    pub y: Vec<f64>,
    /// `g̃(y_i)` (odd).
    pub g: Vec<f64>,
    /// `g̃'(y_i)` from the ODE (even).
    pub gp: Vec<f64>,
    /// `H̃(y_i) = sgn(g̃)(|g̃|/q)^{1/(q-1)}` (odd).
    pub h: Vec<f64>,
    /// `Ψ(y_i) = ∫_0^{y_i} H̃` (even, `Ψ(0) = 0`).
    pub psi: Vec<f64>,
}

/// The rescaling constants of (B.1): `g(x) = c0 g̃(c1 x)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rescaling {
    /// Scale of the marginal cost (\$/share).
    pub c0: f64,
    /// Inverse scale of the state (1/share).
    pub c1: f64,
}

/// `p = q/(q−1)` and `K̃ = (q−1) q^{−p}` of the first-order form.
fn constants(q: f64) -> (f64, f64) {
    let p = q / (q - 1.0);
    (p, (q - 1.0) * q.powf(-p))
}

/// Growth-condition asymptote `g̃(y) ≈ q ((y² − c)/(q−1))^{(q−1)/q}` for `y → −∞` (positive).
fn asymptote(q: f64, c: f64, y: f64) -> f64 {
    let a = (y * y - c).max(0.0);
    q * (a / (q - 1.0)).powf((q - 1.0) / q)
}

/// Starting value `g̃(−L)` on the growth branch: the slow manifold
/// `K̃ g^p = L² − c − g'_as` with the leading slope `g'_as = −2L/(p K̃ g₁^{p−1})`,
/// `g₁ = asymptote` (exact for q = 2; the error is forgotten exponentially, spec §10.1 item 2).
fn start_value(q: f64, c: f64, l: f64) -> f64 {
    let (p, k) = constants(q);
    let g1 = q * (l * l / (q - 1.0)).powf((q - 1.0) / q);
    let slope = -2.0 * l / (p * k * g1.powf(p - 1.0));
    ((l * l - c - slope).max(0.0) / k).powf(1.0 / p)
}

/// `H̃` as a function of `g̃`.
fn h_of_g(q: f64, g: f64) -> f64 {
    signed_pow(g / q, 1.0 / (q - 1.0))
}

/// Derivative of `H̃` with respect to `g̃`.
fn dh_dg(q: f64, g: f64) -> f64 {
    let a = 1.0 / (q - 1.0);
    if q == 2.0 {
        return 0.5;
    }
    a / q * (g.abs() / q).powf(a - 1.0)
}

fn options(rtol: f64) -> OdeOptions {
    OdeOptions {
        rtol,
        atol: rtol * 1e-3,
        h0: Some(1e-4),
        h_max: 0.5,
        max_steps: 2_000_000,
    }
}

/// Shooting miss `F(c) = g̃(0; c)`: integrates the sign-preserving first-order form from the
/// growth branch at `y = −L` (see `start_value`) forward to 0 (spec §10.1 items 1–4).
pub fn shooting_miss(q: f64, c: f64, l: f64, rtol: f64) -> Result<f64> {
    check_q(q)?;
    check_positive("c", c)?;
    check_positive("L", l)?;
    let (p, k) = constants(q);
    let g0 = start_value(q, c, l);
    let sol = radau5(
        |y, s, d| d[0] = y * y - c - k * signed_pow(s[0], p),
        |_, s, j| j[0] = -k * p * s[0].abs().powf(p - 1.0),
        -l,
        &[g0],
        &[0.0],
        &options(rtol),
    )?;
    Ok(sol.last()[0])
}

/// Finds `c_q` by Brent on `F(c) = g̃(0; c)` over the bracket `[0.5, 3.5]`.
pub fn solve_c(q: f64, l: f64, rtol: f64, tol: f64) -> Result<f64> {
    check_q(q)?;
    let mut err = None;
    let c = brent(
        |c| match shooting_miss(q, c, l, rtol) {
            Ok(v) => v,
            Err(e) => {
                err = Some(e);
                f64::NAN
            }
        },
        0.5,
        3.5,
        tol,
    );
    if let Some(e) = err {
        return Err(e);
    }
    c
}

impl NormalisedPower {
    /// Solves the normalised problem for `q` with the default settings (L = 12, rtol 1e-12).
    pub fn solve(q: f64) -> Result<Self> {
        Self::solve_with(q, &PowerSolveOptions::default())
    }

    /// Solves the normalised problem for `q`: shooting for `c_q`, then the grid and integrals.
    pub fn solve_with(q: f64, o: &PowerSolveOptions) -> Result<Self> {
        check_q(q)?;
        check_positive("L", o.l)?;
        check_positive("rtol", o.rtol)?;
        if o.n_half < 4 {
            return Err(FinanceError::InvalidConfig(format!(
                "n_half must be at least 4, got {}",
                o.n_half
            )));
        }
        let l = o.l;
        let c = solve_c(q, l, o.rtol, o.shoot_tol.max(0.0))?;
        let (p, k) = constants(q);
        let g0 = start_value(q, c, l);
        // state: [g, Ψ, I0, I1, I2, IT]
        let rhs = |y: f64, s: &[f64], d: &mut [f64]| {
            let g = s[0];
            d[0] = y * y - c - k * g.abs().powf(p);
            let h = h_of_g(q, g);
            let e = s[1].exp();
            d[1] = h;
            d[2] = e;
            d[3] = y.abs() * e;
            d[4] = y * y * e;
            d[5] = h.abs() * e;
        };
        let jac = |y: f64, s: &[f64], j: &mut [f64]| {
            j.fill(0.0);
            let g = s[0];
            let h = h_of_g(q, g);
            let dh = dh_dg(q, g);
            let e = s[1].exp();
            j[0] = -k * p * g.signum() * g.abs().powf(p - 1.0);
            j[6] = dh;
            j[6 * 2 + 1] = e;
            j[6 * 3 + 1] = y.abs() * e;
            j[6 * 4 + 1] = y * y * e;
            j[6 * 5] = g.signum() * dh * e;
            j[6 * 5 + 1] = h.abs() * e;
        };
        // pass 1: the potential drop Ψ(0) − Ψ(−L), so that e^Ψ stays <= 1 in pass 2
        let drop = radau5(
            |y, s, d| {
                d[0] = y * y - c - k * s[0].abs().powf(p);
                d[1] = h_of_g(q, s[0]);
            },
            |_, s, j| {
                j[0] = -k * p * s[0].signum() * s[0].abs().powf(p - 1.0);
                j[1] = 0.0;
                j[2] = dh_dg(q, s[0]);
                j[3] = 0.0;
            },
            -l,
            &[g0, 0.0],
            &[0.0],
            &options(o.rtol),
        )?
        .last()[1];
        let n = o.n_half;
        let dy = l / n as f64;
        let grid: Vec<f64> = (0..=n)
            .map(|i| if i == n { 0.0 } else { -l + i as f64 * dy })
            .collect();
        let sol = radau5(
            rhs,
            jac,
            -l,
            &[g0, -drop, 0.0, 0.0, 0.0, 0.0],
            &grid[1..],
            &options(o.rtol),
        )?;
        let mut half_g = vec![g0];
        let mut half_psi = vec![-drop];
        for s in &sol.y {
            half_g.push(s[0]);
            half_psi.push(s[1]);
        }
        let end = sol.last();
        let shift = end[1];
        let scale = (-shift).exp();
        let i0 = end[2] * scale;
        let i1 = end[3] * scale;
        let i2 = end[4] * scale;
        let it = end[5] * scale;
        let z = 2.0 * i0;
        let v = i2 / i0;
        let g_at_zero = end[0];
        // odd/even extension onto [-L, L]
        let m = 2 * n + 1;
        let mut y = vec![0.0; m];
        let mut g = vec![0.0; m];
        let mut gp = vec![0.0; m];
        let mut h = vec![0.0; m];
        let mut psi = vec![0.0; m];
        for i in 0..=n {
            let yi = grid[i];
            let gi = if i == n { 0.0 } else { half_g[i] };
            let di = yi * yi - c - k * gi.abs().powf(p);
            let hi = h_of_g(q, gi);
            let pi = half_psi[i] - shift;
            let (a, b) = (i, m - 1 - i);
            y[a] = yi;
            y[b] = -yi;
            g[a] = gi;
            g[b] = -gi;
            gp[a] = di;
            gp[b] = di;
            h[a] = hi;
            h[b] = -hi;
            psi[a] = pi;
            psi[b] = pi;
        }
        Ok(Self {
            q,
            c,
            z,
            v,
            mean_abs_y: 2.0 * i1 / z,
            turnover_check: 2.0 * it / z,
            g_at_zero,
            l,
            y,
            g,
            gp,
            h,
            psi,
        })
    }

    /// Grid spacing of the stored solution.
    pub fn dy(&self) -> f64 {
        self.y[1] - self.y[0]
    }

    fn locate(&self, y: f64) -> (usize, f64, f64) {
        let dy = self.dy();
        let last = self.y.len() - 2;
        let pos = (y + self.l) / dy;
        let i = (pos.floor().max(0.0) as usize).min(last);
        let t = (y - self.y[i]) / dy;
        (i, t, dy)
    }

    fn hermite(&self, vals: &[f64], ders: &[f64], y: f64) -> f64 {
        let (i, t, dy) = self.locate(y);
        let (t2, t3) = (t * t, t * t * t);
        let h00 = 2.0 * t3 - 3.0 * t2 + 1.0;
        let h10 = t3 - 2.0 * t2 + t;
        let h01 = -2.0 * t3 + 3.0 * t2;
        let h11 = t3 - t2;
        h00 * vals[i] + h10 * dy * ders[i] + h01 * vals[i + 1] + h11 * dy * ders[i + 1]
    }

    /// `g̃(y)` by cubic Hermite interpolation (growth asymptote outside `[-L, L]`).
    pub fn g_tilde(&self, y: f64) -> f64 {
        if y.abs() > self.l {
            return -y.signum() * asymptote(self.q, self.c, y);
        }
        self.hermite(&self.g, &self.gp, y)
    }

    /// `g̃'(y)` from the first-order ODE evaluated at the interpolated `g̃(y)`.
    pub fn g_tilde_prime(&self, y: f64) -> f64 {
        let (p, k) = constants(self.q);
        y * y - self.c - k * self.g_tilde(y).abs().powf(p)
    }

    /// `H̃(y) = (G̃*)'(g̃(y))`, the normalised trading rate (odd, positive for y < 0).
    pub fn h_tilde(&self, y: f64) -> f64 {
        h_of_g(self.q, self.g_tilde(y))
    }

    /// `Ψ(y) = ∫_0^y H̃` (even; beyond `L` continued linearly with slope `−|H̃(L)|`, a bound).
    pub fn psi(&self, y: f64) -> f64 {
        let a = y.abs();
        if a > self.l {
            let n = self.psi.len() - 1;
            return self.psi[n] - (a - self.l) * self.h[0].abs();
        }
        self.hermite(&self.psi, &self.h, -a)
    }

    /// Normalised stationary density `e^{Ψ(y)}/Z_q`.
    pub fn density(&self, y: f64) -> f64 {
        self.psi(y).exp() / self.z
    }

    /// Physical trading rate `(δ² c1/2) H̃(c1 x)` of (B.3) at state `x`.
    pub fn rate(&self, x: f64, delta: f64, c1: f64) -> f64 {
        0.5 * delta * delta * c1 * self.h_tilde(c1 * x)
    }

    /// Physical stationary density `c1 e^{Ψ(c1 x)}/Z_q` of (B.4).
    pub fn physical_density(&self, x: f64, c1: f64) -> f64 {
        c1 * self.density(c1 * x)
    }

    /// `R_q = 2 Z_q² / V_q` (4π at q = 2, → 24 as q → 1).
    pub fn r_q(&self) -> f64 {
        2.0 * self.z * self.z / self.v
    }
}

/// The rescaling constants (B.1) for `G(v) = λ|v|^q/q`, noise loading `δ`, `γ¹+γ²` and `σ`.
pub fn rescaling(q: f64, lambda: f64, delta: f64, gamma_sum: f64, sigma: f64) -> Result<Rescaling> {
    check_q(q)?;
    check_positive("lambda", lambda)?;
    check_positive("delta", delta)?;
    check_positive("gamma1 + gamma2", gamma_sum)?;
    check_positive("sigma", sigma)?;
    let gt = 0.5 * gamma_sum;
    let s2 = sigma * sigma;
    let e = 1.0 / (q + 2.0);
    let c0 = q.powf(-3.0 * e)
        * delta.powf(4.0 * (q - 1.0) * e)
        * lambda.powf(3.0 * e)
        * (gt * s2 / 8.0).powf((q - 1.0) * e);
    let c1 = 2f64.powf((q - 1.0) * e)
        * delta.powf(-2.0 * q * e)
        * lambda.powf(-e)
        * (q * gt * s2).powf(e);
    Ok(Rescaling { c0, c1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn q15() -> &'static NormalisedPower {
        static S: OnceLock<NormalisedPower> = OnceLock::new();
        S.get_or_init(|| NormalisedPower::solve(1.5).unwrap())
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    #[test]
    fn q_three_halves_constants() {
        let s = q15();
        assert!((s.c - 1.77113319732).abs() < 1e-10, "c = {:.13}", s.c);
        assert!(rel(s.z, 2.47695742917) < 1e-9, "Z = {:.12}", s.z);
        assert!(rel(s.v, 0.759057084567) < 1e-9, "V = {:.12}", s.v);
        assert!(rel(s.mean_abs_y, 0.7150438584) < 1e-9);
        assert!(rel(s.r_q(), 16.165630308) < 1e-9);
        // 2 I_T / Z = 2 / Z, spec (B.5)
        assert!((s.turnover_check * s.z - 2.0).abs() < 1e-10);
        assert!(s.g_at_zero.abs() < 5e-12, "g(0) = {:e}", s.g_at_zero);
        assert!((s.g_tilde_prime(0.0) + s.c).abs() < 1e-12);
    }

    #[test]
    fn q_three_halves_sample_values() {
        let s = q15();
        for (y, want) in [
            (-0.5, 0.855876316),
            (-1.0, 1.603618803),
            (-2.0, 2.814831351),
            (-4.0, 4.665782525),
        ] {
            assert!(
                (s.g_tilde(y) - want).abs() < 2e-9,
                "g({y}) = {}",
                s.g_tilde(y)
            );
            assert!((s.g_tilde(-y) + want).abs() < 2e-9);
        }
        // interpolation between grid points agrees with the ODE derivative
        let (a, b) = (-1.0012345, -1.0012345 + 1e-5);
        let fd = (s.g_tilde(b) - s.g_tilde(a)) / 1e-5;
        assert!((fd - s.g_tilde_prime(a + 5e-6)).abs() < 1e-6);
    }

    #[test]
    fn code_constant_misses_zero() {
        let miss = shooting_miss(1.5, 1.7714393, DEFAULT_L, 1e-12).unwrap();
        assert!((miss + 3.79e-4).abs() < 2e-5, "miss = {miss:e}");
    }

    #[test]
    fn quadratic_case_is_exact() {
        let s = NormalisedPower::solve(2.0).unwrap();
        assert!((s.c - 2.0).abs() < 1e-11);
        assert!(rel(s.z, (2.0 * std::f64::consts::PI).sqrt()) < 1e-10);
        assert!((s.v - 1.0).abs() < 1e-10);
        assert!((s.g_tilde(-1.3) - 2.6).abs() < 1e-10);
        assert!((s.psi(1.5) + 1.125).abs() < 1e-10);
        assert!(rel(s.r_q(), 4.0 * std::f64::consts::PI) < 1e-9);
    }

    #[test]
    fn near_proportional_table_rows() {
        for (q, c, z, v) in [
            (1.2, 1.5605552385, 2.4200076377, 0.5852082144),
            (1.1, 1.4620519842, 2.3789775504, 0.5187926396),
            (1.05, 1.4000539272, 2.3469531658, 0.4819857782),
        ] {
            let s = NormalisedPower::solve(q).unwrap();
            assert!(rel(s.c, c) < 1e-8, "q={q} c={:.11}", s.c);
            assert!(rel(s.z, z) < 1e-8, "q={q} Z={:.11}", s.z);
            assert!(rel(s.v, v) < 1e-8, "q={q} V={:.11}", s.v);
            assert!((s.turnover_check * s.z - 2.0).abs() < 1e-8);
        }
    }

    #[test]
    fn shapes_are_odd_and_decreasing() {
        let s = q15();
        for w in s.g.windows(2) {
            assert!(w[1] < w[0]);
        }
        for i in 0..s.y.len() {
            let j = s.y.len() - 1 - i;
            assert_eq!(s.g[i], -s.g[j]);
            assert_eq!(s.psi[i], s.psi[j]);
        }
        assert!(s.density(0.0) > s.density(1.0));
        assert!(s.h_tilde(-2.0) > 0.0 && s.h_tilde(2.0) < 0.0);
    }

    #[test]
    fn rescaling_constants_for_published_pair() {
        let sigma = 1.88;
        let gamma_sum = 8.31e-14 * 1.5 + 8.31e-14 * 3.0;
        let delta = 2.33e10 / sigma;
        let r = rescaling(1.5, 5.22e-6, delta, gamma_sum, sigma).unwrap();
        assert!(rel(r.c0, 0.16591922668) < 1e-10, "c0 = {:.11}", r.c0);
        assert!(rel(r.c1, 2.95984380947e-11) < 1e-10, "c1 = {:e}", r.c1);
        // defining identities A c0 c1³ = B and c0^{1/(q-1)} = A c1 (λ/q)^{1/(q-1)}
        let a = delta * delta / 2.0;
        let b = gamma_sum * sigma * sigma / 4.0;
        assert!(rel(a * r.c0 * r.c1.powi(3), b) < 1e-13);
        assert!(rel(r.c0.powf(2.0), a * r.c1 * (5.22e-6f64 / 1.5).powf(2.0)) < 1e-13);
        // (3.5) residual of g = c0 g̃(c1 x) with the exact rate (G*)'(g)
        let s = q15();
        for &x in &[-5e10, -1e10, 2e10] {
            let y = r.c1 * x;
            let g1 = r.c0 * r.c1 * s.g_tilde_prime(y);
            let gpp_tilde = 2.0 * y - h_of_g(1.5, s.g_tilde(y)) * s.g_tilde_prime(y);
            let g2 = r.c0 * r.c1 * r.c1 * gpp_tilde;
            let gval = r.c0 * s.g_tilde(y);
            let rate = signed_pow(gval / 5.22e-6, 2.0);
            let res = a * g2 + rate * g1 - 2.0 * b * x;
            let scale = (a * g2).abs() + (rate * g1).abs() + (2.0 * b * x).abs();
            assert!(res.abs() / scale < 1e-12, "res {}", res / scale);
        }
    }

    #[test]
    fn bad_q_is_rejected() {
        assert!(NormalisedPower::solve(1.0).is_err());
        assert!(NormalisedPower::solve(2.0001).is_err());
        assert!(rescaling(1.5, -1.0, 1.0, 1.0, 1.0).is_err());
    }
}
