//! `regnet sweep analyze`: the report of one or several sweeps (pycls's
//! `tools/sweep_analyze.py`): `report.html`, self-contained, and every plot as an SVG file.
//!
//! Sections: the sweeps (jobs, samplers, error summary); the error EDFs; the
//! flops-normalized EDFs; error versus every sampled parameter and complexity measure with
//! the bootstrap range of the best models; the best and worst models (table, training
//! curves, per-block widths with the fitted quantized linear rule); the jobs that did not
//! finish. Only finished models with a test error enter the statistics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value as Json;

use crate::analysis::{
    BootstrapOptions, BootstrapRange, ErrorStats, bootstrap_best, bootstrap_range,
    complexity_weights, default_bins, edf, error_stats, step_curve, weighted_edf,
};
use crate::collect::{self, Counts, ModelResult, SweepResults};
use crate::error::{Error, Result};
use crate::fit::{Fit, fit_widths};
use crate::layout::Progress;
use crate::plot::{Band, Chart, Legend, Series, Style, render};
use crate::report::Report;

/// Options of [`run_with`].
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyzeOptions {
    /// Best models shown (curves and widths) per sweep.
    pub best: usize,
    /// Worst models shown per sweep.
    pub worst: usize,
    /// Log-flops bins of the normalized EDF (`None`: from the sweep sizes).
    pub bins: Option<usize>,
    /// Bootstrap settings.
    pub bootstrap: BootstrapOptions,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            best: 3,
            worst: 2,
            bins: None,
            bootstrap: BootstrapOptions::default(),
        }
    }
}

/// One sweep in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepSummary {
    /// Name shown.
    pub name: String,
    /// Job counts.
    pub counts: Counts,
    /// Errors of the finished models.
    pub errors: Option<ErrorStats>,
    /// Bootstrap ranges of the best models, by metric label.
    pub ranges: BTreeMap<String, BootstrapRange>,
}

/// What `analyze` wrote.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalyzeSummary {
    /// The HTML report.
    pub report: PathBuf,
    /// The SVG files.
    pub svg_files: Vec<PathBuf>,
    /// Per sweep.
    pub sweeps: Vec<SweepSummary>,
}

/// Loads a sweep's results: collects it afresh when its configs are there, else reads its
/// `sweep.json`.
pub fn load(sweep_dir: &Path) -> Result<SweepResults> {
    if sweep_dir.join("cfgs").is_dir() {
        collect::run(sweep_dir)
    } else {
        SweepResults::load(sweep_dir)
    }
}

/// Analyzes the sweeps in `sweep_dirs` into `out_dir` with default options.
pub fn run(sweep_dirs: &[PathBuf], out_dir: &Path) -> Result<AnalyzeSummary> {
    run_with(sweep_dirs, out_dir, &AnalyzeOptions::default())
}

/// Analyzes the sweeps in `sweep_dirs` into `out_dir`.
pub fn run_with(
    sweep_dirs: &[PathBuf],
    out_dir: &Path,
    opts: &AnalyzeOptions,
) -> Result<AnalyzeSummary> {
    if sweep_dirs.is_empty() {
        return Err(Error::other("analyze: no sweep given"));
    }
    let sweeps = sweep_dirs
        .iter()
        .map(|d| load(d))
        .collect::<Result<Vec<_>>>()?;
    analyze(&sweeps, out_dir, opts)
}

/// A value to plot against error.
struct Metric {
    label: String,
    slug: String,
    log: bool,
    values: Vec<f64>,
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    out.trim_matches('_').to_string()
}

/// `(scale, unit)` for a complexity measure: millions or billions, as pycls prints them.
fn scale(max: f64) -> (f64, &'static str) {
    if max >= 1e9 {
        (1e9, "B")
    } else if max >= 1e6 {
        (1e6, "M")
    } else {
        (1e3, "K")
    }
}

fn as_f64(v: &Json) -> Option<f64> {
    v.as_f64()
}

