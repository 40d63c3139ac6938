//! Numerical building blocks: an adaptive Dormand–Prince 5(4) integrator with dense output,
//! an adaptive 3-stage Radau IIA (order 5, L-stable) integrator with an analytic Jacobian for
//! stiff problems (the shooting problem for q → 1), and Brent's root finder.
//!
//! Both integrators work on small systems `y' = f(t, y)` stored in `&[f64]` and return the
//! solution on a caller-supplied output grid. Nothing model-specific lives here.

// Stage and matrix loops index several arrays in lock-step; index loops are the clearest form.
#![allow(clippy::needless_range_loop)]

use super::{FinanceError, Result};

/// Tolerances and limits shared by the integrators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdeOptions {
    /// Relative tolerance of the local error.
    pub rtol: f64,
    /// Absolute tolerance of the local error.
    pub atol: f64,
    /// Initial step size (absolute value); `None` picks one automatically.
    pub h0: Option<f64>,
    /// Largest allowed step (absolute value).
    pub h_max: f64,
    /// Maximum number of accepted plus rejected steps.
    pub max_steps: usize,
}

impl Default for OdeOptions {
    fn default() -> Self {
        Self {
            rtol: 1e-10,
            atol: 1e-12,
            h0: None,
            h_max: f64::INFINITY,
            max_steps: 1_000_000,
        }
    }
}

/// Solution of an initial value problem on the requested output grid.
#[derive(Debug, Clone, PartialEq)]
pub struct OdeSolution {
    /// The output times (as requested).
    pub t: Vec<f64>,
    /// The state at each output time.
    pub y: Vec<Vec<f64>>,
    /// Number of accepted steps.
    pub accepted: usize,
    /// Number of rejected steps.
    pub rejected: usize,
}

impl OdeSolution {
    /// The final state (at the last output time).
    pub fn last(&self) -> &[f64] {
        self.y.last().map(|v| v.as_slice()).unwrap_or(&[])
    }
}

fn numerical(what: &'static str, detail: String) -> FinanceError {
    FinanceError::Numerical { what, detail }
}

fn check_grid(t0: f64, t_out: &[f64]) -> Result<f64> {
    let Some(&t_end) = t_out.last() else {
        return Err(FinanceError::InvalidConfig("empty ODE output grid".into()));
    };
    if !t0.is_finite() || !t_end.is_finite() {
        return Err(FinanceError::InvalidConfig(
            "non-finite ODE time interval".into(),
        ));
    }
    let dir = if t_end >= t0 { 1.0 } else { -1.0 };
    let mut prev = t0;
    for &t in t_out {
        if !t.is_finite() || (t - prev) * dir < 0.0 {
            return Err(FinanceError::InvalidConfig(
                "ODE output grid must be monotone in the direction of integration".into(),
            ));
        }
        prev = t;
    }
    Ok(dir)
}

fn err_norm(err: &[f64], y0: &[f64], y1: &[f64], opts: &OdeOptions) -> f64 {
    let n = err.len().max(1) as f64;
    let s: f64 = err
        .iter()
        .zip(y0.iter().zip(y1))
        .map(|(e, (a, b))| {
            let sc = opts.atol + opts.rtol * a.abs().max(b.abs());
            (e / sc) * (e / sc)
        })
        .sum();
    (s / n).sqrt()
}

fn initial_step(f0: &[f64], y0: &[f64], span: f64, opts: &OdeOptions, order: f64) -> f64 {
    if let Some(h) = opts.h0 {
        return h.abs().min(span).min(opts.h_max);
    }
    let d0 = err_norm(y0, y0, y0, opts);
    let d1 = err_norm(f0, y0, y0, opts);
    let h = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6 * span.max(1e-300)
    } else {
        0.01 * d0 / d1
    };
    let h = h.min(span * 0.1).min(opts.h_max);
    // keep the first step modest for high-accuracy runs
    h.min(span * opts.rtol.powf(1.0 / order).max(1e-6))
        .max(1e-12 * span)
}

