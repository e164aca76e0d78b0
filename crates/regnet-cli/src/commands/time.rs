//! `regnet time`: forward and training-step time per batch, like pycls's `time_net`.

use anyhow::{Result, anyhow};
use regnet_nn::layers::BnSettings;
use regnet_nn::{Model, device};
use regnet_train::memory;
use regnet_train::timing::{Times, time_forward, time_train_step};
use serde_json::json;

use crate::model_args::ModelArgs;

/// Arguments of `regnet time`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Batch size (default: `TEST.BATCH_SIZE` / `NUM_GPUS` for the forward pass and
    /// `TRAIN.BATCH_SIZE` / `NUM_GPUS` for the training step, as pycls does).
    #[arg(long)]
    batch: Option<usize>,
    /// Image size (default: `TEST.IM_SIZE` forward, `TRAIN.IM_SIZE` training).
    #[arg(long)]
    im_size: Option<usize>,
    /// Warm-up iterations (default `PREC_TIME.WARMUP_ITER`).
    #[arg(long)]
    warmup: Option<usize>,
    /// Timed iterations (default `PREC_TIME.NUM_ITER`).
    #[arg(long)]
    iters: Option<usize>,
    /// Time only the eval-mode forward pass.
    #[arg(long)]
    forward_only: bool,
    /// Device.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Forward engine: `compiled` (regnet-infer, CPU only; the default on the CPU) or `burn`.
    #[arg(long)]
    engine: Option<String>,
    /// Also print the compiled forward's time per layer (summed by what a layer computes,
    /// over the timed iterations; the timer adds a little to each layer).
    #[arg(long)]
    layers: bool,
}

/// The forward engine `regnet time` uses: compiled on the CPU unless told otherwise.
fn engine(args: &Args) -> Result<&'static str> {
    match (args.engine.as_deref(), args.device.as_str()) {
        (None, "cpu") | (Some("compiled"), "cpu") => Ok("compiled"),
        (None, _) | (Some("burn"), _) => Ok("burn"),
        (Some("compiled"), d) => Err(anyhow!("--engine compiled runs on the cpu only, not {d}")),
        (Some(e), _) => Err(anyhow!("--engine {e}: expected compiled or burn")),
    }
}

/// Refuses `--batch 0`, `--im-size 0` and sizes or iteration counts above the limits,
/// naming the flag, before anything is allocated from them (the timing functions check the
/// batch's bytes and activations, whichever way its sizes were given).
fn check_flags(args: &Args, [warmup, iters]: [usize; 2]) -> Result<()> {
    let flags = [
        ("--batch", args.batch, regnet_core::limits::MAX_BATCH),
        ("--im-size", args.im_size, regnet_core::limits::MAX_IM_SIZE),
    ];
    for (flag, value, max) in flags {
        match value {
            Some(0) => return Err(anyhow!("{flag} 0: must be at least 1")),
            Some(v) if v > max => return Err(anyhow!("{flag} {v} is above the limit of {max}")),
            _ => {}
        }
    }
    memory::check_iters(warmup, iters).map_err(|e| anyhow!("--warmup/--iters: {e}"))?;
    Ok(())
}

/// What `time_compiled` measured: the forward times, the SIMD level and, if asked for, the
/// per-layer times.
struct Compiled {
    times: Times,
    simd: String,
    layers: Vec<regnet_infer::LayerTime>,
}

/// Eval forward time of the compiled engine on random input.
fn time_compiled(
    spec: &regnet_core::spec::NetSpec,
    model: &Model,
    [batch, size, warmup, iters]: [usize; 4],
    layers: bool,
) -> Result<Compiled> {
    let net = regnet_core::network::Network::from_spec(spec)?;
    let sd = model.to_state_dict();
    let mut compiled = regnet_infer::CompiledNet::compile(&net, &sd, BnSettings::default().eps)?;
    let shape = [batch, spec.in_channels, size, size];
    compiled.check_shape(shape)?;
    let x = burn::tensor::Tensor::<4>::random(
        shape,
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device::cpu(),
    );
    let input = regnet_nn::conv::from_tensor(x).data;
    let mut times = Times::default();
    for i in 0..warmup + iters {
        if i == warmup && layers {
            compiled.profile_layers(true);
        }
        let t = std::time::Instant::now();
        let y = compiled.forward(&input, shape)?;
        std::hint::black_box(y);
        if i >= warmup {
            times.seconds.push(t.elapsed().as_secs_f64());
        }
    }
    Ok(Compiled {
        times,
        simd: compiled.level().to_string(),
        layers: compiled.layer_times(),
    })
}

