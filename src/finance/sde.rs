//! Monte-Carlo simulation of the state variable X (spec §10.3) for several cost models driven by
//! the same Gaussian increments, with the per-model statistics of spec §10.4 accumulated while
//! simulating (only the first `keep_paths` daily paths are kept).
//!
//! Schemes: quadratic — exact OU transition; power q — Euler–Maruyama on the tabulated drift
//! `r(x) = (δ²c1/2)H̃(c1 x)` (drift-implicit Euler when the explicit step would be stiff);
//! proportional — projected random walk with the Asmussen–Glynn–Pitman boundary shift
//! `ℓ' = ℓ − 0.5826 δ√h`. Each path has its own ChaCha8 stream seeded from (seed, path index);
//! paths run in parallel with rayon and are reduced in path order, so results are bit-identical
//! for any thread count. Paths are simulated in blocks of `BLOCK_PATHS` in lock-step; on x86_64
//! CPUs with AVX2 the block code runs compiled a second time for AVX2 (chosen at run time: wider
//! vectors over the same independent lanes, no FMA, no reordered sums), with explicit AVX2
//! kernels for the explicit drift steps and the ACF's lagged products, with the same bits. The
//! normals are `rand_distr`'s ziggurat draws, from an inlined copy ([`super::ziggurat`]).
//!
//! ACF convention: per-path sample ACFs (each path demeaned by its own mean) averaged over
//! paths. Pooled moments (mean, sd, CV) are over all path-days after burn-in.

use super::power::NormalisedPower;
use super::stats::{Histogram, Welford, bin_average, drbm_acf, mean, ou_abs_acf, ou_acf};
use super::turnover::{PowerModel, ProportionalModel, QuadraticModel};
use super::ziggurat::standard_normal;
use super::{FinanceError, Result, check_positive};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rayon::prelude::*;
use std::sync::Arc;

/// Asmussen–Glynn–Pitman constant `−ζ(1/2)/√(2π)` for discretely monitored reflection.
pub const AGP_SHIFT: f64 = 0.5826;

/// Default number of substeps per day (the reference uses 100).
pub const DEFAULT_SUBSTEPS: usize = 100;

/// Simulation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Number of independent paths.
    pub n_paths: usize,
    /// Number of recorded days per path.
    pub n_days: usize,
    /// Substeps per day (h = 1/substeps).
    pub substeps: usize,
    /// Days simulated before recording starts (X₀ = 0).
    pub burn_in_days: usize,
    /// Stage seed; path `i` uses a stream derived from (seed, i).
    pub seed: u64,
    /// Number of leading paths whose daily series are returned.
    pub keep_paths: usize,
    /// Largest ACF lag (days).
    pub max_lag: usize,
    /// Number of histogram bins for the empirical density of X.
    pub hist_bins: usize,
    /// Premium loading (γ¹−γ²)σ²/2: μ_t − μ̄ = loading · X_t.
    pub premium_loading: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            n_paths: 64,
            n_days: 2520,
            substeps: DEFAULT_SUBSTEPS,
            burn_in_days: 0,
            seed: 0,
            keep_paths: 3,
            max_lag: 40,
            hist_bins: 60,
            premium_loading: 0.5 * (8.31e-14 * 1.5 - 8.31e-14 * 3.0) * 1.88 * 1.88,
        }
    }
}

/// The dynamics of one cost model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelKind {
    /// Quadratic costs: OU with speed `k`.
    Quadratic {
        /// Mean-reversion speed k (1/day).
        k: f64,
    },
    /// Power costs: drift `(δ²c1/2)H̃(c1 x)` from the normalised solution.
    Power {
        /// Rescaling constant c1 (1/share).
        c1: f64,
        /// The normalised solution for this q.
        np: Arc<NormalisedPower>,
    },
    /// Proportional costs: doubly reflected BM on `[−ℓ, ℓ]`.
    Proportional {
        /// No-trade half-width ℓ.
        ell: f64,
        /// Apply the Asmussen–Glynn–Pitman shift (on by default; off only for tests).
        boundary_shift: bool,
    },
}

/// One model to simulate: a label, its own noise loading δ, and its dynamics.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Label for reports (e.g. "q=1.5").
    pub label: String,
    /// Noise loading δ = β/σ.
    pub delta: f64,
    /// Dynamics.
    pub kind: ModelKind,
}

impl ModelSpec {
    /// Spec for a calibrated quadratic model.
    pub fn quadratic(label: &str, m: &QuadraticModel) -> Self {
        Self {
            label: label.to_string(),
            delta: m.delta,
            kind: ModelKind::Quadratic { k: m.k },
        }
    }

    /// Spec for a calibrated power model with its normalised solution.
    pub fn power(label: &str, m: &PowerModel, np: Arc<NormalisedPower>) -> Self {
        Self {
            label: label.to_string(),
            delta: m.delta,
            kind: ModelKind::Power { c1: m.c1, np },
        }
    }

    /// Spec for a calibrated proportional model (with boundary shift).
    pub fn proportional(label: &str, m: &ProportionalModel) -> Self {
        Self {
            label: label.to_string(),
            delta: m.delta,
            kind: ModelKind::Proportional {
                ell: m.ell,
                boundary_shift: true,
            },
        }
    }

    /// Stationary sd of X implied by the model.
    pub fn stationary_sd(&self) -> f64 {
        match &self.kind {
            ModelKind::Quadratic { k } => self.delta / (2.0 * k).sqrt(),
            ModelKind::Power { c1, np } => np.v.sqrt() / c1,
            ModelKind::Proportional { ell, .. } => ell / 3f64.sqrt(),
        }
    }

    /// Expected daily turnover implied by the model.
    pub fn expected_turnover(&self) -> f64 {
        let d2 = self.delta * self.delta;
        match &self.kind {
            ModelKind::Quadratic { k } => self.delta * (k / std::f64::consts::PI).sqrt(),
            ModelKind::Power { c1, np } => d2 * c1 / np.z,
            ModelKind::Proportional { ell, .. } => d2 / (2.0 * ell),
        }
    }

    fn validate(&self) -> Result<()> {
        check_positive("delta", self.delta)?;
        match &self.kind {
            ModelKind::Quadratic { k } => {
                check_positive("k", *k)?;
            }
            ModelKind::Power { c1, .. } => {
                check_positive("c1", *c1)?;
            }
            ModelKind::Proportional { ell, .. } => {
                check_positive("ell", *ell)?;
            }
        }
        Ok(())
    }
}

/// Statistics of one model over all paths.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelStats {
    /// The model's label.
    pub label: String,
    /// The scheme used ("exact OU", "Euler", "drift-implicit Euler", "projected RW + AGP", ...).
    pub scheme: &'static str,
    /// Model-implied expected daily turnover.
    pub expected_turnover: f64,
    /// Model-implied stationary sd of X.
    pub stationary_sd_x: f64,
    /// Mean daily turnover (pooled over path-days).
    pub mean_turnover: f64,
    /// Sd of daily turnover (pooled).
    pub sd_turnover: f64,
    /// Coefficient of variation of daily turnover.
    pub cv_turnover: f64,
    /// Mean of daily X (pooled).
    pub mean_x: f64,
    /// Sd of daily X (pooled).
    pub sd_x: f64,
    /// Mean of the daily premium μ_t − μ̄.
    pub mean_premium: f64,
    /// Sd of the daily premium.
    pub sd_premium: f64,
    /// Path-averaged sample ACF of daily X at lags 0..=max_lag.
    pub acf_x: Vec<f64>,
    /// Path-averaged sample ACF of daily turnover at lags 0..=max_lag.
    pub acf_turnover: Vec<f64>,
    /// Analytic ACF of X (OU: e^{−kt}; proportional: DRBM series; power: none).
    pub analytic_acf_x: Option<Vec<f64>>,
    /// Analytic approximation of the turnover ACF (OU: Corr(|X₀|,|X_t|); others: none).
    pub analytic_acf_turnover: Option<Vec<f64>>,
    /// Histogram bin edges for X.
    pub hist_edges: Vec<f64>,
    /// Empirical density of daily X per bin.
    pub hist_density: Vec<f64>,
    /// Stationary density averaged over each bin.
    pub stationary_density: Vec<f64>,
    /// Daily X values outside the histogram range.
    pub hist_out_of_range: u64,
}

