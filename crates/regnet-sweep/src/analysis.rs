//! The statistics of design-space comparison: error EDFs, complexity-normalized EDFs and
//! the empirical bootstrap of the best models' parameters.
//!
//! **EDF.** The error empirical distribution function of `n` models with errors `e_i` is
//! `F(e) = (1/n) sum_i 1[e_i <= e]`: the fraction of models with error at most `e`. A design
//! space whose curve lies further left (or higher) has more good models.
//!
//! **Normalized EDF.** Design spaces differ in the complexity of the models they produce,
//! and complexity alone changes the error; the normalized EDF `F(e) = sum_i w_i 1[e_i <= e]`
//! weights each model so that every design space has the same complexity distribution
//! (Radosavovic et al., 2019, "On Network Design Spaces for Visual Recognition"). Here:
//! the common flops range is `[max of the minimums, min of the maximums]` over the design
//! spaces compared; it is cut into `bins` equal bins of log-flops; the bins that hold a
//! model of every design space are kept; each kept bin gets weight `1 / kept`, shared
//! equally by that design space's models in it, and models outside kept bins get 0. So
//! each design space's weighted flops distribution is uniform over the same bins. (pycls's
//! `analysis.py` has no normalized EDF; this is the published definition.)
//!
//! **Bootstrap.** pycls's `get_filters`: in each of `rounds` (2500) rounds, draw
//! `max(1, floor(n * sample))` models (25%) with replacement and keep the best one (lowest
//! error, first on ties); the 2.5th, 50th and 97.5th percentiles (numpy's linear
//! interpolation) of a parameter over the kept models give the range where good models
//! lie and its most likely value.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// `(error, F(error))` points of an EDF, errors ascending.
pub type EdfPoints = Vec<(f64, f64)>;

/// The EDF of `errors`: the sorted errors with the fraction of models at or below each.
pub fn edf(errors: &[f64]) -> EdfPoints {
    let w = vec![1.0; errors.len()];
    weighted_edf(errors, &w)
}

/// The weighted EDF: sorted errors with the cumulative normalized weight at each. Models of
/// weight 0 are left out.
pub fn weighted_edf(errors: &[f64], weights: &[f64]) -> EdfPoints {
    assert_eq!(errors.len(), weights.len(), "one weight per error");
    let total: f64 = weights.iter().sum();
    let mut pairs: Vec<(f64, f64)> = errors
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(&e, &w)| (e, w))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut cum = 0.0;
    pairs
        .into_iter()
        .map(|(e, w)| {
            cum += w;
            (e, (cum / total).min(1.0))
        })
        .collect()
}

/// `F(e)` of an EDF given by its points.
pub fn edf_at(points: &[(f64, f64)], e: f64) -> f64 {
    points
        .iter()
        .take_while(|(x, _)| *x <= e)
        .last()
        .map_or(0.0, |p| p.1)
}

/// The points of an EDF as a step curve, starting at `F = 0`.
pub fn step_curve(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    let mut prev = 0.0;
    for &(x, y) in points {
        out.push((x, prev));
        out.push((x, y));
        prev = y;
    }
    out
}

/// The default number of log-flops bins for `n` models in the smallest design space.
pub fn default_bins(n: usize) -> usize {
    (n / 5).clamp(1, 10)
}