// Dormand–Prince 5(4) coefficients.
const C2: f64 = 1.0 / 5.0;
const C3: f64 = 3.0 / 10.0;
const C4: f64 = 4.0 / 5.0;
const C5: f64 = 8.0 / 9.0;
const A21: f64 = 1.0 / 5.0;
const A31: f64 = 3.0 / 40.0;
const A32: f64 = 9.0 / 40.0;
const A41: f64 = 44.0 / 45.0;
const A42: f64 = -56.0 / 15.0;
const A43: f64 = 32.0 / 9.0;
const A51: f64 = 19372.0 / 6561.0;
const A52: f64 = -25360.0 / 2187.0;
const A53: f64 = 64448.0 / 6561.0;
const A54: f64 = -212.0 / 729.0;
const A61: f64 = 9017.0 / 3168.0;
const A62: f64 = -355.0 / 33.0;
const A63: f64 = 46732.0 / 5247.0;
const A64: f64 = 49.0 / 176.0;
const A65: f64 = -5103.0 / 18656.0;
const A71: f64 = 35.0 / 384.0;
const A73: f64 = 500.0 / 1113.0;
const A74: f64 = 125.0 / 192.0;
const A75: f64 = -2187.0 / 6784.0;
const A76: f64 = 11.0 / 84.0;
const E1: f64 = 71.0 / 57600.0;
const E3: f64 = -71.0 / 16695.0;
const E4: f64 = 71.0 / 1920.0;
const E5: f64 = -17253.0 / 339200.0;
const E6: f64 = 22.0 / 525.0;
const E7: f64 = -1.0 / 40.0;
const D1: f64 = -12715105075.0 / 11282082432.0;
const D3: f64 = 87487479700.0 / 32700410799.0;
const D4: f64 = -10690763975.0 / 1880347072.0;
const D5: f64 = 701980252875.0 / 199316789632.0;
const D6: f64 = -1453857185.0 / 822651844.0;
const D7: f64 = 69997945.0 / 29380423.0;

