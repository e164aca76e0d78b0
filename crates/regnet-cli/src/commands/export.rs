//! `regnet export`: pycls, timm or torchvision weights to regnet's safetensors, which carry
//! the spec and reload with no config.

use std::path::Path;

use anyhow::Result;
use regnet_core::network::Network;
use regnet_nn::weights::{self, ChannelOrder, Which};

use crate::model_args::{ModelArgs, resolve_spec};

/// Arguments of `regnet export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights to convert: pycls checkpoint, timm/torchvision state dict, safetensors.
    #[arg(long)]
    weights: String,
    /// Export the EMA weights of a pycls checkpoint.
    #[arg(long)]
    ema: bool,
    /// The weights expect BGR input (pycls's original ImageNet weights): flip the stem conv
    /// so that the exported weights take RGB.
    #[arg(long)]
    bgr: bool,
    /// Output safetensors file.
    #[arg(long)]
    output: String,
}

/// Runs `regnet export`.
pub fn run(args: Args) -> Result<()> {
    let which = if args.ema { Which::Ema } else { Which::Model };
    let mut w = weights::read(Path::new(&args.weights), which)?;
    let spec = resolve_spec(&args.model, &w, &args.weights)?;
    let net = Network::from_spec(&spec)?;
    w.state.check(&net, &args.weights)?;
    let input_bgr = args.bgr || w.channel_order == Some(ChannelOrder::Bgr);
    if input_bgr {
        w.state.flip_stem_channels()?;
    }
    weights::write_safetensors(Path::new(&args.output), &w.state, &spec, ChannelOrder::Rgb)?;
    println!(
        "{}: {} tensors ({:?} names{}) -> {}",
        args.weights,
        w.state.tensors.len(),
        w.layout,
        if input_bgr {
            ", stem flipped from BGR to RGB"
        } else {
            ""
        },
        args.output
    );
    Ok(())
}
