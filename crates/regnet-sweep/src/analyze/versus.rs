//! Section 4: error versus each metric and complexity measure with the bootstrap range of
//! the best models (pycls's `plot_values`), and, with several sweeps, the ranges side by
//! side (pycls's `plot_trends`, as a table).

use std::collections::BTreeMap;

use super::format::{fmt_short, fmt_sig, slug};
use super::metrics::{self, Metric, Metrics};
use super::{Ctx, Out};
use crate::analysis::{BootstrapOptions, BootstrapRange, bootstrap_best, bootstrap_range};
use crate::error::Result;
use crate::plot::{Band, Chart, Legend, Series, Style};

/// The best-model ranges by sweep of one metric, for the trends table.
type Trends = Vec<(String, Vec<Option<BootstrapRange>>)>;

/// One group of metrics of a sweep and what to do with it.
struct Group {
    metrics: Metrics,
    /// Plot error against each metric.
    values: bool,
    /// Compare the ranges across sweeps.
    trends: bool,
}

/// What the bootstrap does, with the numbers it ran with.
fn bootstrap_text(b: &BootstrapOptions) -> String {
    let draw = if b.sample <= 1.0 {
        format!("{}% of the models", fmt_short(b.sample * 100.0))
    } else {
        format!("{} models", b.sample.floor())
    };
    format!(
        "The shaded band and the black line come from an empirical bootstrap (as pycls's \
         analysis): {} times, draw {draw} with replacement and keep the best one; the band \
         holds the best model's value in {}% of the rounds ({}th to {}th percentile) and the \
         line is its median.",
        b.rounds,
        fmt_short(100.0 - b.alpha),
        fmt_short(b.alpha / 2.0),
        fmt_short(100.0 - b.alpha / 2.0)
    )
}

/// The chart of error against `m` for sweep `i`, with the band `range`.
fn value_chart(ctx: &Ctx, i: usize, m: &Metric, range: &BootstrapRange) -> Chart {
    let errors = &ctx.errors[i];
    let e_lo = errors.iter().copied().fold(f64::INFINITY, f64::min);
    let e_hi = errors.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((e_hi - e_lo) / 5.0).max(0.1);
    Chart {
        title: m.label.clone(),
        x_label: m.label.clone(),
        y_label: "error (%)".into(),
        x_log: m.log,
        y_range: Some((e_lo - pad, e_hi + pad)),
        series: vec![Series {
            label: String::new(),
            points: m
                .values
                .iter()
                .copied()
                .zip(errors.iter().copied())
                .collect(),
            color: i,
            style: Style::Points,
        }],
        band: Some(Band {
            low: range.low,
            mid: range.median,
            high: range.high,
            label: format!("[{}, {}]", fmt_sig(range.low), fmt_sig(range.high)),
            mid_label: format!("best: {}", fmt_sig(range.median)),
        }),
        legend: Legend::UpperLeft,
        size: (360, 260),
        ..Chart::default()
    }
}

/// The metric groups of sweep `i`: complexity measures, then metrics.
fn groups(ctx: &Ctx, i: usize) -> [Group; 2] {
    let c = &ctx.opts.cfg;
    let several = ctx.sweeps.len() > 1;
    let ms = &ctx.finished[i];
    let metrics = match &c.metrics {
        Some(specs) => metrics::of_specs(ms, specs),
        None => metrics::sampled(&ctx.sweeps[i], ms),
    };
    [
        Group {
            metrics: metrics::of_specs(ms, &c.complexity),
            values: c.plot_complexity_values,
            trends: c.plot_complexity_trends && several,
        },
        Group {
            metrics,
            values: c.plot_metric_values,
            trends: c.plot_metric_trends && several,
        },
    ]
}

