//! `regnet train`: trains with the pycls recipe; with no arguments, the built-in default
//! (a small RegNet on Fashion-MNIST, see `regnet_core::recipe`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, anyhow};
use regnet_core::recipe;
use regnet_train::trainer::{self, TrainOptions};
use signal_hook::consts::{SIGTERM, SIGUSR1};

use crate::model_args::ModelArgs;

/// Arguments of `regnet train`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Print the final summary as JSON (the log lines still go to stdout.log).
    #[arg(long)]
    json: bool,
    /// No progress bar and no log lines on stdout.
    #[arg(long)]
    quiet: bool,
}

/// The config of a training command: the built-in recipe when neither a zoo model nor a
/// config file is given (overrides then modify the recipe).
pub fn train_config(model: &ModelArgs) -> Result<regnet_core::config::Config> {
    if model.cfg.is_none() && model.model_name().is_none() {
        let mut cfg = recipe::fashion_mnist();
        cfg.merge_overrides(model.overrides())?;
        return Ok(cfg);
    }
    model.config()
}

/// Runs `regnet train`.
pub fn run(args: Args) -> Result<()> {
    let cfg = train_config(&args.model)?;
    let mut plot = |out_dir: &Path, _epoch: usize| {
        // The curves are a convenience: a failure to draw them must not stop training.
        if let Ok(log) = std::fs::read_to_string(out_dir.join("stdout.log"))
            && let Ok(svg) =
                regnet_sweep::curves::training_curves_svg(&log, &out_dir.display().to_string())
        {
            let _ = regnet_nn::weights::write_atomic(&out_dir.join("curves.svg"), svg.as_bytes());
        }
    };
    let stop = stop_on_signals()?;
    let summary = trainer::train(
        &cfg,
        TrainOptions {
            quiet: args.quiet || args.json,
            on_epoch: Some(&mut plot),
            stop: Some(&stop),
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "done: test top-1 error {:.2}% (accuracy {:.2}%), best {:.2}%{}, {:.0} s; logs, checkpoints and curves.svg in {}",
            summary.test_err,
            100.0 - summary.test_err,
            summary.best_err,
            summary
                .ema_err
                .map(|e| format!(", EMA {e:.2}%"))
                .unwrap_or_default(),
            summary.seconds,
            summary.out_dir.display()
        );
    }
    Ok(())
}

/// A flag raised by SIGUSR1 (SLURM's warning before a time limit, `--signal`) and SIGTERM
/// (preemption, `scancel`, `scontrol requeue`): training finishes its step and exits, and
/// the requeued job resumes from the last checkpoint.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGUSR1, SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| anyhow!("cannot install a handler for signal {sig}: {e}"))?;
    }
    Ok(stop)
}