/// Adaptive Dormand–Prince 5(4) with its 4th-order dense output, reported at `t_out`.
///
/// `f(t, y, dy)` writes the derivative into `dy`. `t_out` must be monotone in the direction from
/// `t0` to its last element (which is the end of integration); it may run backwards.
pub fn dopri5<F>(
    mut f: F,
    t0: f64,
    y0: &[f64],
    t_out: &[f64],
    opts: &OdeOptions,
) -> Result<OdeSolution>
where
    F: FnMut(f64, &[f64], &mut [f64]),
{
    let dir = check_grid(t0, t_out)?;
    let n = y0.len();
    let t_end = t_out[t_out.len() - 1];
    let span = (t_end - t0).abs();
    let mut sol = OdeSolution {
        t: t_out.to_vec(),
        y: Vec::with_capacity(t_out.len()),
        accepted: 0,
        rejected: 0,
    };
    let mut next_out = 0;
    while next_out < t_out.len() && t_out[next_out] == t0 {
        sol.y.push(y0.to_vec());
        next_out += 1;
    }
    if next_out == t_out.len() {
        return Ok(sol);
    }
    let mut t = t0;
    let mut y = y0.to_vec();
    let mut k = vec![vec![0.0; n]; 7];
    let mut ytmp = vec![0.0; n];
    let mut ynew = vec![0.0; n];
    let mut err = vec![0.0; n];
    f(t, &y, &mut k[0]);
    let mut h = initial_step(&k[0], &y, span, opts, 5.0);
    let mut steps = 0usize;
    while next_out < t_out.len() {
        steps += 1;
        if steps > opts.max_steps {
            return Err(numerical(
                "dopri5",
                format!("more than {} steps at t = {t}", opts.max_steps),
            ));
        }
        h = h.min(opts.h_max);
        let mut last = false;
        if h >= (t_end - t).abs() {
            h = (t_end - t).abs();
            last = true;
        }
        let hs = h * dir;
        macro_rules! stage {
            ($dst:expr, $c:expr, $($a:expr => $ki:expr),*) => {{
                for i in 0..n {
                    ytmp[i] = y[i] + hs * (0.0 $(+ $a * k[$ki][i])*);
                }
                let (_, rest) = k.split_at_mut($dst);
                f(t + $c * hs, &ytmp, &mut rest[0]);
            }};
        }
        stage!(1, C2, A21 => 0);
        stage!(2, C3, A31 => 0, A32 => 1);
        stage!(3, C4, A41 => 0, A42 => 1, A43 => 2);
        stage!(4, C5, A51 => 0, A52 => 1, A53 => 2, A54 => 3);
        stage!(5, 1.0, A61 => 0, A62 => 1, A63 => 2, A64 => 3, A65 => 4);
        for i in 0..n {
            ynew[i] = y[i]
                + hs * (A71 * k[0][i]
                    + A73 * k[2][i]
                    + A74 * k[3][i]
                    + A75 * k[4][i]
                    + A76 * k[5][i]);
        }
        {
            let (_, rest) = k.split_at_mut(6);
            f(t + hs, &ynew, &mut rest[0]);
        }
        for i in 0..n {
            err[i] = hs
                * (E1 * k[0][i]
                    + E3 * k[2][i]
                    + E4 * k[3][i]
                    + E5 * k[4][i]
                    + E6 * k[5][i]
                    + E7 * k[6][i]);
        }
        let en = err_norm(&err, &y, &ynew, opts);
        if !en.is_finite() {
            sol.rejected += 1;
            h *= 0.2;
            if h < 1e-14 * span.max(f64::MIN_POSITIVE) {
                return Err(numerical("dopri5", format!("non-finite state at t = {t}")));
            }
            continue;
        }
        if en <= 1.0 {
            sol.accepted += 1;
            let t_new = if last { t_end } else { t + hs };
            // dense output for every requested point inside (t, t_new]
            while next_out < t_out.len() && (t_out[next_out] - t_new) * dir <= 0.0 {
                let theta = if hs == 0.0 {
                    1.0
                } else {
                    ((t_out[next_out] - t) / hs).clamp(0.0, 1.0)
                };
                let th1 = 1.0 - theta;
                let mut out = vec![0.0; n];
                for (i, o) in out.iter_mut().enumerate() {
                    let r1 = y[i];
                    let r2 = ynew[i] - y[i];
                    let r3 = hs * k[0][i] - r2;
                    let r4 = r2 - hs * k[6][i] - r3;
                    let r5 = hs
                        * (D1 * k[0][i]
                            + D3 * k[2][i]
                            + D4 * k[3][i]
                            + D5 * k[4][i]
                            + D6 * k[5][i]
                            + D7 * k[6][i]);
                    *o = r1 + theta * (r2 + th1 * (r3 + theta * (r4 + th1 * r5)));
                }
                sol.y.push(out);
                next_out += 1;
            }
            t = t_new;
            y.copy_from_slice(&ynew);
            let k6 = k[6].clone();
            k[0].copy_from_slice(&k6);
            let fac = if en == 0.0 {
                5.0
            } else {
                (0.9 * en.powf(-0.2)).clamp(0.2, 5.0)
            };
            h *= fac;
        } else {
            sol.rejected += 1;
            h *= (0.9 * en.powf(-0.2)).clamp(0.2, 1.0);
        }
        if h < 1e-15 * span.max(f64::MIN_POSITIVE) && next_out < t_out.len() {
            return Err(numerical(
                "dopri5",
                format!("step size underflow at t = {t}"),
            ));
        }
    }
    Ok(sol)
}