/// Daily series of one kept path for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplePath {
    /// Path index.
    pub path: usize,
    /// X at the end of each day.
    pub x: Vec<f64>,
    /// Premium μ_t − μ̄ at the end of each day.
    pub premium: Vec<f64>,
    /// Turnover during each day.
    pub turnover: Vec<f64>,
}

/// Output of [`simulate`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimResult {
    /// The configuration used.
    pub config: SimConfig,
    /// Per-model statistics (same order as the input specs).
    pub models: Vec<ModelStats>,
    /// Kept sample paths, `sample_paths[model][path]`.
    pub sample_paths: Vec<Vec<SamplePath>>,
}

/// SplitMix64 finaliser, used to derive per-path seeds.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The per-path seed: `splitmix64(seed ^ splitmix64(path))`.
pub fn path_seed(seed: u64, path: usize) -> u64 {
    splitmix64(seed ^ splitmix64(path as u64))
}

/// Tabulated drift of a power model on `[−L/c1, L/c1]` with linear interpolation. Segment `i`
/// holds `(r_i, r_{i+1} − r_i)`, so an interpolation is one load of adjacent values.
#[derive(Debug, Clone)]
struct DriftTable {
    x0: f64,
    dx: f64,
    inv_dx: f64,
    seg: Vec<[f64; 2]>,
    np: Arc<NormalisedPower>,
    delta: f64,
    c1: f64,
}

impl DriftTable {
    fn new(np: Arc<NormalisedPower>, delta: f64, c1: f64) -> Self {
        let n = 24_000;
        let x0 = -np.l / c1;
        let dx = 2.0 * np.l / c1 / n as f64;
        let r: Vec<f64> = (0..=n)
            .map(|i| np.rate(x0 + i as f64 * dx, delta, c1))
            .collect();
        let seg = r.windows(2).map(|w| [w[0], w[1] - w[0]]).collect();
        Self {
            x0,
            dx,
            inv_dx: 1.0 / dx,
            seg,
            np,
            delta,
            c1,
        }
    }

    /// The segment holding `x`, and `pos − i` for `x`'s position `pos` in grid units and
    /// `i = ⌊pos⌋`; `None` outside the table (a negative or NaN `pos` fails `pos >= 0`, a large
    /// one `i < n`). `i` goes through `i64`, whose conversions are single instructions.
    #[inline(always)]
    fn segment(&self, x: f64) -> Option<(f64, [f64; 2])> {
        let pos = (x - self.x0) * self.inv_dx;
        let i = pos as i64;
        match self.seg.get(i as usize) {
            Some(&s) if pos >= 0.0 => Some((pos - i as f64, s)),
            _ => None,
        }
    }

    /// The drift off the table (never reached in practice: the stationary density is below
    /// e^-100 there).
    #[cold]
    #[inline(never)]
    fn exact(&self, x: f64) -> f64 {
        self.np.rate(x, self.delta, self.c1)
    }

    /// Drift at `x` (linear interpolation in the table).
    #[inline(always)]
    fn value(&self, x: f64) -> f64 {
        match self.segment(x) {
            Some((t, [a, d])) => a + t * d,
            None => self.exact(x),
        }
    }

    /// Drift and its local slope at `x`.
    fn eval(&self, x: f64) -> (f64, f64) {
        match self.segment(x) {
            Some((t, [a, d])) => (a + t * d, d / self.dx),
            None => {
                let r = self.exact(x);
                let e = 1e-6 * self.dx.max(x.abs() * 1e-9);
                let slope = (self.exact(x + e) - r) / e;
                (r, slope)
            }
        }
    }

    /// Largest `|r'|` over `|c1 x| <= y_max`.
    fn max_slope(&self, y_max: f64) -> f64 {
        let lim = y_max / self.c1;
        self.seg
            .iter()
            .enumerate()
            .filter(|(i, _)| (self.x0 + *i as f64 * self.dx).abs() <= lim)
            .map(|(_, [_, d])| (d / self.dx).abs())
            .fold(0.0, f64::max)
    }

    /// Solves `x − h r(x) = b` (monotone since r is decreasing).
    fn implicit(&self, b: f64, h: f64) -> f64 {
        let (rb, _) = self.eval(b);
        let (mut lo, mut hi) = if rb >= 0.0 {
            (b, b + h * rb)
        } else {
            (b + h * rb, b)
        };
        let mut x = b;
        for _ in 0..100 {
            let (r, s) = self.eval(x);
            let phi = x - h * r - b;
            if phi.abs() <= 1e-13 * (b.abs() + self.dx) {
                return x;
            }
            if phi > 0.0 {
                hi = x;
            } else {
                lo = x;
            }
            let newton = x - phi / (1.0 - h * s);
            x = if newton > lo && newton < hi && newton.is_finite() {
                newton
            } else {
                0.5 * (lo + hi)
            };
            if hi - lo <= 1e-15 * (b.abs() + self.dx) {
                return x;
            }
        }
        x
    }
}

#[derive(Debug, Clone)]
enum Stepper {
    Ou {
        decay: f64,
        noise: f64,
        k: f64,
    },
    Drift {
        table: DriftTable,
        noise: f64,
        implicit: bool,
    },
    Reflect {
        lim: f64,
        noise: f64,
    },
}

