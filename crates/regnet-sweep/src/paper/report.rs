//! The report of `regnet paper`: one self-contained HTML page whose sections follow the
//! paper's figures. Each claim shows its EDFs (with bootstrap bands) or trend plots, the
//! numbers, and its verdict by the rule stated at the top.

use std::path::Path;

use serde_json::Value as Json;

use super::edf_band::{edf_band, grid};
use super::experiments::{CLAIMS, Claim, SECTIONS, Section, Test, TrendExpect};
use super::outcome::{Outcome, Sweeps};
use super::sweeps::SWEEPS;
use super::trends::{Points, best_range, halves, points};
use super::verdict::{Rule, Verdict, rule_text};
use crate::analysis::{
    complexity_weights, default_bins, edf, error_stats, step_curve, weighted_edf,
};
use crate::collect::ModelResult;
use crate::error::Result;
use crate::plot::{Band, Chart, Legend, Series, Style, render};
use crate::report::{Report, escape};

/// What the report is made of.
pub struct ReportInput<'a> {
    /// The collected sweeps, by key.
    pub sweeps: &'a Sweeps,
    /// One outcome per claim of [`CLAIMS`], in order.
    pub outcomes: &'a [Outcome],
    /// The verdict rule.
    pub rule: &'a Rule,
}

/// The title of the section listing the sweeps.
pub const SWEEPS_SECTION: &str = "The sweeps";
/// The title of the first section.
pub const OVERVIEW_SECTION: &str = "Setup, rule and outcomes";

fn label(key: &str) -> &str {
    SWEEPS
        .iter()
        .find(|s| s.key == key)
        .map_or(key, |s| s.label)
}

fn verdict_html(o: &Outcome) -> String {
    let color = match o.verdict {
        Verdict::Holds => "#1a7f37",
        Verdict::DoesNotHold => "#b42318",
        Verdict::Inconclusive => "#8a6d00",
    };
    format!(
        "<span class=\"verdict\" data-claim=\"{}\"><strong style=\"color:{color}\">Verdict: \
         {}</strong></span>. {}",
        escape(&o.id),
        o.verdict.text(),
        escape(&o.summary)
    )
}

fn errors_of(sweeps: &Sweeps, key: &str) -> (Vec<f64>, Vec<f64>) {
    sweeps.get(key).map_or((Vec::new(), Vec::new()), |s| {
        s.finished()
            .filter_map(|m| m.error().map(|e| (e, m.complexity.flops as f64)))
            .unzip()
    })
}

/// A key of a model's full config (`SECTION.KEY`) as text.
fn cfg_value(m: &ModelResult, section: &str, key: &str) -> String {
    match m.cfg.get(section).and_then(|v| v.get(key)) {
        Some(Json::String(v)) => v.clone(),
        Some(v) => v.to_string(),
        None => "?".into(),
    }
}

/// The data set's name as people write it.
fn data_name(dataset: &str) -> String {
    match dataset {
        "fashion_mnist" => "Fashion-MNIST".into(),
        "cifar10" => "CIFAR-10".into(),
        other => other.into(),
    }
}

/// The data set of the sweeps (from any model's config).
fn dataset(sweeps: &Sweeps) -> Option<String> {
    let m = sweeps.values().flat_map(|s| s.models.first()).next()?;
    Some(data_name(&cfg_value(m, "TRAIN", "DATASET")))
}

