//! The verdict rule of `regnet paper`: "holds", "does not hold" or "inconclusive", from
//! bootstrap intervals, with the same rule for every claim of a kind. The rule is fixed
//! before any result is seen and printed in the report ([`RULE_TEXT`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::experiments::Expect;
use crate::analysis::{BootstrapRange, percentile};

/// The outcome of a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The data support the claim.
    Holds,
    /// The data contradict the claim.
    DoesNotHold,
    /// The data decide neither way (or are missing).
    Inconclusive,
}

impl Verdict {
    /// The words the report uses.
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::DoesNotHold => "does not hold",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The settings of the rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// Margin in error points (percent) below which a difference does not count.
    pub margin: f64,
    /// Fewest finished models per sweep for a verdict.
    pub min_models: usize,
    /// A best-value range covering more than this share of the sampled values' span says
    /// nothing about where the best models are.
    pub max_coverage: f64,
    /// Bootstrap rounds.
    pub rounds: usize,
    /// Seed of the bootstrap draws.
    pub seed: u64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            margin: 1.0,
            min_models: 3,
            max_coverage: 0.75,
            rounds: 2000,
            seed: 0,
        }
    }
}

/// A 95% bootstrap interval around an estimate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    /// The estimate on the data.
    pub estimate: f64,
    /// 2.5th percentile of the bootstrap estimates.
    pub low: f64,
    /// 97.5th percentile.
    pub high: f64,
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn resample<R: Rng>(rng: &mut R, v: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend((0..v.len()).map(|_| v[rng.random_range(0..v.len())]));
}

/// The bootstrap interval of `median(new) - median(base)`: each round resamples both sets
/// with replacement, independently. Both sets must be non-empty.
pub fn median_difference(new: &[f64], base: &[f64], rule: &Rule) -> Interval {
    let mut rng = ChaCha8Rng::seed_from_u64(rule.seed);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let diffs: Vec<f64> = (0..rule.rounds.max(1))
        .map(|_| {
            resample(&mut rng, new, &mut a);
            resample(&mut rng, base, &mut b);
            median(&a) - median(&b)
        })
        .collect();
    Interval {
        estimate: median(new) - median(base),
        low: percentile(&diffs, 2.5),
        high: percentile(&diffs, 97.5),
    }
}

/// The verdict on a comparison whose difference of median errors (`new - base`, points)
/// has the interval `d`.
pub fn compare(expect: Expect, d: &Interval, rule: &Rule) -> Verdict {
    let m = rule.margin;
    match expect {
        Expect::NoWorse if d.high <= m => Verdict::Holds,
        Expect::NoWorse if d.low > m => Verdict::DoesNotHold,
        Expect::Better if d.high < 0.0 => Verdict::Holds,
        Expect::Better if d.low > -m => Verdict::DoesNotHold,
        Expect::Worse if d.low > 0.0 => Verdict::Holds,
        Expect::Worse if d.high < m => Verdict::DoesNotHold,
        _ => Verdict::Inconclusive,
    }
}

/// The verdict on "the best models' value is about `value`", from the bootstrap range of
/// the best model's value and the span `(min, max)` of the sampled values. A value no
/// model was sampled near (outside the span) is not tested: inconclusive.
pub fn about(value: f64, range: &BootstrapRange, span: (f64, f64), rule: &Rule) -> Verdict {
    if value < span.0 || value > span.1 {
        return Verdict::Inconclusive;
    }
    if value < range.low || value > range.high {
        return Verdict::DoesNotHold;
    }
    let width = span.1 - span.0;
    if width > 0.0 && (range.high - range.low) / width > rule.max_coverage {
        Verdict::Inconclusive
    } else {
        Verdict::Holds
    }
}

/// The verdict on "grows with flops", from the interval of the difference between the
/// best model's value in the upper and in the lower half of the flops band.
pub fn increases(d: &Interval) -> Verdict {
    if d.low > 0.0 {
        Verdict::Holds
    } else if d.high < 0.0 {
        Verdict::DoesNotHold
    } else {
        Verdict::Inconclusive
    }
}