impl Stepper {
    /// Advances the paths of a block by one day: `x[b]` is path `b`'s state, `turn[b]` gets its
    /// turnover increments added, and `xi` holds the day's standard normals substep by substep
    /// (`xi[s * n + b]` for `n = x.len()` paths). Each path's arithmetic is the same as
    /// stepping it alone; the paths' independent chains only let the CPU overlap them. With
    /// `AVX2` (only from the AVX2 build of [`simulate_block`]) the explicit drift steps take four
    /// paths per vector ([`drift_rows_avx2`]), with the same bits.
    #[inline(always)]
    fn advance<const AVX2: bool>(&self, x: &mut [f64], turn: &mut [f64], xi: &[f64], h: f64) {
        let n = x.len();
        let turn = &mut turn[..n];
        let rows = xi.chunks_exact(n);
        match *self {
            Stepper::Ou { decay, noise, k } => {
                for z in rows {
                    for ((xb, tb), &zb) in x.iter_mut().zip(turn.iter_mut()).zip(z) {
                        let x0 = *xb;
                        let x1 = decay * x0 + noise * zb;
                        *xb = x1;
                        *tb += 0.5 * k * (x0.abs() + x1.abs()) * h;
                    }
                }
            }
            Stepper::Drift {
                ref table,
                noise,
                implicit: false,
            } => {
                #[cfg(target_arch = "x86_64")]
                if AVX2 && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2 (checked just above).
                    unsafe { drift_rows_avx2(table, noise, x, turn, xi, h) };
                    return;
                }
                // Per row, the drifts of up to BLOCK_PATHS paths first (table lookups only, so
                // that they overlap), the rare ones off the table again, then the updates.
                let mut r = [0.0; BLOCK_PATHS];
                for z in rows {
                    for ((x, turn), z) in x
                        .chunks_mut(BLOCK_PATHS)
                        .zip(turn.chunks_mut(BLOCK_PATHS))
                        .zip(z.chunks(BLOCK_PATHS))
                    {
                        let r = &mut r[..x.len()];
                        let mut on_table = true;
                        for (rb, &xb) in r.iter_mut().zip(x.iter()) {
                            (*rb, on_table) = match table.segment(xb) {
                                Some((t, [a, d])) => (a + t * d, on_table),
                                None => (0.0, false),
                            };
                        }
                        if !on_table {
                            for (rb, &xb) in r.iter_mut().zip(x.iter()) {
                                *rb = table.value(xb);
                            }
                        }
                        for (((xb, tb), &zb), &rb) in x.iter_mut().zip(turn).zip(z).zip(&*r) {
                            *xb += rb * h + noise * zb;
                            *tb += rb.abs() * h;
                        }
                    }
                }
            }
            Stepper::Drift {
                ref table,
                noise,
                implicit: true,
            } => {
                for z in rows {
                    for ((xb, tb), &zb) in x.iter_mut().zip(turn.iter_mut()).zip(z) {
                        let xn = table.implicit(*xb + noise * zb, h);
                        let r = table.value(xn);
                        *xb = xn;
                        *tb += r.abs() * h;
                    }
                }
            }
            Stepper::Reflect { lim, noise } => {
                for z in rows {
                    for ((xb, tb), &zb) in x.iter_mut().zip(turn.iter_mut()).zip(z) {
                        let xh = *xb + noise * zb;
                        *tb += (-lim - xh).max(0.0) + (xh - lim).max(0.0);
                        *xb = xh.clamp(-lim, lim);
                    }
                }
            }
        }
    }
}

/// The explicit Euler steps of [`Stepper::advance`] for a drift table, four paths per AVX2
/// vector: per substep row, each group of four lanes loads its positions, converts them to table
/// segments, loads the four segments' `(r_i, r_{i+1} − r_i)` and interpolates, with the scalar
/// code's operations in its order (no FMA), so the same bits. A group with a lane off the table
/// takes [`DriftTable::value`] lane by lane; the lanes after the last full group are scalar.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn drift_rows_avx2(
    table: &DriftTable,
    noise: f64,
    x: &mut [f64],
    turn: &mut [f64],
    xi: &[f64],
    h: f64,
) {
    use std::arch::x86_64::*;
    let n = x.len();
    let turn = &mut turn[..n];
    let seg = table.seg.as_slice();
    let x0 = _mm256_set1_pd(table.x0);
    let inv_dx = _mm256_set1_pd(table.inv_dx);
    let n_seg = _mm256_set1_pd(seg.len() as f64);
    let zero = _mm256_setzero_pd();
    let hv = _mm256_set1_pd(h);
    let noise_v = _mm256_set1_pd(noise);
    let sign = _mm256_set1_pd(-0.0);
    let groups = n / 4;
    for z in xi.chunks_exact(n) {
        let (xg, x_rest) = x.as_chunks_mut::<4>();
        let (tg, t_rest) = turn.as_chunks_mut::<4>();
        let (zg, z_rest) = z.as_chunks::<4>();
        for ((xb, tb), zb) in xg.iter_mut().zip(tg.iter_mut()).zip(zg).take(groups) {
            // SAFETY: each of `xb`, `tb`, `zb` is four contiguous f64.
            let (xv, tv, zv) = unsafe {
                (
                    _mm256_loadu_pd(xb.as_ptr()),
                    _mm256_loadu_pd(tb.as_ptr()),
                    _mm256_loadu_pd(zb.as_ptr()),
                )
            };
            let pos = _mm256_mul_pd(_mm256_sub_pd(xv, x0), inv_dx);
            // 0 <= pos < n_seg: on the table (false for NaN), as `DriftTable::segment`.
            let on = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_GE_OQ>(pos, zero),
                _mm256_cmp_pd::<_CMP_LT_OQ>(pos, n_seg),
            );
            let r = if _mm256_movemask_pd(on) == 0xF {
                // pos < n_seg <= i32::MAX: truncation to i32 is `pos as i64`.
                let iv = _mm256_cvttpd_epi32(pos);
                let t = _mm256_sub_pd(pos, _mm256_cvtepi32_pd(iv));
                let mut idx = [0i32; 4];
                // SAFETY: `idx` is four i32.
                unsafe { _mm_storeu_si128(idx.as_mut_ptr().cast(), iv) };
                let pair = |k: usize| {
                    let s = &seg[idx[k] as usize];
                    // SAFETY: `s` is two contiguous f64.
                    unsafe { _mm_loadu_pd(s.as_ptr()) }
                };
                // [a0 d0 a2 d2] and [a1 d1 a3 d3], then the a's and the d's.
                let lo = _mm256_set_m128d(pair(2), pair(0));
                let hi = _mm256_set_m128d(pair(3), pair(1));
                let a = _mm256_unpacklo_pd(lo, hi);
                let d = _mm256_unpackhi_pd(lo, hi);
                _mm256_add_pd(a, _mm256_mul_pd(t, d))
            } else {
                let r = xb.map(|v| table.value(v));
                // SAFETY: `r` is four contiguous f64.
                unsafe { _mm256_loadu_pd(r.as_ptr()) }
            };
            let step = _mm256_add_pd(_mm256_mul_pd(r, hv), _mm256_mul_pd(noise_v, zv));
            let x1 = _mm256_add_pd(xv, step);
            let t1 = _mm256_add_pd(tv, _mm256_mul_pd(_mm256_andnot_pd(sign, r), hv));
            // SAFETY: as for the loads.
            unsafe {
                _mm256_storeu_pd(xb.as_mut_ptr(), x1);
                _mm256_storeu_pd(tb.as_mut_ptr(), t1);
            }
        }
        for ((xb, tb), &zb) in x_rest.iter_mut().zip(t_rest.iter_mut()).zip(z_rest) {
            let rb = table.value(*xb);
            *xb += rb * h + noise * zb;
            *tb += rb.abs() * h;
        }
    }
}

fn build_stepper(m: &ModelSpec, h: f64) -> Result<(Stepper, &'static str)> {
    let sh = h.sqrt();
    Ok(match &m.kind {
        ModelKind::Quadratic { k } => {
            let decay = (-k * h).exp();
            let noise = m.delta * ((1.0 - (-2.0 * k * h).exp()) / (2.0 * k)).sqrt();
            (
                Stepper::Ou {
                    decay,
                    noise,
                    k: *k,
                },
                "exact OU",
            )
        }
        ModelKind::Power { c1, np } => {
            let table = DriftTable::new(np.clone(), m.delta, *c1);
            let implicit = h * table.max_slope(8.0) > 0.5;
            let scheme = if implicit {
                "drift-implicit Euler"
            } else {
                "Euler-Maruyama"
            };
            (
                Stepper::Drift {
                    table,
                    noise: m.delta * sh,
                    implicit,
                },
                scheme,
            )
        }
        ModelKind::Proportional {
            ell,
            boundary_shift,
        } => {
            let lim = if *boundary_shift {
                ell - AGP_SHIFT * m.delta * sh
            } else {
                *ell
            };
            if lim <= 0.0 {
                return Err(FinanceError::InvalidConfig(format!(
                    "substeps too coarse for model '{}': shifted boundary {lim:e} <= 0",
                    m.label
                )));
            }
            let scheme = if *boundary_shift {
                "projected random walk + AGP shift"
            } else {
                "projected random walk"
            };
            (
                Stepper::Reflect {
                    lim,
                    noise: m.delta * sh,
                },
                scheme,
            )
        }
    })
}