// Radau IIA, 3 stages, order 5.
const S6: f64 = 2.449_489_742_783_178;
const RC: [f64; 3] = [(4.0 - S6) / 10.0, (4.0 + S6) / 10.0, 1.0];
const RA: [[f64; 3]; 3] = [
    [
        (88.0 - 7.0 * S6) / 360.0,
        (296.0 - 169.0 * S6) / 1800.0,
        (-2.0 + 3.0 * S6) / 225.0,
    ],
    [
        (296.0 + 169.0 * S6) / 1800.0,
        (88.0 + 7.0 * S6) / 360.0,
        (-2.0 - 3.0 * S6) / 225.0,
    ],
    [(16.0 - S6) / 36.0, (16.0 + S6) / 36.0, 1.0 / 9.0],
];

/// Solves the dense system `a x = b` (row-major `m × m`) in place by Gaussian elimination with
/// partial pivoting; returns `false` for a (numerically) singular matrix.
pub fn solve_dense(a: &mut [f64], b: &mut [f64], m: usize) -> bool {
    for col in 0..m {
        let mut piv = col;
        let mut best = a[col * m + col].abs();
        for r in col + 1..m {
            let v = a[r * m + col].abs();
            if v > best {
                best = v;
                piv = r;
            }
        }
        if best == 0.0 || !best.is_finite() {
            return false;
        }
        if piv != col {
            for c in 0..m {
                a.swap(col * m + c, piv * m + c);
            }
            b.swap(col, piv);
        }
        let d = a[col * m + col];
        for r in col + 1..m {
            let fct = a[r * m + col] / d;
            if fct != 0.0 {
                for c in col..m {
                    a[r * m + c] -= fct * a[col * m + c];
                }
                b[r] -= fct * b[col];
            }
        }
    }
    for col in (0..m).rev() {
        let mut s = b[col];
        for c in col + 1..m {
            s -= a[col * m + c] * b[c];
        }
        b[col] = s / a[col * m + col];
    }
    true
}

struct RadauWork {
    z: Vec<f64>,
    fz: Vec<f64>,
    jac: Vec<f64>,
    mat: Vec<f64>,
    rhs: Vec<f64>,
    ys: Vec<f64>,
}

/// One Radau IIA step of (signed) size `hs` from `(t, y)`; `None` when Newton fails.
fn radau_step<F, J>(
    f: &mut F,
    jacf: &mut J,
    t: f64,
    y: &[f64],
    hs: f64,
    opts: &OdeOptions,
    w: &mut RadauWork,
) -> Option<Vec<f64>>
where
    F: FnMut(f64, &[f64], &mut [f64]),
    J: FnMut(f64, &[f64], &mut [f64]),
{
    let n = y.len();
    let m = 3 * n;
    // initial guess: explicit Euler to each collocation point
    f(t, y, &mut w.fz[..n]);
    for s in 0..3 {
        for i in 0..n {
            w.z[s * n + i] = RC[s] * hs * w.fz[i];
        }
    }
    let mut prev_norm = f64::INFINITY;
    for iter in 0..20 {
        for s in 0..3 {
            for i in 0..n {
                w.ys[i] = y[i] + w.z[s * n + i];
            }
            let ts = t + RC[s] * hs;
            f(ts, &w.ys[..n], &mut w.fz[s * n..(s + 1) * n]);
            jacf(ts, &w.ys[..n], &mut w.jac[s * n * n..(s + 1) * n * n]);
        }
        // residual and Newton matrix
        for s in 0..3 {
            for i in 0..n {
                let mut acc = 0.0;
                for (r, &a) in RA[s].iter().enumerate() {
                    acc += a * w.fz[r * n + i];
                }
                w.rhs[s * n + i] = -(w.z[s * n + i] - hs * acc);
            }
        }
        for s in 0..3 {
            for i in 0..n {
                let row = s * n + i;
                for r in 0..3 {
                    for j in 0..n {
                        let col = r * n + j;
                        let id = if row == col { 1.0 } else { 0.0 };
                        w.mat[row * m + col] = id - hs * RA[s][r] * w.jac[r * n * n + i * n + j];
                    }
                }
            }
        }
        if !solve_dense(&mut w.mat, &mut w.rhs, m) {
            return None;
        }
        let mut norm = 0.0;
        for s in 0..3 {
            for i in 0..n {
                let d = w.rhs[s * n + i];
                w.z[s * n + i] += d;
                let sc = opts.atol + opts.rtol * (y[i].abs() + w.z[s * n + i].abs());
                norm += (d / sc) * (d / sc);
            }
        }
        let norm = (norm / m as f64).sqrt();
        if !norm.is_finite() {
            return None;
        }
        if norm < 1e-6 || (iter > 0 && norm < 1e-3 && norm < 0.1 * prev_norm) {
            let mut out = vec![0.0; n];
            for (i, o) in out.iter_mut().enumerate() {
                *o = y[i] + w.z[2 * n + i];
            }
            return out.iter().all(|v| v.is_finite()).then_some(out);
        }
        if iter > 3 && norm > prev_norm {
            return None;
        }
        prev_norm = norm;
    }
    None
}

