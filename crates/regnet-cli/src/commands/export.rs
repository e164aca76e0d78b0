//! `regnet export`: weights to regnet's safetensors (which carry the spec and reload with no
//! config), or the whole network to ONNX (`--format onnx`, written by `regnet-onnx` from the
//! layer plan). Without `--weights`, pycls-initialised weights are exported.

use std::path::Path;

use anyhow::{Result, bail};
use regnet_core::config::Config;
use regnet_core::network::Network;
use regnet_core::spec::NetSpec;
use regnet_data::transforms::{
    CIFAR_MEAN, CIFAR_STD, FASHION_MNIST_MEAN, FASHION_MNIST_STD, IMAGENET_MEAN, IMAGENET_STD,
    MNIST_MEAN, MNIST_STD,
};
use regnet_nn::StateDict;
use regnet_nn::init::init_state_dict;
use regnet_nn::weights::{self, ChannelOrder, Which};
use regnet_onnx::{BatchNorm, ExportOptions, InputConvention};

use crate::model_args::{ModelArgs, resolve_spec};

/// Largest `--image-size` accepted (it only fixes the declared input shape).
const MAX_IMAGE_SIZE: usize = 1 << 16;

/// Arguments of `regnet export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Weights to export: pycls checkpoint, timm/torchvision state dict, safetensors. Without
    /// it, the model gets pycls's initialisation (seeded by --seed): untrained weights, for
    /// trying a deployment pipeline.
    #[arg(long)]
    weights: Option<String>,
    /// Export the EMA weights of a pycls checkpoint.
    #[arg(long)]
    ema: bool,
    /// The weights expect BGR input (pycls's original ImageNet weights): flip the stem conv
    /// so that the exported model takes RGB.
    #[arg(long)]
    bgr: bool,
    /// Output format: `safetensors` (regnet's weights, with the spec) or `onnx` (the whole
    /// network as an ONNX graph, opset 13, symbolic batch; the spec, channel order and
    /// normalization are in its metadata).
    #[arg(long, default_value = "safetensors", value_name = "safetensors|onnx")]
    format: String,
    /// ONNX: fold every batch norm into its convolution (inference-ready) instead of keeping
    /// BatchNormalization nodes with the running statistics (training-faithful).
    #[arg(long)]
    fold_bn: bool,
    /// ONNX: fix the image height and width to N (default: symbolic, any size works since
    /// every pooling is global).
    #[arg(long, value_name = "N")]
    image_size: Option<usize>,
    /// Seed of the initialisation when no --weights are given.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output file (written atomically: no half-written file is ever left).
    #[arg(long)]
    output: String,
}

/// The two output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Safetensors,
    Onnx,
}

/// A model to export: its spec, weights (pycls names, RGB stem) and where they came from.
struct Source {
    spec: NetSpec,
    state: StateDict,
    label: String,
    cfg: Option<Config>,
    flipped: bool,
}

/// Runs `regnet export`.
pub fn run(args: Args) -> Result<()> {
    let format = match args.format.as_str() {
        "safetensors" => Format::Safetensors,
        "onnx" => Format::Onnx,
        other => bail!("unknown export format `{other}`: use safetensors or onnx"),
    };
    if format == Format::Safetensors && (args.fold_bn || args.image_size.is_some()) {
        bail!("--fold-bn and --image-size apply to --format onnx only");
    }
    if let Some(s) = args.image_size
        && !(1..=MAX_IMAGE_SIZE).contains(&s)
    {
        bail!("--image-size {s} must be between 1 and {MAX_IMAGE_SIZE}");
    }
    let src = load(&args)?;
    let output = Path::new(&args.output);
    let what = match format {
        Format::Safetensors => {
            // The error names the file already: a context would say it twice.
            weights::write_safetensors(output, &src.state, &src.spec, ChannelOrder::Rgb)?;
            format!("{} tensors", src.state.tensors.len())
        }
        Format::Onnx => write_onnx(&args, &src, output)?,
    };
    let flip = if src.flipped {
        ", stem flipped from BGR to RGB"
    } else {
        ""
    };
    println!("{}: {what}{flip} -> {}", src.label, args.output);
    Ok(())
}

