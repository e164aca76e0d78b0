//! `regnet`: the command-line interface. Each subcommand lives in `commands/<name>.rs` and
//! only parses arguments and prints; the work is done by the library crates.

mod allocator;
mod commands;
mod engine;
mod model_args;
mod panics;
mod worker_pool;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// RegNet and AnyNet design spaces, models and training, the pycls way.
#[derive(Parser)]
#[command(name = "regnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every model of the zoo with its complexity and published error.
    Zoo(commands::zoo::Args),
    /// Show a model's stages, widths and complexity.
    Info(commands::info::Args),
    /// Eval-mode logits of the tensor `input` of a safetensors file.
    Forward(commands::forward::Args),
    /// Convert pycls, timm or torchvision weights to regnet's safetensors, or a model to ONNX.
    Export(commands::export::Args),
    /// Top-5 ImageNet classes of JPEG/PNG images.
    Predict(commands::predict::Args),
    /// Forward and training-step time per batch.
    Time(commands::time::Args),
    /// Train (no arguments: a small RegNet on Fashion-MNIST).
    Train(commands::train::Args),
    /// Top-1/top-5 error of weights on a test split.
    Test(commands::test::Args),
    /// Design-space sweeps: setup, launch, collect, analyze.
    Sweep(commands::sweep::SweepArgs),
    /// Fit the quantized linear parameters (w0, wa, wm) to per-block widths.
    Fit(commands::fit::FitArgs),
    /// The paper's experiments reproduced small: all sweeps, one report with verdicts.
    Paper(commands::paper::Args),
}

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    worker_pool::join_global_pool();
    let cli = Cli::parse();
    let result = panics::as_errors(|| match cli.command {
        Command::Zoo(args) => commands::zoo::run(args),
        Command::Info(args) => commands::info::run(args),
        Command::Forward(args) => commands::forward::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Predict(args) => commands::predict::run(args),
        Command::Time(args) => commands::time::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Test(args) => commands::test::run(args),
        Command::Sweep(args) => commands::sweep::run(args),
        Command::Fit(args) => commands::fit::run(args),
        Command::Paper(args) => commands::paper::run(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