/// Per-model weights that give every design space the same (uniform over the common bins)
/// complexity distribution; `complexities[s]` are design space `s`'s flops. `None` when
/// the flops ranges do not overlap or no bin holds a model of every design space.
pub fn complexity_weights(complexities: &[Vec<f64>], bins: usize) -> Option<Vec<Vec<f64>>> {
    let bins = bins.max(1);
    if complexities.is_empty() || complexities.iter().any(|c| c.is_empty()) {
        return None;
    }
    if complexities
        .iter()
        .flatten()
        .any(|&c| c.is_nan() || c <= 0.0)
    {
        return None;
    }
    let lo = complexities
        .iter()
        .map(|c| c.iter().copied().fold(f64::INFINITY, f64::min))
        .fold(f64::NEG_INFINITY, f64::max);
    let hi = complexities
        .iter()
        .map(|c| c.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .fold(f64::INFINITY, f64::min);
    if lo > hi {
        return None;
    }
    let (llo, lhi) = (lo.ln(), hi.ln());
    let bin_of = |c: f64| -> Option<usize> {
        if c < lo || c > hi {
            return None;
        }
        if lhi == llo {
            return Some(0);
        }
        let b = ((c.ln() - llo) / (lhi - llo) * bins as f64).floor() as usize;
        Some(b.min(bins - 1))
    };
    let mut counts = vec![vec![0usize; bins]; complexities.len()];
    for (s, cs) in complexities.iter().enumerate() {
        for &c in cs {
            if let Some(b) = bin_of(c) {
                counts[s][b] += 1;
            }
        }
    }
    let kept: Vec<bool> = (0..bins)
        .map(|b| counts.iter().all(|cs| cs[b] > 0))
        .collect();
    let n_kept = kept.iter().filter(|k| **k).count();
    if n_kept == 0 {
        return None;
    }
    Some(
        complexities
            .iter()
            .enumerate()
            .map(|(s, cs)| {
                cs.iter()
                    .map(|&c| match bin_of(c) {
                        Some(b) if kept[b] => 1.0 / (n_kept as f64 * counts[s][b] as f64),
                        _ => 0.0,
                    })
                    .collect()
            })
            .collect(),
    )
}

/// numpy's `percentile` with linear interpolation, `p` in `[0, 100]`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    assert!(!values.is_empty(), "percentile of nothing");
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = p / 100.0 * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    if i + 1 < v.len() {
        v[i] + (v[i + 1] - v[i]) * frac
    } else {
        v[i]
    }
}

/// Bootstrap settings (pycls's `get_filters` defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapOptions {
    /// Rounds.
    pub rounds: usize,
    /// Models drawn per round: a fraction of `n` if at most 1, else a count.
    pub sample: f64,
    /// The range covers `100 - alpha` percent.
    pub alpha: f64,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            rounds: 2500,
            sample: 0.25,
            alpha: 5.0,
            seed: 0,
        }
    }
}

