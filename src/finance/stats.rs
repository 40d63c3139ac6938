//! Descriptive statistics for the simulation (spec §10.4): mean/sd/CV, Welford accumulators,
//! sample autocorrelations, fixed-bin histograms, bin-averaged densities, and the analytic
//! autocorrelations of the OU process, of `|X|` under OU, and of the doubly reflected BM.
//!
//! Nothing here knows about cost models; `sde` feeds it.

use super::{FinanceError, Result};
use std::f64::consts::PI;

/// Arithmetic mean (NaN for an empty slice).
pub fn mean(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample standard deviation with the `n − 1` denominator (NaN for fewer than 2 values).
pub fn sd(x: &[f64]) -> f64 {
    let mut w = Welford::default();
    x.iter().for_each(|&v| w.push(v));
    w.sd()
}

/// Standard error of the mean, sd/√n (NaN for fewer than 2 values).
pub fn standard_error(x: &[f64]) -> f64 {
    sd(x) / (x.len() as f64).sqrt()
}

/// The empirical `p`-quantile (linear interpolation between order statistics; NaN when empty).
pub fn quantile(x: &[f64], p: f64) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    let h = p.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (i, w) = (h.floor() as usize, h.fract());
    if i + 1 < v.len() {
        v[i] + w * (v[i + 1] - v[i])
    } else {
        v[i]
    }
}

/// Coefficient of variation sd/mean.
pub fn cv(x: &[f64]) -> f64 {
    sd(x) / mean(x)
}

/// Online mean/variance accumulator (Welford), mergeable in a fixed order (Chan et al.).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    /// Number of observations.
    pub n: u64,
    /// Running mean.
    pub mean: f64,
    /// Running sum of squared deviations from the mean.
    pub m2: f64,
}

impl Welford {
    /// Adds one observation.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// Merges another accumulator into this one.
    pub fn merge(&mut self, o: &Welford) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n as f64;
        self.m2 += o.m2 + d * d * (self.n as f64) * (o.n as f64) / n as f64;
        self.n = n;
    }

    /// Sample variance (`n − 1` denominator).
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            f64::NAN
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }

    /// Sample standard deviation.
    pub fn sd(&self) -> f64 {
        self.variance().sqrt()
    }

    /// Coefficient of variation sd/mean.
    pub fn cv(&self) -> f64 {
        self.sd() / self.mean
    }
}

/// Sample autocorrelation at lags `0..=max_lag` (standard biased estimator, demeaned by the
/// sample mean, normalised by the lag-0 autocovariance); NaN where undefined.
pub fn acf(x: &[f64], max_lag: usize) -> Vec<f64> {
    let n = x.len();
    let m = mean(x);
    let d: Vec<f64> = x.iter().map(|v| v - m).collect();
    let c0 = dot(&d, &d);
    (0..=max_lag)
        .map(|h| {
            if h >= n || c0 <= 0.0 || !c0.is_finite() {
                return f64::NAN;
            }
            dot(&d[..n - h], &d[h..]) / c0
        })
        .collect()
}

/// Dot product with four independent accumulators (vectorisable, fixed summation order).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let (ca, ra) = a.as_chunks::<4>();
    let (cb, rb) = b.as_chunks::<4>();
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Histogram with fixed, equal-width bins on `[lo, hi)` plus under/overflow counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Lower edge.
    pub lo: f64,
    /// Upper edge.
    pub hi: f64,
    /// Counts per bin.
    pub counts: Vec<u64>,
    /// Observations below `lo`.
    pub below: u64,
    /// Observations at or above `hi` (or NaN).
    pub above: u64,
}

impl Histogram {
    /// An empty histogram with `bins` bins on `[lo, hi)`.
    pub fn new(lo: f64, hi: f64, bins: usize) -> Result<Self> {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) || bins == 0 {
            return Err(FinanceError::InvalidConfig(format!(
                "histogram needs lo < hi and bins > 0, got [{lo}, {hi}) with {bins} bins"
            )));
        }
        Ok(Self {
            lo,
            hi,
            counts: vec![0; bins],
            below: 0,
            above: 0,
        })
    }

    /// Bin width.
    pub fn width(&self) -> f64 {
        (self.hi - self.lo) / self.counts.len() as f64
    }

    /// Adds one observation.
    pub fn add(&mut self, x: f64) {
        if x < self.lo {
            self.below += 1;
        } else if x >= self.hi || x.is_nan() {
            // the closed upper edge of a bounded law (e.g. X = ℓ) goes into the last bin
            if x == self.hi {
                if let Some(c) = self.counts.last_mut() {
                    *c += 1;
                }
            } else {
                self.above += 1;
            }
        } else {
            let i = ((x - self.lo) / self.width()) as usize;
            let i = i.min(self.counts.len() - 1);
            self.counts[i] += 1;
        }
    }

    /// Adds the counts of another histogram with identical bins.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.below += o.below;
        self.above += o.above;
    }

    /// Total number of observations, including under/overflow.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.below + self.above
    }

    /// Bin edges (`bins + 1` values).
    pub fn edges(&self) -> Vec<f64> {
        let w = self.width();
        (0..=self.counts.len())
            .map(|i| self.lo + i as f64 * w)
            .collect()
    }

    /// Bin centres.
    pub fn centers(&self) -> Vec<f64> {
        let w = self.width();
        (0..self.counts.len())
            .map(|i| self.lo + (i as f64 + 0.5) * w)
            .collect()
    }

    /// Empirical density per bin: count / (total · width).
    pub fn density(&self) -> Vec<f64> {
        let t = self.total() as f64 * self.width();
        self.counts.iter().map(|&c| c as f64 / t).collect()
    }
}

