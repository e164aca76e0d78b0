//! `regnet sweep setup|launch|collect|analyze`: arguments and printing; the work is done by
//! `regnet_sweep`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use regnet_sweep::collect;
use regnet_sweep::setup::{SampledModel, SetupOptions, SetupSummary, setup};
use regnet_sweep::sweep_config::SweepConfig;

pub use super::sweep_analyze::AnalyzeArgs;
pub use super::sweep_launch::LaunchArgs;

/// `regnet sweep`.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// The step to run.
    #[command(subcommand)]
    pub command: SweepCommand,
}

/// The steps of a sweep.
#[derive(Subcommand, Debug, Clone)]
pub enum SweepCommand {
    /// Sample configs from a sweep config and write them to ROOT_DIR/NAME/cfgs.
    Setup(SetupArgs),
    /// Train every config (N at a time, resuming, retrying), or write a SLURM job array.
    Launch(LaunchArgs),
    /// Gather every job's logs into ROOT_DIR/NAME/sweep.json.
    Collect(CollectArgs),
    /// Write an HTML report (EDFs, bootstrap ranges, training curves, widths) and SVG plots.
    Analyze(AnalyzeArgs),
}

/// `regnet sweep setup`.
#[derive(Args, Debug, Clone)]
pub struct SetupArgs {
    /// The sweep config (pycls sweep YAML).
    #[arg(long = "sweep-cfg", value_name = "FILE")]
    pub sweep_cfg: PathBuf,
    /// Sample anew over the configs of an existing sweep.
    #[arg(long)]
    pub force: bool,
    /// Print the summary (setup.json) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `regnet sweep collect`.
#[derive(Args, Debug, Clone)]
pub struct CollectArgs {
    /// The sweep config, or the sweep folder (ROOT_DIR/NAME).
    #[arg(value_name = "SWEEP")]
    pub sweep: PathBuf,
    /// Print sweep.json instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `regnet sweep ...`.
pub fn run(args: SweepArgs) -> Result<()> {
    match args.command {
        SweepCommand::Setup(a) => run_setup(a),
        SweepCommand::Launch(a) => super::sweep_launch::run(a),
        SweepCommand::Collect(a) => run_collect(a),
        SweepCommand::Analyze(a) => super::sweep_analyze::run(a),
    }
}

fn run_setup(a: SetupArgs) -> Result<()> {
    let sweep = SweepConfig::load(&a.sweep_cfg)?;
    let s = setup(&sweep, &SetupOptions { force: a.force })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    print_setup(&s);
    Ok(())
}

/// The setup summary: configs written, rejections, complexity ranges.
fn print_setup(s: &SetupSummary) {
    let st = &s.stats;
    println!(
        "wrote {} configs to {}/cfgs ({} candidates drawn in {:.2} s, {:.0}/s)",
        s.models.len(),
        s.sweep_dir,
        st.drawn,
        st.seconds,
        st.draws_per_second
    );
    let rejected = [
        (st.duplicates, "duplicates"),
        (st.invalid, "invalid networks"),
        (st.regnet_stages, "RegNet stage counts"),
        (st.flops, "flops"),
        (st.params, "params"),
        (st.acts, "acts"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| format!("{n} {w}"))
    .collect::<Vec<_>>();
    if !rejected.is_empty() {
        println!("rejected: {}", rejected.join(", "));
    }
    if s.models.len() < s.num_configs {
        println!(
            "warning: only {} of SETUP.NUM_CONFIGS = {} configs met the constraints in \
             SETUP.NUM_SAMPLES = {} draws",
            s.models.len(),
            s.num_configs,
            s.num_samples
        );
    }
    let range = |f: fn(&SampledModel) -> u64| {
        let v: Vec<u64> = s.models.iter().map(f).collect();
        let (lo, hi) = (v.iter().min().copied(), v.iter().max().copied());
        format!(
            "{:.3e}..{:.3e}",
            lo.unwrap_or(0) as f64,
            hi.unwrap_or(0) as f64
        )
    };
    println!(
        "flops {}, params {}, acts {} (at {}x{})",
        range(|m| m.complexity.flops),
        range(|m| m.complexity.params),
        range(|m| m.complexity.acts),
        s.im_size,
        s.im_size
    );
}

fn run_collect(a: CollectArgs) -> Result<()> {
    let dir = collect::resolve_sweep_dir(&a.sweep)?;
    let r = collect::run(&dir)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let c = &r.counts;
    println!(
        "{}: {} models, {} finished, {} unfinished, {} failed, {} not started; wrote {}",
        r.name,
        c.total,
        c.finished,
        c.unfinished,
        c.failed,
        c.not_started,
        dir.join("sweep.json").display()
    );
    if !r.unfinished.is_empty() {
        println!("unfinished: {}", r.unfinished.join(" "));
    }
    if !r.failed.is_empty() {
        println!("failed: {}", r.failed.join(" "));
    }
    Ok(())
}
