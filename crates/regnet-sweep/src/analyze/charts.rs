//! The per-model charts: training curves and per-block widths with the fitted rule.

use crate::collect::{EpochResult, ModelResult};
use crate::fit::Fit;
use crate::plot::{Chart, Legend, Series, Style};

/// Palette index of the dashed continuous widths `u_j = w0 + wa*j`.
pub(super) const CONTINUOUS_COLOR: usize = 7;

/// Palette index of the fitted quantized widths of a sweep drawn in `color`: apart from it.
pub(super) fn fit_color(color: usize) -> usize {
    if color % 10 == 1 { 4 } else { 1 }
}

/// The training curves (train, test, EMA test error per epoch) of `m`.
pub(super) fn curves_chart(m: &ModelResult, rank: &str, color: usize) -> Chart {
    let pick = |f: fn(&EpochResult) -> Option<f64>| -> Vec<(f64, f64)> {
        (m.epochs.iter())
            .filter_map(|e| f(e).map(|y| (e.epoch as f64, y)))
            .collect()
    };
    let min = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let curves = [
        ("train", pick(|e| e.train_err), color, Style::Dashed),
        ("test", pick(|e| e.test_err), color, Style::LinePoints),
        ("test ema", pick(|e| e.test_ema_err), color + 1, Style::Line),
    ];
    let series = (curves.into_iter())
        .filter(|c| !c.1.is_empty())
        .map(|(name, points, color, style)| Series {
            label: format!("{name} {:.2}", min(&points)),
            points,
            color,
            style,
        })
        .collect();
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

/// `(j, y_j)` points.
fn indexed<T: Copy + Into<f64>>(ys: &[T]) -> Vec<(f64, f64)> {
    (ys.iter().enumerate())
        .map(|(j, &y)| (j as f64, y.into()))
        .collect()
}

/// The fitted rule's series: the continuous widths and the quantized ones.
fn fit_series(f: &Fit, color: usize) -> [Series; 2] {
    let widths: Vec<f64> = f.widths.iter().map(|&w| w as f64).collect();
    [
        Series {
            label: format!("w0 + wa*j (wa={}, w0={})", f.wa, f.w0),
            points: indexed(&f.ws_cont),
            color: CONTINUOUS_COLOR,
            style: Style::Dashed,
        },
        Series {
            label: format!("fit wm={} e_fit={:.3}", f.wm, f.e_fit),
            points: indexed(&widths),
            color: fit_color(color),
            style: Style::Line,
        },
    ]
}

/// The per-block widths of `m` (rings at stage starts) with the fitted rule `fit`.
pub(super) fn widths_chart(m: &ModelResult, rank: &str, color: usize, fit: Option<&Fit>) -> Chart {
    let ws: Vec<f64> = m.block_widths().iter().map(|&w| w as f64).collect();
    let mut start = 0;
    let mut rings = Vec::new();
    for (&d, &w) in m.stages.depths.iter().zip(&m.stages.widths) {
        rings.push((start as f64, w as f64));
        start += d;
    }
    let mut series = vec![
        Series {
            label: "block widths".into(),
            points: indexed(&ws),
            color,
            style: Style::LinePoints,
        },
        Series {
            label: String::new(),
            points: rings,
            color,
            style: Style::Rings,
        },
    ];
    series.extend(fit.into_iter().flat_map(|f| fit_series(f, color)));
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
