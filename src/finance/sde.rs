//! Monte-Carlo simulation of the state variable X (spec §10.3) for several cost models driven by
//! the same Gaussian increments, with the per-model statistics of spec §10.4 accumulated while
//! simulating (only the first `keep_paths` daily paths are kept).
//!
//! Schemes: quadratic — exact OU transition; power q — Euler–Maruyama on the tabulated drift
//! `r(x) = (δ²c1/2)H̃(c1 x)` (drift-implicit Euler when the explicit step would be stiff);
//! proportional — projected random walk with the Asmussen–Glynn–Pitman boundary shift
//! `ℓ' = ℓ − 0.5826 δ√h`. Each path has its own ChaCha8 stream seeded from (seed, path index);
//! paths run in parallel with rayon and are reduced in path order, so results are bit-identical
//! for any thread count.
//!
//! ACF convention: per-path sample ACFs (each path demeaned by its own mean) averaged over
//! paths. Pooled moments (mean, sd, CV) are over all path-days after burn-in.

use super::power::NormalisedPower;
use super::stats::{Histogram, Welford, acf, bin_average, drbm_acf, ou_abs_acf, ou_acf};
use super::turnover::{PowerModel, ProportionalModel, QuadraticModel};
use super::{FinanceError, Result, check_positive};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;
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

/// Tabulated drift of a power model on `[−L/c1, L/c1]` with linear interpolation.
#[derive(Debug, Clone)]
struct DriftTable {
    x0: f64,
    dx: f64,
    inv_dx: f64,
    r: Vec<f64>,
    np: Arc<NormalisedPower>,
    delta: f64,
    c1: f64,
}

impl DriftTable {
    fn new(np: Arc<NormalisedPower>, delta: f64, c1: f64) -> Self {
        let n = 24_000;
        let x0 = -np.l / c1;
        let dx = 2.0 * np.l / c1 / n as f64;
        let r = (0..=n)
            .map(|i| np.rate(x0 + i as f64 * dx, delta, c1))
            .collect();
        Self {
            x0,
            dx,
            inv_dx: 1.0 / dx,
            r,
            np,
            delta,
            c1,
        }
    }

    /// Drift at `x` (linear interpolation in the table).
    #[inline]
    fn value(&self, x: f64) -> f64 {
        let pos = (x - self.x0) * self.inv_dx;
        if pos >= 0.0 && pos < (self.r.len() - 1) as f64 {
            let i = pos as usize;
            let (a, b) = (self.r[i], self.r[i + 1]);
            a + (pos - i as f64) * (b - a)
        } else {
            self.np.rate(x, self.delta, self.c1)
        }
    }

    /// Drift and its local slope at `x`.
    fn eval(&self, x: f64) -> (f64, f64) {
        let pos = (x - self.x0) * self.inv_dx;
        if pos >= 0.0 && pos < (self.r.len() - 1) as f64 {
            let i = pos as usize;
            let t = pos - i as f64;
            let slope = (self.r[i + 1] - self.r[i]) / self.dx;
            (self.r[i] + t * (self.r[i + 1] - self.r[i]), slope)
        } else {
            let r = self.np.rate(x, self.delta, self.c1);
            let e = 1e-6 * self.dx.max(x.abs() * 1e-9);
            let slope = (self.np.rate(x + e, self.delta, self.c1) - r) / e;
            (r, slope)
        }
    }

    /// Largest `|r'|` over `|c1 x| <= y_max`.
    fn max_slope(&self, y_max: f64) -> f64 {
        let lim = y_max / self.c1;
        self.r
            .windows(2)
            .enumerate()
            .filter(|(i, _)| (self.x0 + *i as f64 * self.dx).abs() <= lim)
            .map(|(_, w)| ((w[1] - w[0]) / self.dx).abs())
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
    /// Advances `x` by one substep with standard normal `xi`; returns the turnover increment.
    #[inline]
    fn step(&self, x: &mut f64, xi: f64, h: f64) -> f64 {
        match self {
            Stepper::Ou { decay, noise, k } => {
                let x0 = *x;
                *x = decay * x0 + noise * xi;
                0.5 * k * (x0.abs() + x.abs()) * h
            }
            Stepper::Drift {
                table,
                noise,
                implicit,
            } => {
                if *implicit {
                    let xn = table.implicit(*x + noise * xi, h);
                    let r = table.value(xn);
                    *x = xn;
                    r.abs() * h
                } else {
                    let r = table.value(*x);
                    *x += r * h + noise * xi;
                    r.abs() * h
                }
            }
            Stepper::Reflect { lim, noise } => {
                let xh = *x + noise * xi;
                let push = (-lim - xh).max(0.0) + (xh - lim).max(0.0);
                *x = xh.clamp(-lim, *lim);
                push
            }
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

fn simulate_path(
    cfg: &SimConfig,
    models: &[ModelSpec],
    steppers: &[Stepper],
    path: usize,
) -> Result<Vec<PathAcc>> {
    let mut rng = ChaCha8Rng::seed_from_u64(path_seed(cfg.seed, path));
    let h = 1.0 / cfg.substeps as f64;
    let nm = models.len();
    let mut x = vec![0.0; nm];
    let mut day_turn = vec![0.0; nm];
    let mut xs = vec![Vec::with_capacity(cfg.n_days); nm];
    let mut ts = vec![Vec::with_capacity(cfg.n_days); nm];
    for day in 0..cfg.burn_in_days + cfg.n_days {
        day_turn.iter_mut().for_each(|v| *v = 0.0);
        for _ in 0..cfg.substeps {
            let xi: f64 = rng.sample(StandardNormal);
            for j in 0..nm {
                day_turn[j] += steppers[j].step(&mut x[j], xi, h);
            }
        }
        if day >= cfg.burn_in_days {
            for j in 0..nm {
                xs[j].push(x[j]);
                ts[j].push(day_turn[j]);
            }
        }
    }
    let keep = path < cfg.keep_paths;
    let mut out = Vec::with_capacity(nm);
    for j in 0..nm {
        let (lo, hi) = hist_range(&models[j]);
        let mut hist = Histogram::new(lo, hi, cfg.hist_bins)?;
        let mut tw = Welford::default();
        let mut xw = Welford::default();
        for (&xv, &tv) in xs[j].iter().zip(&ts[j]) {
            hist.add(xv);
            tw.push(tv);
            xw.push(xv);
        }
        let max_lag = cfg.max_lag.min(cfg.n_days - 1);
        let sample = keep.then(|| SamplePath {
            path,
            x: xs[j].clone(),
            premium: xs[j].iter().map(|v| v * cfg.premium_loading).collect(),
            turnover: ts[j].clone(),
        });
        out.push(PathAcc {
            turnover: tw,
            x: xw,
            acf_x: acf(&xs[j], max_lag),
            acf_t: acf(&ts[j], max_lag),
            hist,
            sample,
        });
    }
    Ok(out)
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
    let per_path: Vec<Result<Vec<PathAcc>>> = (0..cfg.n_paths)
        .into_par_iter()
        .map(|p| {
            let r = simulate_path(cfg, models, &steppers, p);
            if on_path() {
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
    for path_result in per_path {
        let path_accs = path_result?;
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