/// The metrics of a sweep's finished models: complexity, then sampled parameters.
fn metrics(sweep: &SweepResults, models: &[&ModelResult]) -> Vec<Metric> {
    let mut out = Vec::new();
    let mut push = |label: String, values: Vec<f64>| {
        let mut distinct = values.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        if distinct.len() < 2 || values.iter().any(|v| !v.is_finite()) {
            return;
        }
        let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
        let log = lo > 0.0 && hi / lo >= 8.0;
        out.push(Metric {
            slug: slug(&label),
            label,
            log,
            values,
        });
    };
    for (name, get) in [
        (
            "flops",
            (|m: &ModelResult| m.complexity.flops) as fn(&ModelResult) -> u64,
        ),
        ("params", |m| m.complexity.params),
        ("acts", |m| m.complexity.acts),
    ] {
        let raw: Vec<f64> = models.iter().map(|m| get(m) as f64).collect();
        let (s, unit) = scale(raw.iter().copied().fold(0.0, f64::max));
        push(
            format!("{name} ({unit})"),
            raw.iter().map(|v| v / s).collect(),
        );
    }
    // Sampled keys, in sampler order (or sorted, without setup.json).
    let mut keys: Vec<String> = sweep.samplers.iter().flat_map(|s| s.keys.clone()).collect();
    if keys.is_empty() {
        let mut all: Vec<String> = models
            .iter()
            .flat_map(|m| m.sampled.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        keys = all;
    }
    for key in keys {
        let vals: Vec<Option<&Json>> = models.iter().map(|m| m.sampled.get(&key)).collect();
        if vals.iter().all(|v| v.and_then(as_f64).is_some()) {
            push(
                key.clone(),
                vals.iter()
                    .map(|v| v.and_then(as_f64).unwrap_or(0.0))
                    .collect(),
            );
        } else if vals.iter().all(|v| {
            v.and_then(Json::as_array)
                .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x.is_number()))
        }) {
            // Lists (AnyNet stages): total depth, largest of the others (pycls's
            // anynet_d, anynet_w, anynet_g, anynet_b).
            let sum = key.ends_with("DEPTHS");
            let agg: Vec<f64> = vals
                .iter()
                .map(|v| {
                    let a = v.and_then(Json::as_array).expect("checked");
                    let xs = a.iter().filter_map(as_f64);
                    if sum {
                        xs.sum()
                    } else {
                        xs.fold(f64::NEG_INFINITY, f64::max)
                    }
                })
                .collect();
            let label = if sum {
                format!("sum of {key}")
            } else {
                format!("max of {key}")
            };
            push(label, agg);
        }
    }
    out
}

fn fmt_sig(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32 - 1).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

fn fmt_count(x: u64) -> String {
    let (s, unit) = scale(x as f64);
    format!("{:.2}{unit}", x as f64 / s)
}

