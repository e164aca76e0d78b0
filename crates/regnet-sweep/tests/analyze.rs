//! The report: written, self-contained, with the EDF SVG inline and the plots as files.

mod common;

use std::path::Path;

use regnet_sweep::SweepConfig;
use regnet_sweep::analysis::BootstrapOptions;
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

/// Two trained sweeps `a` (16 models) and `b` (12); the second config file's `ANALYZE`
/// section is `analyze`.
fn two_sweeps(dir: &Path, analyze: &str) -> (std::path::PathBuf, std::path::PathBuf, SweepConfig) {
    let (fa, da) = common::small_sweep(dir, "a", 16, 11);
    let (fb, db) = common::small_sweep(dir, "b", 12, 12);
    let text = std::fs::read_to_string(&fa).unwrap() + analyze;
    std::fs::write(&fa, text).unwrap();
    let sa = setup::run(&fa).unwrap();
    let sb = setup::run(&fb).unwrap();
    train_all(&da, &sa, 0.0);
    train_all(&db, &sb, 3.0);
    (da, db, SweepConfig::load(&fa).unwrap())
}

fn file_names(s: &analyze::AnalyzeSummary) -> Vec<String> {
    s.svg_files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn report_states_the_options_that_ran() {
    let tmp = tempfile::tempdir().unwrap();
    let (da, db, _) = two_sweeps(tmp.path(), "");
    let dirs = [da, db];
    let out = tmp.path().join("default");
    let s = analyze::run(&dirs, &out).unwrap();
    let html = std::fs::read_to_string(&s.report).unwrap();
    assert!(
        html.contains("2500 times, draw 25% of the models"),
        "default bootstrap"
    );
    assert!(html.contains("95% of the rounds (2.5th to 97.5th percentile)"));
    // Fitted widths: orange for the first sweep, green apart from the second's orange.
    assert!(html.contains("(orange for a, green for b)"), "fit colors");
    let widths = |prefix: &str| {
        let f = s
            .svg_files
            .iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix));
        std::fs::read_to_string(f.unwrap()).unwrap().to_uppercase()
    };
    assert!(
        widths("a_widths_best_1_").contains("#D95319"),
        "orange steps for a"
    );
    assert!(
        widths("b_widths_best_1_").contains("#77AC30"),
        "green steps for b"
    );
    assert!(
        html.contains("Best-model ranges across sweeps"),
        "trends table"
    );
    // Other bootstrap settings: the prose follows.
    let opts = AnalyzeOptions {
        bootstrap: BootstrapOptions {
            rounds: 300,
            sample: 0.5,
            alpha: 10.0,
            seed: 1,
        },
        ..AnalyzeOptions::default()
    };
    let s = analyze::run_with(&dirs, &tmp.path().join("other"), &opts).unwrap();
    let html = std::fs::read_to_string(&s.report).unwrap();
    assert!(
        html.contains("300 times, draw 50% of the models"),
        "rounds and sample"
    );
    assert!(
        html.contains("90% of the rounds (5th to 95th percentile)"),
        "alpha"
    );
    assert!(!html.contains("2500 times"));
}

#[test]
fn analyze_keys_change_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = "ANALYZE:\n  METRICS: [regnet_wa, wd, cfg.REGNET.DEPTH]\n  COMPLEXITY: [params]\n  \
                PLOT_COMPLEXITY_TRENDS: False\n  PLOT_METRIC_TRENDS: False\n  \
                PLOT_CURVES_BEST: 0\n  PLOT_CURVES_WORST: 1\n  PLOT_MODELS_BEST: 2\n  \
                PLOT_MODELS_WORST: 0\n";
    let (da, db, sweep) = two_sweeps(tmp.path(), keys);
    assert_eq!(sweep.analysis_dirs(), vec![da.clone()]);
    let opts = AnalyzeOptions {
        cfg: sweep.analyze.clone(),
        ..AnalyzeOptions::default()
    };
    let s = analyze::run_with(&[da.clone(), db.clone()], &tmp.path().join("r"), &opts).unwrap();
    let files = file_names(&s);
    let has = |p: &str| files.iter().any(|f| f.starts_with(p));
    // COMPLEXITY: params only; METRICS: as listed (a constant one is said, not plotted).
    assert!(
        has("a_error_vs_params_") && !has("a_error_vs_flops_"),
        "{files:?}"
    );
    assert!(
        has("a_error_vs_regnet_wa") && has("a_error_vs_regnet_depth"),
        "{files:?}"
    );
    assert!(!has("a_error_vs_regnet_w0"), "{files:?}");
    let ranges: Vec<&String> = s.sweeps[0].ranges.keys().collect();
    assert_eq!(
        ranges,
        ["REGNET.DEPTH", "REGNET.WA", "params (M)"],
        "{ranges:?}"
    );
    let html = std::fs::read_to_string(&s.report).unwrap();
    assert!(html.contains("wd: the same for every model"));
    assert!(
        !html.contains("Best-model ranges across sweeps"),
        "trends off"
    );
    // Curves of the worst model only, widths of the two best only.
    assert!(
        has("a_curves_worst_1_") && !has("a_curves_best_"),
        "{files:?}"
    );
    assert!(has("a_widths_best_2_") && !has("a_widths_best_3_") && !has("a_widths_worst_"));
    assert!(html.contains("training curves of the 0 best and 1 worst models"));
    // No value plots at all.
    let mut off = opts.cfg.clone();
    off.plot_metric_values = false;
    off.plot_complexity_values = false;
    let opts = AnalyzeOptions { cfg: off, ..opts };
    let s = analyze::run_with(&[da, db], &tmp.path().join("off"), &opts).unwrap();
    assert!(!file_names(&s).iter().any(|f| f.contains("_error_vs_")));
    assert!(s.sweeps[0].ranges.is_empty());
    let html = std::fs::read_to_string(&s.report).unwrap();
    assert!(
        html.contains("ANALYZE.PLOT_METRIC_VALUES and ANALYZE.PLOT_COMPLEXITY_VALUES are False")
    );
}