/// Per-path, per-model accumulators.
#[derive(Debug, Clone)]
struct PathAcc {
    turnover: Welford,
    x: Welford,
    acf_x: Vec<f64>,
    acf_t: Vec<f64>,
    hist: Histogram,
    sample: Option<SamplePath>,
}

/// Cross-path accumulators of one model, reduced in path order.
struct ModelAcc {
    turnover: Welford,
    x: Welford,
    acf_x: Vec<f64>,
    acf_t: Vec<f64>,
    hist: Option<Histogram>,
}

fn hist_range(m: &ModelSpec) -> (f64, f64) {
    match &m.kind {
        ModelKind::Proportional { ell, .. } => (-ell, *ell),
        _ => {
            let w = 5.0 * m.stationary_sd();
            (-w, w)
        }
    }
}

/// Most paths one task simulates in lock-step (see [`Stepper::advance`]).
const BLOCK_PATHS: usize = 16;

/// Simulates paths `paths` (at most [`BLOCK_PATHS`]) together; returns their accumulators in
/// path order. Path `p` draws its normals from its own stream seeded by [`path_seed`], one per
/// substep, so its results do not depend on the block it is in. On x86_64 CPUs with AVX2 the
/// same code runs compiled for AVX2 (wider vectors over the same independent lanes, no FMA),
/// which gives the same bits.
fn simulate_block(
    cfg: &SimConfig,
    models: &[ModelSpec],
    steppers: &[Stepper],
    paths: std::ops::Range<usize>,
) -> Result<Vec<Vec<PathAcc>>> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `simulate_block_avx2` only needs AVX2, which the CPU has (checked just above).
        return unsafe { simulate_block_avx2(cfg, models, steppers, paths) };
    }
    simulate_block_with::<4, false>(cfg, models, steppers, paths)
}

/// [`simulate_block_with`] compiled for AVX2 (16 vector registers: 8 lags per ACF pass).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn simulate_block_avx2(
    cfg: &SimConfig,
    models: &[ModelSpec],
    steppers: &[Stepper],
    paths: std::ops::Range<usize>,
) -> Result<Vec<Vec<PathAcc>>> {
    simulate_block_with::<8, true>(cfg, models, steppers, paths)
}

/// The body of [`simulate_block`], inlined into each compiled version; `LAGS` is the number of
/// ACF lags per pass of [`lagged_dots`], `AVX2` selects the AVX2 kernels of
/// [`Stepper::advance`] (no result depends on either).
#[inline(always)]
fn simulate_block_with<const LAGS: usize, const AVX2: bool>(
    cfg: &SimConfig,
    models: &[ModelSpec],
    steppers: &[Stepper],
    paths: std::ops::Range<usize>,
) -> Result<Vec<Vec<PathAcc>>> {
    let n = paths.len();
    let m = cfg.substeps;
    let h = 1.0 / m as f64;
    let nm = models.len();
    let days = cfg.n_days;
    let mut rngs: Vec<ChaCha8Rng> = paths
        .clone()
        .map(|p| ChaCha8Rng::seed_from_u64(path_seed(cfg.seed, p)))
        .collect();
    let mut xi = vec![0.0; m * n];
    let mut x = vec![0.0; nm * n];
    let mut turn = vec![0.0; nm * n];
    // Daily series, model-major: series `k = j * n + b` (model j on the block's path b) is
    // `xs[k * days..][..days]`. Their moments (Welford, as mean and m2 arrays: every series has
    // the same count) are updated day by day for all series at once, which interleaves their
    // otherwise serial, division-bound chains; the histograms of X are counted from the stored
    // series at the end (integer counts: the order does not matter).
    let len = (nm * n).checked_mul(days).ok_or_else(|| {
        FinanceError::InvalidConfig(format!("{days} days x {} series is too many", nm * n))
    })?;
    let mut xs = vec![0.0; len];
    let mut ts = vec![0.0; len];
    let (mut x_mean, mut x_m2) = (vec![0.0; nm * n], vec![0.0; nm * n]);
    let (mut t_mean, mut t_m2) = (vec![0.0; nm * n], vec![0.0; nm * n]);
    let empty_hists = models
        .iter()
        .map(|model| {
            let (lo, hi) = hist_range(model);
            Histogram::new(lo, hi, cfg.hist_bins)
        })
        .collect::<Result<Vec<_>>>()?;
    for day in 0..cfg.burn_in_days + days {
        for (b, rng) in rngs.iter_mut().enumerate() {
            for z in xi[b..].iter_mut().step_by(n) {
                *z = standard_normal(rng);
            }
        }
        turn.iter_mut().for_each(|v| *v = 0.0);
        for ((st, xj), tj) in steppers
            .iter()
            .zip(x.chunks_exact_mut(n))
            .zip(turn.chunks_exact_mut(n))
        {
            st.advance::<AVX2>(xj, tj, &xi, h);
        }
        if let Some(rec) = day.checked_sub(cfg.burn_in_days) {
            for ((sx, st), (&xv, &tv)) in xs
                .chunks_exact_mut(days)
                .zip(ts.chunks_exact_mut(days))
                .zip(x.iter().zip(&turn))
            {
                sx[rec] = xv;
                st[rec] = tv;
            }
            let count = (rec + 1) as f64;
            welford_push(count, &mut x_mean, &mut x_m2, &x);
            welford_push(count, &mut t_mean, &mut t_m2, &turn);
        }
    }
    let max_lag = cfg.max_lag.min(days - 1);
    let welford = |mean: f64, m2: f64| Welford {
        n: days as u64,
        mean,
        m2,
    };
    let mut bin_pos = Vec::with_capacity(days);
    let mut out = Vec::with_capacity(n);
    for (b, path) in paths.enumerate() {
        let keep = path < cfg.keep_paths;
        let mut accs = Vec::with_capacity(nm);
        for (j, empty_hist) in empty_hists.iter().enumerate() {
            let k = j * n + b;
            let (xs, ts) = (&xs[k * days..][..days], &ts[k * days..][..days]);
            let sample = keep.then(|| SamplePath {
                path,
                x: xs.to_vec(),
                premium: xs.iter().map(|v| v * cfg.premium_loading).collect(),
                turnover: ts.to_vec(),
            });
            accs.push(PathAcc {
                turnover: welford(t_mean[k], t_m2[k]),
                x: welford(x_mean[k], x_m2[k]),
                acf_x: acf::<LAGS>(xs, max_lag),
                acf_t: acf::<LAGS>(ts, max_lag),
                hist: series_hist(empty_hist, xs, &mut bin_pos),
                sample,
            });
        }
        out.push(accs);
    }
    Ok(out)
}