/// Adaptive 3-stage Radau IIA (order 5, L-stable) with full Newton on the analytic Jacobian and
/// step-doubling error control; steps land exactly on every point of `t_out`.
///
/// `jac(t, y, j)` writes `∂f_i/∂y_j` into `j[i * n + j]` (row-major `n × n`). Meant for small,
/// possibly stiff systems such as the shooting problem of Appendix B for q close to 1.
pub fn radau5<F, J>(
    mut f: F,
    mut jac: J,
    t0: f64,
    y0: &[f64],
    t_out: &[f64],
    opts: &OdeOptions,
) -> Result<OdeSolution>
where
    F: FnMut(f64, &[f64], &mut [f64]),
    J: FnMut(f64, &[f64], &mut [f64]),
{
    let dir = check_grid(t0, t_out)?;
    let n = y0.len();
    let m = 3 * n;
    let t_end = t_out[t_out.len() - 1];
    let span = (t_end - t0).abs();
    let mut w = RadauWork {
        z: vec![0.0; m],
        fz: vec![0.0; m],
        jac: vec![0.0; 3 * n * n],
        mat: vec![0.0; m * m],
        rhs: vec![0.0; m],
        ys: vec![0.0; n],
    };
    let mut sol = OdeSolution {
        t: t_out.to_vec(),
        y: Vec::with_capacity(t_out.len()),
        accepted: 0,
        rejected: 0,
    };
    let mut next_out = 0;
    while next_out < t_out.len() && t_out[next_out] == t0 {
        sol.y.push(y0.to_vec());
        next_out += 1;
    }
    let mut t = t0;
    let mut y = y0.to_vec();
    let mut f0 = vec![0.0; n];
    f(t, &y, &mut f0);
    let mut h = initial_step(&f0, &y, span, opts, 6.0);
    let h_min = 1e-14 * span.max(f64::MIN_POSITIVE);
    let mut steps = 0usize;
    while next_out < t_out.len() {
        steps += 1;
        if steps > opts.max_steps {
            return Err(numerical(
                "radau5",
                format!("more than {} steps at t = {t}", opts.max_steps),
            ));
        }
        h = h.min(opts.h_max);
        let target = t_out[next_out];
        let remaining = (target - t).abs();
        let (h_try, hits) = if h >= remaining * (1.0 - 1e-12) {
            (remaining, true)
        } else {
            (h, false)
        };
        let hs = h_try * dir;
        let big = radau_step(&mut f, &mut jac, t, &y, hs, opts, &mut w);
        let half = big.as_ref().and_then(|_| {
            radau_step(&mut f, &mut jac, t, &y, 0.5 * hs, opts, &mut w).and_then(|ym| {
                radau_step(&mut f, &mut jac, t + 0.5 * hs, &ym, 0.5 * hs, opts, &mut w)
            })
        });
        let (Some(yb), Some(ys)) = (big, half) else {
            sol.rejected += 1;
            h = h_try * 0.25;
            if h < h_min {
                return Err(numerical(
                    "radau5",
                    format!("Newton failure with step {h_try:e} at t = {t}"),
                ));
            }
            continue;
        };
        let diff: Vec<f64> = ys.iter().zip(&yb).map(|(a, b)| (a - b) / 31.0).collect();
        let en = err_norm(&diff, &y, &ys, opts);
        if en <= 1.0 {
            sol.accepted += 1;
            t = if hits { target } else { t + hs };
            y = ys;
            if hits {
                while next_out < t_out.len() && t_out[next_out] == target {
                    sol.y.push(y.clone());
                    next_out += 1;
                }
            }
            let fac = if en == 0.0 {
                4.0
            } else {
                (0.9 * en.powf(-1.0 / 6.0)).clamp(0.2, 4.0)
            };
            // a step shortened to hit an output point must not shrink the natural step
            h = if hits {
                h.max(h_try * fac)
            } else {
                h_try * fac
            };
        } else {
            sol.rejected += 1;
            h = h_try * (0.9 * en.powf(-1.0 / 6.0)).clamp(0.1, 0.9);
            if h < h_min {
                return Err(numerical(
                    "radau5",
                    format!("step size underflow at t = {t}"),
                ));
            }
        }
    }
    Ok(sol)
}

