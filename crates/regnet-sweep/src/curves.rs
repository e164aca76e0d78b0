//! Training curves of one run, from its log: train and test top-1 error per epoch (and the
//! EMA's), as an SVG chart. `regnet train` writes it next to the log after every epoch.

use crate::error::Result;
use crate::logs::{EpochStats, LogData};
use crate::plot::{Chart, Legend, Series, Style, render};

/// The curves of the `json_stats` log `log_text`, titled `title`.
pub fn training_curves_svg(log_text: &str, title: &str) -> Result<String> {
    let data = LogData::parse(log_text);
    let points = |m: &std::collections::BTreeMap<usize, EpochStats>| -> Vec<(f64, f64)> {
        m.values()
            .filter_map(|s| s.top1_err.map(|e| (s.epoch as f64, e)))
            .collect()
    };
    let max_epoch = data
        .train
        .values()
        .chain(data.test.values())
        .map(|s| s.max_epoch)
        .max()
        .unwrap_or(1);
    let mut series = Vec::new();
    for (label, pts, color, style) in [
        ("train", points(&data.train), 0, Style::Dashed),
        ("test", points(&data.test), 0, Style::LinePoints),
        ("test (EMA)", points(&data.test_ema), 1, Style::Line),
    ] {
        if !pts.is_empty() {
            let best = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            series.push(Series {
                label: format!("{label}, min {best:.2}%"),
                points: pts,
                color,
                style,
            });
        }
    }
    let chart = Chart {
        title: title.to_string(),
        x_label: "epoch".into(),
        y_label: "top-1 error (%)".into(),
        x_range: Some((0.5, max_epoch as f64 + 0.5)),
        series,
        legend: Legend::UpperRight,
        size: (560, 360),
        ..Chart::default()
    };
    render(&chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_from_a_log() {
        let log = r#"json_stats: {"_type":"train_epoch","epoch":"1/2","top1_err":30.0}
json_stats: {"_type":"test_epoch","epoch":"1/2","top1_err":20.0}
json_stats: {"_type":"train_epoch","epoch":"2/2","top1_err":15.0}
json_stats: {"_type":"test_epoch","epoch":"2/2","top1_err":12.5}
"#;
        let svg = training_curves_svg(log, "run").unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("test, min 12.50%")
                && svg.contains("train, min 15.00%")
        );
    }
}
