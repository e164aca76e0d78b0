//! `regnet forward`: eval-mode logits of the tensor `input` of a safetensors file.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use regnet_nn::weights::{self, Which};
use regnet_nn::{StateDict, TensorF32};

use crate::engine::Engine;
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
    let (tensors, _) = weights::read_safetensors_tensors(Path::new(&args.input))?;
    let input = tensors
        .get("input")
        .ok_or_else(|| anyhow!("{}: no tensor named `input`", args.input))?;
    let too_big = |i: usize, max: usize| input.shape.get(i).is_some_and(|&d| d > max);
    if too_big(0, regnet_core::limits::MAX_BATCH)
        || too_big(2, regnet_core::limits::MAX_IM_SIZE)
        || too_big(3, regnet_core::limits::MAX_IM_SIZE)
    {
        bail!(
            "{}: `input` has shape {:?}, above the limits of {} images of {}x{}",
            args.input,
            input.shape,
            regnet_core::limits::MAX_BATCH,
            regnet_core::limits::MAX_IM_SIZE,
            regnet_core::limits::MAX_IM_SIZE
        );
    }
    if input.shape.len() != 4 || input.shape[1] != spec.in_channels {
        bail!(
            "{}: `input` has shape {:?}; expected [n, {}, h, w]",
            args.input,
            input.shape,
            spec.in_channels
        );
    }
    let s = &input.shape;
    let mut engine = Engine::new(&spec, &w.state, &args.device, &args.weights)?;
    let y = engine
        .logits(input.data.clone(), [s[0], s[1], s[2], s[3]])
        .with_context(|| args.input.clone())?;
    let logits = TensorF32::new(vec![s[0], spec.num_classes], y);
    let mut out = StateDict::default();
    out.insert("logits", logits);
    // The error names the file already: a context would say it twice.
    write_tensors(Path::new(&args.output), &out)?;
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
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| path.display().to_string())?;
    let out = safetensors::serialize(views, None).with_context(|| path.display().to_string())?;
    weights::write_atomic(path, &out)?;
    Ok(())
}