/// [`Welford::push`] of `x[k]` into the accumulator `(mean[k], m2[k])` for every `k`, where
/// `count` is the accumulators' count after the push (the same arithmetic, lane by lane).
#[inline(always)]
fn welford_push(count: f64, mean: &mut [f64], m2: &mut [f64], x: &[f64]) {
    for ((mk, sk), &xk) in mean.iter_mut().zip(m2.iter_mut()).zip(x) {
        let d = xk - *mk;
        *mk += d / count;
        *sk += d * (xk - *mk);
    }
}

/// `empty` (an empty histogram) with [`Histogram::add`] of every value of `xs`. The positions
/// `(x − lo) / width` are divided out for all of `xs` first (vectorised; the same division by
/// the same width as `add`, so the same bins), into `pos`; the counts go into four interleaved
/// arrays, so that runs of days in one bin do not chain their increments.
#[inline(always)]
fn series_hist(empty: &Histogram, xs: &[f64], pos: &mut Vec<f64>) -> Histogram {
    let mut hist = empty.clone();
    let (lo, hi, width) = (hist.lo, hist.hi, hist.width());
    pos.clear();
    pos.extend(xs.iter().map(|&x| (x - lo) / width));
    let last = hist.counts.len().saturating_sub(1);
    let mut counts = vec![[0u64; 4]; hist.counts.len()];
    let (x4, x_rest) = xs.as_chunks::<4>();
    let (p4, p_rest) = pos.as_chunks::<4>();
    let mut add = |lane: usize, x: f64, p: f64, hist: &mut Histogram| {
        if x >= lo && x < hi {
            counts[(p as usize).min(last)][lane] += 1;
        } else {
            hist.add(x);
        }
    };
    for (x, p) in x4.iter().zip(p4) {
        for lane in 0..4 {
            add(lane, x[lane], p[lane], &mut hist);
        }
    }
    for (&x, &p) in x_rest.iter().zip(p_rest) {
        add(0, x, p, &mut hist);
    }
    for (c, c4) in hist.counts.iter_mut().zip(&counts) {
        *c += c4.iter().sum::<u64>();
    }
    hist
}

/// [`super::stats::acf`], bit for bit, computed faster: the lagged dot products
/// `Σ d_i d_{i+h}` (`d` the demeaned series) are formed `LAGS` lags at a time, so each load of
/// `d_i` serves several lags. Every lag keeps `stats::dot`'s summation order: four accumulators
/// over chunks of four, then `(a0 + a1) + (a2 + a3) + tail`. Inlined, so that it is compiled
/// for the caller's target features.
#[inline(always)]
fn acf<const LAGS: usize>(x: &[f64], max_lag: usize) -> Vec<f64> {
    let n = x.len();
    let m = mean(x);
    let d: Vec<f64> = x.iter().map(|v| v - m).collect();
    let lags = (max_lag + 1).min(n);
    let mut dots = vec![0.0; lags];
    #[cfg(target_arch = "x86_64")]
    if LAGS == 8 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        unsafe { all_lagged_dots_avx2(&d, &mut dots) };
        return acf_from_dots(&dots, n, max_lag);
    }
    let mut h = 0;
    while h + LAGS <= lags {
        lagged_dots::<LAGS>(&d, h, &mut dots[h..h + LAGS]);
        h += LAGS;
    }
    if h < lags {
        lagged_dots::<LAGS>(&d, h, &mut dots[h..lags]);
    }
    acf_from_dots(&dots, n, max_lag)
}

/// The ACF at lags `0..=max_lag` from the lagged dot products `dots` of a series of length `n`
/// (NaN beyond the series or for a series without spread).
#[inline(always)]
fn acf_from_dots(dots: &[f64], n: usize, max_lag: usize) -> Vec<f64> {
    let c0 = dots.first().copied().unwrap_or(0.0);
    (0..=max_lag)
        .map(|h| {
            if h >= n || c0 <= 0.0 || !c0.is_finite() {
                return f64::NAN;
            }
            dots[h] / c0
        })
        .collect()
}

/// `out[g] = Σ_i d[i] d[i + h0 + g]` for `g < out.len() <= LAGS`, each in `stats::dot`'s
/// summation order (`h0 + out.len() <= d.len()`). `LAGS` accumulator quadruples must fit in
/// the vector registers: 4 with SSE2 (8 registers of 2 lanes), 8 with AVX2 (4 lanes).
#[inline(always)]
fn lagged_dots<const LAGS: usize>(d: &[f64], h0: usize, out: &mut [f64]) {
    let n = d.len();
    let g_n = out.len();
    let mut acc = [[0.0f64; 4]; LAGS];
    // Chunks of four that every lag of the block has: the largest lag has the fewest.
    let common = (n - (h0 + g_n - 1)) / 4;
    let xc = &d.as_chunks::<4>().0[..common];
    let yc: [&[[f64; 4]]; LAGS] = std::array::from_fn(|g| {
        let y = &d[(h0 + g).min(n)..].as_chunks::<4>().0;
        &y[..if g < g_n { common } else { 0 }]
    });
    if g_n == LAGS {
        acc = common_dots(xc, yc);
    } else {
        for (c, x) in xc.iter().enumerate() {
            for (a, y) in acc.iter_mut().zip(&yc).take(g_n) {
                let y = &y[c];
                for k in 0..4 {
                    a[k] += x[k] * y[k];
                }
            }
        }
    }
    for (g, (a, o)) in acc.iter_mut().zip(out.iter_mut()).enumerate() {
        *o = finish_lag(d, h0 + g, common, a);
    }
}

/// The dot product `Σ_i d[i] d[i + h]` in `stats::dot`'s order, given the accumulators `a`
/// over its first `common` chunks of four: the remaining chunks, then
/// `(a0 + a1) + (a2 + a3) + tail`.
#[inline(always)]
fn finish_lag(d: &[f64], h: usize, common: usize, a: &mut [f64; 4]) -> f64 {
    let len = d.len() - h;
    let (x, y) = (&d[..len], &d[h..]);
    let chunks = len / 4;
    for c in common..chunks {
        for k in 0..4 {
            a[k] += x[4 * c + k] * y[4 * c + k];
        }
    }
    let tail: f64 = x[4 * chunks..]
        .iter()
        .zip(&y[4 * chunks..])
        .map(|(x, y)| x * y)
        .sum();
    (a[0] + a[1]) + (a[2] + a[3]) + tail
}

/// Most lags per pass of [`all_lagged_dots_avx2`]: accumulators in 12 of the 16 vector registers.
#[cfg(target_arch = "x86_64")]
const AVX2_PASS_LAGS: usize = 12;

