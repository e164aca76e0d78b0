//! Section 5: the best and worst models of each sweep (pycls's `plot_curves` and
//! `plot_models`): a table, training curves and per-block widths with the fitted rule.

use super::charts::{CONTINUOUS_COLOR, curves_chart, fit_color, widths_chart};
use super::format::{fmt_count, list, slug};
use super::{Ctx, Out};
use crate::collect::ModelResult;
use crate::error::Result;
use crate::fit::{Fit, fit_widths};
use crate::plot::color_name;

/// A model shown: its rank (`best #1`), whether it gets training curves and a width plot.
struct Pick<'a> {
    rank: String,
    model: &'a ModelResult,
    curves: bool,
    widths: bool,
}

/// The models of sweep `i` to show: the best, then the worst (never the same model twice).
fn picks<'a>(ctx: &Ctx<'a>, i: usize) -> Vec<Pick<'a>> {
    let c = &ctx.opts.cfg;
    let ms = &ctx.finished[i];
    let n_best = c.plot_curves_best.max(c.plot_models_best);
    let n_worst =
        (c.plot_curves_worst.max(c.plot_models_worst)).min(ms.len().saturating_sub(n_best));
    let best = ms.iter().take(n_best).enumerate().map(|(k, m)| Pick {
        rank: format!("best #{}", k + 1),
        model: m,
        curves: k < c.plot_curves_best,
        widths: k < c.plot_models_best,
    });
    let worst = ms
        .iter()
        .rev()
        .take(n_worst)
        .enumerate()
        .map(|(k, m)| Pick {
            rank: format!("worst #{}", k + 1),
            model: m,
            curves: k < c.plot_curves_worst,
            widths: k < c.plot_models_worst,
        });
    best.chain(worst).collect()
}

/// The table of the picked models.
fn table(out: &mut Out, picked: &[Pick], fits: &[Option<Fit>]) {
    let rows: Vec<Vec<String>> = (picked.iter().zip(fits))
        .map(|(p, f)| {
            let m = p.model;
            vec![
                p.rank.clone(),
                m.name.clone(),
                m.error().map_or("-".into(), |e| format!("{e:.2}")),
                m.final_test_err.map_or("-".into(), |e| format!("{e:.2}")),
                fmt_count(m.complexity.flops),
                fmt_count(m.complexity.params),
                fmt_count(m.complexity.acts),
                list(&m.stages.depths),
                list(&m.stages.widths),
                list(&m.stages.group_ws),
                list(&m.stages.bot_muls),
                m.regnet.map_or("-".into(), |p| {
                    format!("d={} w0={} wa={} wm={}", p.depth, p.w0, p.wa, p.wm)
                }),
                f.as_ref().map_or("-".into(), |f| format!("{:.3}", f.e_fit)),
            ]
        })
        .collect();
    out.report.table(
        &[
            "rank",
            "model",
            "error",
            "final",
            "flops",
            "params",
            "acts",
            "depths",
            "widths",
            "group widths",
            "bot muls",
            "RegNet",
            "e_fit",
        ],
        &rows,
        &[0, 1, 7, 8, 9, 10, 11],
    );
}

/// The training curves and width plots of sweep `i`'s picked models.
fn figures(
    ctx: &Ctx,
    out: &mut Out,
    i: usize,
    picked: &[Pick],
    fits: &[Option<Fit>],
) -> Result<()> {
    let sweep = slug(&ctx.names[i]);
    out.report.begin_grid();
    for p in picked.iter().filter(|p| p.curves) {
        let chart = curves_chart(p.model, &p.rank, i);
        if chart.series.is_empty() {
            continue;
        }
        let file = format!("{sweep}_curves_{}_{}", slug(&p.rank), p.model.name);
        let svg = out.save(&file, &chart)?;
        let caption = format!("{}: training curves of {}.", p.rank, p.model.name);
        out.report.figure(&svg, &caption);
    }
    out.report.end_grid();
    out.report.begin_grid();
    for (p, f) in picked.iter().zip(fits).filter(|(p, _)| p.widths) {
        if p.model.stages.depths.is_empty() {
            continue;
        }
        let chart = widths_chart(p.model, &p.rank, i, f.as_ref());
        let file = format!("{sweep}_widths_{}_{}", slug(&p.rank), p.model.name);
        let svg = out.save(&file, &chart)?;
        let caption = format!("{}: per-block widths of {}.", p.rank, p.model.name);
        out.report.figure(&svg, &caption);
    }
    out.report.end_grid();
    Ok(())
}

/// What the section shows, with the counts and colors that ran.
fn intro(ctx: &Ctx) -> String {
    let c = &ctx.opts.cfg;
    let fit_colors: Vec<String> = (0..ctx.sweeps.len())
        .filter(|&i| !ctx.finished[i].is_empty())
        .map(|i| format!("{} for {}", color_name(fit_color(i)), ctx.names[i]))
        .collect();
    format!(
        "Per sweep: training curves of the {} best and {} worst models \
         (ANALYZE.PLOT_CURVES_BEST, PLOT_CURVES_WORST) and width plots of the {} best and {} \
         worst (PLOT_MODELS_BEST, PLOT_MODELS_WORST). The training curves show the top-1 \
         error per epoch on the training set (dashed) and the test set (solid with dots); a \
         large gap means overfitting, a test curve still falling at the last epoch means the \
         schedule is short. The width plots show each block's output width (log scale; rings \
         mark stage starts) with the quantized linear rule fitted to it: the dashed {} line \
         is the continuous widths u_j = w0 + wa*j, the solid steps ({}) are the fitted \
         quantized widths, and e_fit is the mean absolute log-ratio between fitted and actual \
         widths (0 means the network is exactly a RegNet).",
        c.plot_curves_best,
        c.plot_curves_worst,
        c.plot_models_best,
        c.plot_models_worst,
        color_name(CONTINUOUS_COLOR),
        fit_colors.join(", ")
    )
}

/// Section 5.
pub(super) fn section(ctx: &Ctx, out: &mut Out) -> Result<()> {
    out.report.section("Best and worst models");
    out.report.para(&intro(ctx));
    for i in 0..ctx.sweeps.len() {
        let picked = picks(ctx, i);
        if picked.is_empty() {
            continue;
        }
        out.report.heading(&ctx.names[i]);
        let fits: Vec<Option<Fit>> = (picked.iter())
            .map(|p| fit_widths(&p.model.block_widths()).ok())
            .collect();
        table(out, &picked, &fits);
        figures(ctx, out, i, &picked, &fits)?;
    }
    Ok(())
}
