//! `regnet sweep analyze`: the report of one or several sweeps (pycls's
//! `tools/sweep_analyze.py`): `report.html`, self-contained, and every plot as an SVG file.
//!
//! One function per section, as pycls's `sweep/plotting.py` has one per figure: the sweeps
//! (jobs, samplers, error summary, [`overview`]); the error EDFs and the flops-normalized
//! EDFs ([`edfs`]); error versus the metrics and complexity measures with the bootstrap
//! range of the best models ([`versus`]); the best and worst models (table, training
//! curves, per-block widths with the fitted quantized linear rule, [`models`]); the jobs
//! that did not finish ([`unfinished`]). What they show follows the sweep config's
//! `ANALYZE` keys ([`AnalyzeCfg`]). Only finished models with a test error enter the
//! statistics.

mod charts;
mod edfs;
mod format;
mod metrics;
mod models;
mod overview;
mod unfinished;
mod versus;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::analysis::{BootstrapOptions, BootstrapRange, ErrorStats, error_stats};
use crate::analyze_cfg::AnalyzeCfg;
use crate::collect::{self, Counts, ModelResult, SweepResults};
use crate::error::{Error, Result};
use crate::plot::{Chart, render};
use crate::report::Report;

/// Options of [`run_with`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnalyzeOptions {
    /// What the report shows: the sweep config's `ANALYZE` keys.
    pub cfg: AnalyzeCfg,
    /// Log-flops bins of the normalized EDF (`None`: from the sweep sizes).
    pub bins: Option<usize>,
    /// Bootstrap settings.
    pub bootstrap: BootstrapOptions,
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

/// What every section reads: the sweeps, their display names, their finished models (best
/// first) and those models' errors, and the options.
struct Ctx<'a> {
    sweeps: &'a [SweepResults],
    names: Vec<String>,
    finished: Vec<Vec<&'a ModelResult>>,
    errors: Vec<Vec<f64>>,
    /// The errors before `ANALYZE.PRE_FILTERS`, where there are filters.
    unfiltered: Option<Vec<Vec<f64>>>,
    opts: &'a AnalyzeOptions,
}

/// Whether `m` passes every filter; an error names a filter whose metric `m` lacks.
fn passes(m: &ModelResult, filters: &[crate::analyze_cfg::Filter]) -> Result<bool> {
    for f in filters {
        let v = metrics::pycls_value(m, &f.metric).ok_or_else(|| {
            Error::other(format!(
                "ANALYZE.PRE_FILTERS: {} has no numeric value for model {}",
                f.metric.name, m.name
            ))
        })?;
        if !(f.low <= v && v <= f.high) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn errors_of(models: &[Vec<&ModelResult>]) -> Vec<Vec<f64>> {
    (models.iter())
        .map(|ms| ms.iter().filter_map(|m| m.error()).collect())
        .collect()
}

impl<'a> Ctx<'a> {
    fn new(sweeps: &'a [SweepResults], opts: &'a AnalyzeOptions) -> Result<Ctx<'a>> {
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
        let filters = &opts.cfg.pre_filters;
        let unfiltered = (!filters.is_empty()).then(|| errors_of(&finished));
        let mut kept = Vec::with_capacity(finished.len());
        for ms in finished {
            let mut keep = Vec::with_capacity(ms.len());
            for m in ms {
                if passes(m, filters)? {
                    keep.push(m);
                }
            }
            kept.push(keep);
        }
        Ok(Ctx {
            sweeps,
            names,
            errors: errors_of(&kept),
            finished: kept,
            unfiltered,
            opts,
        })
    }
}

/// The report being written: the HTML and the SVG files written so far.
struct Out<'a> {
    dir: &'a Path,
    report: Report,
    written: Vec<PathBuf>,
}

impl Out<'_> {
    /// Writes a chart as `<dir>/<file>.svg` and returns its SVG.
    fn save(&mut self, file: &str, chart: &Chart) -> Result<String> {
        let svg = render(chart)?;
        let path = self.dir.join(format!("{file}.svg"));
        crate::error::write(&path, &svg)?;
        self.written.push(path);
        Ok(svg)
    }
}

/// Writes the report of `sweeps` into `out_dir`.
pub fn analyze(
    sweeps: &[SweepResults],
    out_dir: &Path,
    opts: &AnalyzeOptions,
) -> Result<AnalyzeSummary> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let ctx = Ctx::new(sweeps, opts)?;
    let title = format!("Sweep analysis: {}", ctx.names.join(", "));
    let mut out = Out {
        dir: out_dir,
        report: Report::new(&title),
        written: Vec::new(),
    };
    overview::section(&ctx, &mut out.report);
    edfs::error_edf(&ctx, &mut out)?;
    edfs::normalized_edf(&ctx, &mut out)?;
    let ranges = versus::section(&ctx, &mut out)?;
    models::section(&ctx, &mut out)?;
    unfinished::section(&ctx, &mut out.report);
    let report = out_dir.join("report.html");
    crate::error::write(&report, out.report.render())?;
    let sweeps = ctx
        .names
        .iter()
        .zip(sweeps)
        .zip(&ctx.errors)
        .zip(ranges)
        .map(|(((name, s), e), ranges)| SweepSummary {
            name: name.clone(),
            counts: s.counts.clone(),
            errors: error_stats(e),
            ranges,
        })
        .collect();
    Ok(AnalyzeSummary {
        report,
        svg_files: out.written,
        sweeps,
    })
}