/// `dots[h] = Σ_i d[i] d[i + h]` for `h < dots.len() <= d.len()`, as [`lagged_dots`] computes
/// them (the same order for each lag), with AVX2: the lags in passes of equal size (at most
/// [`AVX2_PASS_LAGS`]), so that a last pass of a lag or two does not cost a whole pass.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn all_lagged_dots_avx2(d: &[f64], dots: &mut [f64]) {
    let n = d.len();
    let lags = dots.len();
    let passes = lags.div_ceil(AVX2_PASS_LAGS);
    let mut h0 = 0;
    for p in 0..passes {
        // The first `lags % passes` passes take one lag more.
        let g_n = lags / passes + usize::from(p < lags % passes);
        let common = (n - (h0 + g_n - 1)) / 4;
        let mut acc = [[0.0; 4]; AVX2_PASS_LAGS];
        let a = &mut acc[..g_n];
        match g_n {
            1 => a.copy_from_slice(&common_dots_avx2::<1>(d, h0, common)),
            2 => a.copy_from_slice(&common_dots_avx2::<2>(d, h0, common)),
            3 => a.copy_from_slice(&common_dots_avx2::<3>(d, h0, common)),
            4 => a.copy_from_slice(&common_dots_avx2::<4>(d, h0, common)),
            5 => a.copy_from_slice(&common_dots_avx2::<5>(d, h0, common)),
            6 => a.copy_from_slice(&common_dots_avx2::<6>(d, h0, common)),
            7 => a.copy_from_slice(&common_dots_avx2::<7>(d, h0, common)),
            8 => a.copy_from_slice(&common_dots_avx2::<8>(d, h0, common)),
            9 => a.copy_from_slice(&common_dots_avx2::<9>(d, h0, common)),
            10 => a.copy_from_slice(&common_dots_avx2::<10>(d, h0, common)),
            11 => a.copy_from_slice(&common_dots_avx2::<11>(d, h0, common)),
            _ => a.copy_from_slice(&common_dots_avx2::<AVX2_PASS_LAGS>(d, h0, common)),
        }
        for (g, (a, o)) in a.iter_mut().zip(&mut dots[h0..h0 + g_n]).enumerate() {
            *o = finish_lag(d, h0 + g, common, a);
        }
        h0 += g_n;
    }
}

/// `acc[g][k] = Σ_c d[4c + k] d[h0 + g + 4c + k]` over the chunks `c < common`, in chunk order,
/// for `g < N` (`h0 + 4 common + N − 1 <= d.len()`): one AVX2 register per lag, one load of
/// `d[4c..]` for all lags, no FMA (the same bits as [`common_dots`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn common_dots_avx2<const N: usize>(d: &[f64], h0: usize, common: usize) -> [[f64; 4]; N] {
    use std::arch::x86_64::*;
    let x = &d[..4 * common];
    let y = &d[h0..h0 + 4 * common + N - 1];
    let mut acc = [_mm256_setzero_pd(); N];
    for c in 0..common {
        // SAFETY: `x[4c..4c + 4]` lies in `x` (c < common).
        let xv = unsafe { _mm256_loadu_pd(x.as_ptr().add(4 * c)) };
        for (g, a) in acc.iter_mut().enumerate() {
            // SAFETY: `y[4c + g..4c + g + 4]` lies in `y` (c < common, g < N).
            let yv = unsafe { _mm256_loadu_pd(y.as_ptr().add(4 * c + g)) };
            *a = _mm256_add_pd(*a, _mm256_mul_pd(xv, yv));
        }
    }
    acc.map(|a| {
        let mut o = [0.0; 4];
        // SAFETY: `o` is four f64.
        unsafe { _mm256_storeu_pd(o.as_mut_ptr(), a) };
        o
    })
}

/// `acc[g][k] = Σ_c x[c][k] y[g][c][k]` over the chunks `c` of `x` (each `y[g]` at least as
/// long), summed in chunk order. In this form LLVM keeps the accumulators in vector registers
/// (one per lag with AVX2, two with SSE2) and hoists the bounds checks out of the loop.
#[inline(always)]
fn common_dots<const LAGS: usize>(x: &[[f64; 4]], y: [&[[f64; 4]]; LAGS]) -> [[f64; 4]; LAGS] {
    let mut acc = [[0.0f64; 4]; LAGS];
    let y: [&[[f64; 4]]; LAGS] = std::array::from_fn(|g| &y[g][..x.len()]);
    for (c, x) in x.iter().enumerate() {
        for g in 0..LAGS {
            let y = &y[g][c];
            for k in 0..4 {
                acc[g][k] += x[k] * y[k];
            }
        }
    }
    acc
}

fn stationary_density(m: &ModelSpec, lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    match &m.kind {
        ModelKind::Quadratic { .. } => {
            let s = m.stationary_sd();
            let norm = 1.0 / (s * (2.0 * std::f64::consts::PI).sqrt());
            bin_average(|x| norm * (-0.5 * (x / s).powi(2)).exp(), lo, hi, bins)
        }
        ModelKind::Power { c1, np } => bin_average(|x| np.physical_density(x, *c1), lo, hi, bins),
        ModelKind::Proportional { ell, .. } => vec![1.0 / (2.0 * ell); bins],
    }
}

/// Simulates all `models` on common Gaussian increments and returns their statistics.
pub fn simulate(cfg: &SimConfig, models: &[ModelSpec]) -> Result<SimResult> {
    simulate_with(cfg, models, &|| true)
}

/// [`simulate`] calling `on_path` after each finished path (for progress); when it returns
/// `false` the simulation stops with [`FinanceError::Interrupted`]. Results do not depend on it.
pub fn simulate_with(
    cfg: &SimConfig,
    models: &[ModelSpec],
    on_path: &(dyn Fn() -> bool + Sync),
) -> Result<SimResult> {
    if cfg.n_paths == 0 || cfg.n_days < 2 || cfg.substeps == 0 || cfg.hist_bins == 0 {
        return Err(FinanceError::InvalidConfig(format!(
            "need n_paths >= 1, n_days >= 2, substeps >= 1, hist_bins >= 1; got {}, {}, {}, {}",
            cfg.n_paths, cfg.n_days, cfg.substeps, cfg.hist_bins
        )));
    }
    if models.is_empty() {
        return Err(FinanceError::InvalidConfig("no models to simulate".into()));
    }
    super::check_finite("premium_loading", cfg.premium_loading)?;
    let h = 1.0 / cfg.substeps as f64;
    let mut steppers = Vec::with_capacity(models.len());
    let mut schemes = Vec::with_capacity(models.len());
    for m in models {
        m.validate()?;
        let (s, name) = build_stepper(m, h)?;
        steppers.push(s);
        schemes.push(name);
    }
    // Blocks of up to BLOCK_PATHS paths, but at least ~4 blocks per thread when paths are few.
    // The partition does not change any result (each path is computed the same way in any block).
    let block = cfg
        .n_paths
        .div_ceil(4 * rayon::current_num_threads())
        .clamp(1, BLOCK_PATHS);
    let per_block: Vec<Result<Vec<Vec<PathAcc>>>> = (0..cfg.n_paths.div_ceil(block))
        .into_par_iter()
        .map(|i| {
            let paths = i * block..((i + 1) * block).min(cfg.n_paths);
            let r = simulate_block(cfg, models, &steppers, paths.clone());
            // One call per finished path (progress), all of them even after a `false`.
            let go = paths.fold(true, |go, _| on_path() && go);
            if go {
                r
            } else {
                Err(FinanceError::Interrupted)
            }
        })
        .collect();
    let max_lag = cfg.max_lag.min(cfg.n_days - 1);
    let mut stats = Vec::with_capacity(models.len());
    let mut samples: Vec<Vec<SamplePath>> = vec![Vec::new(); models.len()];
    let mut accs: Vec<ModelAcc> = models
        .iter()
        .map(|_| ModelAcc {
            turnover: Welford::default(),
            x: Welford::default(),
            acf_x: vec![0.0; max_lag + 1],
            acf_t: vec![0.0; max_lag + 1],
            hist: None,
        })
        .collect();
    for path_accs in per_block
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
    {
        for (j, pa) in path_accs.into_iter().enumerate() {
            let a = &mut accs[j];
            a.turnover.merge(&pa.turnover);
            a.x.merge(&pa.x);
            for (s, v) in a.acf_x.iter_mut().zip(&pa.acf_x) {
                *s += v;
            }
            for (s, v) in a.acf_t.iter_mut().zip(&pa.acf_t) {
                *s += v;
            }
            match &mut a.hist {
                Some(hh) => hh.merge(&pa.hist),
                None => a.hist = Some(pa.hist),
            }
            if let Some(sp) = pa.sample {
                samples[j].push(sp);
            }
        }
    }
    let np = cfg.n_paths as f64;
    for (j, m) in models.iter().enumerate() {
        let ModelAcc {
            turnover: tw,
            x: xw,
            acf_x: ax,
            acf_t: at,
            hist,
        } = &accs[j];
        let Some(hist) = hist else {
            return Err(FinanceError::InvalidConfig("no paths simulated".into()));
        };
        let lags: Vec<f64> = (0..=max_lag).map(|l| l as f64).collect();
        let (analytic_x, analytic_t) = match &m.kind {
            ModelKind::Quadratic { k } => (
                Some(lags.iter().map(|&t| ou_acf(*k, t)).collect()),
                Some(lags.iter().map(|&t| ou_abs_acf(*k, t)).collect()),
            ),
            ModelKind::Proportional { ell, .. } => (
                Some(lags.iter().map(|&t| drbm_acf(m.delta, *ell, t)).collect()),
                None,
            ),
            ModelKind::Power { .. } => (None, None),
        };
        let loading = cfg.premium_loading;
        stats.push(ModelStats {
            label: m.label.clone(),
            scheme: schemes[j],
            expected_turnover: m.expected_turnover(),
            stationary_sd_x: m.stationary_sd(),
            mean_turnover: tw.mean,
            sd_turnover: tw.sd(),
            cv_turnover: tw.cv(),
            mean_x: xw.mean,
            sd_x: xw.sd(),
            mean_premium: loading * xw.mean,
            sd_premium: loading.abs() * xw.sd(),
            acf_x: ax.iter().map(|v| v / np).collect(),
            acf_turnover: at.iter().map(|v| v / np).collect(),
            analytic_acf_x: analytic_x,
            analytic_acf_turnover: analytic_t,
            hist_edges: hist.edges(),
            hist_density: hist.density(),
            stationary_density: stationary_density(m, hist.lo, hist.hi, cfg.hist_bins),
            hist_out_of_range: hist.below + hist.above,
        });
    }
    Ok(SimResult {
        config: *cfg,
        models: stats,
        sample_paths: samples,
    })
}