/// Average of `f` over each of `bins` equal bins of `[lo, hi]` (composite Simpson, 16 panels).
pub fn bin_average<F: Fn(f64) -> f64>(f: F, lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let w = (hi - lo) / bins as f64;
    let panels = 16;
    let hp = w / panels as f64;
    (0..bins)
        .map(|b| {
            let a = lo + b as f64 * w;
            let mut s = f(a) + f(a + w);
            for j in 1..panels {
                let wgt = if j % 2 == 1 { 4.0 } else { 2.0 };
                s += wgt * f(a + j as f64 * hp);
            }
            s * hp / 3.0 / w
        })
        .collect()
}

/// OU autocorrelation `e^{−k t}`.
pub fn ou_acf(k: f64, t: f64) -> f64 {
    (-k * t).exp()
}

/// `Corr(|X_0|, |X_t|)` for a stationary OU process: `(√(1−ρ²) + ρ asin ρ − 1)/(π/2 − 1)`.
pub fn ou_abs_acf(k: f64, t: f64) -> f64 {
    let rho = ou_acf(k, t).clamp(-1.0, 1.0);
    ((1.0 - rho * rho).sqrt() + rho * rho.asin() - 1.0) / (PI / 2.0 - 1.0)
}

/// Autocorrelation of the stationary doubly reflected BM on `[−ℓ, ℓ]` with noise `δ`:
/// `Σ_{n odd} 96/(π⁴n⁴) exp(−(δ²/2)(nπ/(2ℓ))² t)` (terms until they are below 1e-17).
pub fn drbm_acf(delta: f64, ell: f64, t: f64) -> f64 {
    let mut s = 0.0;
    let mut n = 1.0f64;
    loop {
        let term = 96.0 / (PI.powi(4) * n.powi(4))
            * (-0.5 * delta * delta * (n * PI / (2.0 * ell)).powi(2) * t).exp();
        s += term;
        if term < 1e-17 || n > 1e5 {
            break;
        }
        n += 2.0;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_moments() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(mean(&x), 2.5);
        assert!((sd(&x) - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!((cv(&x) - (5.0f64 / 3.0).sqrt() / 2.5).abs() < 1e-15);
        let mut a = Welford::default();
        let mut b = Welford::default();
        x[..1].iter().for_each(|&v| a.push(v));
        x[1..].iter().for_each(|&v| b.push(v));
        a.merge(&b);
        assert!((a.variance() - 5.0 / 3.0).abs() < 1e-14);
        assert_eq!(a.n, 4);
        assert!(mean(&[]).is_nan());
    }

    #[test]
    fn acf_of_alternating_and_ar1() {
        let x: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let r = acf(&x, 2);
        assert_eq!(r[0], 1.0);
        assert!((r[1] + 0.99).abs() < 1e-12);
        assert!((r[2] - 0.98).abs() < 1e-12);
        // deterministic AR(1)-like decay: x_t = 0.5^t has a positive lag-1 ACF
        let y: Vec<f64> = (0..50).map(|i| 0.5f64.powi(i)).collect();
        assert!(acf(&y, 1)[1] > 0.3);
        assert!(acf(&[1.0, 1.0, 1.0], 1)[1].is_nan());
    }

    #[test]
    fn histogram_counts_and_density() {
        let mut h = Histogram::new(-1.0, 1.0, 4).unwrap();
        for x in [-0.9, -0.4, 0.1, 0.6, 0.99, 1.0, 2.0, -3.0] {
            h.add(x);
        }
        assert_eq!(h.counts, vec![1, 1, 1, 3]);
        assert_eq!((h.below, h.above), (1, 1));
        assert_eq!(h.total(), 8);
        let d = h.density();
        assert!((d[3] - 3.0 / (8.0 * 0.5)).abs() < 1e-15);
        assert_eq!(h.edges().len(), 5);
        assert!(Histogram::new(1.0, 1.0, 3).is_err());
        assert!(Histogram::new(0.0, 1.0, 0).is_err());
    }

    #[test]
    fn bin_average_integrates_exactly_for_cubics() {
        let v = bin_average(|x| x * x * x + x * x, 0.0, 2.0, 2);
        assert!((v[0] - (0.25 + 1.0 / 3.0)).abs() < 1e-14);
        assert!((v[1] - ((4.0 - 0.25) + (8.0 - 1.0) / 3.0)).abs() < 1e-13);
    }

    #[test]
    fn analytic_acfs_match_reference_values() {
        // calibrated proportional model (spec §9 D rows) and quadratic speed (E rows)
        let ell = 5.10109044503e10;
        let delta = 2.57450926608e10 / 1.88;
        for (t, want) in [(1.0, 0.90733), (5.0, 0.63206), (20.0, 0.16649)] {
            let got = drbm_acf(delta, ell, t);
            assert!((got - want).abs() < 6e-6, "t={t} got {got}");
        }
        assert!((drbm_acf(delta, ell, 0.0) - 1.0).abs() < 1e-12);
        let k = 0.0782235897923;
        for (t, want) in [(1.0, 0.82716), (5.0, 0.41860), (20.0, 0.03848)] {
            let got = ou_abs_acf(k, t);
            assert!((got - want).abs() < 6e-6, "t={t} got {got}");
        }
        assert!((ou_abs_acf(k, 0.0) - 1.0).abs() < 1e-12);
        assert!((ou_acf(k, 8.8611) - 0.5).abs() < 1e-4);
    }
}
