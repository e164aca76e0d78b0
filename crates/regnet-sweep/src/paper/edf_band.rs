//! Pointwise bootstrap bands of an error EDF: how far the curve could move with another
//! draw of the same number of models from the design space.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::analysis::{edf, edf_at, percentile};

/// `(x, F)` points of a curve.
pub type Curve = Vec<(f64, f64)>;

/// The 2.5th and 97.5th percentiles of `F(x)` over `rounds` resamples of `errors` (with
/// replacement), at every `x` of `grid`: `(low, high)` curves as `(x, F)` points.
pub fn edf_band(errors: &[f64], grid: &[f64], rounds: usize, seed: u64) -> (Curve, Curve) {
    if errors.is_empty() || grid.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = errors.len();
    let rounds = rounds.max(1);
    // at[g][r]: F at grid point g in round r.
    let mut at = vec![Vec::with_capacity(rounds); grid.len()];
    let mut sample = vec![0.0; n];
    for _ in 0..rounds {
        for s in sample.iter_mut() {
            *s = errors[rng.random_range(0..n)];
        }
        let points = edf(&sample);
        for (g, &x) in grid.iter().enumerate() {
            at[g].push(edf_at(&points, x));
        }
    }
    let curve = |p: f64| -> Curve {
        grid.iter()
            .zip(&at)
            .map(|(&x, fs)| (x, percentile(fs, p)))
            .collect()
    };
    (curve(2.5), curve(97.5))
}

/// An evenly spaced grid of `n` points over `[lo, hi]`.
pub fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_brackets_the_edf() {
        let errors: Vec<f64> = (0..20).map(|i| 20.0 + i as f64).collect();
        let g = grid(15.0, 45.0, 31);
        let (lo, hi) = edf_band(&errors, &g, 300, 1);
        let e = edf(&errors);
        for ((x, l), (_, h)) in lo.iter().zip(&hi) {
            let f = edf_at(&e, *x);
            assert!(*l <= f + 1e-12 && f <= *h + 1e-12, "{x}: {l} {f} {h}");
        }
        // Below every error and above every error the band is exact.
        assert_eq!((lo[0].1, hi[0].1), (0.0, 0.0));
        assert_eq!((lo[30].1, hi[30].1), (1.0, 1.0));
        // In the middle it has width.
        assert!(hi[15].1 - lo[15].1 > 0.1);
    }
}
