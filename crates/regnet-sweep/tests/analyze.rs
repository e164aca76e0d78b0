//! The report: written, self-contained, with the EDF SVG inline and the plots as files.

mod common;

use std::path::Path;

use regnet_sweep::analyze::{self, AnalyzeOptions};
use regnet_sweep::layout;
use regnet_sweep::setup::{self, SetupSummary};

/// Fake training results: error falls with log-flops, plus a per-model offset.
fn train_all(dir: &Path, s: &SetupSummary, offset: f64) -> Vec<f64> {
    let mut errs = Vec::new();
    for m in &s.models {
        let base =
            60.0 - 4.0 * (m.complexity.flops as f64 / 1e6).ln() + offset + (m.index % 3) as f64;
        let epochs = [
            (base + 15.0, base + 6.0),
            (base + 8.0, base + 2.0),
            (base + 4.0, base),
        ];
        common::write_log(
            &layout::out_dir(dir, m.index),
            &common::log_text(&epochs, 3),
        );
        errs.push((base * 1e4).round() / 1e4);
    }
    errs
}

#[test]
fn report_is_self_contained_and_compares_sweeps() {
    let tmp = tempfile::tempdir().unwrap();
    let (fa, da) = common::small_sweep(tmp.path(), "a", 16, 11);
    let (fb, db) = common::small_sweep(tmp.path(), "b", 12, 12);
    let sa = setup::run(&fa).unwrap();
    let sb = setup::run(&fb).unwrap();
    let ea = train_all(&da, &sa, 0.0);
    train_all(&db, &sb, 3.0);
    // One job of b did not finish.
    common::write_log(
        &layout::out_dir(&db, 0),
        &common::log_text(&[(80.0, 70.0)], 3),
    );
    let out = tmp.path().join("report");
    let s = analyze::run(&[da.clone(), db.clone()], &out).unwrap();
    assert_eq!(s.report, out.join("report.html"));
    let html = std::fs::read_to_string(&s.report).unwrap();

    // Self-contained: no scripts, stylesheets, images or remote links.
    for bad in ["<script", "<link", "<img", "src=", "href=\"http", "url("] {
        assert!(!html.contains(bad), "report contains {bad}");
    }
    // The EDF plot is inline and also a file.
    let edf = std::fs::read_to_string(out.join("edf.svg")).unwrap();
    let edf_body = &edf[edf.find("<svg").unwrap()..];
    assert!(html.contains(edf_body.trim()), "EDF SVG inline");
    assert!(
        edf.contains("a: n=16 min=") && edf.contains("b: n=11 min="),
        "EDF legend"
    );
    assert!(out.join("edf_normalized.svg").is_file());
    assert!(html.matches("<svg").count() >= 10);
    for f in &s.svg_files {
        assert!(f.is_file(), "{}", f.display());
    }
    for section in [
        "1 Sweeps",
        "2 Error EDF",
        "3 Complexity-normalized error EDF",
        "4 Error versus parameters and complexity",
        "5 Best and worst models",
        "6 Jobs that did not finish",
    ] {
        assert!(html.contains(section), "{section}");
    }
    // Error-vs-parameter plots with bootstrap ranges, training curves, width plots.
    assert!(out.join("a_error_vs_flops_m.svg").is_file());
    assert!(out.join("a_error_vs_regnet_w0.svg").is_file());
    let has = |prefix: &str| {
        s.svg_files
            .iter()
            .any(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
    };
    assert!(has("a_curves_best_1_") && has("a_curves_worst_1_") && has("b_curves_best_1_"));
    assert!(has("a_widths_best_1_") && has("a_widths_worst_2_"));
    assert!(html.contains("e_fit"));

    // The summary numbers.
    let a = &s.sweeps[0];
    let st = a.errors.unwrap();
    assert_eq!(st.n, 16);
    let min = ea.iter().copied().fold(f64::INFINITY, f64::min);
    assert!((st.min - min).abs() < 1e-9, "{} vs {min}", st.min);
    let flops = &a.ranges["flops (M)"];
    assert!(flops.low <= flops.median && flops.median <= flops.high);
    assert_eq!(s.sweeps[1].counts.unfinished, 1);
    assert!(html.contains("000000") && html.contains("unfinished"));
    // Smaller errors with more flops: the best models are among the larger ones.
    let fl: Vec<f64> = sa
        .models
        .iter()
        .map(|m| m.complexity.flops as f64 / 1e6)
        .collect();
    let median_flops = regnet_sweep::analysis::percentile(&fl, 50.0);
    assert!(
        flops.median >= median_flops,
        "{} < {median_flops}",
        flops.median
    );
}

#[test]
fn report_without_finished_models() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, d) = common::small_sweep(tmp.path(), "empty", 3, 13);
    setup::run(&f).unwrap();
    let out = tmp.path().join("r");
    let s = analyze::run_with(&[d], &out, &AnalyzeOptions::default()).unwrap();
    let html = std::fs::read_to_string(&s.report).unwrap();
    assert!(html.contains("No sweep has finished models yet"));
    assert!(s.svg_files.is_empty());
    assert_eq!(s.sweeps[0].counts.not_started, 3);
}