/// The per-layer table: per forward, share of the layers' time, multiply-add rate.
fn print_layers(layers: &[regnet_infer::LayerTime], iters: usize, forward: f64) {
    let total: f64 = layers.iter().map(|l| l.seconds).sum();
    println!("per layer (ms per forward, share, GMAC/s, calls per forward, layer):");
    for l in layers {
        let rate = if l.macs > 0 {
            format!("{:7.1}", l.macs as f64 / l.seconds / 1e9)
        } else {
            format!("{:>7}", "-")
        };
        println!(
            "{:9.3} {:5.1}% {rate} {:4} {}",
            l.seconds / iters as f64 * 1e3,
            100.0 * l.seconds / total,
            l.calls.div_ceil(iters),
            l.layer
        );
    }
    println!(
        "{:9.3} layers, {:.3} other (thread hand-offs, arena) per forward",
        total / iters as f64 * 1e3,
        (forward - total / iters as f64).max(0.0) * 1e3
    );
}

/// What `regnet time` measured, for printing.
struct Report<'a> {
    engine: &'static str,
    simd: String,
    device: &'a str,
    /// Forward times, batch and image size.
    fw: (Times, usize, usize),
    /// Per-layer times, when asked for.
    layers: Option<Vec<regnet_infer::LayerTime>>,
    /// Training-step times, batch and image size, unless `--forward-only`.
    train: Option<(Times, usize, usize)>,
    /// The optimizer of the config (OPTIM.OPTIMIZER), the one timed.
    optimizer: &'static str,
    warmup: usize,
    iters: usize,
}

/// Runs `regnet time`.
pub fn run(args: Args) -> Result<()> {
    let cfg = args.model.config()?;
    let spec = cfg.spec()?;
    let dev = device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    let gpus = cfg.num_gpus.max(1);
    let warmup = args.warmup.unwrap_or(cfg.prec_time.warmup_iter);
    let iters = args.iters.unwrap_or(cfg.prec_time.num_iter).max(1);
    let test_batch = args.batch.unwrap_or(cfg.test.batch_size / gpus).max(1);
    let test_size = args.im_size.unwrap_or(cfg.test.im_size);
    check_flags(&args, [warmup, iters])?;
    let model = Model::init(&spec, 0, false, &dev)?;
    let engine = engine(&args)?;
    if args.layers && engine != "compiled" {
        return Err(anyhow!(
            "--layers times the compiled engine only, not {engine}"
        ));
    }
    let (fw, simd, layers) = if engine == "compiled" {
        let dims = [test_batch, test_size, warmup, iters];
        let c = time_compiled(&spec, &model, dims, args.layers)?;
        (c.times, c.simd, c.layers)
    } else {
        let t = time_forward(&model, test_batch, test_size, warmup, iters)?;
        // burn dispatches its own kernels (and gemm's) at run time; no level to report.
        (t, "n/a".to_string(), Vec::new())
    };
    let train = if args.forward_only {
        None
    } else {
        let batch = args.batch.unwrap_or(cfg.train.batch_size / gpus).max(1);
        let size = args.im_size.unwrap_or(cfg.train.im_size);
        let t = time_train_step(&cfg, &spec, &dev, [batch, size], warmup, iters)?;
        Some((t, batch, size))
    };
    let report = Report {
        engine,
        simd,
        device: &args.device,
        fw: (fw, test_batch, test_size),
        layers: args.layers.then_some(layers),
        train,
        optimizer: cfg.optim.optimizer.name(),
        warmup,
        iters,
    };
    if args.json {
        print_json(&report)
    } else {
        print_text(&report);
        Ok(())
    }
}

/// The report as pycls-style JSON keys.
fn print_json(r: &Report) -> Result<()> {
    let (fw, batch, size) = &r.fw;
    let mut out = json!({
        "test_fw_time": fw.median(),
        "test_fw_times": fw.seconds,
        "test_batch_size": batch,
        "test_im_size": size,
        "device": r.device,
        "engine": r.engine,
        "simd_level": r.simd,
    });
    if let Some(layers) = &r.layers {
        let rows: Vec<_> = layers
            .iter()
            .map(|l| {
                json!({
                    "layer": l.layer,
                    "calls": l.calls,
                    "seconds": l.seconds,
                    "macs": l.macs,
                })
            })
            .collect();
        out["layers"] = json!(rows);
    }
    if let Some((t, b, s)) = &r.train {
        out["train_step_time"] = json!(t.median());
        out["train_step_times"] = json!(t.seconds);
        out["train_batch_size"] = json!(b);
        out["train_im_size"] = json!(s);
        out["train_optimizer"] = json!(r.optimizer);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The report as lines of text.
fn print_text(r: &Report) {
    let (fw, batch, size) = &r.fw;
    let (engine, simd, iters, warmup) = (r.engine, &r.simd, r.iters, r.warmup);
    println!(
        "test forward ({engine}, {simd}), batch {batch} at {size}: median {:.1} ms, mean {:.1} ms ({iters} iterations after {warmup})",
        fw.median() * 1e3,
        fw.mean() * 1e3
    );
    if let Some(layers) = &r.layers {
        print_layers(layers, iters, fw.mean());
    }
    if let Some((t, b, s)) = &r.train {
        println!(
            "train step (fw+bw+{}), batch {b} at {s}: median {:.1} ms, mean {:.1} ms",
            r.optimizer,
            t.median() * 1e3,
            t.mean() * 1e3
        );
    }
}