#[cfg(test)]
mod tests {
    use super::super::calibration::{Frictionless, back_out_from_quadratic};
    use super::super::turnover::{match_power_with, match_proportional, match_quadratic};
    use super::*;
    use rand::RngExt;
    use rand_distr::StandardNormal;

    fn calibrated_models() -> (Vec<ModelSpec>, f64, SimConfig) {
        let fr = Frictionless::paper();
        let b = back_out_from_quadratic(1.08e-10, 2.19e10, &fr).unwrap();
        let np = Arc::new(NormalisedPower::solve(1.5).unwrap());
        let prop = match_proportional(b.lambda_p, b.shtu, &fr).unwrap();
        let quad = match_quadratic(b.lambda_p, b.shtu, &fr).unwrap();
        let pow = match_power_with(&np, b.lambda_p, b.shtu, &fr).unwrap();
        let models = vec![
            ModelSpec::proportional("prop", &prop),
            ModelSpec::quadratic("q=2", &quad),
            ModelSpec::power("q=1.5", &pow, np),
        ];
        let cfg = SimConfig {
            n_paths: 32,
            n_days: 2520,
            substeps: 50,
            seed: 7,
            premium_loading: fr.premium_loading,
            ..SimConfig::default()
        };
        (models, b.shtu, cfg)
    }

    #[test]
    fn calibrated_models_match_turnover_and_statistics() {
        let (models, shtu, cfg) = calibrated_models();
        let res = simulate(&cfg, &models).unwrap();
        for s in &res.models {
            let dev = s.mean_turnover / shtu - 1.0;
            assert!(dev.abs() < 0.08, "{}: turnover off by {dev}", s.label);
            assert!((s.expected_turnover / shtu - 1.0).abs() < 1e-9);
            let sd_dev = s.sd_x / s.stationary_sd_x - 1.0;
            assert!(sd_dev.abs() < 0.1, "{}: sd_x off by {sd_dev}", s.label);
            assert!(
                (s.sd_premium - s.sd_x * cfg.premium_loading.abs()).abs() < 1e-9 * s.sd_premium
            );
            assert_eq!(s.acf_x.len(), 41);
            assert!((s.acf_x[0] - 1.0).abs() < 1e-12);
            // empirical vs stationary density: L1 distance over the bins
            let w = s.hist_edges[1] - s.hist_edges[0];
            let l1: f64 = s
                .hist_density
                .iter()
                .zip(&s.stationary_density)
                .map(|(a, b)| (a - b).abs() * w)
                .sum();
            assert!(l1 < 0.15, "{}: L1 = {l1}", s.label);
            let mass: f64 = s.stationary_density.iter().map(|d| d * w).sum();
            assert!((mass - 1.0).abs() < 1e-3, "{}: mass {mass}", s.label);
        }
        let prop = &res.models[0];
        assert!(
            (prop.cv_turnover / 2.66 - 1.0).abs() < 0.10,
            "cv {}",
            prop.cv_turnover
        );
        assert_eq!(prop.hist_out_of_range, 0);
        let ax = prop.analytic_acf_x.as_ref().unwrap();
        assert!((prop.acf_x[1] - ax[1]).abs() < 0.05);
        let quad = &res.models[1];
        assert!(
            (quad.acf_turnover[1] - 0.88).abs() < 0.13,
            "acf {}",
            quad.acf_turnover[1]
        );
        assert!((quad.acf_x[5] - quad.analytic_acf_x.as_ref().unwrap()[5]).abs() < 0.08);
        assert_eq!(res.models[2].scheme, "Euler-Maruyama");
        assert_eq!(res.sample_paths[0].len(), 3);
        assert_eq!(res.sample_paths[2][1].x.len(), 2520);
    }

    #[test]
    fn boundary_shift_removes_reflection_bias() {
        let spec = |shift: bool| ModelSpec {
            label: format!("shift={shift}"),
            delta: 1.0,
            kind: ModelKind::Proportional {
                ell: 1.0,
                boundary_shift: shift,
            },
        };
        let cfg = SimConfig {
            n_paths: 16,
            n_days: 2000,
            substeps: 100,
            seed: 3,
            hist_bins: 10,
            ..SimConfig::default()
        };
        let res = simulate(&cfg, &[spec(true), spec(false)]).unwrap();
        let exact = 0.5; // δ²/(2ℓ)
        let shifted = res.models[0].mean_turnover / exact - 1.0;
        let plain = res.models[1].mean_turnover / exact - 1.0;
        assert!(shifted.abs() < 0.015, "shifted bias {shifted}");
        assert!(plain < -0.03, "unshifted bias {plain}");
    }

