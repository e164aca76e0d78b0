//! Section 1: the sweeps (jobs, design space, error summary, samplers) and the options
//! the report was made with.

use super::Ctx;
use crate::analysis::error_stats;
use crate::report::Report;

/// The table of sweeps: job counts and error summary.
fn sweeps_table(ctx: &Ctx, r: &mut Report) {
    let rows: Vec<Vec<String>> = (ctx.sweeps.iter().zip(&ctx.names).zip(&ctx.errors))
        .map(|((sw, name), errors)| {
            let e = error_stats(errors);
            let c = &sw.counts;
            vec![
                name.clone(),
                sw.design_space.clone().unwrap_or_else(|| "-".into()),
                c.total.to_string(),
                c.finished.to_string(),
                c.unfinished.to_string(),
                c.failed.to_string(),
                c.not_started.to_string(),
                e.map_or("-".into(), |e| format!("{:.2}", e.min)),
                e.map_or("-".into(), |e| format!("{:.2}", e.median)),
                e.map_or("-".into(), |e| format!("{:.2}", e.mean)),
            ]
        })
        .collect();
    r.table(
        &[
            "sweep",
            "design space",
            "models",
            "finished",
            "unfinished",
            "failed",
            "not started",
            "min error",
            "median error",
            "mean error",
        ],
        &rows,
        &[0, 1],
    );
}

/// The options that made this report, as `ANALYZE` keys and bootstrap settings.
fn options_text(ctx: &Ctx) -> String {
    let c = &ctx.opts.cfg;
    let b = &ctx.opts.bootstrap;
    let names = |ms: &[crate::analyze_cfg::MetricSpec]| {
        let v: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
        format!("[{}]", v.join(", "))
    };
    [
        format!(
            "METRICS: {}",
            c.metrics
                .as_deref()
                .map_or("the sampled parameters".into(), names)
        ),
        format!("COMPLEXITY: {}", names(&c.complexity)),
        format!("PLOT_METRIC_VALUES: {}", c.plot_metric_values),
        format!("PLOT_METRIC_TRENDS: {}", c.plot_metric_trends),
        format!("PLOT_COMPLEXITY_VALUES: {}", c.plot_complexity_values),
        format!("PLOT_COMPLEXITY_TRENDS: {}", c.plot_complexity_trends),
        format!("PLOT_CURVES_BEST: {}", c.plot_curves_best),
        format!("PLOT_CURVES_WORST: {}", c.plot_curves_worst),
        format!("PLOT_MODELS_BEST: {}", c.plot_models_best),
        format!("PLOT_MODELS_WORST: {}", c.plot_models_worst),
        format!(
            "PRE_FILTERS: {}",
            if c.pre_filters.is_empty() {
                "none".to_string()
            } else {
                let f: Vec<String> = (c.pre_filters.iter())
                    .map(|f| format!("{} [{}, {}]", f.metric.name, f.low, f.high))
                    .collect();
                f.join(", ")
            }
        ),
        format!(
            "bootstrap: {} rounds, sample {}, alpha {}%, seed {}",
            b.rounds, b.sample, b.alpha, b.seed
        ),
        format!(
            "normalized EDF bins: {}",
            ctx.opts
                .bins
                .map_or("from the sweep sizes".into(), |n| n.to_string())
        ),
    ]
    .join("\n")
}

/// Section 1.
pub(super) fn section(ctx: &Ctx, r: &mut Report) {
    r.section("Sweeps");
    r.para(
        "Each sweep samples models from a design space and trains each one the same way. \
         The error of a model is its minimum top-1 test error over the epochs, in percent; \
         only finished models enter the statistics.",
    );
    sweeps_table(ctx, r);
    for (sw, name) in ctx.sweeps.iter().zip(&ctx.names) {
        if sw.samplers.is_empty() {
            continue;
        }
        let text: Vec<String> = sw
            .samplers
            .iter()
            .map(|s| {
                format!(
                    "{}  ->  {}\n    {}",
                    s.key,
                    s.keys.join(", "),
                    s.description
                )
            })
            .collect();
        r.details(&format!("{name}: samplers"), &text.join("\n"));
    }
    r.details("analysis options (ANALYZE)", &options_text(ctx));
}