#[test]
fn analyze_keys_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, _) = common::small_sweep(tmp.path(), "k", 2, 1);
    let base = std::fs::read_to_string(&f).unwrap();
    for (analyze, key, says) in [
        ("METRICS: [memory]", "ANALYZE.METRICS", "memory"),
        ("METRICS: [cfg.NOPE.X]", "ANALYZE.METRICS", "cfg.NOPE.X"),
        ("COMPLEXITY: flops", "ANALYZE.COMPLEXITY", "list"),
        (
            "PLOT_METRIC_VALUES: 3",
            "ANALYZE.PLOT_METRIC_VALUES",
            "True or False",
        ),
        (
            "PLOT_CURVES_BEST: 5000",
            "ANALYZE.PLOT_CURVES_BEST",
            "limit",
        ),
        (
            "SPLIT_FILTERS: {x: {lr: [0, 1, 2]}}",
            "ANALYZE.SPLIT_FILTERS",
            "not supported",
        ),
        (
            "PRE_FILTERS: {flops: [1, 2]}",
            "ANALYZE.PRE_FILTERS.flops",
            "[MIN, MED, MAX]",
        ),
        (
            "PRE_FILTERS: {flops: [3, 2, 1]}",
            "ANALYZE.PRE_FILTERS.flops",
            "above MAX",
        ),
        (
            "PRE_FILTERS: {mem: [0, 1, 2]}",
            "ANALYZE.PRE_FILTERS.mem",
            "mem",
        ),
        (
            "EXTRA_SWEEP_NAMES: [../x]",
            "ANALYZE.EXTRA_SWEEP_NAMES",
            "ROOT_DIR",
        ),
    ] {
        std::fs::write(&f, format!("{base}ANALYZE:\n  {analyze}\n")).unwrap();
        let e = SweepConfig::load(&f).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(says), "{analyze}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    std::fs::write(
        &f,
        format!("{base}ANALYZE:\n  EXTRA_SWEEP_NAMES: [b, c/d]\n  PRE_FILTERS: {{}}\n"),
    )
    .unwrap();
    let s = SweepConfig::load(&f).unwrap();
    let root = s.root_dir.clone();
    assert_eq!(
        s.analysis_dirs(),
        vec![root.join("k"), root.join("b"), root.join("c/d")]
    );
}

#[test]
fn pre_filters_keep_the_models_in_range() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, d) = common::small_sweep(tmp.path(), "f", 16, 11);
    let setup = setup::run(&f).unwrap();
    let errs = train_all(&d, &setup, 0.0);
    // Keep the models at or below the median flops (in billions, as pycls writes them).
    let mut flops: Vec<f64> = (setup.models.iter())
        .map(|m| m.complexity.flops as f64 / 1e9)
        .collect();
    flops.sort_by(f64::total_cmp);
    let cut = flops[7];
    let keep: Vec<usize> = (0..16)
        .filter(|&i| setup.models[i].complexity.flops as f64 / 1e9 <= cut)
        .collect();
    assert!(keep.len() >= 8 && keep.len() < 16, "{}", keep.len());
    let text = std::fs::read_to_string(&f).unwrap();
    let filter = format!("ANALYZE:\n  PRE_FILTERS:\n    flops: [0, 0, {cut}]\n");
    std::fs::write(&f, text + &filter).unwrap();
    let sweep = SweepConfig::load(&f).unwrap();
    let opts = AnalyzeOptions {
        cfg: sweep.analyze.clone(),
        ..AnalyzeOptions::default()
    };
    let s = analyze::run_with(&[d], &tmp.path().join("r"), &opts).unwrap();
    let st = s.sweeps[0].errors.unwrap();
    assert_eq!(st.n, keep.len());
    let min = keep.iter().map(|&i| errs[i]).fold(f64::INFINITY, f64::min);
    assert!((st.min - min).abs() < 1e-9, "{} vs {min}", st.min);
    let html = std::fs::read_to_string(&s.report).unwrap();
    assert!(
        html.contains(&format!("f: {} of 16", keep.len())),
        "kept count stated"
    );
    assert!(file_names(&s).contains(&"edf_before_filters.svg".to_string()));
    let edf = std::fs::read_to_string(tmp.path().join("r/edf_before_filters.svg")).unwrap();
    assert!(
        edf.contains("f: n=16 min="),
        "before the filters: every model"
    );
}
