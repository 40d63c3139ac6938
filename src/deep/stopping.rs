//! Early stopping for the adaptive R-GAN schedule: the test "improved by more than its standard
//! error" on a fixed validation set, paired path by path (the change of a metric on the same
//! paths has a far smaller standard error than the metric itself). The training loop consults it
//! through [`super::train::StopCheck`].

use crate::finance::stats::{mean, standard_error};

/// Whether the per-path values `cur` improve on `prev` (lower is better, the same paths in the
/// same order) by more than one standard error of the paired change.
pub fn improves(prev: &[f64], cur: &[f64]) -> bool {
    if prev.len() != cur.len() || prev.len() < 2 {
        return false;
    }
    let d: Vec<f64> = prev.iter().zip(cur).map(|(a, b)| a - b).collect();
    let (m, se) = (mean(&d), standard_error(&d));
    m.is_finite() && m > se
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn improvement_must_exceed_the_paired_standard_error() {
        let prev: Vec<f64> = (0..100).map(|i| 1.0 + (i as f64 * 0.37).sin()).collect();
        // A uniform decrease of 1e-3 on every path: mean 1e-3, standard error 0: improved.
        let better: Vec<f64> = prev.iter().map(|x| x - 1e-3).collect();
        assert!(improves(&prev, &better));
        // Noise of ±1e-2 around a 1e-4 decrease: the change is within one standard error
        // (≈ 7e-4): not improved.
        let noisy: Vec<f64> = prev
            .iter()
            .enumerate()
            .map(|(i, x)| x - 1e-4 + if i % 2 == 0 { 1e-2 } else { -1e-2 })
            .collect();
        assert!(!improves(&prev, &noisy));
        // A worse set, mismatched lengths and a single path never count as improvements.
        let worse: Vec<f64> = prev.iter().map(|x| x + 1e-3).collect();
        assert!(!improves(&prev, &worse));
        assert!(!improves(&prev[..10], &better));
        assert!(!improves(&prev[..1], &better[..1]));
    }
}
