//! `regnet test`: top-1 and top-5 error of weights on the config's test split; the weights
//! are `TEST.WEIGHTS`, as in pycls, or `--weights`.

use anyhow::Result;
use regnet_nn::weights::Which;
use regnet_train::trainer;

use crate::commands::train::train_config;
use crate::model_args::ModelArgs;

/// Arguments of `regnet test`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights: a checkpoint, regnet safetensors, pycls/timm/torchvision files (a shortcut
    /// for `TEST.WEIGHTS FILE`, and wins over it).
    #[arg(long)]
    weights: Option<String>,
    /// Test the EMA weights of a checkpoint.
    #[arg(long)]
    ema: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `regnet test`.
pub fn run(args: Args) -> Result<()> {
    let mut cfg = train_config(&args.model)?;
    // With no model arguments the architecture comes from the weights (the recipe's data
    // set and test settings stay).
    if args.model.cfg.is_none()
        && args.model.rest.iter().all(|a| {
            !a.starts_with("MODEL.") && !a.starts_with("REGNET.") && !a.starts_with("ANYNET.")
        })
        && args.model.model_name().is_none()
    {
        cfg.model.ty = String::new();
    }
    let which = if args.ema { Which::Ema } else { Which::Model };
    let weights = trainer::test_weights(&cfg, args.weights.as_deref())?;
    let s = trainer::test(&cfg, weights, which, args.json)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "{}: top-1 error {:.2}%, top-5 error {:.2}% on {} images of {} ({:.1} s)",
            weights, s.top1_err, s.top5_err, s.images, cfg.test.dataset, s.seconds
        );
    }
    Ok(())
}
