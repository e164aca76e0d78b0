//! `regnet sweep analyze`: the report of one or several sweeps, with the `ANALYZE` options
//! of the first sweep's config and the overrides given here.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use regnet_sweep::analysis::BootstrapOptions;
use regnet_sweep::analyze::{AnalyzeOptions, run_with};
use regnet_sweep::analyze_cfg;

/// Most bootstrap rounds (each keeps one index per round and metric).
const MAX_ROUNDS: usize = 1_000_000;

/// `regnet sweep analyze`.
#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// Sweep configs or sweep folders; several sweeps are compared on the same plots. The
    /// first one's ANALYZE keys (and EXTRA_SWEEP_NAMES) apply.
    #[arg(value_name = "SWEEP", required = true)]
    pub sweeps: Vec<PathBuf>,
    /// Output folder (default: the first sweep's `analysis` folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Best models shown per sweep (curves and widths; default: ANALYZE.PLOT_CURVES_BEST
    /// and PLOT_MODELS_BEST).
    #[arg(long)]
    pub best: Option<usize>,
    /// Worst models shown per sweep (default: ANALYZE.PLOT_CURVES_WORST and
    /// PLOT_MODELS_WORST).
    #[arg(long)]
    pub worst: Option<usize>,
    /// Log-flops bins of the normalized EDF (default: from the sweep sizes, at most 10).
    #[arg(long)]
    pub bins: Option<usize>,
    /// Bootstrap rounds.
    #[arg(long, default_value_t = 2500)]
    pub rounds: usize,
    /// Models drawn per bootstrap round: a fraction of the sweep if at most 1, else a count.
    #[arg(long, default_value_t = 0.25)]
    pub sample: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The options: the sweep config's `ANALYZE`, then the flags.
fn options(a: &AnalyzeArgs, mut cfg: analyze_cfg::AnalyzeCfg) -> Result<AnalyzeOptions> {
    if a.rounds > MAX_ROUNDS {
        bail!("--rounds {} is above the limit of {MAX_ROUNDS}", a.rounds);
    }
    if !(a.sample.is_finite() && a.sample > 0.0) {
        bail!("--sample {} must be a positive number", a.sample);
    }
    if let Some(n) = a.best {
        (cfg.plot_curves_best, cfg.plot_models_best) = (n, n);
    }
    if let Some(n) = a.worst {
        (cfg.plot_curves_worst, cfg.plot_models_worst) = (n, n);
    }
    Ok(AnalyzeOptions {
        cfg,
        bins: a.bins,
        bootstrap: BootstrapOptions {
            rounds: a.rounds.max(1),
            sample: a.sample,
            ..BootstrapOptions::default()
        },
    })
}

/// Runs `regnet sweep analyze`.
pub fn run(a: AnalyzeArgs) -> Result<()> {
    let (dirs, cfg) = analyze_cfg::resolve(&a.sweeps)?;
    let out = a.out.clone().unwrap_or_else(|| dirs[0].join("analysis"));
    let s = run_with(&dirs, &out, &options(&a, cfg)?)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    for sw in &s.sweeps {
        match sw.errors {
            Some(e) => println!(
                "{}: {} finished, error min {:.2} median {:.2} mean {:.2}",
                sw.name, e.n, e.min, e.median, e.mean
            ),
            None => println!("{}: no finished models", sw.name),
        }
    }
    println!(
        "wrote {} and {} SVG files",
        s.report.display(),
        s.svg_files.len()
    );
    Ok(())
}