/// How the sweeps' models were trained, read from a model's config.
fn training_setup(sweeps: &Sweeps) -> String {
    let Some(m) = sweeps.values().flat_map(|s| s.models.first()).next() else {
        return "No sweep is set up yet.".into();
    };
    let all = |v: String| if v == "0" { "all".to_string() } else { v };
    let totals: Vec<usize> = sweeps.values().map(|s| s.counts.total).collect();
    let (lo, hi) = (totals.iter().min(), totals.iter().max());
    let models = if lo == hi {
        format!("{}", lo.copied().unwrap_or(0))
    } else {
        format!("{}-{}", lo.copied().unwrap_or(0), hi.copied().unwrap_or(0))
    };
    format!(
        "Every sweep samples models of 2-5 MF (flops at {im}x{im}) from its design space \
         and trains each the same way: {ep} epoch(s) on {tr} training images of {ds}, \
         tested on {te} test images; {models} models per sweep. The error of a model is \
         its minimum top-1 test error over the epochs, in percent. This is a reproduction \
         at about 1/100 of the paper's smallest flops with a tiny training schedule: the \
         outcomes say what holds in this regime, not whether the paper is right at its \
         own scale.",
        im = cfg_value(m, "TRAIN", "IM_SIZE"),
        ep = cfg_value(m, "OPTIM", "MAX_EPOCH"),
        tr = all(cfg_value(m, "EXT", "TRAIN_SUBSET")),
        ds = data_name(&cfg_value(m, "TRAIN", "DATASET")),
        te = all(cfg_value(m, "EXT", "TEST_SUBSET")),
    )
}

fn overview(r: &mut Report, input: &ReportInput) {
    r.section(OVERVIEW_SECTION);
    r.para(&training_setup(input.sweeps));
    r.heading("Verdict rule");
    r.para(&rule_text(input.rule));
    r.heading("Claims");
    let rows: Vec<Vec<String>> = CLAIMS
        .iter()
        .zip(input.outcomes)
        .map(|(c, o)| {
            vec![
                c.id.to_string(),
                c.figure.to_string(),
                c.text.to_string(),
                o.verdict.text().to_string(),
                o.summary.clone(),
            ]
        })
        .collect();
    r.table(
        &["claim", "paper", "the paper says", "outcome", "measured"],
        &rows,
        &[0, 1, 2, 3, 4],
    );
}

fn svg(chart: &Chart) -> Result<String> {
    render(chart)
}

