//! `regnet sweep launch`: run a sweep's jobs here, or write (and submit) a SLURM array.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use regnet_sweep::launch::{self, LaunchOptions, LaunchSummary};
use regnet_sweep::layout::{self, Progress};
use regnet_sweep::slurm::{self, SlurmOptions};
use regnet_sweep::sweep_config::SweepConfig;
use regnet_sweep::template::Template;

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

/// The command template: `--command`, else `LAUNCH.COMMAND`, else this binary's `train`.
fn template(a: &LaunchArgs, sweep: &SweepConfig) -> Result<Template> {
    Ok(match a.command.as_ref().or(sweep.launch.command.as_ref()) {
        Some(t) => Template::parse(t)?,
        None => {
            let exe = std::env::current_exe().context("cannot find the regnet binary")?;
            Template::default_for(&exe.display().to_string())
        }
    })
}

/// Writes (and with `--submit` submits) the SLURM array of the unfinished jobs.
fn run_slurm(a: &LaunchArgs, sweep: &SweepConfig, template: Template) -> Result<()> {
    let todo: Vec<usize> = launch::progress(&sweep.sweep_dir())?
        .into_iter()
        .filter(|(i, p)| *p != Progress::Finished && a.only.as_ref().is_none_or(|o| o.contains(i)))
        .map(|(i, _)| i)
        .collect();
    let mut opts = SlurmOptions::from_sweep(sweep, template, todo);
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
    Ok(())
}

/// Runs `regnet sweep launch`.
pub fn run(a: LaunchArgs) -> Result<()> {
    let sweep = SweepConfig::load(&a.sweep_cfg)?;
    let template = template(&a, &sweep)?;
    if a.slurm {
        return run_slurm(&a, &sweep, template);
    }
    let opts = LaunchOptions {
        sweep_dir: sweep.sweep_dir(),
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
    print_summary(&opts, &s);
    Ok(())
}

fn print_summary(opts: &LaunchOptions, s: &LaunchSummary) {
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
        let names: Vec<String> = (s.failed.iter().chain(&s.skipped_failed))
            .map(|&i| layout::out_dir(&opts.sweep_dir, i).display().to_string())
            .collect();
        println!("failed jobs' logs: {}", names.join(" "));
    }
}
