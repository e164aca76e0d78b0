//! `regnet paper`: the paper's experiments reproduced small (arguments and printing; the
//! work is `regnet_sweep::paper::run`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, ValueEnum};
use regnet_sweep::paper::sweeps::{Data, SWEEPS, Settings};
use regnet_sweep::paper::verdict::Rule;
use regnet_sweep::paper::{self, Event, Launcher, PaperOptions};
use regnet_sweep::template::Template;

/// The data sets `regnet paper` trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dataset {
    /// Fashion-MNIST (28x28 gray; default place: Debian's dataset-fashion-mnist).
    FashionMnist,
    /// CIFAR-10 (32x32 RGB; needs --data-path).
    Cifar10,
}

/// `regnet paper`.
#[derive(ClapArgs, Debug, Clone)]
pub struct Args {
    /// Sweeps to set up and run, by short name: A,B,C,D,E,X,Y,trends,inverted,depthwise,
    /// swish,stages4 (default: all). The report covers every sweep set up in --out.
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Models per sweep (default: 32).
    #[arg(long)]
    pub models: Option<usize>,
    /// Epochs per model (default: 2).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Output folder: cfgs/, sweeps/, report.html, outcomes.json, outcomes.md.
    #[arg(long, value_name = "DIR", default_value = "target/paper")]
    pub out: PathBuf,
    /// Jobs run at once on this machine.
    #[arg(long, short = 'j', default_value_t = 1)]
    pub jobs: usize,
    /// Data set.
    #[arg(long, value_enum, default_value_t = Dataset::FashionMnist)]
    pub dataset: Dataset,
    /// Where the data set lives (EXT.DATA_PATH).
    #[arg(long, value_name = "DIR")]
    pub data_path: Option<String>,
    /// Training images used per model (EXT.TRAIN_SUBSET; default 10000, 0: all).
    #[arg(long)]
    pub train_subset: Option<usize>,
    /// Test images used per model (EXT.TEST_SUBSET; default: all).
    #[arg(long)]
    pub test_subset: Option<usize>,
    /// Images for precise BN statistics (BN.NUM_SAMPLES_PRECISE; default 1024).
    #[arg(long)]
    pub bn_samples: Option<usize>,
    /// Command template of a job (default: `<this regnet> train --quiet --cfg {cfg}
    /// OUT_DIR {out_dir}`).
    #[arg(long, value_name = "TEMPLATE")]
    pub command: Option<String>,
    /// Write a SLURM job array per sweep instead of training here; rerun without it (or
    /// with --report-only) once the jobs are done to collect and report.
    #[arg(long, conflicts_with = "report_only")]
    pub slurm: bool,
    /// With --slurm: submit the arrays with sbatch.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// Set up and train nothing: collect the sweeps in --out and write the report.
    #[arg(long)]
    pub report_only: bool,
    /// Margin of the verdict rule, in error points.
    #[arg(long, default_value_t = 1.0)]
    pub margin: f64,
    /// Bootstrap rounds.
    #[arg(long, default_value_t = 2000)]
    pub rounds: usize,
    /// Print no progress lines of the jobs.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn settings(a: &Args) -> Result<Settings> {
    let data = match (a.dataset, &a.data_path) {
        (Dataset::FashionMnist, p) => Data::FashionMnist(p.clone()),
        (Dataset::Cifar10, Some(p)) => Data::Cifar10(p.clone()),
        (Dataset::Cifar10, None) => bail!("--dataset cifar10 needs --data-path DIR"),
    };
    Ok(Settings {
        models: a.models,
        epochs: a.epochs,
        train_subset: a.train_subset,
        test_subset: a.test_subset,
        bn_samples: a.bn_samples,
        data,
    })
}

fn launcher(a: &Args) -> Result<Launcher> {
    if a.report_only {
        return Ok(Launcher::None);
    }
    let command = match &a.command {
        Some(t) => Template::parse(t).context("--command")?,
        None => {
            let exe = std::env::current_exe().context("cannot find the regnet binary")?;
            Template::default_for(&exe.display().to_string())
        }
    };
    Ok(if a.slurm {
        Launcher::Slurm {
            command,
            submit: a.submit,
        }
    } else {
        Launcher::Local {
            jobs: a.jobs,
            command,
        }
    })
}

fn options(a: &Args) -> Result<PaperOptions> {
    if !(a.margin.is_finite() && a.margin >= 0.0) {
        bail!("--margin must be a number >= 0, not {}", a.margin);
    }
    // Jobs here would each fail on a missing data folder (a cluster's paths may differ).
    if let Some(p) = &a.data_path
        && !a.slurm
        && !a.report_only
        && !std::path::Path::new(p).is_dir()
    {
        bail!("--data-path {p}: not a folder");
    }
    if a.models == Some(0) || a.epochs == Some(0) {
        bail!("--models and --epochs must be at least 1");
    }
    if a.rounds == 0 || a.rounds > 1_000_000 {
        bail!("--rounds must be in 1..=1000000, not {}", a.rounds);
    }
    let only = match &a.only {
        Some(names) => paper::select(names).context("--only")?,
        None => SWEEPS.iter().collect(),
    };
    Ok(PaperOptions {
        out_dir: a.out.clone(),
        only,
        settings: settings(a)?,
        launcher: launcher(a)?,
        rule: Rule {
            margin: a.margin,
            rounds: a.rounds,
            ..Rule::default()
        },
        verbose: !a.quiet,
    })
}

fn print_event(e: Event) {
    match e {
        Event::SetUp {
            key,
            models,
            reused,
        } => {
            let how = if reused { "found set up" } else { "set up" };
            eprintln!("{key}: {models} models {how}");
        }
        Event::Launched { key, summary: s } => eprintln!(
            "{key}: {} jobs, {} finished before, {} finished now, {} failed, {} running \
             elsewhere",
            s.total,
            s.already_finished.len(),
            s.finished.len(),
            s.failed.len() + s.skipped_failed.len(),
            s.running_elsewhere.len()
        ),
        Event::Slurm {
            key,
            script,
            tasks,
            submitted,
        } => {
            eprintln!("{key}: wrote {} ({tasks} array tasks)", script.display());
            if let Some(s) = submitted {
                eprintln!("{key}: {}", s.trim());
            }
        }
    }
}

/// Runs `regnet paper`.
pub fn run(a: Args) -> Result<()> {
    let opts = options(&a)?;
    let s = paper::run(&opts, &mut print_event)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    for o in &s.outcomes {
        println!("{:<14} {:<14} {}", o.id, o.verdict.text(), o.summary);
    }
    println!("wrote {}", s.report.display());
    Ok(())
}