fn edf_chart(keys: [&str; 2], sweeps: &Sweeps, rule: &Rule) -> Option<Chart> {
    let data: Vec<(Vec<f64>, Vec<f64>)> = keys.iter().map(|k| errors_of(sweeps, k)).collect();
    let all: Vec<f64> = data.iter().flat_map(|d| d.0.iter().copied()).collect();
    if data.iter().any(|d| d.0.is_empty()) {
        return None;
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((hi - lo) * 0.05).max(0.1);
    let g = grid(lo - pad, hi + pad, 120);
    let mut series = Vec::new();
    for (i, (k, (e, _))) in keys.iter().zip(&data).enumerate() {
        let st = error_stats(e).expect("non-empty");
        series.push(Series {
            label: format!("{}: n={} median={:.2}", label(k), st.n, st.median),
            points: step_curve(&edf(e)),
            color: i,
            style: Style::Line,
        });
        let (bl, bh) = edf_band(e, &g, rule.rounds.min(1000), rule.seed);
        for (j, b) in [bl, bh].into_iter().enumerate() {
            series.push(Series {
                label: if j == 0 {
                    format!("{}: 95% band", label(k))
                } else {
                    String::new()
                },
                points: b,
                color: i,
                style: Style::Dashed,
            });
        }
    }
    Some(Chart {
        title: "error EDF".into(),
        x_label: "error (%)".into(),
        y_label: "cumulative prob.".into(),
        x_range: Some((lo - pad, hi + pad)),
        y_range: Some((0.0, 1.02)),
        series,
        legend: Legend::LowerRight,
        size: (560, 360),
        ..Chart::default()
    })
}

fn normalized_chart(keys: [&str; 2], sweeps: &Sweeps) -> Option<Chart> {
    let data: Vec<(Vec<f64>, Vec<f64>)> = keys.iter().map(|k| errors_of(sweeps, k)).collect();
    let flops: Vec<Vec<f64>> = data.iter().map(|d| d.1.clone()).collect();
    let n_min = flops.iter().map(Vec::len).min().unwrap_or(0);
    let bins = default_bins(n_min);
    let weights = complexity_weights(&flops, bins)?;
    let series = keys
        .iter()
        .zip(&data)
        .zip(&weights)
        .enumerate()
        .map(|(i, ((k, d), w))| Series {
            label: label(k).to_string(),
            points: step_curve(&weighted_edf(&d.0, w)),
            color: i,
            style: Style::Line,
        })
        .collect();
    Some(Chart {
        title: format!("flops-normalized EDF ({bins} log-flops bins)"),
        x_label: "error (%)".into(),
        y_label: "cumulative prob. (weighted)".into(),
        y_range: Some((0.0, 1.02)),
        series,
        legend: Legend::LowerRight,
        size: (440, 360),
        ..Chart::default()
    })
}

fn compare_figures(r: &mut Report, keys: [&str; 2], input: &ReportInput) -> Result<()> {
    let Some(chart) = edf_chart(keys, input.sweeps, input.rule) else {
        r.note("No EDF: a sweep has no finished models.");
        return Ok(());
    };
    r.begin_grid();
    r.figure(
        &svg(&chart)?,
        &format!(
            "Error EDFs of {} (blue) and {} (orange); dashed: pointwise 95% bootstrap bands.",
            label(keys[0]),
            label(keys[1])
        ),
    );
    let normalized = normalized_chart(keys, input.sweeps);
    if let Some(c) = &normalized {
        r.figure(
            &svg(c)?,
            "The same EDFs with weights that give both sweeps the same flops distribution.",
        );
    }
    r.end_grid();
    if normalized.is_none() {
        r.note("No flops-normalized EDF: no log-flops bin holds models of both sweeps.");
    }
    Ok(())
}

fn span(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// Error against the parameter, with the bootstrap range of the best model's value.
fn about_chart(pts: &Points, sym: &str, rule: &Rule) -> Chart {
    let range = best_range(&pts.errors, &pts.values, rule);
    let (lo, hi) = span(&pts.values);
    Chart {
        title: format!("error vs {sym}"),
        x_label: sym.into(),
        y_label: "error (%)".into(),
        x_log: lo > 0.0 && hi / lo >= 8.0,
        series: vec![Series {
            label: String::new(),
            points: pts
                .values
                .iter()
                .copied()
                .zip(pts.errors.iter().copied())
                .collect(),
            color: 0,
            style: Style::Points,
        }],
        band: Some(Band {
            low: range.low,
            mid: range.median,
            high: range.high,
            label: format!("best: [{:.3}, {:.3}]", range.low, range.high),
            mid_label: format!("best median {:.3}", range.median),
        }),
        legend: Legend::UpperLeft,
        size: (440, 320),
        ..Chart::default()
    }
}

/// The parameter against flops, with each flops half's best-value range.
fn increases_chart(pts: &Points, sym: &str, rule: &Rule) -> Chart {
    let fm: Vec<f64> = pts.flops.iter().map(|f| f / 1e6).collect();
    let mut series = vec![Series {
        label: "models".into(),
        points: fm.iter().copied().zip(pts.values.iter().copied()).collect(),
        color: 0,
        style: Style::Points,
    }];
    let (lo, hi) = halves(&pts.flops);
    for (i, (half, name)) in [(lo, "lower"), (hi, "upper")].into_iter().enumerate() {
        if half.is_empty() {
            continue;
        }
        let pick = |v: &[f64]| half.iter().map(|&j| v[j]).collect::<Vec<f64>>();
        let range = best_range(&pick(&pts.errors), &pick(&pts.values), rule);
        let (x0, x1) = span(&pick(&fm));
        for (y, style, text) in [
            (
                range.median,
                Style::LinePoints,
                format!("best in {name} half: {:.3}", range.median),
            ),
            (
                range.low,
                Style::Dashed,
                format!("95% [{:.3}, {:.3}]", range.low, range.high),
            ),
            (range.high, Style::Dashed, String::new()),
        ] {
            series.push(Series {
                label: text,
                points: vec![(x0, y), (x1, y)],
                color: i + 1,
                style,
            });
        }
    }
    Chart {
        title: format!("{sym} vs flops"),
        x_label: "flops (M)".into(),
        y_label: sym.into(),
        series,
        legend: Legend::UpperLeft,
        size: (440, 320),
        ..Chart::default()
    }
}

fn trend_figures(r: &mut Report, claim: &Claim, input: &ReportInput) -> Result<()> {
    let Test::Trend {
        sweep,
        param,
        expect,
    } = claim.test
    else {
        return Ok(());
    };
    let pts = input
        .sweeps
        .get(sweep)
        .map(|s| points(s, param))
        .unwrap_or_default();
    if pts.errors.len() < 2 {
        r.note(&format!(
            "No plot: {sweep} has fewer than two finished models."
        ));
        return Ok(());
    }
    let sym = param.symbol();
    let chart = match expect {
        TrendExpect::About(_) => about_chart(&pts, sym, input.rule),
        TrendExpect::Increases => increases_chart(&pts, sym, input.rule),
    };
    let caption = match expect {
        TrendExpect::About(v) => format!(
            "{}: each dot a model; shaded: 95% bootstrap range of the best model's {sym}, \
             line: its median; the paper's value is {v}.",
            label(sweep)
        ),
        TrendExpect::Increases => format!(
            "{}: {sym} of each model against its flops; lines: the best model's {sym} \
             (bootstrap median and 95% range) in the lower and upper half of the flops band.",
            label(sweep)
        ),
    };
    r.figure(&svg(&chart)?, &caption);
    Ok(())
}

fn section(r: &mut Report, s: &Section, input: &ReportInput) -> Result<()> {
    r.section(s.title);
    r.para(s.intro);
    for (c, o) in CLAIMS.iter().zip(input.outcomes) {
        if c.section != s.title {
            continue;
        }
        r.heading(&format!("{} ({}): {}", c.id, c.figure, c.text));
        match c.test {
            Test::Compare { new, base, .. } => compare_figures(r, [new, base], input)?,
            Test::Trend { .. } => trend_figures(r, c, input)?,
        }
        r.para_html(&verdict_html(o));
    }
    Ok(())
}

fn sweeps_section(r: &mut Report, input: &ReportInput) {
    r.section(SWEEPS_SECTION);
    r.para(
        "The sweeps of this report (`regnet paper` writes each sweep's config to \
         OUT/cfgs and its folder to OUT/sweeps; `regnet sweep analyze` works on them too). \
         Only finished models enter the statistics.",
    );
    let mut rows = Vec::new();
    for s in SWEEPS {
        let Some(sw) = input.sweeps.get(s.key) else {
            rows.push(vec![s.key.into(), s.label.into(), "not set up".into()]);
            continue;
        };
        let (e, f) = errors_of(input.sweeps, s.key);
        let st = error_stats(&e);
        let c = &sw.counts;
        let (flo, fhi) = span(&f);
        rows.push(vec![
            s.key.into(),
            s.label.into(),
            format!(
                "{} models: {} finished, {} unfinished, {} failed, {} not started",
                c.total, c.finished, c.unfinished, c.failed, c.not_started
            ),
            st.map_or("-".into(), |s| format!("{:.2}", s.min)),
            st.map_or("-".into(), |s| format!("{:.2}", s.median)),
            st.map_or("-".into(), |s| format!("{:.2}", s.mean)),
            if f.is_empty() {
                "-".into()
            } else {
                format!("{:.2}-{:.2} M", flo / 1e6, fhi / 1e6)
            },
        ]);
    }
    r.table(
        &[
            "sweep",
            "design space",
            "jobs",
            "min error",
            "median",
            "mean",
            "flops",
        ],
        &rows,
        &[0, 1, 2],
    );
}

/// Writes the report to `path` and returns its HTML.
pub fn write(path: &Path, input: &ReportInput) -> Result<String> {
    let mut r = Report::new(&format!(
        "Designing Network Design Spaces, reproduced small on {}",
        dataset(input.sweeps).unwrap_or_else(|| "no data yet".into())
    ));
    overview(&mut r, input);
    for s in SECTIONS {
        section(&mut r, s, input)?;
    }
    sweeps_section(&mut r, input);
    let html = r.render();
    crate::error::write(path, &html)?;
    Ok(html)
}