/// Sweep `i`'s figures; returns its ranges, and adds those to compare to `trends`.
fn sweep_figures(
    ctx: &Ctx,
    out: &mut Out,
    i: usize,
    trends: &mut Trends,
) -> Result<(BTreeMap<String, BootstrapRange>, usize)> {
    let best = bootstrap_best(&ctx.errors[i], &ctx.opts.bootstrap);
    let name = &ctx.names[i];
    let mut ranges = BTreeMap::new();
    let mut figures = 0;
    out.report.heading(name);
    out.report.begin_grid();
    let gs = groups(ctx, i);
    for g in gs.iter().filter(|g| g.values || g.trends) {
        for m in &g.metrics.plotted {
            let range = bootstrap_range(&m.values, &best, ctx.opts.bootstrap.alpha);
            ranges.insert(m.label.clone(), range);
            if g.trends {
                let at = match trends.iter().position(|t| t.0 == m.label) {
                    Some(at) => at,
                    None => {
                        trends.push((m.label.clone(), vec![None; ctx.sweeps.len()]));
                        trends.len() - 1
                    }
                };
                trends[at].1[i] = Some(range);
            }
            if !g.values {
                continue;
            }
            let file = format!("{}_error_vs_{}", slug(name), m.slug);
            let svg = out.save(&file, &value_chart(ctx, i, m, &range))?;
            let (lo, hi, med) = (
                fmt_sig(range.low),
                fmt_sig(range.high),
                fmt_sig(range.median),
            );
            let caption = format!(
                "{name}: best models have {} in [{lo}, {hi}], median {med}.",
                m.label
            );
            out.report.figure(&svg, &caption);
            figures += 1;
        }
    }
    out.report.end_grid();
    let shown = gs.iter().filter(|g| g.values || g.trends);
    for skipped in shown.flat_map(|g| &g.metrics.skipped) {
        out.report.note(&format!("{name}: not plotted: {skipped}."));
    }
    Ok((ranges, figures))
}

/// The table of the best-model ranges of each metric across sweeps.
fn trends_table(ctx: &Ctx, out: &mut Out, trends: &Trends) {
    if trends.is_empty() {
        return;
    }
    out.report.heading("Best-model ranges across sweeps");
    let mut header = vec!["metric"];
    header.extend(ctx.names.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = (trends.iter())
        .map(|(label, by_sweep)| {
            let mut row = vec![label.clone()];
            row.extend(by_sweep.iter().map(|r| {
                r.map_or("-".into(), |r| {
                    let (lo, hi) = (fmt_sig(r.low), fmt_sig(r.high));
                    format!("[{lo}, {hi}] median {}", fmt_sig(r.median))
                })
            }));
            row
        })
        .collect();
    out.report.table(&header, &rows, &[0]);
}

/// Section 4; returns each sweep's best-model ranges by metric label.
pub(super) fn section(ctx: &Ctx, out: &mut Out) -> Result<Vec<BTreeMap<String, BootstrapRange>>> {
    let c = &ctx.opts.cfg;
    out.report.section("Error versus parameters and complexity");
    out.report.para(&format!(
        "Each dot is one finished model: its error against a metric (ANALYZE.METRICS: {}) \
         or a complexity measure (ANALYZE.COMPLEXITY). {} A narrow band says good models \
         share that value, a band spanning the whole range says the parameter does not \
         matter much; trends in the cloud of dots show how the parameter moves typical \
         models.",
        if c.metrics.is_some() {
            "as listed"
        } else {
            "the sampled parameters"
        },
        bootstrap_text(&ctx.opts.bootstrap)
    ));
    let mut all_ranges = vec![BTreeMap::new(); ctx.sweeps.len()];
    let mut trends = Trends::new();
    let mut figures = 0;
    for i in (0..ctx.sweeps.len()).filter(|&i| ctx.finished[i].len() >= 2) {
        let (ranges, n) = sweep_figures(ctx, out, i, &mut trends)?;
        all_ranges[i] = ranges;
        figures += n;
    }
    trends_table(ctx, out, &trends);
    if !(c.plot_metric_values || c.plot_complexity_values) {
        out.report.note(
            "ANALYZE.PLOT_METRIC_VALUES and ANALYZE.PLOT_COMPLEXITY_VALUES are False: no \
             plots of error against values.",
        );
    } else if figures == 0 {
        out.report
            .note("Needs at least two finished models with a varying parameter.");
    }
    Ok(all_ranges)
}