/// Reads the weights (or initialises them) and checks them against the model.
fn load(args: &Args) -> Result<Source> {
    let has_model = args.model.cfg.is_some() || !args.model.rest.is_empty();
    let cfg = if has_model {
        Some(args.model.config()?)
    } else {
        None
    };
    let Some(path) = &args.weights else {
        if args.ema || args.bgr {
            bail!("--ema and --bgr need --weights");
        }
        let Some(cfg) = cfg else {
            bail!("no model given: name a zoo model or give --cfg FILE (or --weights)");
        };
        let spec = cfg.spec()?;
        let net = Network::from_spec(&spec)?;
        let state = init_state_dict(&net, args.seed, cfg.bn.zero_init_final_gamma);
        let label = format!("pycls initialisation (seed {})", args.seed);
        return Ok(Source {
            spec,
            state,
            label,
            cfg: Some(cfg),
            flipped: false,
        });
    };
    let which = if args.ema { Which::Ema } else { Which::Model };
    let mut w = weights::read(Path::new(path), which)?;
    let spec = resolve_spec(&args.model, &w, path)?;
    w.state.check(&Network::from_spec(&spec)?, path)?;
    let flipped = args.bgr || w.channel_order == Some(ChannelOrder::Bgr);
    if flipped {
        w.state.flip_stem_channels()?;
    }
    Ok(Source {
        spec,
        state: w.state,
        label: format!("{path} ({:?} names)", w.layout),
        cfg,
        flipped,
    })
}

/// Writes the ONNX model; returns a description for the summary line.
fn write_onnx(args: &Args, src: &Source, output: &Path) -> Result<String> {
    let opts = ExportOptions {
        batch_norm: if args.fold_bn {
            BatchNorm::Fold
        } else {
            BatchNorm::Keep
        },
        image_size: args.image_size,
        input: input_convention(src.cfg.as_ref(), src.spec.in_channels),
        // pycls's BN.EPS when a config is given (training uses it), else its default.
        bn_eps: src
            .cfg
            .as_ref()
            .map_or(ExportOptions::default().bn_eps, |c| c.bn.eps),
    };
    let model = regnet_onnx::to_onnx(&src.spec, &src.state, &opts, &src.label)?;
    // The error names the file already (see `write_atomic`).
    regnet_onnx::write_onnx(output, &model)?;
    let nodes = model.graph.as_ref().map_or(0, |g| g.node.len());
    Ok(format!(
        "ONNX opset {}, {nodes} nodes, batch norms {}, image size {}",
        regnet_onnx::export::OPSET,
        if args.fold_bn { "folded" } else { "kept" },
        args.image_size
            .map_or("symbolic".to_string(), |s| format!("{s}x{s}"))
    ))
}

/// The normalization recorded in the ONNX metadata: that of the training data set named by
/// the config (`TRAIN.DATASET`), else ImageNet's for three channels and Fashion-MNIST's (the
/// default one-channel data set) for one; none (mean 0, std 1) otherwise.
fn input_convention(cfg: Option<&Config>, c: usize) -> InputConvention {
    let dataset = cfg.map_or(String::new(), |cfg| cfg.train.dataset.to_lowercase());
    let (mean, std, pixel_max) = match (c, dataset.as_str()) {
        (3, d) if d.contains("cifar") => (CIFAR_MEAN.to_vec(), CIFAR_STD.to_vec(), 255.0),
        (3, _) => (IMAGENET_MEAN.to_vec(), IMAGENET_STD.to_vec(), 1.0),
        (1, "mnist") => (vec![MNIST_MEAN], vec![MNIST_STD], 1.0),
        (1, _) => (vec![FASHION_MNIST_MEAN], vec![FASHION_MNIST_STD], 1.0),
        _ => (vec![0.0; c], vec![1.0; c], 1.0),
    };
    InputConvention {
        channel_order: ChannelOrder::Rgb,
        mean,
        std,
        pixel_max,
    }
}