    #[test]
    fn near_proportional_power_uses_implicit_steps() {
        let fr = Frictionless::paper();
        let b = back_out_from_quadratic(1.08e-10, 2.19e10, &fr).unwrap();
        let np = Arc::new(NormalisedPower::solve(1.05).unwrap());
        let m = match_power_with(&np, b.lambda_p, b.shtu, &fr).unwrap();
        let cfg = SimConfig {
            n_paths: 8,
            n_days: 1260,
            substeps: 20,
            seed: 11,
            ..SimConfig::default()
        };
        let res = simulate(&cfg, &[ModelSpec::power("q=1.05", &m, np)]).unwrap();
        let s = &res.models[0];
        assert_eq!(s.scheme, "drift-implicit Euler");
        assert!(
            (s.mean_turnover / b.shtu - 1.0).abs() < 0.1,
            "{}",
            s.mean_turnover
        );
        assert!((s.sd_x / s.stationary_sd_x - 1.0).abs() < 0.1);
    }

    #[test]
    fn results_are_deterministic_across_runs_and_thread_counts() {
        let (models, _, cfg) = calibrated_models();
        let cfg = SimConfig {
            n_paths: 6,
            n_days: 300,
            substeps: 10,
            ..cfg
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| simulate(&cfg, &models).unwrap())
        };
        let a = run(1);
        let b = run(2);
        let c = run(3);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, simulate(&cfg, &models).unwrap());
        let other = simulate(&SimConfig { seed: 8, ..cfg }, &models).unwrap();
        assert_ne!(a.models[0].mean_turnover, other.models[0].mean_turnover);
    }

    #[test]
    fn blocked_acf_is_bit_identical_to_stats_acf() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for n in [
            1, 2, 3, 4, 5, 7, 8, 9, 40, 41, 42, 43, 44, 45, 100, 2519, 2520,
        ] {
            let x: Vec<f64> = (0..n)
                .map(|i| rng.sample::<f64, _>(StandardNormal) + 0.01 * i as f64)
                .collect();
            for max_lag in [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 40, 41, 60] {
                let bits = |v: Vec<f64>| v.iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
                let slow = bits(super::super::stats::acf(&x, max_lag));
                assert_eq!(
                    bits(acf::<4>(&x, max_lag)),
                    slow,
                    "n = {n}, max_lag = {max_lag}"
                );
                assert_eq!(
                    bits(acf::<8>(&x, max_lag)),
                    slow,
                    "n = {n}, max_lag = {max_lag}"
                );
                if let Some(fast) = acf_avx2(&x, max_lag) {
                    assert_eq!(bits(fast), slow, "AVX2: n = {n}, max_lag = {max_lag}");
                }
            }
        }
        let flat = [2.0; 50];
        let nan = |v: Vec<f64>| v.iter().all(|x| x.is_nan());
        assert!(nan(acf::<4>(&flat, 5)) && nan(super::super::stats::acf(&flat, 5)));
        assert!(nan(acf::<8>(&flat, 5)));
    }

    /// [`acf`] as the AVX2 version of [`simulate_block`] compiles it, if the CPU has AVX2.
    fn acf_avx2(x: &[f64], max_lag: usize) -> Option<Vec<f64>> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn inner(x: &[f64], max_lag: usize) -> Vec<f64> {
                acf::<8>(x, max_lag)
            }
            // SAFETY: `inner` only needs AVX2, which the CPU has (checked just above).
            return Some(unsafe { inner(x, max_lag) });
        }
        let _ = (x, max_lag);
        None
    }

    #[test]
    fn avx2_drift_steps_match_scalar_ones_on_and_off_the_table() {
        let (models, _, _) = calibrated_models();
        let h = 0.1;
        let st = build_stepper(&models[2], h).unwrap().0;
        let Stepper::Drift {
            ref table,
            implicit: false,
            ..
        } = st
        else {
            panic!("q = 1.5 at m = 10 steps explicitly");
        };
        let edge = -table.x0;
        let sd = models[2].stationary_sd();
        // 23 lanes (five groups of four and three more); some groups have lanes off the table.
        let x0: Vec<f64> = (0..23)
            .map(|i| match i {
                5 => 1.5 * edge,
                9 => -1.01 * edge,
                14 => edge,
                21 => -3.0 * edge,
                _ => (i as f64 - 11.0) * 0.3 * sd,
            })
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let xi: Vec<f64> = (0..10 * x0.len())
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let turn0: Vec<f64> = (0..x0.len()).map(|i| i as f64).collect();
        let (mut xa, mut ta) = (x0.clone(), turn0.clone());
        let (mut xb, mut tb) = (x0, turn0);
        st.advance::<false>(&mut xa, &mut ta, &xi, h);
        st.advance::<true>(&mut xb, &mut tb, &xi, h);
        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(&xa), bits(&xb));
        assert_eq!(bits(&ta), bits(&tb));
    }

    #[test]
    fn dispatched_block_is_bit_identical_to_baseline() {
        let (mut models, _, cfg) = calibrated_models();
        let np = Arc::new(NormalisedPower::solve(1.05).unwrap());
        let fr = Frictionless::paper();
        let b = back_out_from_quadratic(1.08e-10, 2.19e10, &fr).unwrap();
        let m = match_power_with(&np, b.lambda_p, b.shtu, &fr).unwrap();
        models.push(ModelSpec::power("q=1.05", &m, np));
        let cfg = SimConfig {
            n_days: 300,
            substeps: 10,
            burn_in_days: 2,
            keep_paths: 3,
            ..cfg
        };
        let h = 1.0 / cfg.substeps as f64;
        let steppers: Vec<Stepper> = models
            .iter()
            .map(|m| build_stepper(m, h).unwrap().0)
            .collect();
        assert!(matches!(steppers[3], Stepper::Drift { implicit: true, .. }));
        for paths in [0..1, 2..9, 5..21, 0..37] {
            let base = simulate_block_with::<4, false>(&cfg, &models, &steppers, paths.clone());
            let fast = simulate_block(&cfg, &models, &steppers, paths);
            assert_eq!(format!("{base:?}"), format!("{fast:?}"));
        }
    }

    #[test]
    fn series_histogram_counts_like_histogram_add() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (lo, hi) = (-1.3, 2.1);
        let mut a = Histogram::new(lo, hi, 17).unwrap();
        let empty = a.clone();
        let edges = a.edges();
        let specials = [
            lo,
            hi,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            hi - 1e-16,
            lo - 1e-16,
        ];
        let values = (0..20_000)
            .map(|_| 2.0 * rng.sample::<f64, _>(StandardNormal))
            .chain(edges.iter().copied())
            .chain(specials);
        let values: Vec<f64> = values.collect();
        for &v in &values {
            a.add(v);
        }
        let b = series_hist(&empty, &values, &mut Vec::new());
        assert_eq!(a, b);
        assert!(a.below > 0 && a.above > 0);
    }

    #[test]
    fn bad_configurations_are_rejected() {
        let (models, _, cfg) = calibrated_models();
        assert!(simulate(&SimConfig { n_paths: 0, ..cfg }, &models).is_err());
        assert!(simulate(&SimConfig { n_days: 1, ..cfg }, &models).is_err());
        assert!(simulate(&cfg, &[]).is_err());
        let mut bad = models[1].clone();
        bad.delta = -1.0;
        assert!(simulate(&cfg, &[bad]).is_err());
        let coarse = ModelSpec {
            label: "coarse".into(),
            delta: 10.0,
            kind: ModelKind::Proportional {
                ell: 1.0,
                boundary_shift: true,
            },
        };
        assert!(simulate(&SimConfig { substeps: 1, ..cfg }, &[coarse]).is_err());
    }
}