/// The rule, as the report states it.
pub fn rule_text(rule: &Rule) -> String {
    format!(
        "Comparisons of two design spaces use the difference of median top-1 errors, \
         new minus base, in points, with a 95% bootstrap interval ({rounds} rounds; each \
         round resamples both sweeps' models with replacement). With a margin of m = {m} \
         points: \"no worse\" holds if the interval's upper end is at most m and does not \
         hold if its lower end exceeds m; \"better\" holds if the whole interval is below 0 \
         and does not hold if the lower end is above -m (any gain is smaller than m); \
         \"worse\" holds if the whole interval is above 0 and does not hold if the upper \
         end is below m. Claims about the best models' value use the empirical bootstrap \
         of the best model (pycls's: each round draws 25% of the models with replacement \
         and keeps the best): \"about v\" holds if v is inside the 95% range and the range \
         covers at most {cov:.0}% of the sampled values' span, does not hold if v is \
         outside it (inconclusive if no model was sampled on both sides of v); \"grows \
         with flops\" splits the models at the median flops and holds if the 95% interval \
         of (best value in the upper half) minus (best value in the lower half) is above 0, \
         does not hold if it is below 0. Anything else, or fewer than {min} finished \
         models in a sweep, is inconclusive. The rule was fixed \
         before the results were seen; no setting was tuned to agree with the paper.",
        rounds = rule.rounds,
        m = rule.margin,
        cov = rule.max_coverage * 100.0,
        min = rule.min_models,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(low: f64, high: f64) -> Interval {
        Interval {
            estimate: (low + high) / 2.0,
            low,
            high,
        }
    }

    #[test]
    fn comparison_rule_by_hand() {
        let r = Rule::default();
        use Verdict::*;
        let cases = [
            (Expect::NoWorse, iv(-2.0, 0.9), Holds),
            (Expect::NoWorse, iv(1.5, 3.0), DoesNotHold),
            (Expect::NoWorse, iv(-1.0, 2.0), Inconclusive),
            (Expect::Better, iv(-3.0, -0.1), Holds),
            (Expect::Better, iv(-0.5, 2.0), DoesNotHold),
            (Expect::Better, iv(-3.0, 1.0), Inconclusive),
            (Expect::Worse, iv(0.2, 4.0), Holds),
            (Expect::Worse, iv(-3.0, 0.5), DoesNotHold),
            (Expect::Worse, iv(-1.0, 3.0), Inconclusive),
        ];
        for (e, d, v) in cases {
            assert_eq!(compare(e, &d, &r), v, "{e:?} {d:?}");
        }
    }

    #[test]
    fn median_difference_finds_a_clear_shift_and_not_noise() {
        let r = Rule::default();
        let base: Vec<f64> = (0..30).map(|i| 30.0 + (i % 7) as f64).collect();
        let better: Vec<f64> = base.iter().map(|e| e - 5.0).collect();
        let d = median_difference(&better, &base, &r);
        assert_eq!(d.estimate, -5.0);
        assert!(d.high < 0.0 && d.low > -10.0, "{d:?}");
        assert_eq!(compare(Expect::Better, &d, &r), Verdict::Holds);
        let same = median_difference(&base, &base, &r);
        assert!(same.low <= 0.0 && same.high >= 0.0, "{same:?}");
        assert_eq!(median_difference(&better, &base, &r), d, "seeded");
    }

    #[test]
    fn value_and_trend_rules_by_hand() {
        let r = Rule::default();
        let range = |low, high| BootstrapRange {
            low,
            median: (low + high) / 2.0,
            high,
        };
        assert_eq!(
            about(20.0, &range(15.0, 22.0), (3.0, 24.0), &r),
            Verdict::Holds
        );
        assert_eq!(
            about(20.0, &range(5.0, 12.0), (3.0, 24.0), &r),
            Verdict::DoesNotHold
        );
        assert_eq!(
            about(20.0, &range(3.0, 24.0), (3.0, 24.0), &r),
            Verdict::Inconclusive
        );
        // The sweep never sampled as deep: not tested.
        assert_eq!(
            about(20.0, &range(5.0, 8.0), (5.0, 8.0), &r),
            Verdict::Inconclusive
        );
        assert_eq!(increases(&iv(1.0, 8.0)), Verdict::Holds);
        assert_eq!(increases(&iv(-8.0, -1.0)), Verdict::DoesNotHold);
        assert_eq!(increases(&iv(0.0, 8.0)), Verdict::Inconclusive);
    }
}
