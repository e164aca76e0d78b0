//! The command-line arguments of `regnet sweep setup|launch|collect|analyze` and
//! `regnet fit`, and the functions that run them. The `regnet` binary adds
//!
//! ```ignore
//! /// Sample, train, collect and analyze sweeps of a design space.
//! Sweep(regnet_sweep::cli::SweepArgs),
//! /// Fit the quantized linear rule to a network's per-block widths.
//! Fit(regnet_sweep::cli::FitArgs),
//! ```
//!
//! to its subcommands and calls [`run_sweep`] and [`run_fit`].

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use regnet_core::config::Config;

use crate::analyze::{AnalyzeOptions, run_with};
use crate::collect;
use crate::fit::{FitOptions, fit_widths_with};
use crate::launch::{self, LaunchOptions};
use crate::layout::{self, Progress};
use crate::setup::{SetupOptions, setup};
use crate::slurm::{self, SlurmOptions};
use crate::sweep_config::SweepConfig;
use crate::template::Template;

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

/// `regnet sweep launch`.
#[derive(Args, Debug, Clone)]
pub struct LaunchArgs {
    /// The sweep config.
    #[arg(long = "sweep-cfg", value_name = "FILE")]
    pub sweep_cfg: PathBuf,
    /// Jobs run at once on this machine.
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: usize,
    /// Retries of a failing job (default: LAUNCH.MAX_RETRY).
    #[arg(long)]
    pub max_retry: Option<usize>,
    /// Command template with {cfg}, {out_dir}, {index}, {sweep_dir}, {name} (default:
    /// LAUNCH.COMMAND, else `<this regnet> train --quiet --cfg {cfg} OUT_DIR {out_dir}`).
    #[arg(long, value_name = "TEMPLATE")]
    pub command: Option<String>,
    /// Run only these indices (e.g. `0,3,7`).
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<usize>>,
    /// Give jobs that failed in earlier launches a fresh retry budget.
    #[arg(long)]
    pub reset_failed: bool,
    /// Print the commands instead of running them.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a SLURM job array script (ROOT_DIR/NAME/slurm_array.sh) for the unfinished
    /// jobs instead of running them.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: submit the script with sbatch.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// With --slurm: array tasks run at once (default: LAUNCH.PARALLEL_JOBS).
    #[arg(long, requires = "slurm")]
    pub max_parallel: Option<usize>,
    /// Print no progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
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

/// `regnet sweep analyze`.
#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// Sweep configs or sweep folders; several sweeps are compared on the same plots.
    #[arg(value_name = "SWEEP", required = true)]
    pub sweeps: Vec<PathBuf>,
    /// Output folder (default: the first sweep's `analysis` folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Best models shown per sweep.
    #[arg(long, default_value_t = 3)]
    pub best: usize,
    /// Worst models shown per sweep.
    #[arg(long, default_value_t = 2)]
    pub worst: usize,
    /// Log-flops bins of the normalized EDF (default: from the sweep sizes, at most 10).
    #[arg(long)]
    pub bins: Option<usize>,
    /// Bootstrap rounds.
    #[arg(long, default_value_t = 2500)]
    pub rounds: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `regnet fit`.
#[derive(Args, Debug, Clone)]
pub struct FitArgs {
    /// Per-block widths, e.g. `24,56,152,152,152,152,368,...`.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["depths", "cfg", "rest"])]
    pub widths: Option<Vec<usize>>,
    /// Per-stage depths (with --stage-widths).
    #[arg(long, value_delimiter = ',', requires = "stage_widths")]
    pub depths: Option<Vec<usize>>,
    /// Per-stage widths (with --depths).
    #[arg(long, value_delimiter = ',', requires = "depths")]
    pub stage_widths: Option<Vec<usize>>,
    /// A pycls config file.
    #[arg(long, value_name = "FILE")]
    pub cfg: Option<String>,
    /// `[MODEL] [KEY VALUE ...]`: a zoo name, then pycls-style overrides.
    #[arg(value_name = "MODEL / KEY VALUE", allow_negative_numbers = true)]
    pub rest: Vec<String>,
    /// Smallest wm searched.
    #[arg(long, default_value_t = 1.5)]
    pub wm_min: f64,
    /// Largest wm searched.
    #[arg(long, default_value_t = 3.0)]
    pub wm_max: f64,
    /// Print the fit as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `regnet sweep ...`.
pub fn run_sweep(args: SweepArgs) -> Result<()> {
    match args.command {
        SweepCommand::Setup(a) => run_setup(a),
        SweepCommand::Launch(a) => run_launch(a),
        SweepCommand::Collect(a) => run_collect(a),
        SweepCommand::Analyze(a) => run_analyze(a),
    }
}

fn run_setup(a: SetupArgs) -> Result<()> {
    let sweep = SweepConfig::load(&a.sweep_cfg)?;
    let s = setup(&sweep, &SetupOptions { force: a.force })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
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
    let range = |f: fn(&crate::setup::SampledModel) -> u64| {
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
    Ok(())
}

fn run_launch(a: LaunchArgs) -> Result<()> {
    let sweep = SweepConfig::load(&a.sweep_cfg)?;
    let dir = sweep.sweep_dir();
    let template = match a.command.as_ref().or(sweep.launch.command.as_ref()) {
        Some(t) => Template::parse(t)?,
        None => {
            let exe = std::env::current_exe().context("cannot find the regnet binary")?;
            Template::default_for(&exe.display().to_string())
        }
    };
    if a.slurm {
        let todo: Vec<usize> = launch::progress(&dir)?
            .into_iter()
            .filter(|(i, p)| {
                *p != Progress::Finished && a.only.as_ref().is_none_or(|o| o.contains(i))
            })
            .map(|(i, _)| i)
            .collect();
        let mut opts = SlurmOptions::from_sweep(&sweep, template, todo);
        if let Some(m) = a.max_parallel {
            opts.max_parallel = m;
        }
        let path = slurm::write(&opts)?;
        println!(
            "wrote {} ({} array tasks)",
            path.display(),
            opts.indices.len()
        );
        if a.submit {
            println!("{}", slurm::submit(&path)?);
        }
        return Ok(());
    }
    let opts = LaunchOptions {
        sweep_dir: dir,
        name: sweep.name.clone(),
        command: template,
        jobs: a.jobs,
        max_retry: a.max_retry.unwrap_or(sweep.launch.max_retry),
        only: a.only,
        reset_failed: a.reset_failed,
        dry_run: a.dry_run,
        verbose: !a.quiet,
    };
    let s = launch::run(&opts)?;
    if a.dry_run {
        for c in &s.commands {
            println!("{c}");
        }
        return Ok(());
    }
    println!(
        "{} jobs: {} finished before, {} finished now, {} failed now, {} skipped as failed, \
         {} running in another launcher",
        s.total,
        s.already_finished.len(),
        s.finished.len(),
        s.failed.len(),
        s.skipped_failed.len(),
        s.running_elsewhere.len()
    );
    if !s.failed.is_empty() || !s.skipped_failed.is_empty() {
        let names: Vec<String> = s
            .failed
            .iter()
            .chain(&s.skipped_failed)
            .map(|&i| layout::out_dir(&opts.sweep_dir, i).display().to_string())
            .collect();
        println!("failed jobs' logs: {}", names.join(" "));
    }
    Ok(())
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

fn run_analyze(a: AnalyzeArgs) -> Result<()> {
    let dirs = a
        .sweeps
        .iter()
        .map(|p| collect::resolve_sweep_dir(p))
        .collect::<crate::Result<Vec<_>>>()?;
    let out = a.out.clone().unwrap_or_else(|| dirs[0].join("analysis"));
    let opts = AnalyzeOptions {
        best: a.best,
        worst: a.worst,
        bins: a.bins,
        bootstrap: crate::analysis::BootstrapOptions {
            rounds: a.rounds.max(1),
            ..Default::default()
        },
    };
    let s = run_with(&dirs, &out, &opts)?;
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

/// Runs `regnet fit`.
pub fn run_fit(a: FitArgs) -> Result<()> {
    let (widths, regnet) = if let Some(ws) = &a.widths {
        (ws.clone(), None)
    } else if let (Some(ds), Some(ws)) = (&a.depths, &a.stage_widths) {
        if ds.len() != ws.len() {
            bail!(
                "--depths has {} stages but --stage-widths {}",
                ds.len(),
                ws.len()
            );
        }
        let blocks = ds
            .iter()
            .zip(ws)
            .flat_map(|(&d, &w)| std::iter::repeat_n(w, d))
            .collect();
        (blocks, None)
    } else {
        let name = (a.rest.len() % 2 == 1).then(|| a.rest[0].as_str());
        let overrides = &a.rest[usize::from(name.is_some())..];
        let mut cfg = match name {
            Some(n) => regnet_core::zoo::lookup(n)?.config(),
            None => Config::default(),
        };
        if let Some(path) = &a.cfg {
            cfg.merge_file(path)?;
        }
        cfg.merge_overrides(overrides)?;
        if name.is_none() && a.cfg.is_none() && cfg.model.ty.is_empty() {
            bail!(
                "nothing to fit: give --widths, --depths and --stage-widths, a zoo model, or --cfg FILE"
            );
        }
        let stages = crate::setup::Stages::of(&cfg)?;
        let r = &cfg.regnet;
        let regnet = (cfg.model.ty == "regnet").then_some((r.w0, r.wa, r.wm, r.depth));
        (stages.block_widths(), regnet)
    };
    let opts = FitOptions {
        wm_range: (a.wm_min, a.wm_max),
        ..FitOptions::default()
    };
    let f = fit_widths_with(&widths, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&f)?);
        return Ok(());
    }
    println!("blocks   {} (d = {})", list(&widths), f.depth);
    println!(
        "fit      w0 = {}, wa = {} (any in ({:.4}, {:.4})), wm = {}",
        f.w0, f.wa, f.wa_interval.0, f.wa_interval.1, f.wm
    );
    println!("widths   {}", list(&f.widths));
    println!(
        "stages   widths {}, depths {}",
        list(&f.stage_widths),
        list(&f.stage_depths)
    );
    println!("e_fit    {:.4}", f.e_fit);
    if let Some((w0, wa, wm, d)) = regnet {
        println!("config   w0 = {w0}, wa = {wa}, wm = {wm}, d = {d} (generating parameters)");
    }
    Ok(())
}

fn list(xs: &[usize]) -> String {
    format!(
        "[{}]",
        xs.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