/// Brent's method for a root of `f` in `[a, b]` (which must bracket a sign change), to
/// absolute tolerance `tol` in the argument.
pub fn brent<F: FnMut(f64) -> f64>(mut f: F, a: f64, b: f64, tol: f64) -> Result<f64> {
    let (mut a, mut b) = (a, b);
    let mut fa = f(a);
    let mut fb = f(b);
    if !fa.is_finite() || !fb.is_finite() {
        return Err(numerical(
            "brent",
            format!("non-finite function value at the bracket [{a}, {b}]"),
        ));
    }
    if fa == 0.0 {
        return Ok(a);
    }
    if fb == 0.0 {
        return Ok(b);
    }
    if fa.signum() == fb.signum() {
        return Err(numerical(
            "brent",
            format!("[{a}, {b}] does not bracket a root (f = {fa:e}, {fb:e})"),
        ));
    }
    let mut c = a;
    let mut fc = fa;
    let mut d = b - a;
    let mut e = d;
    for _ in 0..300 {
        if fb.signum() == fc.signum() {
            c = a;
            fc = fa;
            d = b - a;
            e = d;
        }
        if fc.abs() < fb.abs() {
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol1 = 2.0 * f64::EPSILON * b.abs() + 0.5 * tol;
        let xm = 0.5 * (c - b);
        if xm.abs() <= tol1 || fb == 0.0 {
            return Ok(b);
        }
        if e.abs() >= tol1 && fa.abs() > fb.abs() {
            let s = fb / fa;
            let (mut p, mut q);
            if a == c {
                p = 2.0 * xm * s;
                q = 1.0 - s;
            } else {
                let qq = fa / fc;
                let r = fb / fc;
                p = s * (2.0 * xm * qq * (qq - r) - (b - a) * (r - 1.0));
                q = (qq - 1.0) * (r - 1.0) * (s - 1.0);
            }
            if p > 0.0 {
                q = -q;
            }
            p = p.abs();
            let min1 = 3.0 * xm * q - (tol1 * q).abs();
            let min2 = (e * q).abs();
            if 2.0 * p < min1.min(min2) {
                e = d;
                d = p / q;
            } else {
                d = xm;
                e = d;
            }
        } else {
            d = xm;
            e = d;
        }
        a = b;
        fa = fb;
        b += if d.abs() > tol1 { d } else { tol1.copysign(xm) };
        fb = f(b);
        if !fb.is_finite() {
            return Err(numerical("brent", format!("non-finite value at {b}")));
        }
    }
    Err(numerical(
        "brent",
        "no convergence in 300 iterations".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tight() -> OdeOptions {
        OdeOptions {
            rtol: 1e-11,
            atol: 1e-13,
            ..OdeOptions::default()
        }
    }

    #[test]
    fn dopri5_exponential_with_dense_output() {
        let grid: Vec<f64> = (0..=20).map(|i| i as f64 * 0.1).collect();
        let sol = dopri5(|_, y, d| d[0] = -y[0], 0.0, &[1.0], &grid, &tight()).unwrap();
        for (t, y) in sol.t.iter().zip(&sol.y) {
            assert!((y[0] - (-t).exp()).abs() < 1e-10, "t={t} y={}", y[0]);
        }
        assert!(sol.accepted > 3);
    }

    #[test]
    fn dopri5_harmonic_oscillator_backwards() {
        let grid: Vec<f64> = (0..=10).map(|i| -(i as f64) * 0.5).collect();
        let sol = dopri5(
            |_, y, d| {
                d[0] = y[1];
                d[1] = -y[0];
            },
            0.0,
            &[0.0, 1.0],
            &grid,
            &tight(),
        )
        .unwrap();
        for (t, y) in sol.t.iter().zip(&sol.y) {
            assert!((y[0] - t.sin()).abs() < 1e-9);
            assert!((y[1] - t.cos()).abs() < 1e-9);
        }
    }

    #[test]
    fn radau5_stiff_linear_problem() {
        // y' = -1000 (y - cos t) - sin t, exact y = cos t for y(0) = 1.
        let grid: Vec<f64> = (0..=10).map(|i| i as f64 * 0.2).collect();
        let sol = radau5(
            |t, y, d| d[0] = -1000.0 * (y[0] - t.cos()) - t.sin(),
            |_, _, j| j[0] = -1000.0,
            0.0,
            &[1.0],
            &grid,
            &tight(),
        )
        .unwrap();
        for (t, y) in sol.t.iter().zip(&sol.y) {
            assert!((y[0] - t.cos()).abs() < 1e-9, "t={t}");
        }
        // stiffness must not force explicit-size steps (h ~ 2e-3)
        assert!(sol.accepted < 400, "accepted {}", sol.accepted);
    }

    #[test]
    fn radau5_nonlinear_system() {
        // y0' = y1, y1' = -y0 (as a 2x2 system), plus z' = y0^2 (nonlinear coupling)
        let grid = [1.0, 2.0, 3.0];
        let sol = radau5(
            |_, y, d| {
                d[0] = y[1];
                d[1] = -y[0];
                d[2] = y[0] * y[0];
            },
            |_, y, j| {
                j.fill(0.0);
                j[1] = 1.0;
                j[3] = -1.0;
                j[6] = 2.0 * y[0];
            },
            0.0,
            &[0.0, 1.0, 0.0],
            &grid,
            &tight(),
        )
        .unwrap();
        for (t, y) in sol.t.iter().zip(&sol.y) {
            assert!((y[0] - t.sin()).abs() < 1e-9);
            let z = t / 2.0 - (2.0 * t).sin() / 4.0;
            assert!((y[2] - z).abs() < 1e-9);
        }
    }

    #[test]
    fn brent_finds_roots_and_rejects_bad_brackets() {
        let r = brent(|x| x * x - 2.0, 0.0, 2.0, 1e-15).unwrap();
        assert!((r - 2f64.sqrt()).abs() < 1e-14);
        let r = brent(|x| x.cos() - x, 0.0, 1.0, 1e-14).unwrap();
        assert!((r - 0.739_085_133_215_160_6).abs() < 1e-13);
        assert!(brent(|x| x * x + 1.0, -1.0, 1.0, 1e-12).is_err());
    }

    #[test]
    fn dense_solver_solves() {
        let mut a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0];
        let mut b = vec![3.0, 3.0, 6.0];
        assert!(solve_dense(&mut a, &mut b, 3));
        for v in b {
            assert!((v - 1.0).abs() < 1e-14);
        }
        let mut s = vec![1.0, 2.0, 2.0, 4.0];
        let mut r = vec![1.0, 2.0];
        assert!(!solve_dense(&mut s, &mut r, 2));
    }
}