fn list<T: std::fmt::Display>(xs: &[T]) -> String {
    format!(
        "[{}]",
        xs.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Writes a chart as `out_dir/<file>.svg` and returns its SVG.
fn save(out_dir: &Path, file: &str, chart: &Chart, written: &mut Vec<PathBuf>) -> Result<String> {
    let svg = render(chart)?;
    let path = out_dir.join(format!("{file}.svg"));
    crate::error::write(&path, &svg)?;
    written.push(path);
    Ok(svg)
}

fn curves_chart(m: &ModelResult, rank: &str, color: usize) -> Chart {
    let pick = |f: fn(&crate::collect::EpochResult) -> Option<f64>| -> Vec<(f64, f64)> {
        m.epochs
            .iter()
            .filter_map(|e| f(e).map(|y| (e.epoch as f64, y)))
            .collect()
    };
    let mut series = Vec::new();
    let train = pick(|e| e.train_err);
    let test = pick(|e| e.test_err);
    let ema = pick(|e| e.test_ema_err);
    let min = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    if !train.is_empty() {
        series.push(Series {
            label: format!("train {:.2}", min(&train)),
            points: train,
            color,
            style: Style::Dashed,
        });
    }
    if !test.is_empty() {
        series.push(Series {
            label: format!("test {:.2}", min(&test)),
            points: test,
            color,
            style: Style::LinePoints,
        });
    }
    if !ema.is_empty() {
        series.push(Series {
            label: format!("test ema {:.2}", min(&ema)),
            points: ema,
            color: color + 1,
            style: Style::Line,
        });
    }
    let x_max = m.max_epoch.max(1) as f64;
    Chart {
        title: format!("{rank} {}: {:.2}%", m.name, m.error().unwrap_or(f64::NAN)),
        x_label: "epoch".into(),
        y_label: "top-1 error (%)".into(),
        x_range: Some((0.5, x_max + 0.5)),
        series,
        legend: Legend::UpperRight,
        size: (380, 260),
        ..Chart::default()
    }
}

fn widths_chart(m: &ModelResult, rank: &str, color: usize, fit: Option<&Fit>) -> Chart {
    let ws = m.block_widths();
    let mut series = vec![Series {
        label: "block widths".into(),
        points: ws
            .iter()
            .enumerate()
            .map(|(j, &w)| (j as f64, w as f64))
            .collect(),
        color,
        style: Style::LinePoints,
    }];
    let mut start = 0;
    let mut rings = Vec::new();
    for (&d, &w) in m.stages.depths.iter().zip(&m.stages.widths) {
        rings.push((start as f64, w as f64));
        start += d;
    }
    series.push(Series {
        label: String::new(),
        points: rings,
        color,
        style: Style::Rings,
    });
    if let Some(f) = fit {
        series.push(Series {
            label: format!("w0 + wa*j (wa={}, w0={})", f.wa, f.w0),
            points: f
                .ws_cont
                .iter()
                .enumerate()
                .map(|(j, &u)| (j as f64, u))
                .collect(),
            color: 7,
            style: Style::Dashed,
        });
        series.push(Series {
            label: format!("fit wm={} e_fit={:.3}", f.wm, f.e_fit),
            // A color apart from the sweep's.
            points: f
                .widths
                .iter()
                .enumerate()
                .map(|(j, &w)| (j as f64, w as f64))
                .collect(),
            color: if color % 10 == 1 { 4 } else { 1 },
            style: Style::Line,
        });
    }
    Chart {
        title: format!("{rank} {}: {:.2}%", m.name, m.error().unwrap_or(f64::NAN)),
        x_label: "block index".into(),
        y_label: "width".into(),
        y_log2: true,
        series,
        legend: Legend::LowerRight,
        size: (380, 260),
        ..Chart::default()
    }
}

/// Writes the report of `sweeps` into `out_dir`.
pub fn analyze(
    sweeps: &[SweepResults],
    out_dir: &Path,
    opts: &AnalyzeOptions,
) -> Result<AnalyzeSummary> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut written = Vec::new();
    // Unique display names.
    let mut names: Vec<String> = sweeps.iter().map(|s| s.name.clone()).collect();
    for i in 0..names.len() {
        if names[..i].contains(&names[i]) {
            names[i] = format!("{} ({})", names[i], i + 1);
        }
    }
    let finished: Vec<Vec<&ModelResult>> = sweeps
        .iter()
        .map(|s| {
            let mut v: Vec<&ModelResult> = s.finished().collect();
            v.sort_by(|a, b| {
                a.error()
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.error().unwrap_or(f64::INFINITY))
                    .then(a.index.cmp(&b.index))
            });
            v
        })
        .collect();
    let errors: Vec<Vec<f64>> = finished
        .iter()
        .map(|ms| ms.iter().filter_map(|m| m.error()).collect())
        .collect();
    let title = format!("Sweep analysis: {}", names.join(", "));
    let mut r = Report::new(&title);
    let mut summaries: Vec<SweepSummary> = sweeps
        .iter()
        .zip(&names)
        .zip(&errors)
        .map(|((s, n), e)| SweepSummary {
            name: n.clone(),
            counts: s.counts.clone(),
            errors: error_stats(e),
            ranges: BTreeMap::new(),
        })
        .collect();

    // 1. The sweeps.
    r.section("Sweeps");
    r.para(
        "Each sweep samples models from a design space and trains each one the same way. \
         The error of a model is its minimum top-1 test error over the epochs, in percent; \
         only finished models enter the statistics.",
    );
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .zip(sweeps)
        .map(|(s, sw)| {
            let e = s.errors;
            vec![
                s.name.clone(),
                sw.design_space.clone().unwrap_or_else(|| "-".into()),
                s.counts.total.to_string(),
                s.counts.finished.to_string(),
                s.counts.unfinished.to_string(),
                s.counts.failed.to_string(),
                s.counts.not_started.to_string(),
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
    for (sw, name) in sweeps.iter().zip(&names) {
        if !sw.samplers.is_empty() {
            let rows: Vec<Vec<String>> = sw
                .samplers
                .iter()
                .map(|s| vec![s.key.clone(), s.keys.join(", "), s.description.clone()])
                .collect();
            r.details(
                &format!("{name}: samplers"),
                &rows
                    .iter()
                    .map(|row| format!("{}  ->  {}\n    {}", row[0], row[1], row[2]))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }

    // 2. EDFs.
    r.section("Error EDF");
    r.para(
        "The error empirical distribution function (EDF) F(e) is the fraction of a sweep's \
         models with error at most e. Read it as a summary of the whole design space, not \
         of its best model: a curve further to the left (or higher at a given error) means \
         a larger share of good models. Where two curves cross, one space has better \
         average models and the other a better tail. The legend gives the number of \
         finished models n, the minimum and the mean error.",
    );
    let edf_series: Vec<Series> = errors
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_empty())
        .map(|(i, e)| {
            let st = error_stats(e).expect("non-empty");
            Series {
                label: format!(
                    "{}: n={} min={:.2} mean={:.2}",
                    names[i], st.n, st.min, st.mean
                ),
                points: step_curve(&edf(e)),
                color: i,
                style: Style::Line,
            }
        })
        .collect();
    if edf_series.is_empty() {
        r.note("No sweep has finished models yet: run `regnet sweep launch` and `collect`.");
    } else {
        let chart = Chart {
            title: "error EDF".into(),
            x_label: "error (%)".into(),
            y_label: "cumulative prob.".into(),
            y_range: Some((0.0, 1.02)),
            series: edf_series,
            legend: Legend::LowerRight,
            size: (640, 400),
            ..Chart::default()
        };
        let svg = save(out_dir, "edf", &chart, &mut written)?;
        r.figure(&svg, "Error EDF of each sweep (step curves).");
    }

    // 3. Normalized EDF.
    r.section("Complexity-normalized error EDF");
    r.para(
        "Bigger models tend to have lower error, so a design space can look better only \
         because it produces more flops. The normalized EDF reweights models so that every \
         sweep has the same flops distribution: the common flops range is cut into equal \
         bins of log-flops, the bins holding models of every sweep are kept, and each kept \
         bin carries the same total weight, shared by its models. Differences that remain \
         are due to the design space, not to complexity.",
    );
    let with_errors: Vec<usize> = (0..sweeps.len())
        .filter(|&i| !errors[i].is_empty())
        .collect();
    if !with_errors.is_empty() {
        let flops: Vec<Vec<f64>> = with_errors
            .iter()
            .map(|&i| {
                finished[i]
                    .iter()
                    .map(|m| m.complexity.flops as f64)
                    .collect()
            })
            .collect();
        let n_min = flops.iter().map(Vec::len).min().unwrap_or(0);
        let bins = opts.bins.unwrap_or_else(|| default_bins(n_min));
        match complexity_weights(&flops, bins) {
            Some(weights) => {
                let series: Vec<Series> = with_errors
                    .iter()
                    .zip(&weights)
                    .map(|(&i, w)| {
                        let used = w.iter().filter(|x| **x > 0.0).count();
                        Series {
                            label: format!("{}: {used} of {} models weighted", names[i], w.len()),
                            points: step_curve(&weighted_edf(&errors[i], w)),
                            color: i,
                            style: Style::Line,
                        }
                    })
                    .collect();
                let chart = Chart {
                    title: format!("flops-normalized error EDF ({bins} log-flops bins)"),
                    x_label: "error (%)".into(),
                    y_label: "cumulative prob. (weighted)".into(),
                    y_range: Some((0.0, 1.02)),
                    series,
                    legend: Legend::LowerRight,
                    size: (640, 400),
                    ..Chart::default()
                };
                let svg = save(out_dir, "edf_normalized", &chart, &mut written)?;
                r.figure(&svg, "Error EDFs with flops-matching weights.");
            }
            None => r.note(
                "The sweeps' flops ranges do not overlap, so no normalization can match them.",
            ),
        }
    }

    // 4. Error versus parameters.
    r.section("Error versus parameters and complexity");
    r.para(
        "Each dot is one finished model: its error against a sampled parameter or a \
         complexity measure. The shaded band and the black line come from an empirical \
         bootstrap (as pycls's analysis): 2500 times, draw 25% of the models with \
         replacement and keep the best one; the band holds the best model's value in 95% of \
         the rounds (2.5th to 97.5th percentile) and the line is its median. A narrow band \
         says good models share that value, a band spanning the whole range says the \
         parameter does not matter much; trends in the cloud of dots show how the \
         parameter moves typical models.",
    );
    let mut fig_count = 0;
    for (i, sw) in sweeps.iter().enumerate() {
        let ms = &finished[i];
        if ms.len() < 2 {
            continue;
        }
        let best = bootstrap_best(&errors[i], &opts.bootstrap);
        let e_lo = errors[i].iter().copied().fold(f64::INFINITY, f64::min);
        let e_hi = errors[i].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = ((e_hi - e_lo) / 5.0).max(0.1);
        r.heading(&names[i]);
        r.begin_grid();
        for m in metrics(sw, ms) {
            let range = bootstrap_range(&m.values, &best, opts.bootstrap.alpha);
            summaries[i].ranges.insert(m.label.clone(), range);
            let chart = Chart {
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
                        .zip(errors[i].iter().copied())
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
            };
            let file = format!("{}_error_vs_{}", slug(&names[i]), m.slug);
            let svg = save(out_dir, &file, &chart, &mut written)?;
            r.figure(
                &svg,
                &format!(
                    "{}: best models have {} in [{}, {}], median {}.",
                    names[i],
                    m.label,
                    fmt_sig(range.low),
                    fmt_sig(range.high),
                    fmt_sig(range.median)
                ),
            );
            fig_count += 1;
        }
        r.end_grid();
    }
    if fig_count == 0 {
        r.note("Needs at least two finished models with a varying parameter.");
    }

    // 5. Best and worst models.
    r.section("Best and worst models");
    r.para(
        "The training curves show the top-1 error per epoch on the training set (dashed) \
         and the test set (solid with dots); a large gap means overfitting, a test curve \
         still falling at the last epoch means the schedule is short. The width plots show \
         each block's output width (log scale; rings mark stage starts) with the quantized \
         linear rule fitted to it: the dashed line is the continuous widths u_j = w0 + wa*j, \
         the orange steps are the fitted quantized widths, and e_fit is the mean absolute \
         log-ratio between fitted and actual widths (0 means the network is exactly a \
         RegNet).",
    );
    for (i, _) in sweeps.iter().enumerate() {
        let ms = &finished[i];
        if ms.is_empty() {
            continue;
        }
        let n = ms.len();
        let mut picked: Vec<(String, &ModelResult)> = Vec::new();
        for (k, m) in ms.iter().take(opts.best).enumerate() {
            picked.push((format!("best #{}", k + 1), m));
        }
        let worst = opts.worst.min(n.saturating_sub(opts.best));
        for (k, m) in ms.iter().rev().take(worst).enumerate() {
            picked.push((format!("worst #{}", k + 1), m));
        }
        if picked.is_empty() {
            continue;
        }
        r.heading(&names[i]);
        let fits: Vec<Option<Fit>> = picked
            .iter()
            .map(|(_, m)| fit_widths(&m.block_widths()).ok())
            .collect();
        let rows: Vec<Vec<String>> = picked
            .iter()
            .zip(&fits)
            .map(|((rank, m), f)| {
                vec![
                    rank.clone(),
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
        r.table(
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
        r.begin_grid();
        for (rank, m) in &picked {
            let chart = curves_chart(m, rank, i);
            if chart.series.is_empty() {
                continue;
            }
            let file = format!("{}_curves_{}_{}", slug(&names[i]), slug(rank), m.name);
            let svg = save(out_dir, &file, &chart, &mut written)?;
            r.figure(&svg, &format!("{rank}: training curves of {}.", m.name));
        }
        r.end_grid();
        r.begin_grid();
        for ((rank, m), f) in picked.iter().zip(&fits) {
            if m.stages.depths.is_empty() {
                continue;
            }
            let chart = widths_chart(m, rank, i, f.as_ref());
            let file = format!("{}_widths_{}_{}", slug(&names[i]), slug(rank), m.name);
            let svg = save(out_dir, &file, &chart, &mut written)?;
            r.figure(&svg, &format!("{rank}: per-block widths of {}.", m.name));
        }
        r.end_grid();
    }

    // 6. Jobs that did not finish.
    r.section("Jobs that did not finish");
    r.para(
        "Failed jobs exhausted their retries; unfinished jobs started but have no final \
         test epoch (still running, interrupted, or waiting for a retry). Their logs are in \
         logs/NNNNNN/stdout.log of the sweep folder; `regnet sweep launch` runs them again.",
    );
    let mut rows = Vec::new();
    for (sw, name) in sweeps.iter().zip(&names) {
        for m in &sw.models {
            if matches!(m.status, Progress::Failed | Progress::Unfinished) {
                rows.push(vec![
                    name.clone(),
                    m.name.clone(),
                    format!("{:?}", m.status).to_lowercase(),
                    format!("{}/{}", m.epochs_done, m.max_epoch),
                    m.attempts.to_string(),
                    m.last_exit_code.map_or("-".into(), |c| c.to_string()),
                    m.garbage_lines.to_string(),
                ]);
            }
        }
    }
    if rows.is_empty() {
        r.note("None.");
    } else {
        r.table(
            &[
                "sweep",
                "model",
                "status",
                "epochs",
                "attempts",
                "last exit",
                "bad log lines",
            ],
            &rows,
            &[0, 1, 2],
        );
    }
    let not_started: usize = sweeps.iter().map(|s| s.counts.not_started).sum();
    if not_started > 0 {
        r.note(&format!("{not_started} jobs have not started."));
    }

    let report = out_dir.join("report.html");
    crate::error::write(&report, r.render())?;
    Ok(AnalyzeSummary {
        report,
        svg_files: written,
        sweeps: summaries,
    })
}