/// The index of the best model of each bootstrap round.
pub fn bootstrap_best(errors: &[f64], opts: &BootstrapOptions) -> Vec<usize> {
    let n = errors.len();
    assert!(n > 0, "bootstrap of no models");
    let k = if opts.sample > 1.0 {
        opts.sample as usize
    } else {
        ((n as f64 * opts.sample) as usize).max(1)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    (0..opts.rounds)
        .map(|_| {
            let mut best = rng.random_range(0..n);
            for _ in 1..k {
                let i = rng.random_range(0..n);
                if errors[i] < errors[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// A bootstrap range: `[low, high]` holds the best model's value `100 - alpha` percent of
/// the time, `median` is its median.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapRange {
    /// `alpha / 2` percentile.
    pub low: f64,
    /// Median.
    pub median: f64,
    /// `100 - alpha / 2` percentile.
    pub high: f64,
}

/// The range of `values` over the bootstrap rounds' best models `best`.
pub fn bootstrap_range(values: &[f64], best: &[usize], alpha: f64) -> BootstrapRange {
    let v: Vec<f64> = best.iter().map(|&i| values[i]).collect();
    BootstrapRange {
        low: percentile(&v, alpha / 2.0),
        median: percentile(&v, 50.0),
        high: percentile(&v, 100.0 - alpha / 2.0),
    }
}

/// Summary numbers of a set of errors.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorStats {
    /// Models.
    pub n: usize,
    /// Minimum.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
}

/// `n`, min, mean and median of `errors` (`None` if empty).
pub fn error_stats(errors: &[f64]) -> Option<ErrorStats> {
    if errors.is_empty() {
        return None;
    }
    Some(ErrorStats {
        n: errors.len(),
        min: errors.iter().copied().fold(f64::INFINITY, f64::min),
        mean: errors.iter().sum::<f64>() / errors.len() as f64,
        median: percentile(errors, 50.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edf_by_hand() {
        let p = edf(&[3.0, 1.0, 2.0, 2.0]);
        assert_eq!(p, vec![(1.0, 0.25), (2.0, 0.5), (2.0, 0.75), (3.0, 1.0)]);
        assert_eq!(edf_at(&p, 0.5), 0.0);
        assert_eq!(edf_at(&p, 2.0), 0.75);
        assert_eq!(edf_at(&p, 10.0), 1.0);
        assert_eq!(
            step_curve(&p[..2]),
            vec![(1.0, 0.0), (1.0, 0.25), (2.0, 0.25), (2.0, 0.5)]
        );
    }

    #[test]
    fn weighted_edf_by_hand() {
        let p = weighted_edf(&[1.0, 2.0, 3.0, 4.0], &[0.5, 0.0, 0.25, 0.25]);
        assert_eq!(p, vec![(1.0, 0.5), (3.0, 0.75), (4.0, 1.0)]);
    }

    #[test]
    fn complexity_weights_by_hand() {
        // Bins over [10, 100] in log space: [10, 31.6) and [31.6, 100].
        let w =
            complexity_weights(&[vec![10.0, 10.0, 100.0], vec![10.0, 100.0, 100.0]], 2).unwrap();
        assert_eq!(w[0], vec![0.25, 0.25, 0.5]);
        assert_eq!(w[1], vec![0.5, 0.25, 0.25]);
        // Normalized EDF of the first sweep with errors 1, 2, 3.
        let p = weighted_edf(&[1.0, 2.0, 3.0], &w[0]);
        assert_eq!(p, vec![(1.0, 0.25), (2.0, 0.5), (3.0, 1.0)]);
        // Common range [10, 20], bins [10, 14.1) and [14.1, 20]: 5, 30 and 50 are outside
        // (weight 0), and the second bin lacks the second sweep, so it is dropped.
        let w = complexity_weights(&[vec![5.0, 10.0, 20.0], vec![10.0, 30.0, 50.0]], 2).unwrap();
        assert_eq!(w[0], vec![0.0, 1.0, 0.0]);
        assert_eq!(w[1], vec![1.0, 0.0, 0.0]);
        // No overlap.
        assert!(complexity_weights(&[vec![1.0, 2.0], vec![3.0, 4.0]], 3).is_none());
    }

    #[test]
    fn percentiles_like_numpy() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&v, 50.0), 2.5);
        assert_eq!(percentile(&v, 25.0), 1.75);
        assert_eq!(percentile(&v, 100.0), 4.0);
        assert_eq!(percentile(&[10.0, 20.0], 2.5), 10.25);
        assert_eq!(percentile(&[7.0], 97.5), 7.0);
    }

    #[test]
    fn bootstrap_by_hand() {
        let errors = [3.0, 1.0, 2.0];
        let values = [30.0, 10.0, 20.0];
        // 25% of 3 models is one model a round: the "best" is a uniform draw.
        let best = bootstrap_best(&errors, &BootstrapOptions::default());
        assert_eq!(best.len(), 2500);
        let share = |i| best.iter().filter(|&&b| b == i).count() as f64 / 2500.0;
        for i in 0..3 {
            assert!((share(i) - 1.0 / 3.0).abs() < 0.04, "{}", share(i));
        }
        let r = bootstrap_range(&values, &best, 5.0);
        assert_eq!((r.low, r.median, r.high), (10.0, 20.0, 30.0));
        // Three models a round: the best is model 1 with probability 1 - (2/3)^3 = 0.70,
        // model 0 (the worst) with (1/3)^3 = 0.037 > 2.5%.
        let opts = BootstrapOptions {
            sample: 1.0,
            ..BootstrapOptions::default()
        };
        let best = bootstrap_best(&errors, &opts);
        let p1 = best.iter().filter(|&&b| b == 1).count() as f64 / 2500.0;
        assert!((p1 - 19.0 / 27.0).abs() < 0.03, "{p1}");
        let r = bootstrap_range(&values, &best, 5.0);
        assert_eq!((r.low, r.median, r.high), (10.0, 10.0, 30.0));
        // A fixed seed gives the same draws.
        assert_eq!(best, bootstrap_best(&errors, &opts));
    }
}
