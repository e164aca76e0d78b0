//! `regnet forward`: eval-mode logits of the tensor `input` of a safetensors file.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use regnet_nn::conv::{from_tensor, to_tensor};
use regnet_nn::layers::BnSettings;
use regnet_nn::weights::{self, Which};
use regnet_nn::{Model, StateDict, device};

use crate::model_args::{ModelArgs, resolve_spec};

/// Arguments of `regnet forward`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights: pycls checkpoint (.pyth), timm/torchvision state dict (.pth), safetensors.
    #[arg(long)]
    weights: String,
    /// Use the EMA weights of a pycls checkpoint.
    #[arg(long)]
    ema: bool,
    /// safetensors file with the tensor `input` (f32, NCHW).
    #[arg(long)]
    input: String,
    /// safetensors file to write the tensor `logits` to.
    #[arg(long)]
    output: String,
    /// Device: cpu (default) or gpu (with the `gpu` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Runs `regnet forward`.
pub fn run(args: Args) -> Result<()> {
    let which = if args.ema { Which::Ema } else { Which::Model };
    let w = weights::read(Path::new(&args.weights), which)?;
    let spec = resolve_spec(&args.model, &w, &args.weights)?;
    let dev = device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    let model =
        Model::from_state_dict(&spec, &w.state, BnSettings::default(), &dev, &args.weights)?;

    let (tensors, _) = weights::read_safetensors_tensors(Path::new(&args.input))?;
    let input = tensors
        .get("input")
        .ok_or_else(|| anyhow!("{}: no tensor named `input`", args.input))?;
    if input.shape.len() != 4 || input.shape[1] != spec.in_channels {
        bail!(
            "{}: `input` has shape {:?}; expected [n, {}, h, w]",
            args.input,
            input.shape,
            spec.in_channels
        );
    }
    let logits = from_tensor(model.forward(to_tensor::<4>(input, &dev)));
    let mut out = StateDict::default();
    out.insert("logits", logits);
    write_tensors(Path::new(&args.output), &out)
        .with_context(|| format!("writing {}", args.output))?;
    Ok(())
}

/// Writes plain tensors (no spec) as safetensors, atomically.
pub fn write_tensors(path: &Path, sd: &StateDict) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = sd
        .tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                .map(|v| (n.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = safetensors::serialize(views, None)?;
    weights::write_atomic(path, &out)?;
    Ok(())
}
