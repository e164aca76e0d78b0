//! Sections 2 and 3: the error EDF of each sweep, and the EDF with flops-matching weights.

use super::{Ctx, Out};
use crate::analysis::{
    complexity_weights, default_bins, edf, error_stats, step_curve, weighted_edf,
};
use crate::error::Result;
use crate::plot::{Chart, Legend, Series, Style};

/// A chart of EDF step curves.
fn edf_chart(title: String, y_label: &str, series: Vec<Series>) -> Chart {
    Chart {
        title,
        x_label: "error (%)".into(),
        y_label: y_label.into(),
        y_range: Some((0.0, 1.02)),
        series,
        legend: Legend::LowerRight,
        size: (640, 400),
        ..Chart::default()
    }
}

/// The EDF step curve of each sweep with errors.
fn edf_series(ctx: &Ctx, errors: &[Vec<f64>]) -> Vec<Series> {
    (errors.iter().enumerate())
        .filter_map(|(i, e)| {
            let st = error_stats(e)?;
            Some(Series {
                label: format!(
                    "{}: n={} min={:.2} mean={:.2}",
                    ctx.names[i], st.n, st.min, st.mean
                ),
                points: step_curve(&edf(e)),
                color: i,
                style: Style::Line,
            })
        })
        .collect()
}

/// What `ANALYZE.PRE_FILTERS` kept, and the EDF before it.
fn before_filters(ctx: &Ctx, out: &mut Out, before: &[Vec<f64>]) -> Result<()> {
    let ranges: Vec<String> = (ctx.opts.cfg.pre_filters.iter())
        .map(|f| format!("{} in [{}, {}]", f.metric.name, f.low, f.high))
        .collect();
    let kept: Vec<String> = (0..ctx.sweeps.len())
        .map(|i| {
            let (n, all) = (ctx.errors[i].len(), before[i].len());
            format!("{}: {n} of {all}", ctx.names[i])
        })
        .collect();
    out.report.para(&format!(
        "ANALYZE.PRE_FILTERS keeps the finished models with {} (flops in billions, params \
         and acts in millions): {}. Every plot below is of the models kept; the first one \
         shows the EDF before the filters.",
        ranges.join(" and "),
        kept.join(", ")
    ));
    let series = edf_series(ctx, before);
    if !series.is_empty() {
        let title = "error EDF before ANALYZE.PRE_FILTERS".to_string();
        let svg = out.save(
            "edf_before_filters",
            &edf_chart(title, "cumulative prob.", series),
        )?;
        out.report
            .figure(&svg, "Error EDF of each sweep before the filters.");
    }
    Ok(())
}

/// Section 2: the error EDFs.
pub(super) fn error_edf(ctx: &Ctx, out: &mut Out) -> Result<()> {
    out.report.section("Error EDF");
    out.report.para(
        "The error empirical distribution function (EDF) F(e) is the fraction of a sweep's \
         models with error at most e. Read it as a summary of the whole design space, not \
         of its best model: a curve further to the left (or higher at a given error) means \
         a larger share of good models. Where two curves cross, one space has better \
         average models and the other a better tail. The legend gives the number of \
         finished models n, the minimum and the mean error.",
    );
    if let Some(before) = &ctx.unfiltered {
        before_filters(ctx, out, before)?;
    }
    let series = edf_series(ctx, &ctx.errors);
    if series.is_empty() {
        out.report.note(if ctx.unfiltered.is_some() {
            "ANALYZE.PRE_FILTERS keeps no finished model."
        } else {
            "No sweep has finished models yet: run `regnet sweep launch` and `collect`."
        });
        return Ok(());
    }
    let chart = edf_chart("error EDF".into(), "cumulative prob.", series);
    let svg = out.save("edf", &chart)?;
    out.report
        .figure(&svg, "Error EDF of each sweep (step curves).");
    Ok(())
}

/// Section 3: the flops-normalized error EDFs.
pub(super) fn normalized_edf(ctx: &Ctx, out: &mut Out) -> Result<()> {
    out.report.section("Complexity-normalized error EDF");
    out.report.para(
        "Bigger models tend to have lower error, so a design space can look better only \
         because it produces more flops. The normalized EDF reweights models so that every \
         sweep has the same flops distribution: the common flops range is cut into equal \
         bins of log-flops, the bins holding models of every sweep are kept, and each kept \
         bin carries the same total weight, shared by its models. Differences that remain \
         are due to the design space, not to complexity.",
    );
    let with_errors: Vec<usize> = (0..ctx.sweeps.len())
        .filter(|&i| !ctx.errors[i].is_empty())
        .collect();
    if with_errors.is_empty() {
        return Ok(());
    }
    let flops: Vec<Vec<f64>> = (with_errors.iter())
        .map(|&i| {
            (ctx.finished[i].iter())
                .map(|m| m.complexity.flops as f64)
                .collect()
        })
        .collect();
    let n_min = flops.iter().map(Vec::len).min().unwrap_or(0);
    let bins = ctx.opts.bins.unwrap_or_else(|| default_bins(n_min));
    let Some(weights) = complexity_weights(&flops, bins) else {
        out.report
            .note("The sweeps' flops ranges do not overlap, so no normalization can match them.");
        return Ok(());
    };
    let series: Vec<Series> = (with_errors.iter().zip(&weights))
        .map(|(&i, w)| {
            let used = w.iter().filter(|x| **x > 0.0).count();
            Series {
                label: format!("{}: {used} of {} models weighted", ctx.names[i], w.len()),
                points: step_curve(&weighted_edf(&ctx.errors[i], w)),
                color: i,
                style: Style::Line,
            }
        })
        .collect();
    let title = format!("flops-normalized error EDF ({bins} log-flops bins)");
    let chart = edf_chart(title, "cumulative prob. (weighted)", series);
    let svg = out.save("edf_normalized", &chart)?;
    out.report
        .figure(&svg, "Error EDFs with flops-matching weights.");
    Ok(())
}
