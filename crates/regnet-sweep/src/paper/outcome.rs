//! The outcome of each claim on the collected sweeps: its verdict, the numbers behind it
//! and one line that says them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::experiments::{Claim, Expect, Test, TrendExpect};
use super::trends::{best_range, half_difference, points};
use super::verdict::{self, Interval, Rule, Verdict};
use crate::analysis::{BootstrapRange, ErrorStats, error_stats};
use crate::collect::SweepResults;

/// The collected sweeps, by key.
pub type Sweeps = BTreeMap<String, SweepResults>;

/// What was measured for a claim.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Measured {
    /// A sweep is missing or has too few finished models.
    Missing,
    /// Error summaries of both sweeps and the interval of the difference of medians.
    Compare {
        /// The new sweep's errors.
        new: ErrorStats,
        /// The base sweep's errors.
        base: ErrorStats,
        /// `median(new) - median(base)`.
        difference: Interval,
    },
    /// The best model's value: its bootstrap range and the sampled span.
    About {
        /// Bootstrap range of the best model's value.
        range: BootstrapRange,
        /// Smallest and largest sampled value.
        span: (f64, f64),
    },
    /// The difference of the best value between the flops halves.
    Increases {
        /// Upper half minus lower half.
        difference: Interval,
    },
}

/// A claim's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// The claim's id.
    pub id: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The numbers.
    pub measured: Measured,
    /// One line: the numbers and why the verdict.
    pub summary: String,
}

fn errors(s: &SweepResults) -> Vec<f64> {
    s.finished().filter_map(|m| m.error()).collect()
}

fn expect_words(e: Expect) -> &'static str {
    match e {
        Expect::NoWorse => "no worse",
        Expect::Better => "better",
        Expect::Worse => "worse",
    }
}

fn missing(claim: &Claim, why: String) -> Outcome {
    Outcome {
        id: claim.id.into(),
        verdict: Verdict::Inconclusive,
        measured: Measured::Missing,
        summary: why,
    }
}

fn compare(claim: &Claim, sweeps: &Sweeps, rule: &Rule, keys: (&str, &str), e: Expect) -> Outcome {
    let (new, base) = keys;
    let errs = |k: &str| sweeps.get(k).map(errors).unwrap_or_default();
    let (en, eb) = (errs(new), errs(base));
    let short: Vec<String> = [(new, en.len()), (base, eb.len())]
        .iter()
        .filter(|(_, n)| *n < rule.min_models.max(1))
        .map(|(k, n)| format!("{k} has {n} finished models"))
        .collect();
    if !short.is_empty() {
        return missing(
            claim,
            format!(
                "not enough data ({}; at least {} needed)",
                short.join(", "),
                rule.min_models.max(1)
            ),
        );
    }
    let d = verdict::median_difference(&en, &eb, rule);
    let v = verdict::compare(e, &d, rule);
    let (sn, sb) = (
        error_stats(&en).expect("n > 0"),
        error_stats(&eb).expect("n > 0"),
    );
    Outcome {
        id: claim.id.into(),
        verdict: v,
        summary: format!(
            "median error {:.2}% ({new}, n={}) vs {:.2}% ({base}, n={}): difference {:+.2} \
             points, 95% interval [{:+.2}, {:+.2}]; expected \"{}\"",
            sn.median,
            sn.n,
            sb.median,
            sb.n,
            d.estimate,
            d.low,
            d.high,
            expect_words(e)
        ),
        measured: Measured::Compare {
            new: sn,
            base: sb,
            difference: d,
        },
    }
}

fn trend(claim: &Claim, sweeps: &Sweeps, rule: &Rule) -> Outcome {
    let Test::Trend {
        sweep,
        param,
        expect,
    } = claim.test
    else {
        unreachable!("trend claims only");
    };
    let pts = sweeps
        .get(sweep)
        .map(|s| points(s, param))
        .unwrap_or_default();
    if pts.errors.len() < rule.min_models.max(1) {
        return missing(
            claim,
            format!(
                "not enough data ({sweep} has {} finished models; at least {} needed)",
                pts.errors.len(),
                rule.min_models.max(1)
            ),
        );
    }
    let sym = param.symbol();
    match expect {
        TrendExpect::About(v) => {
            let range = best_range(&pts.errors, &pts.values, rule);
            let lo = pts.values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = pts.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Outcome {
                id: claim.id.into(),
                verdict: verdict::about(v, &range, (lo, hi), rule),
                summary: format!(
                    "best models' {sym} in [{:.3}, {:.3}] (median {:.3}; sampled {:.3} to \
                     {:.3}); the paper's value {v}",
                    range.low, range.high, range.median, lo, hi
                ),
                measured: Measured::About {
                    range,
                    span: (lo, hi),
                },
            }
        }
        TrendExpect::Increases => match half_difference(&pts, rule) {
            None => missing(claim, "too few models in a flops half".into()),
            Some(d) => Outcome {
                id: claim.id.into(),
                verdict: verdict::increases(&d),
                summary: format!(
                    "best {sym} in the upper flops half minus the lower half: {:+.3}, 95% \
                     interval [{:+.3}, {:+.3}]",
                    d.estimate, d.low, d.high
                ),
                measured: Measured::Increases { difference: d },
            },
        },
    }
}

/// The outcome of `claim` on `sweeps`.
pub fn evaluate(claim: &Claim, sweeps: &Sweeps, rule: &Rule) -> Outcome {
    match claim.test {
        Test::Compare { new, base, expect } => compare(claim, sweeps, rule, (new, base), expect),
        Test::Trend { .. } => trend(claim, sweeps, rule),
    }
}
