//! `regnet predict`: top-5 ImageNet classes of images, with pycls's evaluation
//! preprocessing (short side to `TEST.IM_SIZE`, centre crop `TRAIN.IM_SIZE`, mean/std).

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use regnet_data::transforms::imagenet::ImageNetTransform;
use regnet_data::{ChannelOrder as DataOrder, Transform, decode_image_file, sample_rng};
use regnet_nn::weights::{self, ChannelOrder, Which};
use serde_json::json;

use crate::engine::{Engine, softmax_rows};
use crate::model_args::{ModelArgs, resolve_spec};

/// Arguments of `regnet predict`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Weights: pycls checkpoint, timm/torchvision state dict, or regnet safetensors.
    #[arg(long)]
    weights: String,
    /// The weights expect BGR input (pycls's original ImageNet weights); regnet's exported
    /// weights record their channel order and need no flag.
    #[arg(long)]
    bgr: bool,
    /// Use the EMA weights of a pycls checkpoint.
    #[arg(long)]
    ema: bool,
    /// How many classes to show.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Device.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Model (zoo name, --cfg, overrides), then `--` and the images, or only images when the
    /// weights carry their spec: `regnet predict RegNetX-400MF --weights W -- a.jpg b.png`.
    #[command(flatten)]
    model: ModelArgs,
    /// JPEG or PNG images.
    #[arg(last = true, required = true)]
    images: Vec<String>,
}

/// Runs `regnet predict`.
pub fn run(args: Args) -> Result<()> {
    let which = if args.ema { Which::Ema } else { Which::Model };
    let w = weights::read(Path::new(&args.weights), which)?;
    let spec = resolve_spec(&args.model, &w, &args.weights)?;
    if spec.num_classes != 1000 || spec.in_channels != 3 {
        bail!(
            "predict needs an ImageNet model (3 input channels, 1000 classes); this one has {} and {}",
            spec.in_channels,
            spec.num_classes
        );
    }
    let cfg = if args.model.rest.is_empty() && args.model.cfg.is_none() {
        None
    } else {
        Some(args.model.config()?)
    };
    let (im_size, test_size) = cfg.map_or((224, 256), |c| (c.train.im_size, c.test.im_size));
    let bgr = args.bgr || w.channel_order == Some(ChannelOrder::Bgr);
    let order = if bgr { DataOrder::Bgr } else { DataOrder::Rgb };
    let transform = ImageNetTransform::test(im_size, test_size, order)?;
    let mut engine = Engine::new(&spec, &w.state, &args.device, &args.weights)?;
    let classes = regnet_data::imagenet_classes();

    let mut results = Vec::new();
    for path in &args.images {
        let image = decode_image_file(Path::new(path))?;
        let [c, h, wd] = transform.output_shape();
        let mut x = vec![0.0f32; c * h * wd];
        let mut rng = sample_rng(0, 0, 0);
        transform
            .apply(&image, &mut rng, &mut x)
            .map_err(|e| anyhow!("{path}: {e}"))?;
        let mut probs = engine.logits(x, [1, c, h, wd])?;
        softmax_rows(&mut probs, spec.num_classes);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let top: Vec<(usize, f32)> = order
            .iter()
            .take(args.top)
            .map(|&i| (i, probs[i]))
            .collect();
        results.push((path, top));
    }
    if args.json {
        let out: Vec<_> = results
            .iter()
            .map(|(path, top)| {
                json!({
                    "image": path,
                    "top": top.iter().map(|&(i, p)| json!({"class": i, "name": classes[i], "prob": p})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (path, top) in results {
            println!("{path}");
            for (i, p) in top {
                println!("  {:6.2}%  {:4}  {}", p * 100.0, i, classes[i]);
            }
        }
    }
    Ok(())
}
