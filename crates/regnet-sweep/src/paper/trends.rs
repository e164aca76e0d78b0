//! The statistics of the trend claims: a parameter's value per model, the bootstrap range
//! of the best model's value, and the difference of that value between the upper and the
//! lower half of the flops band.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::experiments::Param;
use super::verdict::{Interval, Rule};
use crate::analysis::{
    BootstrapOptions, BootstrapRange, bootstrap_best, bootstrap_range, percentile,
};
use crate::collect::{ModelResult, SweepResults};

/// The value of `p` of a RegNet model (`None` for other models).
pub fn value(m: &ModelResult, p: Param) -> Option<f64> {
    let r = m.regnet.as_ref()?;
    Some(match p {
        Param::Depth => r.depth as f64,
        Param::BottleneckRatio => 1.0 / r.bot_mul,
        Param::GroupW => r.group_w as f64,
        Param::Wm => r.wm,
        Param::Wa => r.wa,
        Param::W0 => r.w0 as f64,
    })
}

/// A sweep's finished models with their errors, flops and the values of `p`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Points {
    /// Errors (%).
    pub errors: Vec<f64>,
    /// Flops.
    pub flops: Vec<f64>,
    /// Values of the parameter.
    pub values: Vec<f64>,
}

/// The finished RegNet models of `sweep` as [`Points`] of `p`.
pub fn points(sweep: &SweepResults, p: Param) -> Points {
    let mut out = Points::default();
    for m in sweep.finished() {
        if let (Some(e), Some(v)) = (m.error(), value(m, p)) {
            out.errors.push(e);
            out.flops.push(m.complexity.flops as f64);
            out.values.push(v);
        }
    }
    out
}

/// pycls's bootstrap options with the rule's rounds and seed.
pub fn bootstrap_options(rule: &Rule) -> BootstrapOptions {
    BootstrapOptions {
        rounds: rule.rounds.max(1),
        seed: rule.seed,
        ..BootstrapOptions::default()
    }
}

/// The 95% bootstrap range of the best model's value (`errors` non-empty).
pub fn best_range(errors: &[f64], values: &[f64], rule: &Rule) -> BootstrapRange {
    let opts = bootstrap_options(rule);
    let best = bootstrap_best(errors, &opts);
    bootstrap_range(values, &best, opts.alpha)
}

/// The indices of the models below and at or above the median flops.
pub fn halves(flops: &[f64]) -> (Vec<usize>, Vec<usize>) {
    if flops.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mid = percentile(flops, 50.0);
    (0..flops.len()).partition(|&i| flops[i] < mid)
}

/// The index, among `pool`, of the lowest error in `draws` draws with replacement.
fn best_of_draws<R: Rng>(rng: &mut R, errors: &[f64], pool: &[usize], draws: usize) -> usize {
    let mut best = pool[rng.random_range(0..pool.len())];
    for _ in 1..draws {
        let i = pool[rng.random_range(0..pool.len())];
        if errors[i] < errors[best] {
            best = i;
        }
    }
    best
}

/// The interval of (best value in the upper flops half) minus (best value in the lower
/// half): each round draws 25% of each half with replacement and keeps its best model, as
/// [`bootstrap_best`] does. `None` when a half has fewer than two models.
pub fn half_difference(pts: &Points, rule: &Rule) -> Option<Interval> {
    let (lo, hi) = halves(&pts.flops);
    if lo.len() < 2 || hi.len() < 2 {
        return None;
    }
    let draws = |n: usize| ((n as f64 * 0.25) as usize).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(rule.seed);
    let diffs: Vec<f64> = (0..rule.rounds.max(1))
        .map(|_| {
            let b_lo = best_of_draws(&mut rng, &pts.errors, &lo, draws(lo.len()));
            let b_hi = best_of_draws(&mut rng, &pts.errors, &hi, draws(hi.len()));
            pts.values[b_hi] - pts.values[b_lo]
        })
        .collect();
    let best_in = |pool: &[usize]| {
        pool.iter()
            .copied()
            .min_by(|&a, &b| pts.errors[a].total_cmp(&pts.errors[b]))
            .expect("non-empty half")
    };
    Some(Interval {
        estimate: pts.values[best_in(&hi)] - pts.values[best_in(&lo)],
        low: percentile(&diffs, 2.5),
        high: percentile(&diffs, 97.5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_split_at_the_median() {
        let (lo, hi) = halves(&[5.0, 1.0, 3.0, 4.0, 2.0]);
        assert_eq!((lo, hi), (vec![1, 4], vec![0, 2, 3]));
    }

    #[test]
    fn a_value_that_grows_with_flops_is_found() {
        // The best models' value is the flops (scaled): lower half best ~ 1-4, upper ~ 5-8.
        let n = 40;
        let flops: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        let values = flops.clone();
        let errors: Vec<f64> = (0..n).map(|i| 10.0 + ((i * 7) % 11) as f64).collect();
        let pts = Points {
            errors,
            flops,
            values,
        };
        let d = half_difference(&pts, &Rule::default()).unwrap();
        assert!(d.low > 0.0, "{d:?}");
        // With no relation between values and flops halves, 0 stays inside.
        let pts2 = Points {
            values: pts.errors.iter().map(|e| e % 3.0).collect(),
            ..pts.clone()
        };
        let d2 = half_difference(&pts2, &Rule::default()).unwrap();
        assert!(d2.low <= 0.0 && d2.high >= 0.0, "{d2:?}");
        assert!(half_difference(&Points::default(), &Rule::default()).is_none());
    }
}
